// "How this number is computed" for the hovered unit, with the real numbers of this analysis:
// conv arithmetic (and the batch norm / activation that follow it), pooling, activation, batch
// norm, residual sum, and softmax for the classifier.
import * as data from "../data.js";
import { el, fill, formatNumber, formatPercent, gridNumber } from "../format.js";
import { registerStrings, t } from "../i18n.js";
import { convArithmetic, renderConvArithmetic } from "./arithmetic.js";
import { isClassifier, layerHelp } from "./help.js";
import { poolWindow } from "./pooling.js";

registerStrings({
  en: {
    "explain.title": "How this number is computed",
    "explain.loading": "Fetching the numbers…",
    "explain.next": "What happens next to this number",
    "explain.bn": "{layer}: ({x} − mean {mean}) / √(variance {var} + ε {eps}) × γ {gamma} + β {beta} = {y}",
    "explain.relu": "{layer} ({type}): max(0, {x}) = {y}",
    "explain.relu6": "{layer} ({type}): min(max(0, {x}), 6) = {y}",
    "explain.act": "{layer} ({type}): f({x}) = {y}",
    "explain.api": "the network's value: {value}",
    "explain.pool.max": "Max pooling: unit (y {y}, x {x}) keeps the largest of this {h}×{w} window of {source}, channel {c}:",
    "explain.pool.avg": "Average pooling: unit (y {y}, x {x}) is the mean of this {h}×{w} window of {source}, channel {c}:",
    "explain.pool.result.max": "largest = {value}",
    "explain.pool.result.avg": "sum {sum} ÷ {n} = {value}",
    "explain.block": "Skip connection: the block's own result (from {inner}) plus the block's input (from {source}), channel {c}, unit (y {y}, x {x}):",
    "explain.block.sum": "{inner} + {input} = {total}",
    "explain.block.nosum": "No skip connection here: the block changes the shape ({from} → {to}), so its output is just {inner} = {value}.",
    "explain.linear": "Unit {c} of {layer} = Σ over the {n} numbers of {source} (each × its own weight) + bias = {value}.",
    "explain.softmax": "Softmax turns the {n} scores (logits) into probabilities: p = e^(z − max) / Σ e^(z − max). The top five:",
    "explain.softmax.class": "class",
    "explain.softmax.logit": "logit z",
    "explain.softmax.exp": "e^(z − max)",
    "explain.softmax.p": "÷ Σ = probability",
    "explain.softmax.sum": "Σ e^(z − max) over all {n} classes = {sum}",
    "explain.none": "Pick a unit in the channel view to see its computation.",
  },
  zh: {
    "explain.title": "这个数是怎么算出来的",
    "explain.loading": "正在获取数值…",
    "explain.next": "这个数接下来会怎样",
    "explain.bn": "{layer}：({x} − 均值 {mean}) / √(方差 {var} + ε {eps}) × γ {gamma} + β {beta} = {y}",
    "explain.relu": "{layer}（{type}）：max(0, {x}) = {y}",
    "explain.relu6": "{layer}（{type}）：min(max(0, {x}), 6) = {y}",
    "explain.act": "{layer}（{type}）：f({x}) = {y}",
    "explain.api": "网络算出的值：{value}",
    "explain.pool.max": "最大池化：单元（y {y}，x {x}）取 {source} 通道 {c} 中这个 {h}×{w} 窗口的最大值：",
    "explain.pool.avg": "平均池化：单元（y {y}，x {x}）是 {source} 通道 {c} 中这个 {h}×{w} 窗口的平均值：",
    "explain.pool.result.max": "最大值 = {value}",
    "explain.pool.result.avg": "总和 {sum} ÷ {n} = {value}",
    "explain.block": "跳跃连接：模块自己的结果（来自 {inner}）加上模块的输入（来自 {source}），通道 {c}，单元（y {y}，x {x}）：",
    "explain.block.sum": "{inner} + {input} = {total}",
    "explain.block.nosum": "这里没有跳跃连接：模块改变了形状（{from} → {to}），所以输出就是 {inner} = {value}。",
    "explain.linear": "{layer} 的单元 {c} = {source} 的 {n} 个数各乘以自己的权重后求和 + 偏置 = {value}。",
    "explain.softmax": "Softmax 把 {n} 个分数（logit）变成概率：p = e^(z − max) / Σ e^(z − max)。前五名：",
    "explain.softmax.class": "类别",
    "explain.softmax.logit": "logit z",
    "explain.softmax.exp": "e^(z − max)",
    "explain.softmax.p": "÷ Σ = 概率",
    "explain.softmax.sum": "所有 {n} 个类别的 Σ e^(z − max) = {sum}",
    "explain.none": "在通道视图中选一个单元，查看它的计算过程。",
  },
});

