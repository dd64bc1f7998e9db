// The Analyze page: one state (model card, analysis, selected layer / channel / unit) feeding every
// panel. Each user action changes the state, then the panels that depend on it are redrawn.
import * as api from "./api.js";
import * as data from "./data.js";
import { localized, registerStrings, t } from "./i18n.js";
import { renderArchitectureStrip } from "./panels/architecture.js";
import { mountChannelPanel } from "./panels/channel.js";
import { mountDrawPanel } from "./panels/draw.js";
import { mountExplainPanel } from "./panels/explain.js";
import { mountFiltersPanel } from "./panels/filters.js";
import { mountInputPanel } from "./panels/input.js";
import { mountLayerPanel } from "./panels/layer.js";
import { renderPredictions } from "./panels/predictions.js";
import { describeError } from "./status.js";

registerStrings({
  en: {
    "status.analyzing": "Running the image through every layer of {model}…",
    "status.done": "Done: {layers} layers computed. Click a layer block below to look inside.",
    "status.layer": "Loading layer {layer}…",
    "status.restore": "Reopening the saved analysis…",
    "status.pick": "Pick a sample, drop a photo or draw a digit to start.",
  },
  zh: {
    "status.analyzing": "正在让图像流过 {model} 的每一层……",
    "status.done": "完成：共计算了 {layers} 层。点击下面的层方块查看内部。",
    "status.layer": "正在加载 {layer} 层……",
    "status.restore": "正在重新打开保存的分析……",
    "status.pick": "选一个样例、拖入一张照片或手写一个数字即可开始。",
  },
});

const $ = (id) => document.getElementById(id);
// unit null = "open on the channel's strongest unit" (a fresh channel); otherwise it is kept.
const state = { card: null, analysis: null, layer: null, channel: 0, unit: null, strip: null };
let analyzeController = null;
let attribution = null;

function setStatus(text, { busy = false, error = false } = {}) {
  $("status-text").textContent = text;
  $("status-progress").hidden = !busy;
  $("status").classList.toggle("error", error);
  document.body.setAttribute("aria-busy", String(busy));
}

const showError = (error) => setStatus(describeError(error), { error: true });
const layerInfo = (name) => state.card.layers.find((layer) => layer.name === name);
const layerStats = (name) => state.analysis.layers.find((layer) => layer.name === name);

// Tell other modules (permalinks, presenter mode) what is on screen.
function announceView() {
  if (!state.analysis) return;
  document.dispatchEvent(new CustomEvent("convlens:view", {
    detail: {
      modelId: state.card.id, analysisId: state.analysis.analysis_id, layer: state.layer,
      channel: state.channel, y: state.unit.y, x: state.unit.x,
    },
  }));
}

// The model <select> is the source of truth: a card that arrives after the choice changed again is
// dropped, so quick switching can never pair one model's card with another model's analysis.
async function selectModel(modelId) {
  $("model-select").value = modelId;
  const card = await data.model(modelId);
  if ($("model-select").value !== modelId) return;
  if (state.card?.id === modelId) return;
  state.card = card;
  $("model-description").textContent = localized(card, "description");
  $("draw-panel").hidden = card.input_kind !== "digit";
  inputPanel.setModel(modelId);
  Object.assign(state, { layer: card.layers[0].name, channel: 0, unit: null, analysis: null, strip: null });
  for (const id of ["prediction-panel", "architecture-panel", "layer-panel", "channel-panel", "explain-panel", "filters-panel", "attribution-panel"]) {
    $(id).hidden = true;
  }
}

async function analyzeImage(blob, modelId = null) {
  const wanted = modelId || $("model-select").value;
  analyzeController?.abort();
  const controller = (analyzeController = new AbortController());
  try {
    await selectModel(wanted);
    if (controller !== analyzeController || state.card?.id !== wanted) return;
    setStatus(t("status.analyzing", { model: localized(state.card, "name") }), { busy: true });
    const analysis = await api.analyze(wanted, blob, controller.signal);
    if (controller !== analyzeController || state.card.id !== analysis.model_id) return;
    await showAnalysis(analysis);
  } catch (error) {
    if (error.name !== "AbortError") showError(error);
  }
}

