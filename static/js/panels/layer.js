// Layer panel: every channel of one layer as a grid of coloured tiles (from the atlas PNG), each on
// its own colour scale; sort by mean activation; click a tile (or arrows + Enter) to open it.
import { bitmapOf, cellAt, cssVar, fitCanvas } from "../canvas.js";
import { drawLegend, makeScale, paintValues } from "../colormap.js";
import { tileValues } from "../data.js";
import { el, fill, formatNumber, shapeText } from "../format.js";
import { registerStrings, t } from "../i18n.js";
import { layerHelp } from "./help.js";

registerStrings({
  en: {
    "layer.title": "Layer",
    "layer.stats": " · output {shape} · min {min} · max {max} · mean {mean} · {zeros} of values are 0",
    "layer.sort": "Order",
    "layer.sort.index": "channel number",
    "layer.sort.mean": "strongest mean activation first",
    "layer.legend.sequential": "Each tile has its own scale: dark = that channel's lowest value, yellow = its highest.",
    "layer.legend.diverging": "Each tile has its own scale: blue = negative, white = 0, red = positive.",
    "layer.legend.units": "One cell per unit (this layer is a vector, not a map).",
    "layer.low": "low",
    "layer.high": "high",
    "layer.negative": "negative",
    "layer.positive": "positive",
    "layer.channel": "channel {c}: mean {mean}, from {min} to {max}",
    "layer.unit": "unit {c} ({label}): ≈ {value}",
    "layer.grid.aria": "Channels of layer {name}; arrow keys choose one",
    "layer.count": "{count} channels of {h} × {w}",
    "layer.count.units": "{count} units",
  },
  zh: {
    "layer.title": "层",
    "layer.stats": " · 输出 {shape} · 最小 {min} · 最大 {max} · 均值 {mean} · {zeros} 的值为 0",
    "layer.sort": "排序",
    "layer.sort.index": "按通道编号",
    "layer.sort.mean": "平均激活最强的在前",
    "layer.legend.sequential": "每个小图有自己的色标：深色 = 该通道的最小值，黄色 = 最大值。",
    "layer.legend.diverging": "每个小图有自己的色标：蓝 = 负，白 = 0，红 = 正。",
    "layer.legend.units": "每格一个单元（这一层是向量，不是特征图）。",
    "layer.low": "低",
    "layer.high": "高",
    "layer.negative": "负",
    "layer.positive": "正",
    "layer.channel": "通道 {c}：均值 {mean}，范围 {min} 到 {max}",
    "layer.unit": "单元 {c}（{label}）：≈ {value}",
    "layer.grid.aria": "{name} 层的各个通道；用方向键选择",
    "layer.count": "{count} 个 {h} × {w} 的通道",
    "layer.count.units": "{count} 个单元",
  },
});

const GAP = 3;

const MAX_CELL = 140;

// Tile size on screen: by map size, and larger when only a few channels share the width.
function cellSize(tileHeight, isVector, count, width) {
  if (isVector) return 16;
  const base = tileHeight >= 56 ? 72 : tileHeight >= 28 ? 56 : tileHeight >= 10 ? 44 : 30;
  const fitsInOneRow = Math.floor((width + GAP) / count) - GAP;
  return Math.max(base, Math.min(MAX_CELL, fitsInOneRow));
}

