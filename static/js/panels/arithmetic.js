// Weighted sums, with the server's numbers (GET …/unit): a conv unit is its input window × the
// filter = products, Σ + bias; a linear unit is its input vector × the weight row, largest
// contributions first. Padding cells are marked by the conv's padding mode.
import { cssColor, inkOn, makeScale } from "../colormap.js";
import { el, formatNumber, gridNumber } from "../format.js";
import { registerStrings, t } from "../i18n.js";

registerStrings({
  en: {
    "conv.intro": "Unit (y {y}, x {x}) of channel {c}: filter {c} is laid on a {kh}×{kw} window of {n} input channel(s) of {source}; each input number is multiplied by the weight on top of it, and everything is added up.",
    "conv.intro.dilated": " The filter's taps are {d} apart (dilation {d}).",
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
    "conv.cell": "{source} channel {channel}, row {row}, column {col}: {value}",
    "conv.cell.pad": "padding ({mode}) at row {row}, column {col}: {value}",
    "conv.padding.zeros": "Hatched “0” cells lie outside the input map: zero padding puts 0 there.",
    "conv.padding.reflect": "Hatched cells lie outside the input map: reflect padding fills them with the map mirrored across its edge (the edge itself is not repeated).",
    "conv.padding.replicate": "Hatched cells lie outside the input map: replicate padding fills them with copies of the nearest edge number.",
    "conv.padding.circular": "Hatched cells lie outside the input map: circular padding fills them with the numbers from the opposite edge — the map wraps around.",
    "conv.normalized": "The input numbers are the normalized pixels: (pixel − mean) / std.",
    "conv.channel.rgb": "{name} (normalized)",
    "conv.source": "its input",
    "conv.source.image": "the input image",
    "conv.channel.ink": "ink",
    "linear.intro": "Unit {c} of {layer} = Σ over the {n} numbers of {source} (each × its own weight) + bias. The {shown} largest contributions:",
    "linear.intro.map": "Unit (y {y}, x {x}) of channel {c} of {layer} = Σ over the {n} channels of {source} at the same position (each × its own weight) + bias. The {shown} largest contributions:",
    "linear.table.index": "from",
    "linear.more": "+ {count} more products (smaller contributions) add {sum}",
  },
  zh: {
    "conv.intro": "通道 {c} 的单元（y {y}，x {x}）：把滤波器 {c} 放在 {source} 的 {n} 个输入通道的 {kh}×{kw} 窗口上；每个输入数乘以它上面的权重，再全部相加。",
    "conv.intro.dilated": "滤波器的各个抽头相隔 {d}（膨胀 {d}）。",
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
    "conv.cell": "{source} 通道 {channel}，第 {row} 行，第 {col} 列：{value}",
    "conv.cell.pad": "填充（{mode}），第 {row} 行，第 {col} 列：{value}",
    "conv.padding.zeros": "带斜纹的“0”格在输入特征图之外：零填充在那里补 0。",
    "conv.padding.reflect": "带斜纹的格在输入特征图之外：反射填充（reflect）把特征图沿边缘镜像过去填在那里（边缘本身不重复）。",
    "conv.padding.replicate": "带斜纹的格在输入特征图之外：复制填充（replicate）用最近的边缘数值填在那里。",
    "conv.padding.circular": "带斜纹的格在输入特征图之外：循环填充（circular）用对边的数值填在那里——特征图首尾相接。",
    "conv.normalized": "输入数值是归一化后的像素：(像素 − 均值) / 标准差。",
    "conv.channel.rgb": "{name}（归一化）",
    "conv.source": "它的输入",
    "conv.source.image": "输入图像",
    "conv.channel.ink": "墨迹",
    "linear.intro": "{layer} 的单元 {c} = {source} 的 {n} 个数各乘以自己的权重后求和 + 偏置。贡献最大的 {shown} 项：",
    "linear.intro.map": "{layer} 通道 {c} 的单元（y {y}，x {x}）= {source} 同一位置的 {n} 个通道各乘以自己的权重后求和 + 偏置。贡献最大的 {shown} 项：",
    "linear.table.index": "来自",
    "linear.more": "+ 其余 {count} 个乘积（贡献较小）共 {sum}",
  },
});

