// Units that take one number per input, with the server's numbers (GET …/unit): an elementwise
// step (batch norm, layer/group norm, any activation) as formula + parameters, a residual sum, a
// product (a gate), a concatenation's source, a flatten's position, a block's last step.
import { el, formatNumber } from "../format.js";
import { registerStrings, t } from "../i18n.js";
import { sourceName } from "./arithmetic.js";

registerStrings({
  en: {
    "step.intro.map": "{type} works on every number on its own: unit (y {y}, x {x}) of channel {c} takes the same unit of {source}, x = {x_value}, and applies",
    "step.intro.vector": "{type} works on every number on its own: unit {c} takes number {c} of {source}, x = {x_value}, and applies",
    "step.parameters": "with",
    "step.norm.group": "μ and σ² are the mean and variance of the {n} numbers normalized together with this one (computed from this image).",
    "step.bn.constants": "running_mean and running_var were measured once, in training; γ and β were learned.",
    "step.line": "{layer} ({type}): {formula}",
    "operands.add": "Skip connection: {where} is the sum of the same unit of {n} inputs:",
    "operands.mul": "Multiplication: {where} is the product of the same unit of {n} inputs:",
    "operands.hidden": "a value computed inside the block (not a layer of its own)",
    "operands.gate": " — the gate: one number for the whole channel {c}",
    "operands.gate.note": "Gating (squeeze-and-excitation): the gate is computed from the whole feature map — it sees the whole image — and scales every unit of channel {c} by the same number.",
    "operands.cat": "Concatenation stacks the channels of several inputs, unchanged. Here {where} is channel {channel} of {layer}:",
    "operands.cat.value": "{layer} · channel {channel} = {value}",
    "where.map": "unit (y {y}, x {x}) of channel {c}",
    "where.vector": "unit {c}",
    "flatten.intro": "Flatten lays the maps of {source} out as one long vector, channel by channel and row by row: number {c} is channel {channel}, row {row}, column {col}.",
    "flatten.intro.vector": "Flatten copies number {index} of {source} to position {c}.",
    "flatten.value": "{source} (channel {channel}, y {row}, x {col}) = {value}",
    "flatten.value.vector": "{source} [{index}] = {value}",
    "block.intro": "A block's output is the output of its last step, {step}: open {step} to see how this number was computed.",
    "block.value": "{step} = {value}",
    "other.intro": "{layer} ({type}): the layer's own operation, applied to its real input, gives this number.",
    "other.value": "{type}(…) = {value}",
  },
  zh: {
    "step.intro.map": "{type} 对每个数单独计算：通道 {c} 的单元（y {y}，x {x}）取 {source} 的同一单元 x = {x_value}，代入",
    "step.intro.vector": "{type} 对每个数单独计算：单元 {c} 取 {source} 的第 {c} 个数 x = {x_value}，代入",
    "step.parameters": "参数",
    "step.norm.group": "μ 和 σ² 是与这个数一起归一化的 {n} 个数的均值和方差（由这张图像算出）。",
    "step.bn.constants": "running_mean 和 running_var 在训练时测得，γ 和 β 是学到的。",
    "step.line": "{layer}（{type}）：{formula}",
    "operands.add": "跳跃连接：{where}是 {n} 个输入的同一单元之和：",
    "operands.mul": "乘法：{where}是 {n} 个输入的同一单元之积：",
    "operands.hidden": "模块内部算出的值（不是单独的一层）",
    "operands.gate": " —— 门控：整个通道 {c} 只有一个数",
    "operands.gate.note": "门控（挤压-激励）：门控值由整张特征图算出——它看到整张图像——并用同一个数缩放通道 {c} 的每个单元。",
    "operands.cat": "拼接把几个输入的通道原样叠在一起。这里{where}就是 {layer} 的通道 {channel}：",
    "operands.cat.value": "{layer} · 通道 {channel} = {value}",
    "where.map": "通道 {c} 的单元（y {y}，x {x}）",
    "where.vector": "单元 {c}",
    "flatten.intro": "展平把 {source} 的特征图按通道、按行排成一个长向量：第 {c} 个数是通道 {channel}、第 {row} 行、第 {col} 列。",
    "flatten.intro.vector": "展平把 {source} 的第 {index} 个数复制到位置 {c}。",
    "flatten.value": "{source}（通道 {channel}，y {row}，x {col}）= {value}",
    "flatten.value.vector": "{source} [{index}] = {value}",
    "block.intro": "模块的输出就是它最后一步 {step} 的输出：打开 {step} 查看这个数是怎么算出来的。",
    "block.value": "{step} = {value}",
    "other.intro": "{layer}（{type}）：把这一层自己的运算作用于它的真实输入，得到这个数。",
    "other.value": "{type}(…) = {value}",
  },
});

const f6 = (v) => formatNumber(v, 6);
// A negative number right after an operator goes in parentheses, so "x − (−0.5)" reads right.
const OPERATORS = "−-+·×*/^";
function inFormula(v, before) {
  if (typeof v !== "number") return String(v);
  const text = f6(v);
  const last = before.trimEnd().slice(-1);
  return v < 0 && last && OPERATORS.includes(last) ? `(${text})` : text;
}
// The formula's symbols that name a parameter.
const SYMBOLS = { "γ": "gamma", "β": "beta", "μ": "mean", "σ²": "var" };