export function mountLayerPanel({ onChannel }) {
  const body = document.getElementById("layer-body");
  let state = null;

  function channelSummary(c) {
    const { tiles, isVector, labels } = state;
    if (isVector) return t("layer.unit", { c, label: labels?.[c] ?? c, value: formatNumber(tiles[0].values[c]) });
    const tile = tiles[c];
    return t("layer.channel", { c, mean: formatNumber(tile.mean), min: formatNumber(tile.min), max: formatNumber(tile.max) });
  }

  function layout() {
    const width = Math.max(200, body.clientWidth);
    const cols = Math.max(1, Math.floor((width + GAP) / (state.cell + GAP)));
    return { cols, rows: Math.ceil(state.count / cols) };
  }

  function draw() {
    const { canvas, cell, order, selected, focused, isVector } = state;
    const { cols, rows } = (state.grid = layout());
    const context = fitCanvas(canvas, cols * (cell + GAP) - GAP, rows * (cell + GAP) - GAP);
    Object.assign(canvas.dataset, { cell, gap: GAP, cols });
    context.fillStyle = cssVar("--grid-bg");
    context.fillRect(0, 0, canvas.width, canvas.height);
    order.forEach((channel, position) => {
      const x = (position % cols) * (cell + GAP);
      const y = Math.floor(position / cols) * (cell + GAP);
      if (isVector) {
        context.fillStyle = state.unitColors[channel];
        context.fillRect(x, y, cell, cell);
      } else {
        context.drawImage(state.tiles[channel].bitmap, x, y, cell, cell);
      }
      if (channel === selected || channel === focused) {
        context.lineWidth = channel === selected ? 3 : 2;
        context.strokeStyle = channel === selected ? cssVar("--highlight") : cssVar("--fg");
        context.strokeRect(x + 1, y + 1, cell - 2, cell - 2);
      }
    });
  }

  function sortOrder(by) {
    const indices = [...Array(state.count).keys()];
    if (by === "mean" && !state.isVector) indices.sort((a, b) => state.tiles[b].mean - state.tiles[a].mean);
    if (by === "mean" && state.isVector) indices.sort((a, b) => state.tiles[0].values[b] - state.tiles[0].values[a]);
    return indices;
  }

  function choose(channel, { announce = true } = {}) {
    state.selected = channel;
    state.focused = channel;
    draw();
    state.readout.textContent = channelSummary(channel);
    if (announce) onChannel(channel);
  }

  function moveFocus(event) {
    const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: state.grid.cols, ArrowUp: -state.grid.cols };
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      choose(state.focused);
      return;
    }
    if (!(event.key in moves)) return;
    event.preventDefault();
    const position = state.order.indexOf(state.focused ?? state.order[0]);
    const next = Math.max(0, Math.min(state.count - 1, position + moves[event.key]));
    choose(state.order[next]);
  }

  function show({ card, layer, stats, atlas, selected = 0, sort = "index" }) {
    const isVector = layer.output_shape.length === 1;
    const count = layer.output_shape[0];
    const mode = stats.min < 0 ? "diverging" : "sequential";
    const tiles = isVector
      ? [{ values: tileValues(atlas, 0) }]
      : Array.from({ length: count }, (_, c) => {
        const values = tileValues(atlas, c);
        const min = atlas.meta.minimums[c];
        const max = atlas.meta.maximums[c];
        const { tile_height: h, tile_width: w } = atlas.meta.atlas;
        const bitmap = bitmapOf(paintValues(values, w, h, makeScale(min, max, mode)));
        return { values, min, max, mean: values.reduce((s, v) => s + v, 0) / values.length, bitmap };
      });
    const canvas = el("canvas", {
      class: "channel-grid",
      tabindex: "0",
      role: "img",
      "aria-label": t("layer.grid.aria", { name: layer.name }),
    });
    const sortSelect = el(
      "select",
      { id: "layer-sort" },
      el("option", { value: "index", text: t("layer.sort.index") }),
      el("option", { value: "mean", text: t("layer.sort.mean") }),
    );
    sortSelect.value = sort;
    const legend = el("canvas", { class: "legend" });
    const readout = el("p", { class: "readout", "aria-live": "polite" });
    state = {
      layer, canvas, count, isVector, tiles, readout, selected, focused: selected, sort,
      cell: cellSize(isVector ? 1 : atlas.meta.atlas.tile_height, isVector, count, body.clientWidth),
      labels: layer.name === card.layers[card.layers.length - 1].name ? card.labels : null,
    };
    if (isVector) {
      const scale = makeScale(stats.min, stats.max, mode);
      state.unitColors = Array.from(tiles[0].values.slice(0, count), (v) => {
        const data = paintValues([v], 1, 1, scale).data;
        return `rgb(${data[0]},${data[1]},${data[2]})`;
      });
    }
    state.order = sortOrder(sort);
    const [h, w] = layer.output_shape.slice(1);
    document.getElementById("layer-name").textContent = layer.name;
    document.getElementById("layer-help").textContent = layerHelp(layer, card);
    const legendText = t(isVector ? "layer.legend.units" : `layer.legend.${mode}`);
    fill(body,
      el("p", { class: "layer-stats" }, el("code", { text: layer.type }), t("layer.stats", {
        shape: shapeText(layer.output_shape),
        min: formatNumber(stats.min),
        max: formatNumber(stats.max),
        mean: formatNumber(stats.mean),
        zeros: `${Math.round(stats.zero_fraction * 100)} %`,
      })),
      el(
        "div",
        { class: "layer-controls" },
        el("label", {}, el("span", { text: `${t("layer.sort")} ` }), sortSelect),
        el("span", { class: "muted", text: isVector ? t("layer.count.units", { count }) : t("layer.count", { count, h, w }) }),
        el("span", { class: "legend-box" }, legend, el("span", { class: "muted", text: legendText })),
      ),
      canvas,
      readout,
    );
    const words = mode === "diverging" ? ["layer.negative", "layer.positive"] : ["layer.low", "layer.high"];
    state.drawLegend = () => drawLegend(legend, makeScale(mode === "diverging" ? -1 : 0, 1, mode), (v) => t(v < 0 || (v === 0 && mode !== "diverging") ? words[0] : words[1]));
    state.drawLegend();
    sortSelect.addEventListener("change", () => {
      state.sort = sortSelect.value;
      state.order = sortOrder(state.sort);
      draw();
    });
    canvas.addEventListener("click", (event) => {
      const hit = cellAt(event, canvas, state.cell, GAP, state.grid.cols, state.grid.rows);
      const position = hit && hit.row * state.grid.cols + hit.col;
      if (hit && position < state.count) choose(state.order[position]);
    });
    canvas.addEventListener("mousemove", (event) => {
      const hit = cellAt(event, canvas, state.cell, GAP, state.grid.cols, state.grid.rows);
      const position = hit && hit.row * state.grid.cols + hit.col;
      canvas.title = hit && position < state.count ? channelSummary(state.order[position]) : "";
    });
    canvas.addEventListener("keydown", moveFocus);
    draw();
    readout.textContent = channelSummary(selected);
  }

  window.addEventListener("resize", () => state && draw());
  // The legend's words are drawn in the text colour: a new theme or text size redraws them too.
  const redraw = () => {
    if (!state) return;
    draw();
    state.drawLegend();
  };
  document.addEventListener("convlens:layout", redraw);
  document.addEventListener("convlens:theme", redraw);
  return {
    show,
    select: (channel) => state && choose(channel, { announce: false }),
    get sort() { return state?.sort ?? "index"; },
  };
}
