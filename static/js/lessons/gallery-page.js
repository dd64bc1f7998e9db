// One gallery network: its block diagram, published vs. computed receptive fields, the architecture
// strip (the same one the live models use) and the full layer table.
import * as api from "../api.js";
import { el, formatCount, shapeText } from "../format.js";
import { renderArchitectureStrip } from "../panels/architecture.js";
import { renderDiagram } from "./diagrams.js";
import { bi } from "./strings.js";

const head = document.querySelector("[data-network]");
const networkId = head.dataset.network;
const landmarks = document.getElementById("landmarks");
const strip = document.getElementById("network-strip");
const table = document.getElementById("network-table");

for (const container of document.querySelectorAll(".diagram[data-diagram]")) {
  renderDiagram(container, container.dataset.diagram);
}

const rfText = (rf) => (rf.diagnostic ? "—" : rf.is_global ? "global" : `${rf.size[0]} (jump ${rf.jump[0]})`);
const columns = [
  { en: "layer", zh: "层" }, { en: "type", zh: "类型" }, { en: "output", zh: "输出" },
  { en: "parameters", zh: "参数" }, { en: "receptive field (jump)", zh: "感受野（跳步）" },
];

function renderLandmarks(detail) {
  const rows = detail.landmarks.map((m) => el("tr", { class: m.published_rf === m.computed_rf ? "fits" : "no-fit" },
    el("td", {}, el("code", { text: m.layer })), el("td", { class: "number", text: m.published_rf }),
    el("td", { class: "number", text: m.computed_rf ?? "—" }), el("td", { class: "muted small", text: m.source })));
  const header = [{ en: "layer", zh: "层" }, { en: "reference", zh: "参考值" }, { en: "computed", zh: "计算" },
    { en: "source", zh: "来源" }].map((text) => el("th", {}, ...bi(text)));
  landmarks.replaceChildren(el("table", { class: "lesson-table" },
    el("thead", {}, el("tr", {}, header)), el("tbody", {}, rows)));
}

function renderTable(layers) {
  const rows = layers.map((layer) => el("tr", { id: `layer-${layer.name}`, dataset: { kind: layer.kind } },
    el("td", {}, el("code", { text: layer.name })), el("td", { text: layer.type }),
    el("td", { text: shapeText(layer.output_shape) }), el("td", { class: "number", text: formatCount(layer.params) }),
    el("td", { class: "number", text: rfText(layer.receptive_field) })));
  table.replaceChildren(el("table", { class: "lesson-table layer-table" },
    el("thead", {}, el("tr", {}, columns.map((text) => el("th", {}, ...bi(text))))), el("tbody", {}, rows)));
}

async function load(depth) {
  for (const button of document.querySelectorAll("button.depth")) {
    button.setAttribute("aria-pressed", String(button.dataset.depth === (depth ?? "")));
  }
  try {
    const detail = await api.getNetwork(networkId, depth);
    renderLandmarks(detail);
    renderTable(detail.layers);
    renderArchitectureStrip(strip, detail.layers, {
      onSelect: (name) => document.getElementById(`layer-${name}`)?.scrollIntoView({ block: "center" }),
    });
  } catch (error) {
    landmarks.replaceChildren(el("p", { class: "error", text: error.message }));
  }
}

for (const button of document.querySelectorAll("button.depth")) {
  button.addEventListener("click", () => load(button.dataset.depth || null));
}
load("2");
