// Unit arithmetic of a conv layer, with the real numbers: the input window of every input channel,
// the filter, their element-wise products and the sum plus bias — "multiply, add, slide".
import { cssColor, inkOn, makeScale } from "../colormap.js";
import * as data from "../data.js";
import { el, fill, formatNumber, gridNumber } from "../format.js";
import { registerStrings, t } from "../i18n.js";

registerStrings({
  en: {
    "conv.intro": "Unit (y {y}, x {x}) of channel {c}: filter {c} is laid on a {kh}×{kw} window of {n} input channel(s) of {source} (stride {stride}); each input number is multiplied by the weight on top of it, and everything is added up.",
    "conv.input": "input window",
    "conv.kernel": "filter weights",
    "conv.products": "products",
    "conv.row": "{source} · channel {i}",
    "conv.row.sum": "Σ = {sum}",
    "conv.more": "+ {count} more input channels (smaller contributions) add {sum}",
    "conv.table.channel": "input channel",
    "conv.table.input": "input",
    "conv.table.weight": "× weight",
    "conv.table.product": "= product",
    "conv.total": "Σ all {n} products {sum} + bias {bias} = {total}",
    "conv.total.nobias": "Σ all {n} products = {total} (this layer has no bias)",
    "conv.check": "The network computed {value}: difference {diff}.",
    "conv.padding": "Grey “0” cells lie outside the input map: padding adds zeros there.",
    "conv.normalized": "The input numbers are the normalized pixels: (pixel − mean) / std.",
    "conv.channel.rgb": "{name} (normalized)",
  },
  zh: {
    "conv.intro": "通道 {c} 的单元（y {y}，x {x}）：把滤波器 {c} 放在 {source} 的 {n} 个输入通道的 {kh}×{kw} 窗口上（步长 {stride}）；每个输入数乘以它上面的权重，再全部相加。",
    "conv.input": "输入窗口",
    "conv.kernel": "滤波器权重",
    "conv.products": "乘积",
    "conv.row": "{source} · 通道 {i}",
    "conv.row.sum": "Σ = {sum}",
    "conv.more": "+ 其余 {count} 个输入通道（贡献较小）共 {sum}",
    "conv.table.channel": "输入通道",
    "conv.table.input": "输入",
    "conv.table.weight": "× 权重",
    "conv.table.product": "= 乘积",
    "conv.total": "全部 {n} 个乘积之和 {sum} + 偏置 {bias} = {total}",
    "conv.total.nobias": "全部 {n} 个乘积之和 = {total}（这一层没有偏置）",
    "conv.check": "网络算出的是 {value}：相差 {diff}。",
    "conv.padding": "灰色的“0”格在输入特征图之外：填充在那里补零。",
    "conv.normalized": "输入数值是归一化后的像素：(像素 − 均值) / 标准差。",
    "conv.channel.rgb": "{name}（归一化）",
  },
});

const MAX_ROWS = 6;
const MAX_TABLE_ROWS = 12;

function pair(value) {
  return Array.isArray(value) ? value : [value, value];
}

// Zero padding before the first row/column: the conv's own plus the hidden pads before it.
function paddingBefore(filters, layer, kernel) {
  const [kh, kw] = kernel;
  const [dh, dw] = filters.dilation;
  let own = [0, 0];
  if (filters.padding === "same") own = [Math.floor((dh * (kh - 1)) / 2), Math.floor((dw * (kw - 1)) / 2)];
  else if (Array.isArray(filters.padding)) own = filters.padding;
  const [hiddenTop, hiddenLeft] = layer.input_padding || [0, 0, 0, 0];
  return [own[0] + hiddenTop, own[1] + hiddenLeft];
}

// Every number of the unit's computation: rows (one per input channel), their sums, total.
export async function convArithmetic({ modelId, analysisId, layer, channel, unit }) {
  const filters = await data.filters(modelId, layer.name);
  const weights = await data.filter(modelId, layer.name, channel);
  const [outChannels, perGroup, kh, kw] = filters.shape;
  const [sh, sw] = pair(filters.stride);
  const [dh, dw] = pair(filters.dilation);
  const [padTop, padLeft] = paddingBefore(filters, layer, [kh, kw]);
  const firstInput = Math.floor(channel / (outChannels / filters.groups)) * perGroup;
  const window = {
    top: unit.y * sh - padTop,
    left: unit.x * sw - padLeft,
    height: (kh - 1) * dh + 1,
    width: (kw - 1) * dw + 1,
    channel: filters.groups > 1 && perGroup === 1 ? firstInput : null,
  };
  const patch = await data.patch(analysisId, layer.input_layer, window);
  const rows = weights.values.map((kernel, i) => {
    const inputChannel = firstInput + i;
    const plane = patch.values[patch.channels.indexOf(inputChannel)];
    const inputs = kernel.map((row, ky) => row.map((_, kx) => plane[ky * dh][kx * dw]));
    const products = kernel.map((row, ky) => row.map((w, kx) => (inputs[ky][kx] ?? 0) * w));
    const sum = products.flat().reduce((s, p) => s + p, 0);
    return { inputChannel, inputs, kernel, products, sum };
  });
  const sum = rows.reduce((s, row) => s + row.sum, 0);
  const bias = weights.bias ?? 0;
  return { rows, sum, bias, hasBias: weights.bias !== null, total: sum + bias, kh, kw, stride: [sh, sw] };
}

