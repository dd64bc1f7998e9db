// Building blocks shared by the attribution cards: a card, stacked images, a box, a request guard.
import { describeError } from "../../status.js";
import { el } from "../../format.js";
import { t } from "../../i18n.js";

// A titled card with help text; `body` receives the card's content.
export function card(titleKey, helpKey, helpParams = {}) {
  const help = el("p", { class: "help small", text: t(helpKey, helpParams) });
  const body = el("div", { class: "attr-body" });
  const status = el("p", { class: "attr-status small muted", role: "status" });
  const root = el("article", { class: "attr-card" }, el("h3", { text: t(titleKey) }), help, body, status);
  return { root, body, help, status };
}

// The input with a heatmap laid exactly over it (both scale to the same box).
export function stacked(inputUrl, overlayUrl, { pixelated = false, alt = "" } = {}) {
  const overlay = el("img", { class: "attr-overlay", src: overlayUrl, alt });
  const frame = el("div", { class: `attr-stack${pixelated ? " pixelated" : ""}` },
    el("img", { src: inputUrl, alt: "" }), overlay);
  return { frame, overlay };
}

export function picture(url, alt, pixelated = false) {
  return el("img", { class: `attr-picture${pixelated ? " pixelated" : ""}`, src: url, alt });
}

// A rectangle over a stacked picture, in input pixels (inclusive box) of an input `size`.
export function boxOverlay(box, size, label) {
  const [height, width] = size;
  return el("div", {
    class: "attr-box",
    title: label,
    style: {
      top: `${(100 * box.top) / height}%`,
      left: `${(100 * box.left) / width}%`,
      height: `${(100 * (box.bottom - box.top + 1)) / height}%`,
      width: `${(100 * (box.right - box.left + 1)) / width}%`,
    },
  });
}

// Runs `load` and shows its result; an older call finishing late is ignored.
export function latest(target) {
  let ticket = 0;
  return async (load, show) => {
    const mine = ++ticket;
    target.status.textContent = t("attr.loading");
    target.status.classList.remove("error");
    try {
      const result = await load();
      if (mine !== ticket) return;
      target.status.textContent = "";
      show(result);
    } catch (error) {
      if (mine !== ticket) return;
      target.status.textContent = describeError(error);
      target.status.classList.add("error");
    }
  };
}

export const isSmallInput = (model) => model.input_kind === "digit";

// Layers that output feature maps with more than one position (Grad-CAM, ERF candidates).
export const mapLayers = (model) =>
  model.layers.filter((layer) => layer.output_shape.length === 3 && layer.output_shape[1] * layer.output_shape[2] > 1);

export function labelled(text, control) {
  return el("label", { class: "attr-field" }, el("span", { text }), control);
}