async function showAnalysis(analysis) {
  state.analysis = analysis;
  renderPredictions($("predictions"), analysis, state.card, { onExplain: (name) => openLayer(name, { scroll: true }) });
  $("prediction-panel").hidden = false;
  if (!state.strip) {
    state.strip = renderArchitectureStrip($("architecture-strip"), state.card.layers, {
      selected: state.layer,
      onSelect: (name) => openLayer(name),
    });
  }
  $("architecture-panel").hidden = false;
  await openLayer(state.layer, { keepChannel: true });
  mountAttribution();
  setStatus(t("status.done", { layers: analysis.layers.length }));
}

// Moving to a layer of the same output shape (conv → batch norm → activation) keeps the channel and
// unit, so a student follows one number through the steps; otherwise the view starts afresh on
// channel 0 (the strongest unit of a vector layer, e.g. the predicted class).
async function openLayer(name, { keepChannel = false, scroll = false } = {}) {
  const layer = layerInfo(name);
  if (!layer || !state.analysis) return;
  const previous = layerInfo(state.layer);
  const sameShape = previous && previous.output_shape.join() === layer.output_shape.join();
  const fresh = !keepChannel && !sameShape;
  if (fresh) Object.assign(state, { channel: 0, unit: null });
  state.layer = name;
  state.channel = Math.min(state.channel, layer.output_shape[0] - 1);
  state.strip?.select(name);
  setStatus(t("status.layer", { layer: name }), { busy: true });
  try {
    const atlas = await data.layerAtlas(state.analysis.analysis_id, name);
    if (state.layer !== name) return;
    if (fresh && layer.output_shape.length === 1) {
      const classifier = name === state.card.layers[state.card.layers.length - 1].name;
      state.channel = classifier
        ? state.analysis.predictions[0].index
        : strongestIndex(data.tileValues(atlas, 0).slice(0, layer.output_shape[0]));
    }
    const hasFilters = layer.kind === "conv" || layer.kind === "depthwise_conv";
    $("layer-panel").hidden = false;
    $("filters-panel").hidden = !hasFilters;
    layerPanel.show({ card: state.card, layer, stats: layerStats(name), atlas, selected: state.channel, sort: layerPanel.sort });
    filtersPanel.show({ modelId: state.card.id, layer, channel: state.channel }).catch(showError);
    await openChannel(state.channel);
    setStatus(t("status.done", { layers: state.analysis.layers.length }));
    if (scroll) $("layer-panel").scrollIntoView({ behavior: "smooth", block: "start" });
  } catch (error) {
    showError(error);
  }
}

async function openChannel(channel) {
  state.channel = channel;
  const layer = layerInfo(state.layer);
  const analysisId = state.analysis.analysis_id;
  const channelData = await data.channelValues(analysisId, layer.name, channel);
  if (state.channel !== channel || state.layer !== layer.name || state.analysis.analysis_id !== analysisId) return;
  filtersPanel.select(channel);
  const [height, width] = channelData.shape;
  state.unit = state.unit
    ? { y: Math.min(state.unit.y, height - 1), x: Math.min(state.unit.x, width - 1) }
    : strongestUnit(channelData);
  $("channel-panel").hidden = false;
  $("explain-panel").hidden = false;
  await channelPanel.show({ card: state.card, layer, channel, channelData, inputUrl: state.analysis.input_url, unit: state.unit });
}

function strongestIndex(values) {
  let best = 0;
  values.forEach((v, i) => { if (v > values[best]) best = i; });
  return best;
}

function strongestUnit(channelData) {
  const best = strongestIndex(channelData.values);
  return { y: Math.floor(best / channelData.shape[1]), x: best % channelData.shape[1] };
}

let explainTimer = 0;
function onUnit(y, x) {
  state.unit = { y, x };
  announceView();
  clearTimeout(explainTimer);
  const ctx = { card: state.card, analysis: state.analysis, analysisId: state.analysis.analysis_id, describeError };
  const layer = layerInfo(state.layer);
  const channel = state.channel;
  explainTimer = setTimeout(() => explainPanel.update(ctx, layer, channel, { y, x }), 60);
  attribution?.update(selection());
}

const selection = () => ({ layer: state.layer, channel: state.channel, y: state.unit?.y ?? 0, x: state.unit?.x ?? 0 });

