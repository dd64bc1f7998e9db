// The plain page: upload an image, show the predictions and every layer with its feature-map atlas.
import { analyze } from "./api.js";

const form = document.getElementById("upload-form");
const statusLine = document.getElementById("status");
const fmt = (v) => (Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(2) : v.toFixed(3));

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function render(result) {
  document.getElementById("input-image").src = result.input_url;
  const list = document.getElementById("predictions");
  list.replaceChildren(...result.predictions.map((p) => {
    const li = document.createElement("li");
    li.textContent = `${p.label} — ${(p.probability * 100).toFixed(1)} %`;
    return li;
  }));
  const body = document.querySelector("#layers tbody");
  body.replaceChildren(...result.layers.map((layer) => {
    const row = document.createElement("tr");
    row.append(cell(layer.name), cell(layer.type), cell(layer.shape.join("×")), cell(fmt(layer.min)), cell(fmt(layer.max)), cell(fmt(layer.mean)));
    const link = document.createElement("a");
    link.href = layer.atlas_url;
    link.textContent = "atlas";
    const td = document.createElement("td");
    td.append(link);
    row.append(td);
    return row;
  }));
  document.getElementById("result-panel").hidden = false;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = document.getElementById("image-input").files[0];
  if (!file) return;
  statusLine.textContent = "Analyzing…";
  try {
    const result = await analyze(document.getElementById("model-select").value, file);
    statusLine.textContent = result.cached ? "Done (from cache)." : "Done.";
    render(result);
  } catch (error) {
    statusLine.textContent = `Could not analyze this image: ${error.message}`;
  }
});
