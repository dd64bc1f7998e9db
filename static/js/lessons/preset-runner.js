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

// Why the playground refused (or a request failed), in the page's language from the error's code;
// the server's exact words stay in a closed "details" element. A fit is explained per axis below.
export function explainError(error) {
  const key = `playground.error.${error.code}`;
  return el("div", { class: "refusal" },
    el("p", { class: "error", text: t(key) === key ? t("playground.error.generic") : t(key) }),
    el("details", { class: "small muted" }, el("summary", { text: t("playground.error.details") }),
      el("p", { lang: "en", text: error.message })));
}

export async function showRefusal(container, operation, request, error) {
  delete container.dataset.render;
  const explanation = el("div", { class: "fits" }, explainError(error));
  container.replaceChildren(el("p", { class: "error", text: t("lessons.refused") }), explanation);
  if (error.code === "does_not_fit" && operation !== "relu") {
    renderFits(explanation, await sizeExplanations(request, operation));
  }
  container.dataset.state = "shown";
}

let renders = 0;

// Draws `result` into `container`, and again in the new language when it changes (same step).
function showResult(container, operation, result, options) {
  const id = String((renders += 1));
  container.dataset.render = id;
  let stepper = null;
  const draw = () => {
    stepper?.stop();
    const at = stepper ? stepper.index() : 0;
    if (operation === "im2col") renderIm2Col(container, result);
    else (stepper = mountStepper(container, result, options)).go(at);
  };
  draw();
  const relabel = () => {
    if (container.dataset.render === id) draw();
    else document.removeEventListener("convlens:language", relabel);
  };
  document.addEventListener("convlens:language", relabel);
}

// Runs the request and shows the result or the refusal; `data-state` is "shown" once all is drawn.
export async function runAndShow(container, operation, request, { highlights = [] } = {}) {
  delete container.dataset.render;
  container.dataset.state = "computing";
  container.replaceChildren(el("p", { class: "muted", text: t("lessons.loading") }));
  try {
    const result = await api.runPlayground(operation, request);
    showResult(container, operation, result, { kernels: request.kernels ?? null, highlights });
    container.dataset.state = "shown";
    return result;
  } catch (error) {
    await showRefusal(container, operation, request, error);
    return null;
  }
}