const MAX_ROWS = 6;
const MAX_TABLE_ROWS = 12;
const f6 = (v) => formatNumber(v, 6);
const sum = (values) => values.reduce((s, v) => s + v, 0);

// A matrix of cells {value, padded, title}: colour by value, hatched when padding. `null` values
// (a max pool's padding, which never wins) read "−∞".
export function numberGrid(cells, scale) {
  const grid = el("div", { class: "num-grid", style: { gridTemplateColumns: `repeat(${cells[0].length}, auto)` } });
  for (const cell of cells.flat()) {
    const missing = cell.value === null;
    grid.append(el("span", {
      class: cell.padded ? "num pad" : "num",
      text: missing ? "−∞" : gridNumber(cell.value),
      title: cell.title ?? String(cell.value),
      style: missing || cell.padded ? {} : { background: cssColor(scale, cell.value), color: inkOn(scale, cell.value) },
    }));
  }
  return grid;
}

const chunk = (values, size) => Array.from({ length: values.length / size }, (_, i) => values.slice(i * size, (i + 1) * size));

// The layer a unit reads, by name; the image itself (the program's "input") in words.
const IMAGE_SOURCE = "input";
export const readsImage = (layer) => layer.input_layer === IMAGE_SOURCE;
export function sourceName(layer) {
  if (readsImage(layer)) return t("conv.source.image");
  return layer.input_layer || t("conv.source");
}

function channelName(layer, index, inputChannels) {
  if (!readsImage(layer)) return t("conv.row", { source: sourceName(layer), i: index });
  const names = inputChannels === 3 ? ["R", "G", "B"] : [t("conv.channel.ink")];
  return t("conv.channel.rgb", { name: names[index] ?? index });
}

// One row per input channel of the window: its cells, weights, products and their sum.
function convRows(math, source) {
  const [n, kh, kw] = math.shape;
  const size = kh * kw;
  return Array.from({ length: n }, (_, i) => {
    const at = (list) => list.slice(i * size, (i + 1) * size);
    const positions = at(math.positions);
    const padded = at(math.padded);
    const cells = at(math.inputs).map((value, k) => {
      const [channel, row, col] = positions[k];
      const params = { source, channel, row, col, value: String(value), mode: math.padding_mode };
      return { value, padded: padded[k], title: t(padded[k] ? "conv.cell.pad" : "conv.cell", params) };
    });
    const products = at(math.products);
    return {
      inputChannel: positions[0][0],
      inputs: chunk(cells, kw),
      kernel: chunk(at(math.weights).map((value) => ({ value })), kw),
      products: chunk(products.map((value) => ({ value })), kw),
      sum: sum(products),
    };
  });
}

// One colour scale per kind of number across the rows shown, so rows can be compared at a glance.
function rowScales(rows) {
  return ["inputs", "kernel", "products"].map((key) => {
    const extent = Math.max(...rows.flatMap((row) => row[key].flat().map((cell) => Math.abs(cell.value ?? 0)))) || 1;
    return makeScale(-extent, extent, "diverging");
  });
}

const byContribution = (rows) => [...rows].sort((a, b) => Math.abs(b.sum) - Math.abs(a.sum));

function gridRows(rows, layer, inputChannels) {
  const shown = rows.length <= MAX_ROWS ? rows : byContribution(rows).slice(0, MAX_ROWS);
  const scales = rowScales(shown);
  const items = shown.map((row) => el(
    "div",
    { class: "conv-row" },
    el(
      "p",
      { class: "conv-row-title" },
      el("span", { text: channelName(layer, row.inputChannel, inputChannels) }),
      el("span", { class: "row-sum", text: t("conv.row.sum", { sum: formatNumber(row.sum) }) }),
    ),
    el(
      "div",
      { class: "conv-row-grids" },
      el("figure", {}, numberGrid(row.inputs, scales[0]), el("figcaption", { text: t("conv.input") })),
      el("span", { class: "op", text: "×" }),
      el("figure", {}, numberGrid(row.kernel, scales[1]), el("figcaption", { text: t("conv.kernel") })),
      el("span", { class: "op", text: "=" }),
      el("figure", {}, numberGrid(row.products, scales[2]), el("figcaption", { text: t("conv.products") })),
    ),
  ));
  const rest = rows.filter((row) => !shown.includes(row));
  if (rest.length) items.push(moreLine("conv.more", rest.map((row) => row.sum)));
  return items;
}

