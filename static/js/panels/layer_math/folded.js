// A conv followed by batch norm, folded into one conv (GET …/folded): the raw and the folded
// filter side by side, both biases, and the hovered unit computed both ways.
import { el, formatNumber, withFormulas } from "../../format.js";
import { t } from "../../i18n.js";
import { numberRows } from "./number_rows.js";

const f6 = (v) => formatNumber(v, 6);
const difference = (d) => (d === 0 ? "0" : d.toExponential(1));

// The batch norm that reads `layer`'s output directly, as app/core/layer_math.batchnorm_after
// finds it: the model card's input_layer, with no padding in between.
export function batchnormAfter(card, layer) {
  return card.layers.find((other) => other.kind === "batchnorm" && other.input_layer === layer.name
    && (other.input_padding ?? [0, 0, 0, 0]).every((p) => p === 0)) ?? null;
}

export function foldedView(body) {
  return [
    el("p", {}, withFormulas(t("folded.intro", { bn: body.batchnorm, conv: body.conv, c: body.channel, scale_value: f6(body.scale) }), { scale: "γ/√(σ²+ε)" })),
    el("p", { class: "formula" }, withFormulas(t("folded.formula"), { w: "w′ = w·γ/√(σ²+ε)", b: "b′ = β + (b − μ)·γ/√(σ²+ε)" })),
    el("h4", { text: t("folded.weights", { c: body.channel }) }),
    ...numberRows([
      { label: t("folded.raw"), values: body.raw_weights },
      { label: t("folded.folded"), values: body.folded_weights, className: "folded" },
    ], { label: t("folded.weights", { c: body.channel }) }),
    el("p", { class: "folded-bias", text: t("folded.bias", { raw: f6(body.raw_bias), folded: f6(body.folded_bias) }) }),
    el("p", { class: "folded-unfolded", dataset: { value: String(body.unfolded_value) }, text: t("folded.unfolded", { value: f6(body.unfolded_value) }) }),
    el("p", { class: "total folded-value", dataset: { value: String(body.folded_value) }, text: t("folded.folded_value", { value: f6(body.folded_value) }) }),
    el("p", { class: "check folded-check", text: t("folded.check", { diff: difference(body.folded_value - body.unfolded_value) }) }),
  ];
}
