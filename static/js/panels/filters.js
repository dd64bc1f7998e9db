// Filters panel: a conv layer's learned filters as one atlas (RGB tiles for the first colour layer,
// otherwise grey = 0 with one row per filter), and the exact numbers of the chosen filter.
import { cssVar, fitCanvas, loadImage } from "../canvas.js";
import { cssColor, inkOn, makeScale } from "../colormap.js";
import * as data from "../data.js";
import { el, fill, formatNumber, gridNumber, shapeText } from "../format.js";
import { registerStrings, t } from "../i18n.js";

registerStrings({
  en: {
    "filters.title": "The layer's learned filters",
    "filters.help": "A filter is the small grid of weights a conv layer slides over its input; channel k of the layer comes from filter k. Grey is 0, lighter is positive, darker is negative (first layer: shown as colour). Click one to see its numbers.",
    "filters.none": "This layer has no filters of its own: it is a {kind} layer. Open a conv layer to see filters.",
    "filters.shape": "{count} filters of shape {shape} · stride {stride} · {kind}",
    "filters.rows": "one row per filter, one column per input channel",
    "filters.depthwise": "depthwise: one filter per channel",
    "filters.single": "one tile per filter (the input has one channel)",
    "filters.rgb": "colour filters: red, green and blue weights together",
    "filters.selected": "Filter {o} (makes channel {o}): its weights{bias}",
    "filters.bias": ", bias {bias}",
    "filters.input": "for input channel {i}",
    "filters.more": "… and {count} more input channels",
    "filters.aria": "Filters of {layer}; click one, or use the arrow keys, to see its numbers",
  },
  zh: {
    "filters.title": "这一层学到的滤波器",
    "filters.help": "滤波器是卷积层在输入上滑动的一小格权重；这一层的第 k 个通道来自第 k 个滤波器。灰色为 0，较亮为正，较暗为负（第一层用彩色显示）。点击一个查看它的数值。",
    "filters.none": "这一层自己没有滤波器：它是{kind}层。打开一个卷积层来查看滤波器。",
    "filters.shape": "{count} 个形状为 {shape} 的滤波器 · 步幅 {stride} · {kind}",
    "filters.rows": "每个滤波器一行，每个输入通道一列",
    "filters.depthwise": "逐通道：每个通道一个滤波器",
    "filters.single": "每个滤波器一格（输入只有一个通道）",
    "filters.rgb": "彩色滤波器：红、绿、蓝三组权重合在一起显示",
    "filters.selected": "滤波器 {o}（生成通道 {o}）：它的权重{bias}",
    "filters.bias": "，偏置 {bias}",
    "filters.input": "对应输入通道 {i}",
    "filters.more": "……以及其余 {count} 个输入通道",
    "filters.aria": "{layer} 的滤波器；点击一个或用方向键选择，查看它的数值",
  },
});

const MAX_INPUT_GRIDS = 8;
const TARGET_WIDTH = 600;

// RGB and single-input-channel banks have one tile per filter on a near-square grid; the others
// one row per filter and one column per input channel (app/core/filters.py).
const tilePerFilter = (meta) => meta.rgb || meta.shape[1] === 1;

function weightGrid(matrix, scale) {
  const grid = el("div", { class: "num-grid", style: { gridTemplateColumns: `repeat(${matrix[0].length}, auto)` } });
  for (const value of matrix.flat()) {
    grid.append(el("span", {
      class: "num",
      text: gridNumber(value),
      title: String(value),
      style: { background: cssColor(scale, value), color: inkOn(scale, value) },
    }));
  }
  return grid;
}

