// The playground page: a form (or a seed preset) → the playground API → the stepper. Text areas hold
// one matrix row per line, a blank line between channels, a line "---" between filters. The form's
// `data-computed` counts the computations shown in full (result and size explanation).
import * as api from "../api.js";
import { el } from "../format.js";
import { explainError, renderFits, runAndShow, sizeExplanations } from "./preset-runner.js";
import { bi } from "./strings.js";

const form = document.getElementById("playground-form");
const field = (id) => document.getElementById(id);
const status = field("playground-status");
const stepperPanel = field("stepper-panel");
let highlights = [];

// A word that is not a number stops here with the server's own code (the API takes numbers only).
function toNumber(word) {
  const value = Number(word);
  if (word === "" || !Number.isFinite(value)) throw { code: "invalid_input", message: `not a number: "${word}"` };
  return value;
}
const parseMatrix = (block) => block.trim().split("\n").map((line) => line.trim().split(/[\s,]+/).map(toNumber));
const parseChannels = (text) => text.trim().split(/\n\s*\n/).map(parseMatrix);
const parseFilters = (text) => text.trim().split(/^\s*---\s*$/m).map(parseChannels);
const formatChannels = (channels) => channels.map((plane) => plane.map((row) => row.join(" ")).join("\n")).join("\n\n");
const formatFilters = (filters) => filters.map(formatChannels).join("\n---\n");
const asPair = (value) => (Array.isArray(value) ? value.join(",") : String(value));

function parsePadding(text) {
  const value = text.trim();
  if (value === "valid" || value === "same") return value;
  const numbers = value.split(/[\s,]+/).map(Number);
  return numbers.length === 1 ? numbers[0] : numbers;
}

function operationOf(select) {
  const [operation, kind] = select.split("-");
  return { operation, kind };
}

function showOperation() {
  const { operation } = operationOf(field("operation").value);
  for (const node of form.querySelectorAll(".conv-only")) node.hidden = !["conv", "im2col"].includes(operation);
  for (const node of form.querySelectorAll(".pool-only")) node.hidden = operation !== "pool";
}

function requestFromForm() {
  const { operation, kind } = operationOf(field("operation").value);
  const input = parseChannels(field("input-text").value);
  if (operation === "relu") return { operation, body: { input } };
  const common = {
    input,
    stride: Number(field("stride").value),
    dilation: Number(field("dilation").value),
  };
  if (operation === "pool") {
    const padding = parsePadding(field("padding").value);
    return { operation, body: { ...common, kind, kernel_size: Number(field("kernel-size").value),
      padding: typeof padding === "string" ? 0 : padding, fit: field("fit").value } };
  }
  const bias = field("bias").value.trim();
  const body = { ...common, kernels: parseFilters(field("kernel-text").value),
    padding: parsePadding(field("padding").value), bias: bias ? bias.split(/[\s,]+/).map(toNumber) : null };
  if (operation === "conv") body.fit = field("fit").value;
  return { operation, body };
}

function fillForm(preset) {
  const request = preset.request;
  const kind = request.kind ?? "max";
  field("operation").value = preset.operation === "pool" ? `pool-${kind}` : preset.operation;
  field("input-text").value = formatChannels(request.input);
  field("kernel-text").value = request.kernels ? formatFilters(request.kernels) : "";
  field("bias").value = request.bias ? request.bias.join(" ") : "";
  field("stride").value = asPair(request.stride ?? request.kernel_size ?? 1).split(",")[0];
  field("padding").value = asPair(request.padding ?? "valid");
  field("dilation").value = asPair(request.dilation ?? 1).split(",")[0];
  field("kernel-size").value = asPair(request.kernel_size ?? 2).split(",")[0];
  field("fit").value = request.fit ?? "strict";
  highlights = preset.highlights;
  const note = [el("p", {}, ...bi(preset.description))];
  if (preset.equivalent) note.push(el("p", { class: "note equivalent" }, ...bi(preset.equivalent)));
  field("preset-note").replaceChildren(...note);
  showOperation();
}

async function compute() {
  status.replaceChildren();
  let request;
  try {
    request = requestFromForm();
  } catch (error) {
    status.replaceChildren(explainError(error));
    return;
  }
  const { operation, body } = request;
  stepperPanel.hidden = false;
  const sizes = operation === "relu" ? Promise.resolve([]) : sizeExplanations(body, operation).catch(() => []);
  const [fits] = await Promise.all([sizes, runAndShow(stepperPanel, operation, body, { highlights })]);
  renderFits(field("size-panel"), fits);
  form.dataset.computed = String(Number(form.dataset.computed || 0) + 1);
}

async function loadPreset(slug) {
  if (!slug) return;
  try {
    fillForm(await api.getPreset(slug));
    history.replaceState(null, "", `/playground?preset=${encodeURIComponent(slug)}`);
    await compute();
  } catch (error) {
    status.replaceChildren(explainError(error));
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  highlights = [];
  compute();
});
field("operation").addEventListener("change", showOperation);
field("preset-select").addEventListener("change", (event) => loadPreset(event.target.value));
showOperation();

const initial = new URLSearchParams(location.search).get("preset") || "curve-detector";
field("preset-select").value = initial;
loadPreset(initial);