const f6 = (v) => formatNumber(v, 6);

async function valueAt(ctx, layerName, c, y, x) {
  const channel = await data.channelValues(ctx.analysisId, layerName, c);
  return channel.values[y * channel.shape[1] + x];
}

// One elementwise step (batch norm or activation) applied to `x`; returns {text, y}.
async function elementwiseStep(ctx, layer, c, x) {
  if (layer.kind === "batchnorm") {
    const bn = await data.batchNorm(ctx.modelId, layer.name);
    const y = ((x - bn.running_mean[c]) / Math.sqrt(bn.running_var[c] + bn.eps)) * bn.weight[c] + bn.bias[c];
    const params = {
      layer: layer.name, x: f6(x), mean: f6(bn.running_mean[c]), var: f6(bn.running_var[c]), eps: bn.eps,
      gamma: f6(bn.weight[c]), beta: f6(bn.bias[c]), y: f6(y),
    };
    return { text: t("explain.bn", params), y };
  }
  const relu = { ReLU: (v) => Math.max(0, v), ReLU6: (v) => Math.min(Math.max(0, v), 6) }[layer.type];
  if (!relu) return { text: t("explain.act", { layer: layer.name, type: layer.type, x: f6(x), y: "?" }), y: null };
  const y = relu(x);
  const key = layer.type === "ReLU6" ? "explain.relu6" : "explain.relu";
  return { text: t(key, { layer: layer.name, type: layer.type, x: f6(x), y: f6(y) }), y };
}

function stepLine(text, apiValue) {
  return el(
    "li",
    { class: "step-line" },
    el("span", { text }),
    el("span", { class: "muted", text: ` — ${t("explain.api", { value: f6(apiValue) })}` }),
  );
}

// The batch norm and activation that directly follow this layer, applied to this unit.
async function nextSteps(ctx, layer, c, unit, value) {
  const items = [];
  let current = layer;
  let x = value;
  for (let i = 0; i < 2; i += 1) {
    const next = ctx.card.layers.find((l) => l.input_layer === current.name && ["batchnorm", "activation"].includes(l.kind));
    if (!next) break;
    const step = await elementwiseStep(ctx, next, c, x);
    items.push(stepLine(step.text, await valueAt(ctx, next.name, c, unit.y, unit.x)));
    if (step.y === null) break;
    current = next;
    x = step.y;
  }
  return items.length ? [el("h3", { text: t("explain.next") }), el("ol", { class: "steps" }, items)] : [];
}

async function explainConv(ctx, body, layer, c, unit, value) {
  const result = await convArithmetic({ modelId: ctx.modelId, analysisId: ctx.analysisId, layer, channel: c, unit });
  const holder = el("div", { id: "conv-arithmetic" });
  renderConvArithmetic(holder, { result, layer, channel: c, unit, value, inputChannels: ctx.card.input.channels });
  fill(body, holder, ...(await nextSteps(ctx, layer, c, unit, value)));
}

async function explainElementwise(ctx, body, layer, c, unit, value) {
  const x = await valueAt(ctx, layer.input_layer, c, unit.y, unit.x);
  const step = await elementwiseStep(ctx, layer, c, x);
  fill(body, el("ol", { class: "steps" }, stepLine(step.text, value)), ...(await nextSteps(ctx, layer, c, unit, value)));
}

async function explainPool(ctx, body, layer, c, unit, value) {
  const source = ctx.card.layers.find((l) => l.name === layer.input_layer);
  const channel = await data.channelValues(ctx.analysisId, source.name, c);
  const window = poolWindow(layer, source, unit, channel);
  const isMax = layer.type.includes("Max");
  const cells = window.rows.map((row) => row.map((v) => el("span", { class: "num", text: gridNumber(v), title: String(v) })));
  const flat = window.rows.flat();
  const sum = flat.reduce((s, v) => s + v, 0);
  const result = isMax ? Math.max(...flat) : sum / flat.length;
  const params = { y: unit.y, x: unit.x, h: window.rows.length, w: window.rows[0].length, source: source.name, c };
  fill(body,
    el("p", { text: t(isMax ? "explain.pool.max" : "explain.pool.avg", params) }),
    el("div", { class: "num-grid plain", style: { gridTemplateColumns: `repeat(${window.rows[0].length}, auto)` } }, cells.flat()),
    el("p", {
      class: "total",
      text: isMax ? t("explain.pool.result.max", { value: f6(result) }) : t("explain.pool.result.avg", { sum: f6(sum), n: flat.length, value: f6(result) }),
    }),
    el("p", { class: "check", text: t("explain.api", { value: f6(value) }) }),
  );
}