export function mountFiltersPanel({ onFilter }) {
  const body = document.getElementById("filters-body");
  let state = null;

  function tileOf(o) {
    const layout = state.meta.atlas;
    const perRow = tilePerFilter(state.meta);
    const row = perRow ? Math.floor(o / layout.cols) : o;
    const col = perRow ? o % layout.cols : 0;
    const span = perRow ? 1 : layout.cols;
    return {
      x: col * (layout.tile_width + layout.gap),
      y: row * (layout.tile_height + layout.gap),
      w: span * layout.tile_width + (span - 1) * layout.gap,
      h: layout.tile_height,
    };
  }

  function filterAt(event) {
    const rect = state.canvas.getBoundingClientRect();
    const layout = state.meta.atlas;
    const col = Math.floor((event.clientX - rect.left) / state.scale / (layout.tile_width + layout.gap));
    const row = Math.floor((event.clientY - rect.top) / state.scale / (layout.tile_height + layout.gap));
    const o = tilePerFilter(state.meta) ? row * layout.cols + col : row;
    return o >= 0 && o < state.meta.shape[0] ? o : null;
  }

  function drawAtlas() {
    const { canvas, image, scale, meta } = state;
    const context = fitCanvas(canvas, meta.atlas.width * scale, meta.atlas.height * scale);
    context.drawImage(image, 0, 0, meta.atlas.width * scale, meta.atlas.height * scale);
    const tile = tileOf(state.selected);
    context.lineWidth = 2;
    context.strokeStyle = cssVar("--highlight");
    context.strokeRect(tile.x * scale - 1, tile.y * scale - 1, tile.w * scale + 2, tile.h * scale + 2);
  }

  async function showNumbers(o) {
    const weights = await data.filter(state.modelId, state.layer.name, o);
    if (!state || state.selected !== o) return;
    const all = weights.values.flat(2);
    const extent = Math.max(...all.map(Math.abs)) || 1;
    const scale = makeScale(-extent, extent, "diverging");
    const names = state.meta.rgb ? ["R", "G", "B"] : null;
    const grids = weights.values.slice(0, MAX_INPUT_GRIDS).map((matrix, i) => el(
      "figure",
      {},
      weightGrid(matrix, scale),
      el("figcaption", { text: names ? names[i] : t("filters.input", { i: state.meta.depthwise ? o : i }) }),
    ));
    const more = weights.values.length - MAX_INPUT_GRIDS;
    const bias = weights.bias === null ? "" : t("filters.bias", { bias: formatNumber(weights.bias, 4) });
    fill(state.numbers,
      el("h3", { text: t("filters.selected", { o, bias }) }),
      el("div", { class: "filter-grids" }, grids),
      more > 0 ? el("p", { class: "muted", text: t("filters.more", { count: more }) }) : null,
    );
  }

  function select(o, { announce = false } = {}) {
    if (!state || o === null) return;
    state.selected = Math.max(0, Math.min(o, state.meta.shape[0] - 1));
    drawAtlas();
    showNumbers(state.selected);
    if (announce) onFilter?.(state.selected);
  }

  // Keyboard: arrows move through the filters as laid out (a grid of tiles, or one row each),
  // Home / End jump to the first / last; the chosen tile is scrolled into the atlas's view.
  function onKey(event) {
    const across = tilePerFilter(state.meta) ? state.meta.atlas.cols : 1;
    const last = state.meta.shape[0] - 1;
    const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: across, ArrowUp: -across, Home: -Infinity, End: Infinity };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const next = Math.max(0, Math.min(last, state.selected + moves[event.key]));
    if (next === state.selected) return;
    select(next, { announce: true });
    const tile = tileOf(next);
    const box = state.canvas.parentElement;
    const [top, bottom] = [tile.y * state.scale, (tile.y + tile.h) * state.scale];
    if (top < box.scrollTop) box.scrollTop = top;
    else if (bottom > box.scrollTop + box.clientHeight) box.scrollTop = bottom - box.clientHeight;
  }

  async function show({ modelId, layer, channel }) {
    if (layer.kind !== "conv" && layer.kind !== "depthwise_conv") {
      state = null;
      fill(body, el("p", { class: "muted", text: t("filters.none", { kind: t(`kind.${layer.kind}`) }) }));
      return;
    }
    const meta = await data.filters(modelId, layer.name);
    const image = await loadImage(meta.atlas_url);
    const scale = Math.max(1, Math.min(16, Math.floor(TARGET_WIDTH / meta.atlas.width)));
    const canvas = el("canvas", { class: "filter-atlas", tabindex: "0", role: "img", "aria-label": t("filters.aria", { layer: layer.name }) });
    const numbers = el("div", { class: "filter-numbers" });
    state = { modelId, layer, meta, image, scale, canvas, numbers, selected: channel };
    const kind = meta.rgb ? t("filters.rgb") : meta.depthwise ? t("filters.depthwise") : meta.shape[1] === 1 ? t("filters.single") : t("filters.rows");
    fill(body,
      el("p", {
        class: "muted",
        text: t("filters.shape", { count: meta.shape[0], shape: shapeText(meta.shape.slice(1)), stride: meta.stride[0], kind }),
      }),
      el("div", { class: "filters-layout" }, el("div", { class: "atlas-scroll" }, canvas), numbers),
    );
    canvas.addEventListener("click", (event) => select(filterAt(event), { announce: true }));
    canvas.addEventListener("keydown", onKey);
    select(channel);
  }

  document.addEventListener("convlens:theme", () => state && drawAtlas());
  return { show, select: (o) => select(o) };
}
