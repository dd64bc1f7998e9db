// Views that follow the selected unit or channel: effective receptive field (trained beside
// random), feature visualization (computed in the background, with the server's progress) and
// top-9 digit patches.
import * as api from "../../api.js";
import { el, fill, formatNumber } from "../../format.js";
import { t } from "../../i18n.js";
import { boxEnlarged, boxOverlay, card, isSmallInput, labelled, latest, mapLayers, picture, stacked } from "./common.js";
import { featureVisJob, jobRunner, send } from "./jobs.js";

const ERF_DELAY_MS = 400;

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
    const enlarged = el("span", { class: "attr-erf-enlarged", hidden: true }, el("br"), t("attr.erf.enlarged"));
    requestAnimationFrame(() => { enlarged.hidden = !boxEnlarged(body.clipped, size, stack.frame); });
    return el("figure", {}, stack.frame,
      el("figcaption", { class: "small" }, el("strong", { text: t(titleKey) }), el("br"), text, enlarged));
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

// What the ascent did, in the direction the numbers went (a channel can fail to rise).
function visOutcome(body) {
  const { start_activation: start, final_activation: final } = body;
  const tolerance = 1e-6 + 1e-3 * Math.max(Math.abs(start), Math.abs(final));
  const key = final - start > tolerance ? "attr.vis.rose" : start - final > tolerance ? "attr.vis.fell" : "attr.vis.flat";
  const relu = body.measured_before_relu ? t("attr.vis.before_relu") : "";
  return el("p", {
    class: "small attr-vis-outcome",
    dataset: { start: String(start), final: String(final) },
    text: t(key, { start: formatNumber(start, 3), final: formatNumber(final, 3), relu }),
  });
}

// The channel offered first is the one that responds most to this image (measured on the
// server); a channel picked in the layer panel, or typed in, is followed instead.
function featureVisCard(ctx) {
  const view = card("attr.vis.title", "attr.vis.help");
  const channel = el("input", { type: "number", min: "0", value: "0", class: "attr-vis-channel" });
  const strongest = el("p", { class: "small muted attr-vis-strongest" });
  const button = el("button", { type: "button", class: "attr-vis-run" });
  const figure = el("div");
  view.body.append(el("div", { class: "attr-controls" }, labelled(t("attr.vis.channel"), channel), button), strongest, figure);
  const jobs = jobRunner(view);
  const shapeOf = (name) => ctx.model.layers.find((layer) => layer.name === name)?.output_shape ?? [];
  const state = { layer: null, selected: null, chosenByUser: false };

  const label = () => { button.textContent = t("attr.vis.button", { channel: channel.value, layer: state.layer }); };
  const choose = (value, byUser) => {
    channel.value = String(value);
    state.chosenByUser = byUser;
    jobs.stop();
    fill(figure);
    label();
  };

  async function offerStrongest(name) {
    try {
      const url = `/api/v1/analyses/${encodeURIComponent(ctx.analysisId)}/layers/${encodeURIComponent(name)}/channel-means`;
      const { body } = await send(url);
      if (state.layer !== name) return;
      strongest.textContent = t("attr.vis.strongest", { channel: body.strongest, mean: formatNumber(body.means[body.strongest], 3) });
      if (!state.chosenByUser) choose(body.strongest, false);
    } catch {
      strongest.textContent = "";
    }
  }

  button.addEventListener("click", () => {
    fill(figure);
    const url = `/api/v1/models/${encodeURIComponent(ctx.modelId)}/layers/${encodeURIComponent(state.layer)}/channels/${Number(channel.value)}/feature-vis`;
    jobs.run(featureVisJob(url), (body) => fill(figure,
      picture(body.image_url, t("attr.vis.title"), isSmallInput(ctx.model)), visOutcome(body)));
  });
  channel.addEventListener("input", () => choose(channel.value, true));

  function update(selection) {
    const shape = shapeOf(selection.layer);
    if (selection.layer !== state.layer) {
      Object.assign(state, { layer: selection.layer, selected: selection.channel });
      channel.max = String(Math.max(0, (shape[0] ?? 1) - 1));
      choose(selection.channel, false);
      strongest.textContent = "";
      if ([1, 3].includes(shape.length)) offerStrongest(selection.layer);
    } else if (selection.channel !== state.selected) {
      state.selected = selection.channel;
      choose(selection.channel, true);
    }
    button.disabled = ![1, 3].includes(shape.length);
    label();
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
