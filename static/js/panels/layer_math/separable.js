// The model's depthwise-separable pairs (GET /models/{id}/separable): parameters and multiply-adds
// of each depthwise + pointwise pair beside one full conv of the same shapes, and the hovered
// unit traced through both steps with the server's unit breakdowns (GET …/unit).
import * as data from "../../data.js";
import { el, formatCount, formatNumber } from "../../format.js";
import { t } from "../../i18n.js";
import { stepLine } from "../unit_steps.js";

const f6 = (v) => formatNumber(v, 6);
const difference = (d) => (d === 0 ? "0" : d.toExponential(1));
const ratio = (full, pair) => (full / pair).toFixed(1);
const sum = (pairs, key) => pairs.reduce((total, pair) => total + pair[key], 0);

export const pairOf = (pairs, layer) =>
  pairs.find((pair) => pair.depthwise === layer || pair.pointwise === layer || pair.between.includes(layer)) ?? null;

export function separableTable(pairs, current, onOpenLayer) {
  const open = (name) => el("button", {
    type: "button", class: "link-button", translate: "no", text: name,
    "aria-label": t("separable.open", { layer: name }), onclick: () => onOpenLayer(name),
  });
  const heads = ["separable.pair", "separable.channels", "separable.kernel", "separable.output", "separable.params",
    "separable.full_params", "separable.ratio", "separable.macs", "separable.full_macs", "separable.ratio"];
  const rows = pairs.map((pair) => el("tr", {
    class: pair === current ? "current" : null,
    dataset: { depthwise: pair.depthwise, params: String(pair.params), fullParams: String(pair.full_params), macs: String(pair.macs), fullMacs: String(pair.full_macs) },
  },
  el("td", {}, open(pair.depthwise), " → ", open(pair.pointwise)),
  el("td", { class: "number", text: `${pair.in_channels} → ${pair.out_channels}` }),
  el("td", { class: "number", text: pair.kernel.join("×") }),
  el("td", { class: "number", text: pair.output_hw.join("×") }),
  el("td", { class: "number", text: formatCount(pair.params) }),
  el("td", { class: "number", text: formatCount(pair.full_params) }),
  el("td", { class: "number", text: `${ratio(pair.full_params, pair.params)}×` }),
  el("td", { class: "number", text: formatCount(pair.macs) }),
  el("td", { class: "number", text: formatCount(pair.full_macs) }),
  el("td", { class: "number", text: `${ratio(pair.full_macs, pair.macs)}×` })));
  const totals = {
    n: pairs.length, params: formatCount(sum(pairs, "params")), full_params: formatCount(sum(pairs, "full_params")),
    ratio: ratio(sum(pairs, "full_params"), sum(pairs, "params")), macs: formatCount(sum(pairs, "macs")),
    full_macs: formatCount(sum(pairs, "full_macs")), macs_ratio: ratio(sum(pairs, "full_macs"), sum(pairs, "macs")),
  };
  return [
    el("div", { class: "table-scroll-x", tabindex: "0", role: "region", "aria-label": t("separable.table") },
      el("table", { class: "product-table separable-table" },
        el("thead", {}, el("tr", {}, heads.map((key) => el("th", { scope: "col", text: t(key) })))),
        el("tbody", {}, rows))),
    el("p", { class: "separable-total", text: t("separable.total", totals) }),
  ];
}

// The strongest input channel of a pointwise unit, followed back through the steps between to
// the depthwise unit that made it: [{step, math}] in the order the network computed them.
async function traceBack(analysisId, pair, { channel, y, x }) {
  const pointwise = await data.unitMath(analysisId, pair.pointwise, { channel, y, x });
  const strongest = pointwise.products.reduce((best, p, i, all) => (Math.abs(p) > Math.abs(all[best]) ? i : best), 0);
  const unit = { channel: strongest, y, x };
  const chain = await Promise.all([pair.depthwise, ...pair.between].map((name) => data.unitMath(analysisId, name, unit)));
  return { pointwise, strongest, depthwise: chain[0], between: chain.slice(1) };
}

export async function traceView(analysisId, pair, layer, { channel, y, x }) {
  if (layer === pair.depthwise) {
    const math = await data.unitMath(analysisId, pair.depthwise, { channel, y, x });
    return [el("p", { class: "separable-trace", dataset: { value: String(math.value) }, text: t("separable.trace.depthwise", {
      depthwise: pair.depthwise, pointwise: pair.pointwise, c: channel, n: math.products.length, value: f6(math.value), y, x,
    }) })];
  }
  if (layer !== pair.pointwise) return [el("p", { class: "muted", text: t("separable.trace.hint") })];
  const trace = await traceBack(analysisId, pair, { channel, y, x });
  const { pointwise, strongest: c, depthwise } = trace;
  const reads = trace.between.length ? trace.between[trace.between.length - 1].value : depthwise.value;
  return [
    el("h4", { text: t("separable.trace.title", { o: channel, pointwise: pair.pointwise, y, x }) }),
    el("ol", { class: "steps separable-trace", dataset: { channel: String(c), reads: String(reads), input: String(pointwise.inputs[c]) } },
      el("li", { class: "trace-depthwise", dataset: { value: String(depthwise.value) }, text: t("separable.trace.step1", {
        depthwise: pair.depthwise, c, y, x, n: depthwise.products.length, value: f6(depthwise.value),
      }) }),
      trace.between.map((math) => el("li", { class: "step-line", dataset: { value: String(math.value) }, text: stepLine(math) })),
      el("li", { class: "trace-pointwise", dataset: { total: String(pointwise.recomputed) }, text: t("separable.trace.step2", {
        pointwise: pair.pointwise, n: pointwise.products.length, c, y, x,
        weight: f6(pointwise.weights[c]), input: f6(pointwise.inputs[c]), product: f6(pointwise.products[c]), total: f6(pointwise.recomputed),
      }) })),
    el("p", { class: "check", text: t("separable.trace.check", { value: f6(pointwise.value), diff: difference(pointwise.difference) }) }),
  ];
}
