// One gallery network: its block diagram, published vs. computed receptive fields, the architecture
// strip (the same one the live models use) and the full layer table.
import * as api from "../api.js";
import { el, formatCount, shapeText } from "../format.js";
import { renderArchitectureStrip } from "../panels/architecture.js";
import { renderDiagram } from "./diagrams.js";
import { explainError } from "./preset-runner.js";
import { bi } from "./strings.js";

const head = document.querySelector("[data-network]");
const networkId = head.dataset.network;
const landmarks = document.getElementById("landmarks");
const strip = document.getElementById("network-strip");
const table = document.getElementById("network-table");

for (const container of document.querySelectorAll(".diagram[data-diagram]")) {
  renderDiagram(container, container.dataset.diagram);
}

// A receptive field as "size (jump)": its width in input pixels and its stride on the input.
function rfCell(rf) {
  if (rf.diagnostic) return "—";
  if (rf.is_global) return bi({ en: "whole image", zh: "整张图" });
  const [size, jump] = [rf.size[0], rf.jump[0]];
  return bi({ en: `${size} (jump ${jump})`, zh: `${size}（累积步幅 ${jump}）` });
}
const columns = [
  { en: "layer", zh: "层" }, { en: "type", zh: "类型" }, { en: "output", zh: "输出" },
  { en: "parameters", zh: "参数" }, { en: "receptive field (jump)", zh: "感受野（累积步幅）" },
];

// Where a reference value comes from: a note on how it was derived and/or the publication.
function sourceCell(landmark) {
  const note = landmark.note ? bi(landmark.note) : [];
  const citation = landmark.citation ? [note.length ? " · " : "", el("cite", { text: landmark.citation })] : [];
  return el("td", { class: "muted small" }, ...note, ...citation);
}

function renderLandmarks(detail) {
  const rows = detail.landmarks.map((m) => el("tr", { class: m.published_rf === m.computed_rf ? "fits" : "no-fit" },
    el("td", {}, el("code", { text: m.layer })), el("td", { class: "number", text: m.published_rf }),
    el("td", { class: "number", text: m.computed_rf ?? "—" }), sourceCell(m)));
  const header = [{ en: "layer", zh: "层" }, { en: "reference", zh: "参考值" }, { en: "computed", zh: "计算" },
    { en: "source", zh: "来源" }].map((text) => el("th", {}, ...bi(text)));
  landmarks.replaceChildren(el("div", { class: "table-scroll-x", tabindex: "0", role: "region",
    "aria-labelledby": "landmarks-title" }, el("table", { class: "lesson-table" },
    el("thead", {}, el("tr", {}, header)), el("tbody", {}, rows))));
}

function renderTable(layers) {
  const rows = layers.map((layer) => el("tr", { id: `layer-${layer.name}`, dataset: { kind: layer.kind } },
    el("td", {}, el("code", { text: layer.name })), el("td", {}, el("code", { text: layer.type })),
    el("td", { text: shapeText(layer.output_shape) }), el("td", { class: "number", text: formatCount(layer.params) }),
    el("td", { class: "number" }, rfCell(layer.receptive_field))));
  table.replaceChildren(el("table", { class: "lesson-table layer-table" },
    el("thead", {}, el("tr", {}, columns.map((text) => el("th", {}, ...bi(text))))), el("tbody", {}, rows)));
}

// The strip labels its blocks with the page's language: drawn again when it changes.
let shownLayers = [];
function drawStrip() {
  renderArchitectureStrip(strip, shownLayers, {
    onSelect: (name) => document.getElementById(`layer-${name}`)?.scrollIntoView({ block: "center" }),
  });
}

async function load(depth) {
  for (const button of document.querySelectorAll("button.depth")) {
    button.setAttribute("aria-pressed", String(button.dataset.depth === (depth ?? "")));
  }
  try {
    const detail = await api.getNetwork(networkId, depth);
    renderLandmarks(detail);
    renderTable(detail.layers);
    shownLayers = detail.layers;
    drawStrip();
    table.dataset.depth = depth ?? "all";
  } catch (error) {
    landmarks.replaceChildren(explainError(error));
  }
}

for (const button of document.querySelectorAll("button.depth")) {
  button.addEventListener("click", () => load(button.dataset.depth || null));
}
document.addEventListener("convlens:language", drawStrip);
load("2");
