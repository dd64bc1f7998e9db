// Long vectors and small matrices of exact numbers, one row each, in a box that scrolls sideways:
// the im2col row and filter column, a raw and a folded filter. Each cell's title holds the exact
// number; beyond MAX_SHOWN entries a row is cut, with a note saying how many are left out.
import { el, gridNumber } from "../../format.js";
import { t } from "../../i18n.js";

const MAX_SHOWN = 400;

// rows: [{label, values, highlight?, className?}]; columns are numbered from 0; `label` names the box.
export function numberRows(rows, { label }) {
  const width = Math.min(MAX_SHOWN, Math.max(...rows.map((row) => row.values.length)));
  const head = el("tr", {}, el("td"),
    Array.from({ length: width }, (_, i) => el("th", { scope: "col", text: String(i) })));
  const body = rows.map((row) => el("tr", { class: [row.highlight ? "current" : "", row.className ?? ""].join(" ").trim() || null },
    el("th", { scope: "row", text: row.label }),
    row.values.slice(0, width).map((value) => el("td", { title: String(value), text: gridNumber(value) }))));
  const longest = Math.max(...rows.map((row) => row.values.length));
  return [
    el("div", { class: "number-rows", tabindex: "0", role: "region", "aria-label": label },
      el("table", {}, el("thead", {}, head), el("tbody", {}, body))),
    longest > width ? el("p", { class: "small muted", text: t("rows.cut", { shown: width, n: longest }) }) : null,
  ];
}