function numberGrid(matrix, scale, { padded = false } = {}) {
  const grid = el("div", { class: "num-grid", style: { gridTemplateColumns: `repeat(${matrix[0].length}, auto)` } });
  for (const row of matrix) {
    for (const value of row) {
      const outside = value === null;
      const v = outside ? 0 : value;
      grid.append(el("span", {
        class: outside && padded ? "num pad" : "num",
        text: outside ? "0" : gridNumber(v),
        title: outside ? "padding" : String(v),
        style: outside ? {} : { background: cssColor(scale, v), color: inkOn(scale, v) },
      }));
    }
  }
  return grid;
}

function channelName(source, index, inputChannels) {
  if (source !== "input") return t("conv.row", { source, i: index });
  const names = inputChannels === 3 ? ["R", "G", "B"] : ["ink"];
  return t("conv.channel.rgb", { name: names[index] ?? index });
}

function gridRows(result, source, inputChannels) {
  const ranked = [...result.rows].sort((a, b) => Math.abs(b.sum) - Math.abs(a.sum));
  const shown = result.rows.length <= MAX_ROWS ? result.rows : ranked.slice(0, MAX_ROWS);
  const rest = result.rows.length - shown.length;
  // One colour scale per kind of number across all rows, so rows can be compared at a glance.
  const extent = (pick) => Math.max(...shown.flatMap((row) => pick(row).flat().map((v) => Math.abs(v ?? 0)))) || 1;
  const scales = ["inputs", "kernel", "products"].map((key) => {
    const e = extent((row) => row[key]);
    return makeScale(-e, e, "diverging");
  });
  const items = shown.map((row) => el(
    "div",
    { class: "conv-row" },
    el(
      "p",
      { class: "conv-row-title" },
      el("span", { text: channelName(source, row.inputChannel, inputChannels) }),
      el("span", { class: "row-sum", text: t("conv.row.sum", { sum: formatNumber(row.sum) }) }),
    ),
    el(
      "div",
      { class: "conv-row-grids" },
      el("figure", {}, numberGrid(row.inputs, scales[0], { padded: true }), el("figcaption", { text: t("conv.input") })),
      el("span", { class: "op", text: "×" }),
      el("figure", {}, numberGrid(row.kernel, scales[1]), el("figcaption", { text: t("conv.kernel") })),
      el("span", { class: "op", text: "=" }),
      el("figure", {}, numberGrid(row.products, scales[2]), el("figcaption", { text: t("conv.products") })),
    ),
  ));
  if (rest) {
    const restSum = result.rows.filter((row) => !shown.includes(row)).reduce((s, row) => s + row.sum, 0);
    items.push(el("p", { class: "muted", text: t("conv.more", { count: rest, sum: formatNumber(restSum) }) }));
  }
  return items;
}

function productTable(result, source, inputChannels) {
  const ranked = [...result.rows].sort((a, b) => Math.abs(b.sum) - Math.abs(a.sum));
  const shown = ranked.slice(0, MAX_TABLE_ROWS);
  const head = el("tr", {}, ...["conv.table.channel", "conv.table.input", "conv.table.weight", "conv.table.product"]
    .map((key) => el("th", { text: t(key) })));
  const body = shown.map((row) => el(
    "tr",
    {},
    el("td", { text: channelName(source, row.inputChannel, inputChannels) }),
    el("td", { text: formatNumber(row.inputs[0][0] ?? 0), title: String(row.inputs[0][0] ?? 0) }),
    el("td", { text: formatNumber(row.kernel[0][0]), title: String(row.kernel[0][0]) }),
    el("td", { text: formatNumber(row.sum), title: String(row.sum) }),
  ));
  const rest = result.rows.length - shown.length;
  const restSum = ranked.slice(MAX_TABLE_ROWS).reduce((s, row) => s + row.sum, 0);
  return [
    el("table", { class: "product-table" }, el("thead", {}, head), el("tbody", {}, body)),
    rest ? el("p", { class: "muted", text: t("conv.more", { count: rest, sum: formatNumber(restSum) }) }) : null,
  ];
}

// Render the computation; `value` is the unit's value as the API reports it (the check).
export function renderConvArithmetic(container, { result, layer, channel, unit, value, inputChannels }) {
  const source = layer.input_layer;
  const count = result.rows.length * result.kh * result.kw;
  const hasPadding = result.rows.some((row) => row.inputs.flat().includes(null));
  const totalText = result.hasBias
    ? t("conv.total", { n: count, sum: formatNumber(result.sum, 6), bias: formatNumber(result.bias, 6), total: formatNumber(result.total, 6) })
    : t("conv.total.nobias", { n: count, total: formatNumber(result.total, 6) });
  fill(container,
    el("p", {
      class: "conv-intro",
      text: t("conv.intro", {
        y: unit.y, x: unit.x, c: channel, kh: result.kh, kw: result.kw, n: result.rows.length,
        source, stride: result.stride[0],
      }),
    }),
    source === "input" ? el("p", { class: "muted", text: t("conv.normalized") }) : null,
    ...(result.kh * result.kw === 1 ? productTable(result, source, inputChannels) : gridRows(result, source, inputChannels)),
    hasPadding ? el("p", { class: "muted", text: t("conv.padding") }) : null,
    el("p", {
      id: "conv-total",
      class: "total",
      text: totalText,
      dataset: { total: String(result.total), value: String(value) },
    }),
    el("p", {
      class: "check",
      text: t("conv.check", { value: formatNumber(value, 6), diff: Math.abs(result.total - value).toExponential(1) }),
    }),
  );
}
