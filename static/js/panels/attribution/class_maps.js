// The three explanations of one prediction: Grad-CAM, saliency (vanilla / SmoothGrad), occlusion.
import * as api from "../../api.js";
import { el, fill, formatNumber } from "../../format.js";
import { t } from "../../i18n.js";
import { card, isSmallInput, labelled, latest, mapLayers, picture, stacked } from "./common.js";

const FEATURE_KINDS = ["conv", "depthwise_conv", "batchnorm", "activation", "block"];

function scoreLine(body) {
  return el("p", { class: "small", text: t("attr.score", { label: body.label, score: formatNumber(body.score, 3) }) });
}

function gradCamCard(ctx, inputUrl, getClass) {
  const view = card("attr.gradcam.title", "attr.gradcam.help");
  const layers = mapLayers(ctx.model).filter((layer) => FEATURE_KINDS.includes(layer.kind));
  const select = el("select", {}, layers.map((layer) => el("option", { value: layer.name, text: layer.name })));
  select.value = layers.length ? layers[layers.length - 1].name : "";
  const opacity = el("input", { type: "range", min: "0", max: "100", value: "100" });
  const figure = el("div");
  let overlay = null;
  opacity.addEventListener("input", () => { if (overlay) overlay.style.opacity = String(opacity.value / 100); });
  view.body.append(el("div", { class: "attr-controls" },
    labelled(t("attr.layer"), select), labelled(t("attr.gradcam.opacity"), opacity)), figure);
  const run = latest(view);
  const refresh = () => run(
    () => api.getGradCam(ctx.analysisId, { layer: select.value, class_index: getClass() }),
    (body) => {
      const stack = stacked(inputUrl, body.overlay_png, { pixelated: isSmallInput(ctx.model), alt: "Grad-CAM" });
      overlay = stack.overlay;
      overlay.style.opacity = String(opacity.value / 100);
      fill(figure, stack.frame, scoreLine(body));
    },
  );
  select.addEventListener("change", refresh);
  return { root: view.root, refresh };
}

function saliencyCard(ctx, getClass) {
  const view = card("attr.saliency.title", "attr.saliency.help");
  const method = el("select", {},
    el("option", { value: "vanilla", text: t("attr.saliency.vanilla") }),
    el("option", { value: "smoothgrad", text: t("attr.saliency.smooth") }));
  const figure = el("div");
  view.body.append(el("div", { class: "attr-controls" }, method), figure);
  const run = latest(view);
  const refresh = () => run(
    () => api.getSaliency(ctx.analysisId, { method: method.value, class_index: getClass() }),
    (body) => fill(figure,
      picture(body.map_png, t("attr.saliency.title"), isSmallInput(ctx.model)),
      scoreLine(body),
      body.samples ? el("p", { class: "small muted", text: t("attr.saliency.samples", { samples: body.samples, sigma: formatNumber(body.noise_std, 3) }) }) : null),
  );
  method.addEventListener("change", refresh);
  return { root: view.root, refresh };
}

function occlusionCard(ctx, inputUrl, getClass) {
  const view = card("attr.occlusion.title", "attr.occlusion.help");
  const size = Math.min(ctx.model.input.height, ctx.model.input.width);
  const window = el("input", { type: "number", min: "1", max: String(size), value: String(Math.max(1, Math.floor(size / 7))) });
  const stride = el("input", { type: "number", min: "1", max: String(size), value: String(Math.max(1, Math.floor(size / 14))) });
  const button = el("button", { type: "button", text: t("attr.run") });
  const figure = el("div", { class: "attr-pair" });
  view.body.append(el("div", { class: "attr-controls" },
    labelled(t("attr.occlusion.window"), window), labelled(t("attr.occlusion.stride"), stride), button), figure);
  const run = latest(view);
  const refresh = () => run(
    () => api.getOcclusion(ctx.analysisId, { window: window.value, stride: stride.value, class_index: getClass() }),
    (body) => {
      const small = isSmallInput(ctx.model);
      const count = body.rows.length * body.cols.length;
      fill(figure,
        picture(inputUrl, "", small),
        el("div", {}, picture(body.map_png, t("attr.occlusion.title"), small), scoreLine(body),
          el("p", { class: "small muted", text: t("attr.occlusion.range", { min: formatNumber(body.min_drop, 3), max: formatNumber(body.max_drop, 3), count }) })));
    },
  );
  button.addEventListener("click", refresh);
  return { root: view.root, refresh: () => fill(figure), run: refresh };
}

// Mounts the three cards into `grid`; `refresh()` recomputes the cheap ones for the chosen class.
export function mountClassMaps(grid, ctx, getClass) {
  const inputUrl = `/api/v1/analyses/${encodeURIComponent(ctx.analysisId)}/input.png`;
  const cards = [gradCamCard(ctx, inputUrl, getClass), saliencyCard(ctx, getClass), occlusionCard(ctx, inputUrl, getClass)];
  grid.append(...cards.map((item) => item.root));
  return { refresh: () => cards.forEach((item) => item.refresh()) };
}
