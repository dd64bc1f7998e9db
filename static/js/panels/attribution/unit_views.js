// Views that follow the selected unit or channel: effective receptive field (trained beside
// random), feature visualization (computed in the background, polled) and top-9 digit patches.
import * as api from "../../api.js";
import { el, fill, formatNumber } from "../../format.js";
import { t } from "../../i18n.js";
import { boxOverlay, card, isSmallInput, latest, mapLayers, picture, stacked } from "./common.js";

const ERF_DELAY_MS = 400;
const POLL_MS = 3000;

function erfCard(ctx) {
  const view = card("attr.erf.title", "attr.erf.help");
  const onlyChannel = el("input", { type: "checkbox" });
  const caption = el("span");
  const figure = el("div", { class: "attr-pair" });
  view.body.append(el("div", { class: "attr-controls" }, el("label", { class: "attr-field" }, onlyChannel, caption)), figure);
  const spatial = new Set(mapLayers(ctx.model).map((layer) => layer.name));
  const inputUrl = `/api/v1/analyses/${encodeURIComponent(ctx.analysisId)}/input.png`;
  const run = latest(view);
  let timer = 0;
  let shown = "";

  function side(body, part, titleKey) {
    const size = [body.input.height, body.input.width];
    const stack = stacked(inputUrl, body[part].map_png, { pixelated: isSmallInput(ctx.model), alt: t(titleKey) });
    stack.frame.classList.add("opaque");
    stack.frame.append(boxOverlay(body.clipped, size, `${body.size[0]} × ${body.size[1]}`));
    const text = t("attr.erf.size", { size: body[part].effective_size, full: body.size[0] });
    return el("figure", {}, stack.frame, el("figcaption", { class: "small" }, el("strong", { text: t(titleKey) }), el("br"), text));
  }

  function update(selection, { force = false } = {}) {
    const { layer, channel, y, x } = selection;
    caption.textContent = `${t("attr.erf.unit", { layer, y, x })} · ${t("attr.erf.channel", { channel })}`;
    if (!spatial.has(layer)) {
      shown = "";
      fill(figure, el("p", { class: "muted", text: t("attr.erf.flat") }));
      return;
    }
    const key = [layer, y, x, onlyChannel.checked ? channel : "all"].join("|");
    if (key === shown && !force) return;
    shown = key;
    clearTimeout(timer);
    timer = setTimeout(() => run(
      () => api.getEffectiveRf(ctx.analysisId, layer, { y, x, channel: onlyChannel.checked ? channel : null }),
      (body) => fill(figure, side(body, "trained", "attr.erf.trained"), side(body, "random", "attr.erf.random")),
    ), ERF_DELAY_MS);
  }
  onlyChannel.addEventListener("change", () => update(ctx.getSelection(), { force: true }));
  return { root: view.root, update };
}

function featureVisCard(ctx) {
  const view = card("attr.vis.title", "attr.vis.help");
  const button = el("button", { type: "button" });
  const figure = el("div");
  view.body.append(button, figure);
  let target = null;
  let poll = 0;

  async function request(wanted) {
    clearTimeout(poll);
    try {
      const body = await api.getFeatureVis(ctx.modelId, wanted.layer, wanted.channel);
      if (wanted !== target) return;
      if (body.status !== "done") {
        view.status.textContent = t("attr.vis.waiting");
        poll = setTimeout(() => request(wanted), POLL_MS);
        return;
      }
      view.status.textContent = "";
      fill(figure, picture(body.image_url, t("attr.vis.title"), isSmallInput(ctx.model)),
        el("p", { class: "small", text: t("attr.vis.done", { start: formatNumber(body.start_activation, 3), final: formatNumber(body.final_activation, 3) }) }));
    } catch (error) {
      if (wanted === target) view.status.textContent = error.message;
    }
  }
  button.addEventListener("click", () => {
    target = { ...ctx.getSelection() };
    fill(figure);
    request(target);
  });

  function update(selection) {
    button.textContent = t("attr.vis.button", selection);
    if (target && (target.layer !== selection.layer || target.channel !== selection.channel)) {
      target = null;
      clearTimeout(poll);
      view.status.textContent = "";
      fill(figure);
    }
  }
  return { root: view.root, update };
}

function topPatchesCard(ctx) {
  const view = card("attr.patches.title", "attr.patches.help", { layer: "", channel: "" });
  view.root.hidden = true;
  const figure = el("div");
  view.body.append(figure);
  const spatial = new Set(mapLayers(ctx.model).map((layer) => layer.name));
  const unavailable = new Set();
  const run = latest(view);
  let shown = "";

  function update({ layer, channel }) {
    if (!ctx.model.top_patches || !spatial.has(layer) || unavailable.has(layer)) {
      view.root.hidden = true;
      return;
    }
    const key = `${layer}|${channel}`;
    if (key === shown) return;
    shown = key;
    view.help.textContent = t("attr.patches.help", { layer, channel });
    const load = () => api.getTopPatches(ctx.modelId, layer, channel).catch((error) => {
      if (error.code === "top_patches_unavailable") unavailable.add(layer);
      view.root.hidden = true;
      throw error;
    });
    run(load, (body) => {
      view.root.hidden = false;
      const labels = body.patches.map((patch) => patch.label).join(" ");
      fill(figure, picture(body.grid_url, t("attr.patches.title"), true),
        el("p", { class: "small muted", text: t("attr.patches.digits", { labels }) }));
    });
  }
  return { root: view.root, update };
}

export function mountUnitViews(grid, ctx) {
  const views = [erfCard(ctx), featureVisCard(ctx), topPatchesCard(ctx)];
  grid.append(...views.map((view) => view.root));
  return { update: (selection) => views.forEach((view) => view.update(selection)) };
}
