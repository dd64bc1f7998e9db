// The Analyze page: one state (model card, analysis, selected layer / channel / unit) feeding every
// panel. Each user action changes the state, then the panels that depend on it are redrawn.
import * as api from "./api.js";
import * as data from "./data.js";
import { localized, registerStrings } from "./i18n.js";
import { renderArchitectureStrip } from "./panels/architecture.js";
import { mountChannelPanel } from "./panels/channel.js";
import { mountDrawPanel } from "./panels/draw.js";
import { mountExplainPanel } from "./panels/explain.js";
import { mountFiltersPanel } from "./panels/filters.js";
import { mountInputPanel } from "./panels/input.js";
import { mountLayerPanel } from "./panels/layer.js";
import { mountLayerMathPanel } from "./panels/layer_math.js";
import { renderPredictions } from "./panels/predictions.js";
import { chooseModel, imageFacts, mountChoiceNotes } from "./model_choice.js";
import { describeError, mountStatusLine } from "./status.js";

registerStrings({
  en: {
    "page.title": "See inside a real CNN: analyze an image",
    "page.doctitle": "convlens · see inside a real CNN",
  },
  zh: {
    "page.title": "看清真实卷积神经网络的内部：分析一张图像",
    "page.doctitle": "convlens · 看清真实卷积神经网络的内部",
  },
});

const $ = (id) => document.getElementById(id);
// unit null = "open on the channel's strongest unit" (a fresh channel); otherwise it is kept.
const state = { card: null, analysis: null, layer: null, channel: 0, unit: null, strip: null };
const RESULT_PANELS = ["prediction-panel", "architecture-panel", "layer-panel", "channel-panel", "explain-panel", "layer-math-panel", "filters-panel", "attribution-panel"];
let analyzeController = null;
let attribution = null;
let modelList = [];
let lastImage = null;

const status = mountStatusLine();
const showError = (error, upload) => status.error(error, upload);
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

// Nothing is analysed any more (a new model, a failed upload, a cleared drawing): every result
// panel goes, and the other modules hear that no analysis is on screen. The chosen layer stays,
// so the next drawing opens where the student was looking.
function clearResults() {
  Object.assign(state, { analysis: null, strip: null });
  attribution = null;
  for (const id of RESULT_PANELS) $(id).hidden = true;
  document.dispatchEvent(new CustomEvent("convlens:view", { detail: {} }));
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
  inputPanel.setModel(modelId);
  Object.assign(state, { layer: card.layers[0].name, channel: 0, unit: null });
  clearResults();
}

// Every image ends here. Without `modelId` (a sample names its own) the model's spec decides:
// a photo never goes to a digit model, a drawing goes to one (model_choice.js).
async function analyzeImage(blob, { modelId = null, source = "file" } = {}) {
  analyzeController?.abort();
  const controller = (analyzeController = new AbortController());
  const current = () => controller === analyzeController;
  let facts = null;
  lastImage = blob;
  try {
    facts = source === "drawing" ? null : await imageFacts(blob);
    const choice = modelId ? { modelId } : chooseModel({ kind: facts?.kind, source }, $("model-select").value, modelList);
    if (!current()) return;
    await selectModel(choice.modelId);
    if (!current() || state.card?.id !== choice.modelId) return;
    notes.show(choice, facts, state.card.input, source);
    status.set("status.analyzing", () => ({ model: localized(state.card, "name") }), { busy: true });
    const analysis = await api.analyze(choice.modelId, blob, controller.signal, (seconds) => status.waiting(seconds));
    if (!current() || state.card.id !== analysis.model_id) return;
    await showAnalysis(analysis);
    if (source !== "drawing") revealResults();
  } catch (error) {
    if (error.name === "AbortError" || !current()) return;
    clearResults();
    showError(error, { bytes: blob.size, width: facts?.width, height: facts?.height });
  }
}

// On a small screen the results start below the input: bring them up (not when their heading
// is already in sight, as on a large screen).
const RESULTS_IN_SIGHT_PX = 160;
function revealResults() {
  const top = $("prediction-panel").getBoundingClientRect().top;
  if (top > window.innerHeight - RESULTS_IN_SIGHT_PX) $("prediction-panel").scrollIntoView({ block: "start" });
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
  if (state.analysis !== analysis) return; // cleared or replaced meanwhile
  mountAttribution();
  status.set("status.done", { layers: analysis.layers.length });
}

// Moving to a layer of the same output shape (conv → batch norm → activation) keeps the channel and
// unit, so a student follows one number through the steps; otherwise the view starts afresh on
// channel 0 (the strongest unit of a vector layer, e.g. the predicted class).
async function openLayer(name, { keepChannel = false, scroll = false } = {}) {
  const layer = layerInfo(name);
  const analysis = state.analysis;
  if (!layer || !analysis) return;
  const previous = layerInfo(state.layer);
  const sameShape = previous && previous.output_shape.join() === layer.output_shape.join();
  const fresh = !keepChannel && !sameShape;
  if (fresh) Object.assign(state, { channel: 0, unit: null });
  state.layer = name;
  state.channel = Math.min(state.channel, layer.output_shape[0] - 1);
  state.strip?.select(name);
  status.set("status.layer", { layer: name }, { busy: true });
  try {
    const atlas = await data.layerAtlas(analysis.analysis_id, name);
    if (state.layer !== name || state.analysis !== analysis) return;
    if (fresh && layer.output_shape.length === 1) {
      const classifier = name === state.card.layers[state.card.layers.length - 1].name;
      state.channel = classifier
        ? state.analysis.predictions[0].index
        : data.strongestIndex(data.tileValues(atlas, 0).slice(0, layer.output_shape[0]));
    }
    const hasFilters = layer.kind === "conv" || layer.kind === "depthwise_conv";
    $("layer-panel").hidden = false;
    $("filters-panel").hidden = !hasFilters;
    layerPanel.show({ card: state.card, layer, stats: layerStats(name), atlas, selected: state.channel, sort: layerPanel.sort });
    filtersPanel.show({ modelId: state.card.id, layer, channel: state.channel }).catch(showError);
    await openChannel(state.channel);
    if (state.analysis !== analysis) return;
    status.set("status.done", { layers: analysis.layers.length });
    if (scroll) $("layer-panel").scrollIntoView({ behavior: "smooth", block: "start" });
  } catch (error) {
    if (state.analysis === analysis) showError(error);
  }
}

