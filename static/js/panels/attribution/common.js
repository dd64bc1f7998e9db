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

// The least size a box is drawn at: a 3 × 3 field on a 224-pixel input would be a 3-pixel dot.
export const MIN_BOX_PX = 12;

// A rectangle over a stacked picture, in input pixels (inclusive box) of an input `size`; drawn at
// least MIN_BOX_PX wide and high, around the same centre.
export function boxOverlay(box, size, label) {
  const [height, width] = size;
  const centre = (low, high, total) => (100 * (low + high + 1)) / 2 / total;
  const extent = (low, high, total) => (100 * (high - low + 1)) / total;
  const side = (low, high, total) => `max(${extent(low, high, total)}%, ${MIN_BOX_PX}px)`;
  // Centred on the field, moved inwards where the enlarged box would pass the picture's edge.
  const start = (low, high, total) =>
    `clamp(0px, calc(${centre(low, high, total)}% - ${side(low, high, total)} / 2), calc(100% - ${side(low, high, total)}))`;
  return el("div", {
    class: "attr-box",
    title: label,
    style: {
      top: start(box.top, box.bottom, height),
      left: start(box.left, box.right, width),
      height: side(box.top, box.bottom, height),
      width: side(box.left, box.right, width),
    },
  });
}

// After layout: whether the box is drawn larger than its field in `frame` (for the caption).
export function boxEnlarged(box, size, frame) {
  const scale = frame.getBoundingClientRect().width / size[1];
  return Math.min(box.bottom - box.top + 1, box.right - box.left + 1) * scale < MIN_BOX_PX;
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

// A share in [0, 1] as "37 %".
export const percent = (share) => `${Math.round(share * 100)} %`;

// Keeps `help` (the panel's intro, with a {count} placeholder) in step with the cards shown:
// a card hides itself where it does not apply (top patches for photo models).
export function countCards(grid, help, key) {
  const update = () => {
    help.textContent = t(key, { count: grid.querySelectorAll(".attr-card:not([hidden])").length });
  };
  new MutationObserver(update).observe(grid, { subtree: true, childList: true, attributeFilter: ["hidden"] });
  update();
}
