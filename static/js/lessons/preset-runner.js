// Run a preset (or any playground request) and show it: the stepper, im2col's matrices, or, when the
// playground refuses (the seeds' 7×7 / stride 3), the refusal with the output-size explanation.
import * as api from "../api.js";
import { el } from "../format.js";
import { t } from "../i18n.js";
import { renderIm2Col } from "./im2col.js";
import { mountStepper } from "./stepper.js";
import { bi } from "./strings.js";

function pair(value, fallback) {
  if (value === undefined || value === null) return [fallback, fallback];
  return Array.isArray(value) ? value : [value, value];
}

// Both axes through GET /output-size, so a refusal is explained in the page's language.
export async function sizeExplanations(request, operation) {
  const input = request.input[0];
  const kernel = operation === "pool" ? pair(request.kernel_size, 2)
    : [request.kernels[0][0].length, request.kernels[0][0][0].length];
  const stride = operation === "pool" ? pair(request.stride ?? request.kernel_size, 2) : pair(request.stride, 1);
  const dilation = pair(request.dilation, 1);
  let padding = request.padding ?? 0;
  if (padding === "valid") padding = 0;
  if (padding === "same") padding = kernel.map((k, i) => Math.floor((dilation[i] * (k - 1)) / 2));
  padding = pair(padding, 0);
  const sizes = [input.length, input[0].length];
  return Promise.all([0, 1].map((axis) => api.getOutputSize({
    input: sizes[axis], kernel: kernel[axis], stride: stride[axis], padding: padding[axis], dilation: dilation[axis],
  })));
}

export function renderFits(container, fits) {
  container.replaceChildren(...fits.map((fit, axis) => el("p", {
    class: fit.fits ? "fit ok" : "fit bad",
  }, ...bi({
    en: fit.explanation.en.replace(/^width/, axis === 0 ? "height" : "width"),
    zh: fit.explanation.zh.replace(/^宽/, axis === 0 ? "高" : "宽"),
  }))));
}

// A refusal: the reason per axis in the page's language when it is about the fit, else the message.
export async function showRefusal(container, operation, request, error) {
  const explanation = el("div", { class: "fits" }, el("p", { class: "error", text: error.message }));
  container.replaceChildren(el("p", { class: "error", text: t("lessons.refused") }), explanation);
  if (error.code === "does_not_fit" && operation !== "relu") {
    renderFits(explanation, await sizeExplanations(request, operation));
  }
}

export async function runAndShow(container, operation, request, { highlights = [] } = {}) {
  container.replaceChildren(el("p", { class: "muted", text: t("lessons.loading") }));
  try {
    const result = await api.runPlayground(operation, request);
    if (operation === "im2col") renderIm2Col(container, result);
    else mountStepper(container, result, { kernels: request.kernels ?? null, highlights });
    return result;
  } catch (error) {
    await showRefusal(container, operation, request, error);
    return null;
  }
}