async function explainBlock(ctx, body, layer, c, unit, value) {
  const inner = [...ctx.card.layers].reverse().find((l) => l.name.startsWith(`${layer.name}.`));
  const source = ctx.card.layers.find((l) => l.name === layer.input_layer);
  const innerValue = await valueAt(ctx, inner.name, c, unit.y, unit.x);
  if (!source || source.output_shape.join() !== layer.output_shape.join()) {
    const from = source ? source.output_shape.join("×") : "?";
    fill(body, el("p", {
      text: t("explain.block.nosum", { from, to: layer.output_shape.join("×"), inner: inner.name, value: f6(innerValue) }),
    }));
    return;
  }
  const inputValue = await valueAt(ctx, source.name, c, unit.y, unit.x);
  fill(body,
    el("p", { text: t("explain.block", { inner: inner.name, source: source.name, c, y: unit.y, x: unit.x }) }),
    el("p", { class: "total", text: t("explain.block.sum", { inner: f6(innerValue), input: f6(inputValue), total: f6(innerValue + inputValue) }) }),
    el("p", { class: "check", text: t("explain.api", { value: f6(value) }) }),
  );
}

function explainSoftmax(ctx, body) {
  const logits = ctx.analysis.logits;
  const max = Math.max(...logits);
  const exps = logits.map((z) => Math.exp(z - max));
  const total = exps.reduce((s, v) => s + v, 0);
  const rows = ctx.analysis.predictions.map((p) => el(
    "tr",
    {},
    el("td", { text: p.label }),
    el("td", { text: f6(logits[p.index]) }),
    el("td", { text: f6(exps[p.index]) }),
    el("td", { text: formatPercent(exps[p.index] / total) }),
  ));
  const head = ["explain.softmax.class", "explain.softmax.logit", "explain.softmax.exp", "explain.softmax.p"];
  fill(body,
    el("p", { text: t("explain.softmax", { n: logits.length }) }),
    el("table", { class: "product-table softmax" }, el("thead", {}, el("tr", {}, head.map((key) => el("th", { text: t(key) })))), el("tbody", {}, rows)),
    el("p", { class: "total", text: t("explain.softmax.sum", { n: logits.length, sum: f6(total) }) }),
  );
}

export function mountExplainPanel() {
  const body = document.getElementById("explain-body");
  const help = document.getElementById("explain-help");
  let ticket = 0;

  async function update(ctx, layer, c, unit, value) {
    const mine = ++ticket;
    help.textContent = layerHelp(layer, ctx.card);
    const target = el("div", { class: "explain-content" });
    const explainers = {
      conv: explainConv,
      depthwise_conv: explainConv,
      batchnorm: explainElementwise,
      activation: explainElementwise,
      pool: explainPool,
      block: explainBlock,
    };
    try {
      if (layer.kind === "linear" && isClassifier(layer, ctx.card)) explainSoftmax(ctx, target);
      else if (layer.kind === "linear") {
        const source = ctx.card.layers.find((l) => l.name === layer.input_layer);
        const n = source ? source.output_shape.reduce((a, b) => a * b, 1) : "?";
        target.append(el("p", { text: t("explain.linear", { c, layer: layer.name, n, source: layer.input_layer, value: f6(value) }) }));
      } else if (explainers[layer.kind] && layer.input_layer) {
        await explainers[layer.kind](ctx, target, layer, c, unit, value);
      } else target.append(el("p", { class: "muted", text: t("explain.none") }));
    } catch (error) {
      fill(target, el("p", { class: "error", text: ctx.describeError(error) }));
    }
    if (mine !== ticket) return;
    fill(body, target);
    body.dataset.view = `${layer.name}|${c}|${unit.y}|${unit.x}`;
  }

  return { update };
}