async function openChannel(channel) {
  state.channel = channel;
  const layer = layerInfo(state.layer);
  const analysisId = state.analysis.analysis_id;
  const channelData = await data.channelValues(analysisId, layer.name, channel);
  if (state.channel !== channel || state.layer !== layer.name || state.analysis?.analysis_id !== analysisId) return;
  filtersPanel.select(channel);
  const [height, width] = channelData.shape;
  state.unit = state.unit
    ? { y: Math.min(state.unit.y, height - 1), x: Math.min(state.unit.x, width - 1) }
    : data.strongestUnit(channelData);
  $("channel-panel").hidden = false;
  $("explain-panel").hidden = false;
  await channelPanel.show({ card: state.card, layer, channel, channelData, inputUrl: state.analysis.input_url, unit: state.unit });
}

let explainTimer = 0;
// `view` is the layer and channel the unit belongs to: a pointer event on the previous map, handled
// after another layer was opened, must not send that map's (y, x) to the new layer.
function onUnit(y, x, view) {
  if (!state.analysis) return; // a channel view finishing after the results were cleared
  if (view.layer !== state.layer || view.channel !== state.channel) return;
  state.unit = { y, x };
  announceView();
  clearTimeout(explainTimer);
  const ctx = { card: state.card, analysis: state.analysis, analysisId: state.analysis.analysis_id, describeError };
  const layer = layerInfo(state.layer);
  const channel = state.channel;
  explainTimer = setTimeout(() => {
    explainPanel.update(ctx, layer, channel, { y, x });
    layerMathPanel.update(ctx, layer, channel, { y, x });
  }, 60);
  attribution?.update(selection());
}

const selection = () => ({ layer: state.layer, channel: state.channel, y: state.unit?.y ?? 0, x: state.unit?.x ?? 0 });

async function mountAttribution() {
  const container = $("attribution-panel");
  const analysis = state.analysis;
  try {
    const module = await import("./panels/attribution.js");
    if (state.analysis !== analysis) return;
    attribution = module.mountAttributionPanel(container, {
      modelId: state.card.id,
      analysisId: state.analysis.analysis_id,
      model: state.card,
      getSelection: selection,
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
    if (!sameAnalysis) status.set("status.restore", {}, { busy: true });
    const analysis = sameAnalysis ? state.analysis : await api.getAnalysis(analysisId);
    if (!state.card || state.card.id !== analysis.model_id) await selectModel(analysis.model_id);
    Object.assign(state, { layer: layerInfo(layerName || "")?.name ?? state.layer, channel: channel || 0, unit });
    if (state.analysis?.analysis_id === analysis.analysis_id) await openLayer(state.layer, { keepChannel: true });
    else await showAnalysis(analysis);
  } catch (error) {
    showError(error);
  }
}

// A new start without results (a file that is no image, a cleared drawing): `key` says why.
function startOver(key, options = {}) {
  analyzeController?.abort();
  clearResults();
  notes.clear();
  status.set(key, {}, options);
}

const inputPanel = mountInputPanel({
  onImage: (blob, modelId) => analyzeImage(blob, { modelId }),
  onNotImage: () => startOver("input.not.image", { error: true }),
  onError: (key, params) => status.set(key, params, { error: true }),
  modelName: (id) => $("model-select").querySelector(`option[value="${id}"]`)?.textContent || id,
});
const notes = mountChoiceNotes({ models: () => modelList, onUseModel: (id) => reanalyze(id) });
mountDrawPanel({
  onDrawing: (blob) => analyzeImage(blob, { source: "drawing" }),
  onClear: () => startOver("status.pick"),
});
const reanalyze = (modelId) => lastImage && analyzeImage(lastImage, { modelId });
// A newly chosen channel opens on its strongest unit; choosing the open channel again keeps the unit.
const openFreshChannel = (c) => {
  if (c === state.channel && state.unit) return;
  state.unit = null;
  openChannel(c).catch(showError);
};
const layerPanel = mountLayerPanel({ onChannel: openFreshChannel });
const channelPanel = mountChannelPanel({ onUnit });
const explainPanel = mountExplainPanel();
const layerMathPanel = mountLayerMathPanel({ onOpenLayer: (name) => openLayer(name, { scroll: true }) });
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
  const sample = query.get("sample") && (await inputPanel.sample(query.get("sample")));
  if (!sample) {
    status.set("status.pick");
    return;
  }
  await analyzeImage(sample.blob, { modelId: wanted || sample.model });
}

inputPanel.labelModels().catch(showError);
modelList = (await data.models()).models;
const permalink = document.body.dataset.analysisId;
if (permalink) {
  const query = new URLSearchParams(location.search);
  const view = { analysisId: permalink };
  for (const key of ["layer", "channel", "y", "x"]) if (query.get(key)) view[key] = query.get(key);
  await openView(view);
} else {
  await openDeepLink(new URLSearchParams(location.search)).catch(showError);
}
