// im2col of the hovered unit's conv layer (GET …/im2col): the shapes of the layer's real matrix
// product (per group for grouped and depthwise convs), a few rows of the unfolded input with the
// unit's row marked, and the unit's row × its filter's column = the value the network computed.
import { el, formatNumber, withFormulas } from "../../format.js";
import { t } from "../../i18n.js";
import { numberRows } from "./number_rows.js";

const f6 = (v) => formatNumber(v, 6);
const difference = (d) => (d === 0 ? "0" : d.toExponential(1));
const times = (a, b) => `${a} × ${b}`;

// `kernel` is the unit breakdown's filter shape [C_in/groups, k_h, k_w] (GET …/unit).
export function im2colView(body, { kernel, outputShape }) {
  const [cin, kh, kw] = kernel;
  const [, height, width] = outputShape;
  const names = body.groups > 1
    ? { x: `X_g ${times(body.rows, body.columns)}`, w: `W_g ${times(body.columns, body.filters_in_group)}`, out: times(body.rows, body.filters_in_group) }
    : { x: `X ${times(body.rows, body.columns)}`, w: `W ${times(body.columns, body.filters_in_group)}`, out: times(body.rows, body.filters_in_group) };
  const shapes = el("p", { class: "sum-line im2col-shapes", dataset: { rows: String(body.rows), columns: String(body.columns), filters: String(body.filters_in_group), groups: String(body.groups) } },
    withFormulas(t(body.groups > 1 ? "im2col.groups" : "im2col.shapes", {
      h: height, w_out: width, kh, kw, cin, groups: body.groups, c: body.channel, g: body.group,
    }), names));
  const last = body.preview_start + body.preview.length - 1;
  const previewRows = body.preview.map((values, i) => {
    const r = body.preview_start + i;
    return { label: t("im2col.preview.row", { r, y: Math.floor(r / width), x: r % width }), values, highlight: r === body.row_index };
  });
  const products = body.row.map((value, i) => value * body.column[i]);
  const total = body.bias === null ? body.dot : body.dot + body.bias;
  const totalText = body.bias === null
    ? t("im2col.dot.nobias", { dot: f6(body.dot) })
    : t("im2col.dot.bias", { dot: f6(body.dot), bias: f6(body.bias), total: f6(total) });
  return [
    el("p", { text: t("im2col.intro", { layer: body.layer, cols: body.columns, kh, kw, cin, rows: body.rows }) }),
    shapes,
    el("h4", { text: t("im2col.preview", { first: body.preview_start, last, r: body.row_index, w_out: width }) }),
    ...numberRows(previewRows, { label: t("im2col.preview", { first: body.preview_start, last, r: body.row_index, w_out: width }) }),
    el("h4", { text: t("im2col.vectors", { c: body.channel }) }),
    ...numberRows([
      { label: t("im2col.row", { r: body.row_index }), values: body.row },
      { label: t("im2col.column", { c: body.channel }), values: body.column },
      { label: t("im2col.products"), values: products, className: "products" },
    ], { label: t("im2col.vectors", { c: body.channel }) }),
    el("p", { class: "total im2col-total", text: totalText, dataset: { dot: String(body.dot), bias: String(body.bias ?? ""), total: String(total) } }),
    el("p", {
      class: "check im2col-check",
      text: t("im2col.check", { value: f6(body.value), diff: difference(total - body.value) }),
      dataset: { value: String(body.value) },
    }),
  ];
}
