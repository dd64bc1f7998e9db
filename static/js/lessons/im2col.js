// im2col: the convolution as one matrix product, W_row (filters × F·F·D) · X_col (F·F·D × H₂·W₂),
// shown with its shapes, the three matrices, and the check against F.conv2d.
import { el, formatNumber, shapeText } from "../format.js";
import { t } from "../i18n.js";
import { createGrid } from "./grid.js";

const times = (shape) => shape.join(" × ");

export function renderIm2Col(container, result) {
  const { shapes } = result;
  const matrix = (rows, key) => el("div", { class: "matrix-scroll", tabindex: "0", role: "group", "aria-label": t(key) },
    createGrid(rows, { caption: t(key), digits: 2 }).node);
  const maps = result.output.map((plane, o) => createGrid(plane, { caption: `${t("lessons.output", { o })}` }).node);
  container.replaceChildren(el("div", { class: "im2col" },
    el("p", { class: "sum-line", text: t("lessons.im2col.shapes", {
      w: times(shapes.W_row), x: times(shapes.X_col), p: times(shapes.product), o: shapeText(shapes.output),
    }) }),
    matrix(result.weight_rows, "lessons.im2col.w"),
    matrix(result.columns, "lessons.im2col.x"),
    matrix(result.product, "lessons.im2col.p"),
    el("div", { class: "output-maps" }, maps),
    el("p", { class: "check", text: t("lessons.im2col.equal", { diff: formatNumber(result.max_abs_difference) }) })));
}
