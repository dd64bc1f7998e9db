// A pooling unit with the server's numbers (GET …/unit): the window it summarises, padding marked,
// and its rule — the largest number, or the sum ÷ the count the layer divides by.
import { makeScale } from "../colormap.js";
import { el, formatNumber } from "../format.js";
import { registerStrings, t } from "../i18n.js";
import { numberGrid, sourceName } from "./arithmetic.js";

registerStrings({
  en: {
    "pool.max": "Max pooling: {where} keeps the largest number of this {h}×{w} window of {source}, channel {c}:",
    "pool.avg": "Average pooling: {where} is the mean of this {h}×{w} window of {source}, channel {c}:",
    "pool.where.map": "unit (y {y}, x {x})",
    "pool.where.vector": "unit {c}",
    "pool.big": "The window holds {n} numbers — too many to list; their range is {min} … {max}.",
    "pool.pad.max": "Hatched “−∞” cells lie outside the map: max pooling pads with −∞, which never wins.",
    "pool.pad.avg": "Hatched cells lie outside the map (padding).",
    "pool.pad.uncounted": "Padding is not counted: the sum is divided by the {n} cells inside the map.",
    "pool.result.max": "largest = {value}",
    "pool.result.avg": "sum {sum} ÷ {n} = {value}",
    "pool.cell": "row {row}, column {col}: {value}",
    "pool.cell.pad": "padding at row {row}, column {col}",
  },
  zh: {
    "pool.max": "最大池化：{where} 取 {source} 通道 {c} 中这个 {h}×{w} 窗口的最大值：",
    "pool.avg": "平均池化：{where} 是 {source} 通道 {c} 中这个 {h}×{w} 窗口的平均值：",
    "pool.where.map": "单元（y {y}，x {x}）",
    "pool.where.vector": "单元 {c}",
    "pool.big": "窗口里有 {n} 个数——太多，不逐一列出；范围是 {min} … {max}。",
    "pool.pad.max": "带斜纹的“−∞”格在特征图之外：最大池化用 −∞ 填充，它永远不会是最大值。",
    "pool.pad.avg": "带斜纹的格在特征图之外（填充）。",
    "pool.pad.uncounted": "填充不计入：总和除以特征图内的 {n} 个格。",
    "pool.result.max": "最大值 = {value}",
    "pool.result.avg": "总和 {sum} ÷ {n} = {value}",
    "pool.cell": "第 {row} 行，第 {col} 列：{value}",
    "pool.cell.pad": "填充，第 {row} 行，第 {col} 列",
  },
});

const MAX_CELLS = 400;
const f6 = (v) => formatNumber(v, 6);

export function poolExplanation(math, { layer, unit, c, isVector }) {
  const [h, w] = math.shape;
  const isMax = math.rule === "max";
  const divisor = isMax ? null : Number(/÷\s*([\d.]+)/.exec(math.rule ?? "")?.[1] ?? math.inputs.length);
  const values = math.inputs.filter((v) => v !== null);
  const total = values.reduce((s, v) => s + v, 0);
  const where = isVector ? t("pool.where.vector", { c }) : t("pool.where.map", { y: unit.y, x: unit.x });
  const intro = t(isMax ? "pool.max" : "pool.avg", { where, h, w, source: sourceName(layer), c });
  const extent = Math.max(...values.map(Math.abs)) || 1;
  const cells = math.inputs.map((value, i) => {
    const [, row, col] = math.positions[i];
    const padded = math.padded[i];
    return { value, padded, title: t(padded ? "pool.cell.pad" : "pool.cell", { row, col, value: String(value) }) };
  });
  const grid = math.inputs.length <= MAX_CELLS
    ? el("div", { class: "num-grid-box" }, numberGrid(Array.from({ length: h }, (_, r) => cells.slice(r * w, (r + 1) * w)), makeScale(-extent, extent, "diverging")))
    : el("p", { class: "muted", text: t("pool.big", { n: math.inputs.length, min: f6(Math.min(...values)), max: f6(Math.max(...values)) }) });
  const hasPadding = math.padded.includes(true);
  const uncounted = !isMax && hasPadding && divisor < math.inputs.length;
  return {
    parts: [
      el("p", { text: intro }),
      grid,
      hasPadding ? el("p", { class: "muted", text: t(isMax ? "pool.pad.max" : "pool.pad.avg") }) : null,
      uncounted ? el("p", { class: "muted", text: t("pool.pad.uncounted", { n: divisor }) }) : null,
    ],
    total: isMax
      ? t("pool.result.max", { value: f6(math.recomputed) })
      : t("pool.result.avg", { sum: f6(total), n: divisor, value: f6(math.recomputed) }),
  };
}