function moreLine(key, sums) {
  return el("p", { class: "muted", text: t(key, { count: sums.length, sum: formatNumber(sum(sums)) }) });
}

// rows: [{label, input, padded, weight, product}] → the table of the largest |product| and the rest.
function productTable(rows, firstHeading, moreKey) {
  const ranked = [...rows].sort((a, b) => Math.abs(b.product) - Math.abs(a.product));
  const shown = ranked.slice(0, MAX_TABLE_ROWS);
  const headings = [firstHeading, "conv.table.input", "conv.table.weight", "conv.table.product"];
  const body = shown.map((row) => el(
    "tr",
    {},
    el("td", { text: row.label }),
    el("td", { class: row.padded ? "pad" : null, text: formatNumber(row.input), title: String(row.input) }),
    el("td", { text: formatNumber(row.weight), title: String(row.weight) }),
    el("td", { text: formatNumber(row.product), title: String(row.product) }),
  ));
  return [
    el("table", { class: "product-table" }, el("thead", {}, el("tr", {}, headings.map((key) => el("th", { text: t(key) })))), el("tbody", {}, body)),
    ranked.length > shown.length ? moreLine(moreKey, ranked.slice(MAX_TABLE_ROWS).map((row) => row.product)) : null,
  ];
}

function totalText(math) {
  const count = math.products.length;
  if (math.bias === null) return t("conv.total.nobias", { n: count, total: f6(math.recomputed) });
  return t("conv.total", { n: count, sum: f6(sum(math.products)), bias: f6(math.bias), total: f6(math.recomputed) });
}

// Spacing of the window's taps in the input map (1 unless the conv is dilated).
function dilation(math) {
  const [, kh, kw] = math.shape;
  if (kw > 1) return math.positions[1][2] - math.positions[0][2];
  return kh > 1 ? math.positions[1][1] - math.positions[0][1] : 1;
}

export function convExplanation(math, { layer, card, unit, c }) {
  const source = sourceName(layer);
  const [n, kh, kw] = math.shape;
  const inputChannels = card.input.channels;
  const rows = convRows(math, source);
  const d = dilation(math);
  const intro = t("conv.intro", { y: unit.y, x: unit.x, c, kh, kw, n, source }) + (d > 1 ? t("conv.intro.dilated", { d }) : "");
  const tableRows = rows.map((row) => ({
    label: channelName(layer, row.inputChannel, inputChannels),
    input: row.inputs[0][0].value,
    padded: row.inputs[0][0].padded,
    weight: row.kernel[0][0].value,
    product: row.sum,
  }));
  return {
    parts: [
      el("p", { class: "conv-intro", text: intro }),
      readsImage(layer) ? el("p", { class: "muted", text: t("conv.normalized") }) : null,
      ...(kh * kw === 1 ? productTable(tableRows, "conv.table.channel", "conv.more") : gridRows(rows, layer, inputChannels)),
      math.padded.includes(true) ? el("p", { class: "muted", text: t(`conv.padding.${math.padding_mode}`) }) : null,
    ],
    total: totalText(math),
    totalId: "conv-total",
  };
}

export function linearExplanation(math, { layer, unit, c, isVector }) {
  const source = sourceName(layer);
  const rows = math.inputs.map((input, i) => ({
    label: `${source}[${i}]`, input, weight: math.weights[i], product: math.products[i],
  }));
  const params = { c, y: unit.y, x: unit.x, layer: layer.name, n: rows.length, source, shown: Math.min(MAX_TABLE_ROWS, rows.length) };
  return {
    parts: [el("p", { class: "conv-intro", text: t(isVector ? "linear.intro" : "linear.intro.map", params) }), ...productTable(rows, "linear.table.index", "linear.more")],
    total: totalText(math),
    totalId: "conv-total",
  };
}