async function mountAttribution() {
  const container = $("attribution-panel");
  try {
    const module = await import("./panels/attribution.js");
    attribution = module.mountAttributionPanel(container, {
      modelId: state.card.id,
      analysisId: state.analysis.analysis_id,
      model: state.card,
      getSelection: selection,
      onStatus: (text) => setStatus(text),
    });
    container.hidden = false;
  } catch {
    attribution = null;
  }
}

// Reopen a saved view: {analysisId, modelId?, layer?, channel?, y?, x?} (a permalink, or the
// presenter's view followed by a student).
async function openView(view) {
  const analysisId = view.analysisId || state.analysis?.analysis_id;
  if (!analysisId) return;
  const sameAnalysis = state.analysis?.analysis_id === analysisId;
  const layerName = view.layer || state.layer;
  const channel = view.channel === undefined || view.channel === null ? state.channel : Number(view.channel);
  const unit = view.y === undefined || view.x === undefined
    ? state.unit
    : { y: Number(view.y) || 0, x: Number(view.x) || 0 };
  if (sameAnalysis && layerName === state.layer && channel === state.channel) {
    if (unit) channelPanel.moveUnit(unit.y, unit.x);
    return;
  }
  try {
    if (!sameAnalysis) setStatus(t("status.restore"), { busy: true });
    const analysis = sameAnalysis ? state.analysis : await api.getAnalysis(analysisId);
    if (!state.card || state.card.id !== analysis.model_id) await selectModel(analysis.model_id);
    Object.assign(state, { layer: layerInfo(layerName || "")?.name ?? state.layer, channel: channel || 0, unit });
    if (state.analysis?.analysis_id === analysis.analysis_id) await openLayer(state.layer, { keepChannel: true });
    else await showAnalysis(analysis);
  } catch (error) {
    showError(error);
  }
}

const inputPanel = mountInputPanel({
  onImage: (blob, modelId) => analyzeImage(blob, modelId),
  onError: (message) => setStatus(message, { error: true }),
  modelName: (id) => $("model-select").querySelector(`option[value="${id}"]`)?.textContent || id,
});
mountDrawPanel({ onDrawing: (blob) => analyzeImage(blob) });
const openFreshChannel = (c) => {
  state.unit = null;
  openChannel(c).catch(showError);
};
const layerPanel = mountLayerPanel({ onChannel: openFreshChannel });
const channelPanel = mountChannelPanel({ onUnit });
const explainPanel = mountExplainPanel();
const filtersPanel = mountFiltersPanel({ onFilter: (o) => { layerPanel.select(o); openFreshChannel(o); } });

$("model-select").addEventListener("change", (event) => selectModel(event.target.value).catch(showError));
document.addEventListener("convlens:language", () => {
  inputPanel.labelModels().catch(showError);
  if (state.card) $("model-description").textContent = localized(state.card, "description");
  if (!state.analysis) return;
  state.strip = null;
  showAnalysis(state.analysis).catch(showError);
});

document.addEventListener("convlens:set-view", (event) => openView(event.detail));

// Lessons link here: `/?model=ID` picks the model, `&sample=NAME` also analyzes that bundled sample
// (NAME is its file name without extension, e.g. chelsea or digit-7).
async function openDeepLink(query) {
  const wanted = query.get("model");
  if ([...$("model-select").options].some((option) => option.value === wanted)) {
    $("model-select").value = wanted;
  }
  await selectModel($("model-select").value);
  const name = query.get("sample");
  const { samples } = name ? await (await fetch("/static/samples/samples.json")).json() : { samples: [] };
  const sample = samples.find((item) => item.url.split("/").pop().replace(/\.[^.]+$/, "") === name);
  if (!sample) {
    setStatus(t("status.pick"));
    return;
  }
  await analyzeImage(await (await fetch(sample.url)).blob(), wanted || sample.model);
}

inputPanel.labelModels().catch(showError);
const permalink = document.body.dataset.analysisId;
if (permalink) {
  const query = new URLSearchParams(location.search);
  const view = { analysisId: permalink };
  for (const key of ["layer", "channel", "y", "x"]) if (query.get(key)) view[key] = query.get(key);
  await openView(view);
} else {
  await openDeepLink(new URLSearchParams(location.search)).catch(showError);
}
