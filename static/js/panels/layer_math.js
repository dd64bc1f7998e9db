// "The same layer as matrices, folded, and separable": three cards that follow the hovered unit.
// im2col for any conv layer, the folded batch norm for a conv that one reads directly, and the
// model's depthwise-separable pairs (with the unit traced through both steps) when it has them.
// A card that does not apply to the open layer is hidden; so is the panel when none applies.
import * as data from "../data.js";
import { el, fill } from "../format.js";
import { t } from "../i18n.js";
import { batchnormAfter, foldedView } from "./layer_math/folded.js";
import { im2colView } from "./layer_math/im2col.js";
import { pairOf, separableTable, traceView } from "./layer_math/separable.js";
import "./layer_math/strings.js";

const CONV_KINDS = ["conv", "depthwise_conv"];

function card(id) {
  const root = document.getElementById(id);
  return { root, body: root.querySelector(".math-body") };
}

export function mountLayerMathPanel({ onOpenLayer }) {
  const panel = document.getElementById("layer-math-panel");
  const cards = { im2col: card("im2col-card"), folded: card("folded-card"), separable: card("separable-card") };
  let ticket = 0;
  let tableKey = "";

  // Each part fills its card, or shows why it could not: one failure leaves the others standing.
  async function part(ctx, load) {
    try {
      return await load();
    } catch (error) {
      return [el("p", { class: "error", text: ctx.describeError(error) })];
    }
  }

  async function update(ctx, layer, channel, unit) {
    const mine = ++ticket;
    const unitQuery = { channel, y: unit.y, x: unit.x };
    const isConv = CONV_KINDS.includes(layer.kind) && layer.output_shape.length === 3;
    const norm = isConv ? batchnormAfter(ctx.card, layer) : null;
    const pairs = (await data.separable(ctx.card.id).catch(() => ({ pairs: [] }))).pairs;
    const pair = pairOf(pairs, layer.name);
    const [im2col, folded, trace] = await Promise.all([
      isConv ? part(ctx, async () => {
        const [body, math] = await Promise.all([
          data.im2col(ctx.analysisId, layer.name, unitQuery),
          data.unitMath(ctx.analysisId, layer.name, unitQuery),
        ]);
        return im2colView(body, { kernel: math.shape, outputShape: layer.output_shape });
      }) : null,
      norm ? part(ctx, async () => foldedView(await data.folded(ctx.analysisId, layer.name, unitQuery))) : null,
      pairs.length ? part(ctx, () => (pair ? traceView(ctx.analysisId, pair, layer.name, unitQuery)
        : [el("p", { class: "muted", text: t("separable.trace.hint") })])) : null,
    ]);
    if (mine !== ticket) return;
    cards.im2col.root.hidden = !im2col;
    cards.folded.root.hidden = !folded;
    cards.separable.root.hidden = !trace;
    if (im2col) fill(cards.im2col.body, im2col);
    if (folded) fill(cards.folded.body, folded);
    if (trace) {
      const key = `${ctx.card.id}|${pair?.depthwise ?? ""}|${document.documentElement.lang}`;
      if (key !== tableKey || !cards.separable.body.querySelector(".separable-table")) {
        tableKey = key;
        fill(cards.separable.body, el("p", { class: "help small", text: t("separable.help") }),
          el("div", { class: "separable-unit" }), separableTable(pairs, pair, onOpenLayer));
      }
      fill(cards.separable.body.querySelector(".separable-unit"), trace);
    }
    panel.hidden = !(im2col || folded || trace);
    panel.dataset.view = `${layer.name}|${channel}|${unit.y}|${unit.x}`;
  }

  function hide() {
    ticket += 1;
    panel.hidden = true;
    delete panel.dataset.view;
  }

  return { update, hide };
}