// The formula with x and every known parameter replaced by its number; a trailing note after two
// spaces ("x · Φ(x)  (Φ: standard normal CDF)") stays on the formula line only.
function substituted(math) {
  const values = { x: math.inputs[0], ...math.parameters };
  const [main] = math.formula.split(/\s{2,}(?=\()/);
  return main.replace(/σ²|[A-Za-z_γβμ]+/g, (token, offset) => {
    const name = SYMBOLS[token] ?? token;
    return Object.hasOwn(values, name) ? inFormula(values[name], main.slice(0, offset)) : token;
  });
}

// "f(x) = formula" as evaluated for this unit: "f(0.52) = 0.52 · sigmoid(0.52) = 0.32".
export function evaluatedFormula(math) {
  const x = math.inputs[0];
  if (!math.formula) return `${math.type}(${f6(x)}) = ${f6(math.recomputed)}`;
  return `f(${f6(x)}) = ${substituted(math)} = ${f6(math.recomputed)}`;
}

export const stepLine = (math) => t("step.line", { layer: math.layer, type: math.type, formula: evaluatedFormula(math) });

function parameterList(parameters) {
  const shown = Object.entries(parameters).filter(([name]) => name !== "group_size");
  if (!shown.length) return null;
  const label = (name) => Object.keys(SYMBOLS).find((symbol) => SYMBOLS[symbol] === name) ?? name;
  return el(
    "p",
    { class: "parameters" },
    `${t("step.parameters")} `,
    ...shown.flatMap(([name, value], i) => [i ? " · " : "", el("code", { title: String(value), text: `${label(name)} = ${typeof value === "number" ? f6(value) : value}` })]),
  );
}

export function elementwiseExplanation(math, { layer, unit, c, isVector }) {
  const params = { type: math.type, y: unit.y, x: unit.x, c, source: sourceName(layer), x_value: f6(math.inputs[0]) };
  const formula = math.formula ? `f(x) = ${math.formula}` : `f(x) = ${math.type}(x)`;
  return {
    parts: [
      el("p", { text: t(isVector ? "step.intro.vector" : "step.intro.map", params) }),
      el("p", { class: "formula" }, el("code", { text: formula })),
      parameterList(math.parameters),
      math.kind === "norm" ? el("p", { class: "muted", text: t("step.norm.group", { n: math.parameters.group_size }) }) : null,
      math.kind === "batchnorm" ? el("p", { class: "muted", text: t("step.bn.constants") }) : null,
    ],
    total: evaluatedFormula(math),
  };
}

const whereText = ({ unit, c, isVector }) => (isVector ? t("where.vector", { c }) : t("where.map", { y: unit.y, x: unit.x, c }));
const operandName = (operand) => operand.layer ?? t("operands.hidden");

export function operandsExplanation(math, context) {
  const where = whereText(context);
  if (math.kind === "cat") {
    const [operand] = math.operands;
    const params = { where, layer: operandName(operand), channel: operand.channel, value: f6(operand.value) };
    return { parts: [el("p", { text: t("operands.cat", params) })], total: t("operands.cat.value", { ...params, value: f6(math.recomputed) }) };
  }
  const isAdd = math.kind === "add";
  const items = math.operands.map((operand) => el(
    "li",
    { class: "step-line" },
    operand.layer ? el("code", { text: operand.layer }) : el("span", { class: "muted", text: t("operands.hidden") }),
    `: ${f6(operand.value)}`,
    operand.broadcast ? el("span", { class: "muted", text: t("operands.gate", { c: context.c }) }) : null,
  ));
  const gated = !isAdd && math.operands.some((operand) => operand.broadcast);
  const sign = isAdd ? " + " : " × ";
  return {
    parts: [
      el("p", { text: t(isAdd ? "operands.add" : "operands.mul", { where, n: math.operands.length }) }),
      el("ul", { class: "steps" }, items),
      gated ? el("p", { class: "muted", text: t("operands.gate.note", { c: context.c }) }) : null,
    ],
    total: `${math.operands.map((operand, i) => inFormula(operand.value, i ? sign : "")).join(sign)} = ${f6(math.recomputed)}`,
  };
}

export function flattenExplanation(math, { layer, c }) {
  const source = sourceName(layer);
  const position = math.positions[0] ?? [c];
  const value = f6(math.recomputed);
  if (position.length === 3) {
    const [channel, row, col] = position;
    const params = { source, c, channel, row, col, value };
    return { parts: [el("p", { text: t("flatten.intro", params) })], total: t("flatten.value", params) };
  }
  const params = { source, c, index: position.join(", "), value };
  return { parts: [el("p", { text: t("flatten.intro.vector", params) })], total: t("flatten.value.vector", params) };
}

export function blockExplanation(math, { layer, card }) {
  const members = card.layers.filter((l) => l.name.startsWith(`${layer.name}.`));
  const step = members.length ? members[members.length - 1].name : null;
  if (!step) return otherExplanation(math, { layer });
  return {
    parts: [el("p", { text: t("block.intro", { step }) })],
    total: t("block.value", { step, value: f6(math.recomputed) }),
  };
}

export function otherExplanation(math, { layer }) {
  return {
    parts: [el("p", { text: t("other.intro", { layer: layer.name, type: math.type }) }), math.note ? el("p", { class: "muted", text: math.note }) : null],
    total: t("other.value", { type: math.type, value: f6(math.recomputed) }),
  };
}
