// The explanations of one prediction: Grad-CAM, saliency (vanilla / SmoothGrad), occlusion, live occlusion.
// Every sentence under a map is worded from the numbers the server measured on that map.
import * as api from "../../api.js";
import { el, fill, formatNumber } from "../../format.js";
import { t } from "../../i18n.js";
import { card, isSmallInput, labelled, latest, mapLayers, percent, picture, stacked } from "./common.js";
import { analysisJob, jobRunner } from "./jobs.js";
import { liveOcclusionCard } from "./live_occlusion.js";

// Layers whose output is a feature map of their own (a batch norm only rescales the conv before it).
const FEATURE_KINDS = ["conv", "depthwise_conv", "activation", "block"];
// An input with at least this share of blank background gets the note on heat over the blank.
const SOME_BACKGROUND = 0.05;
const MUCH_HEAT = 0.2;
// SmoothGrad's speckle must change by this share to count as smoother (or rougher).
const SPECKLE_CHANGE = 0.1;

const analysisUrl = (ctx, tail) => `/api/v1/analyses/${encodeURIComponent(ctx.analysisId)}/${tail}`;
const query = (params) => new URLSearchParams(Object.entries(params).filter(([, v]) => v !== null && v !== "")).toString();

function scoreLine(body) {
  return el("p", { class: "small", text: t("attr.score", { label: body.label, score: formatNumber(body.score, 3) }) });
}

// Why the heat sits where it does: the map's resolution, and how much of it is on blank background.
function gradCamNotes(body) {
  const rows = body.cam.length;
  const cols = body.cam[0]?.length ?? 0;
  const size = { rows, cols, height: body.input.height, width: body.input.width };
  const field = body.field_size?.[0];
  const coarse = field && field < Math.max(body.input.height, body.input.width)
    ? t("attr.gradcam.coarse", { ...size, field })
    : t("attr.gradcam.coarse_global", size);
  const notes = [el("p", { class: "small muted attr-gradcam-coarse", text: coarse })];
  if (body.blank_fraction >= SOME_BACKGROUND) {
    const key = body.heat_on_blank >= MUCH_HEAT ? "attr.gradcam.blank" : "attr.gradcam.blank_little";
    notes.push(el("p", {
      class: "small attr-gradcam-blank",
      dataset: { heatOnBlank: String(body.heat_on_blank), blankFraction: String(body.blank_fraction) },
      text: t(key, { share: percent(body.heat_on_blank), blank: percent(body.blank_fraction) }),
    }));
  }
  return notes;
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
      fill(figure, stack.frame, scoreLine(body), gradCamNotes(body));
    },
  );
  select.addEventListener("change", refresh);
  return { root: view.root, refresh };
}

// Speckle of the map shown, and for SmoothGrad how it compares with the plain gradient's.
function speckleLine(body) {
  const plain = body.plain_speckle;
  let text = t("attr.saliency.speckle", { value: formatNumber(body.speckle, 2) });
  if (plain !== null && plain !== undefined && plain > 0) {
    const change = body.speckle / plain - 1;
    const key = change <= -SPECKLE_CHANGE ? "attr.saliency.speckle.less"
      : change >= SPECKLE_CHANGE ? "attr.saliency.speckle.more" : "attr.saliency.speckle.same";
    const signed = `${change >= 0 ? "+" : "−"}${Math.round(Math.abs(change) * 100)} %`;
    text = t(key, { plain: formatNumber(plain, 2), smooth: formatNumber(body.speckle, 2), percent: `${Math.round(Math.abs(change) * 100)} %`, change: signed });
  }
  return el("p", { class: "small attr-speckle", dataset: { speckle: String(body.speckle), plain: String(plain ?? "") }, text });
}

function saliencyCard(ctx, getClass) {
  const view = card("attr.saliency.title", "attr.saliency.help");
  const method = el("select", { "aria-label": t("attr.saliency.title") },
    el("option", { value: "vanilla", text: t("attr.saliency.vanilla") }),
    el("option", { value: "smoothgrad", text: t("attr.saliency.smooth") }));
  const figure = el("div");
  view.body.append(el("div", { class: "attr-controls" }, method), figure);
  const quick = latest(view);
  const jobs = jobRunner(view);
  const show = (body) => fill(figure,
    picture(body.map_png, t("attr.saliency.title"), isSmallInput(ctx.model)),
    scoreLine(body),
    body.samples ? el("p", { class: "small muted", text: t("attr.saliency.samples", { samples: body.samples, sigma: formatNumber(body.noise_std, 3) }) }) : null,
    speckleLine(body));
  const refresh = () => {
    const params = { method: method.value, class_index: getClass() };
    if (method.value === "vanilla") {
      jobs.stop();
      return quick(() => api.getSaliency(ctx.analysisId, params), show);
    }
    fill(figure);
    return jobs.run(analysisJob(`${analysisUrl(ctx, "saliency/jobs")}?${query(params)}`, "attr.progress.copies"), show);
  };
  method.addEventListener("change", refresh);
  return { root: view.root, refresh };
}

// The diverging scale, from the server's own palette: blue (score rose) · white · red (score fell).
function occlusionLegend(body) {
  const peak = formatNumber(Math.max(Math.abs(body.min_drop), Math.abs(body.max_drop)), 3);
  return el("figure", { class: "attr-legend" },
    el("img", { src: body.legend_png, alt: "", class: "attr-legend-bar" }),
    el("figcaption", { class: "attr-legend-labels small" },
      el("span", { class: "attr-legend-low", text: t("attr.occlusion.legend.low", { value: peak }) }),
      el("span", { text: t("attr.occlusion.legend.zero") }),
      el("span", { class: "attr-legend-high", text: t("attr.occlusion.legend.high", { value: peak }) })));
}

function occlusionRange(body) {
  const count = body.rows.length * body.cols.length;
  const fell = formatNumber(Math.max(0, body.max_drop), 3);
  const rose = formatNumber(Math.max(0, -body.min_drop), 3);
  const key = body.max_drop <= 0 ? "attr.occlusion.range.rose_only"
    : body.min_drop >= 0 ? "attr.occlusion.range.fell_only" : "attr.occlusion.range";
  return el("p", { class: "small attr-occlusion-range", text: t(key, { count, fell, rose }) });
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
  const jobs = jobRunner(view);
  const compute = () => {
    fill(figure);
    const params = { window: window.value, stride: stride.value, class_index: getClass() };
    return jobs.run(analysisJob(`${analysisUrl(ctx, "occlusion/jobs")}?${query(params)}`, "attr.progress.positions"), (body) => {
      const small = isSmallInput(ctx.model);
      fill(figure,
        picture(inputUrl, "", small),
        el("div", {}, picture(body.map_png, t("attr.occlusion.title"), small), occlusionLegend(body), scoreLine(body), occlusionRange(body)));
    });
  };
  button.addEventListener("click", compute);
  return { root: view.root, refresh: () => { jobs.stop(); fill(figure); } };
}

// Mounts the four cards into `grid`; `refresh()` recomputes the cheap ones for the chosen class.
export function mountClassMaps(grid, ctx, getClass) {
  const inputUrl = `/api/v1/analyses/${encodeURIComponent(ctx.analysisId)}/input.png`;
  const cards = [
    gradCamCard(ctx, inputUrl, getClass), saliencyCard(ctx, getClass), occlusionCard(ctx, inputUrl, getClass),
    liveOcclusionCard(ctx, inputUrl, getClass),
  ];
  grid.append(...cards.map((item) => item.root));
  return { refresh: () => cards.forEach((item) => item.refresh()) };
}
