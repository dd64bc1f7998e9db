// A number grid whose cells can be marked (window, padding, current output) without redrawing:
// one element per cell, created once; each step only swaps classes and texts.
import { el, formatNumber } from "../format.js";

export function shapeOf(matrix) {
  return [matrix.length, matrix[0] ? matrix[0].length : 0];
}

// matrix: number[][] (null = empty cell). options.caption: string or nodes; options.onCell(r, c).
export function createGrid(matrix, { caption = "", padding = [0, 0], onCell = null, digits = 3 } = {}) {
  const [rows, cols] = shapeOf(matrix);
  const dense = cols > 12 ? " dense" : "";
  const body = el("div", { class: `num-grid lesson-grid${dense}`, style: { gridTemplateColumns: `repeat(${cols}, auto)` } });
  const cells = [];
  for (let r = 0; r < rows; r += 1) {
    const row = [];
    for (let c = 0; c < cols; c += 1) {
      const outside = r < padding[0] || r >= rows - padding[0] || c < padding[1] || c >= cols - padding[1];
      const cell = el("span", { class: outside ? "num pad" : "num", dataset: { r, c } });
      row.push(cell);
      body.append(cell);
    }
    cells.push(row);
  }
  if (onCell) {
    body.addEventListener("click", (event) => {
      const cell = event.target.closest(".num");
      if (cell) onCell(Number(cell.dataset.r), Number(cell.dataset.c));
    });
  }
  const figure = el("figure", { class: "grid-figure" }, el("figcaption", {}, caption), body);

  function setValues(values, hidden = () => false) {
    for (let r = 0; r < rows; r += 1) {
      for (let c = 0; c < cols; c += 1) {
        const value = values[r][c];
        const cell = cells[r][c];
        const hide = hidden(r, c);
        cell.textContent = value === null ? "" : hide ? "·" : formatNumber(value, digits);
        cell.title = value === null ? "" : String(value);
        cell.classList.toggle("pending", hide);
      }
    }
  }

  // marks: Map "r,c" → class name (win, hit, current); earlier marks are cleared.
  let marked = [];
  function mark(marks) {
    for (const [cell, name] of marked) cell.classList.remove(name);
    marked = [];
    for (const [key, name] of marks) {
      const [r, c] = key.split(",").map(Number);
      const cell = cells[r] && cells[r][c];
      if (!cell) continue;
      cell.classList.add(name);
      marked.push([cell, name]);
    }
  }

  function setCaption(...nodes) {
    figure.firstChild.replaceChildren(...nodes);
  }

  setValues(matrix);
  return { node: figure, setValues, mark, setCaption };
}

// Cells a window covers: origin (row, col) in the padded input, kernel size and dilation.
export function windowCells(origin, kernel, dilation = [1, 1]) {
  const keys = [];
  for (let i = 0; i < kernel[0]; i += 1) {
    for (let j = 0; j < kernel[1]; j += 1) keys.push(`${origin[0] + i * dilation[0]},${origin[1] + j * dilation[1]}`);
  }
  return keys;
}
