// "How this number is computed" for the hovered unit of any layer. The server redoes the unit's
// arithmetic from the layer's real input (GET …/unit); each layer kind has its view, and every view
// ends with the same two lines: the total, and the value the network computed beside it. Then the
// elementwise steps that follow (batch norm, activation …), or softmax after the classifier.
import * as data from "../data.js";
import { el, fill, formatNumber, formatPercent, withFormulas } from "../format.js";
import { registerStrings, t } from "../i18n.js";
import { convExplanation, linearExplanation } from "./arithmetic.js";
import { isClassifier, layerHelp } from "./help.js";
import { poolExplanation } from "./pooling.js";
import {
  blockExplanation, elementwiseExplanation, flattenExplanation, operandsExplanation, otherExplanation, stepLine,
} from "./unit_steps.js";

registerStrings({
  en: {
    "explain.title": "How this number is computed",
    "explain.next": "What happens next to this number",
    "explain.check": "The network computed {value}: difference {diff}.",
    "explain.api": "the network's value: {value}",
    "explain.softmax": "Softmax turns the {n} scores (logits) into probabilities: {formula}. The top five:",
    "explain.softmax.class": "class",
    "explain.softmax.logit": "logit z",
    "explain.softmax.p": "÷ Σ = probability",
    "explain.softmax.sum": "{formula} over all {n} classes = {sum}",
  },
  zh: {
    "explain.title": "这个数是怎么算出来的",
    "explain.next": "这个数接下来会怎样",
    "explain.check": "网络算出的是 {value}：相差 {diff}。",
    "explain.api": "网络算出的值：{value}",
    "explain.softmax": "Softmax 把 {n} 个分数（logit）变成概率：{formula}。前五名：",
    "explain.softmax.class": "类别",
    "explain.softmax.logit": "logit z",
    "explain.softmax.p": "÷ Σ = 概率",
    "explain.softmax.sum": "所有 {n} 个类别的 {formula} = {sum}",
  },
});

const f6 = (v) => formatNumber(v, 6);
const ELEMENTWISE = new Set(["batchnorm", "norm", "activation"]);
const STEPS_SHOWN_NEXT = 2;

// The unit endpoint's query for (channel, unit) of a map or element `channel` of a vector.
const unitQuery = (layer, c, unit) => (layer.output_shape.length === 1 ? { channel: c } : { channel: c, y: unit.y, x: unit.x });

// The view for what the server sent; a layer it could only re-run (no breakdown) gets the plain one.
function viewFor(math) {
  const kind = math.kind;
  if ((kind === "conv" || kind === "depthwise_conv") && math.shape.length === 3 && math.products.length) return convExplanation;
  if (kind === "linear" && math.products.length) return linearExplanation;
  if (kind === "pool" && math.rule) return poolExplanation;
  if (ELEMENTWISE.has(kind) && math.inputs.length === 1) return elementwiseExplanation;
  if (["add", "mul", "cat"].includes(kind) && math.operands.length) return operandsExplanation;
  if (kind === "flatten" && math.inputs.length === 1) return flattenExplanation;
  if (kind === "block") return blockExplanation;
  return otherExplanation;
}

const differenceText = (d) => (d === 0 ? "0" : d.toExponential(1));

// The two lines every view ends with; their data-* hold the exact numbers.
function checkLines(math, view) {
  return [
    el("p", {
      id: view.totalId ?? "unit-total",
      class: "total",
      text: view.total,
      dataset: { total: String(math.recomputed), value: String(math.value) },
    }),
    el("p", {
      id: "unit-check",
      class: "check",
      text: t("explain.check", { value: f6(math.value), diff: differenceText(math.difference) }),
      dataset: { value: String(math.value), recomputed: String(math.recomputed), difference: String(math.difference) },
    }),
  ];
}

// The elementwise steps right after this layer that read exactly this unit's value.
async function nextSteps(ctx, layer, c, unit, value) {
  const shape = layer.output_shape.join();
  const following = ctx.card.layers.slice(ctx.card.layers.indexOf(layer) + 1).filter((l) => l.kind !== "block");
  const chain = [];
  for (const next of following.slice(0, STEPS_SHOWN_NEXT)) {
    if (!ELEMENTWISE.has(next.kind) || next.output_shape.join() !== shape) break;
    chain.push(next);
  }
  const steps = await Promise.all(chain.map((next) => data.unitMath(ctx.analysisId, next.name, unitQuery(next, c, unit))));
  const items = [];
  let current = value;
  for (const step of steps) {
    if (step.inputs.length !== 1 || step.inputs[0] !== current) break;
    items.push(el(
      "li",
      { class: "step-line" },
      el("span", { text: stepLine(step) }),
      el("span", { class: "muted", text: ` — ${t("explain.api", { value: f6(step.value) })}` }),
    ));
    current = step.value;
  }
  return items.length ? [el("h3", { text: t("explain.next") }), el("ol", { class: "steps" }, items)] : [];
}

function softmax(ctx) {
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
  const head = [t("explain.softmax.class"), t("explain.softmax.logit"), el("code", { text: "e^(z − max)" }), t("explain.softmax.p")];
  return [
    el("h3", { text: t("explain.next") }),
    el("p", {}, withFormulas(t("explain.softmax", { n: logits.length }), { formula: "p = e^(z − max) / Σ e^(z − max)" })),
    el("table", { class: "product-table softmax" }, el("thead", {}, el("tr", {}, head.map((cell) => el("th", {}, cell)))), el("tbody", {}, rows)),
    el("p", { class: "softmax-sum" }, withFormulas(t("explain.softmax.sum", { n: logits.length, sum: f6(total) }), { formula: "Σ e^(z − max)" })),
  ];
}

export function mountExplainPanel() {
  const body = document.getElementById("explain-body");
  const help = document.getElementById("explain-help");
  let ticket = 0;

  async function update(ctx, layer, c, unit) {
    const mine = ++ticket;
    help.textContent = layerHelp(layer, ctx.card);
    const target = el("div", { class: "explain-content" });
    const context = { layer, card: ctx.card, unit, c, isVector: layer.output_shape.length === 1 };
    try {
      const math = await data.unitMath(ctx.analysisId, layer.name, unitQuery(layer, c, unit));
      const view = viewFor(math)(math, context);
      fill(target, view.parts, checkLines(math, view));
      if (isClassifier(layer, ctx.card)) target.append(...softmax(ctx));
      else target.append(...(await nextSteps(ctx, layer, c, unit, math.value)));
    } catch (error) {
      fill(target, el("p", { class: "error", text: ctx.describeError(error) }));
    }
    if (mine !== ticket) return;
    fill(body, target);
    body.dataset.view = `${layer.name}|${c}|${unit.y}|${unit.x}`;
  }

  return { update };
}
