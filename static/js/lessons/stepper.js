// Step through a playground result one output value at a time: the window on the (padded) input,
// the filter, the products, the sum and bias, and the output filling in. Keyboard: ← → step,
// Home/End jump, Space plays. Used by the playground page and by every preset on a lesson page.
import { el, formatNumber, shapeText } from "../format.js";
import { t } from "../i18n.js";
import { createGrid, windowCells } from "./grid.js";
import { bi } from "./strings.js";

const MAX_TERMS = 12;

function arithmetic(result, step, kernels) {
  const lines = [];
  if (result.operation === "conv") {
    const terms = [];
    let zeros = 0;
    step.window.forEach((plane, c) => plane.forEach((row, i) => row.forEach((x, j) => {
      const w = kernels[step.channel][c][i][j];
      if (x * w === 0) zeros += 1;
      else terms.push(`(${formatNumber(x)} × ${formatNumber(w)})`);
    })));
    const count = terms.length + zeros;
    const shown = terms.slice(0, MAX_TERMS).join(" + ") || "0";
    const more = terms.length > MAX_TERMS ? ` ${t("lessons.more", { n: terms.length - MAX_TERMS })}` : "";
    lines.push(`${shown}${more} = ${formatNumber(step.total)}`);
    if (zeros) lines.push(t(zeros === 1 ? "lessons.zero" : "lessons.zeros", { n: zeros }));
    lines.push(`${t("lessons.sum", { n: count, total: formatNumber(step.total) })} ${t("lessons.bias", {
      bias: formatNumber(step.bias), value: formatNumber(step.total + step.bias),
    })}`);
  } else if (result.operation === "max_pool") {
    lines.push(t("lessons.max", { value: formatNumber(step.value) }));
  } else if (result.operation === "avg_pool") {
    const values = step.window.flat().map((v) => formatNumber(v)).join(" + ");
    lines.push(t("lessons.avg", { total: values, count: step.count, value: formatNumber(step.value) }));
  } else {
    lines.push(t("lessons.relu", { x: formatNumber(step.window[0][0]), value: formatNumber(step.value) }));
  }
  lines.push(t("lessons.torch", { value: formatNumber(step.value, 6) }));
  return lines.map((line, i) => el("p", { class: i === 0 ? "sum-line" : "check", text: line }));
}

function controls(onMove, onPlay) {
  const button = (label, key, move) => el("button", {
    type: "button", class: "secondary", text: label, title: t(key), "aria-label": t(key), onclick: () => onMove(move),
  });
  const play = el("button", { type: "button", class: "play", text: "▶", title: t("lessons.play"), onclick: onPlay });
  const range = el("input", { type: "range", min: 0, value: 0, "aria-label": t("lessons.step.label") });
  range.addEventListener("input", () => onMove({ to: Number(range.value) }));
  const counter = el("span", { class: "counter" });
  const bar = el("div", { class: "stepper-controls" },
    button("«", "lessons.first", { to: 0 }), button("‹", "lessons.previous", { by: -1 }), play,
    button("›", "lessons.next", { by: 1 }), button("»", "lessons.last", { to: Infinity }), range, counter);
  return { bar, play, range, counter };
}

export function mountStepper(container, result, { kernels = null, highlights = [] } = {}) {
  const steps = result.steps;
  const [, outH, outW] = result.output_shape;
  const padding = result.padding || [0, 0];
  const kernel = result.kernel || [1, 1];
  const dilation = result.dilation || [1, 1];
  let index = 0;
  let timer = null;

  const ui = controls((move) => go(move.to ?? index + move.by), togglePlay);
  ui.range.max = steps.length - 1;
  const chips = highlights.map((h) => el("button", {
    type: "button", class: "chip", onclick: () => go(((h.channel * outH) + h.y) * outW + h.x),
  }, `${t("lessons.highlight")} `, ...bi(h.label), h.value === null ? "" : ` = ${formatNumber(h.value)}`));

  const inputChannels = result.padded_input.length;
  const padded = result.operation !== "relu" && padding.some((p) => p > 0);
  const caption = padded ? "lessons.input" : "lessons.input.plain";
  const inputs = result.padded_input.map((plane, c) =>
    createGrid(plane, { caption: t(caption, { c }), padding: result.operation === "relu" ? [0, 0] : padding }));
  const conv = result.operation === "conv";
  const emptyKernel = () => Array.from({ length: kernel[0] }, () => Array(kernel[1]).fill(0));
  const filters = conv ? inputs.map(() => createGrid(emptyKernel())) : [];
  const products = conv ? inputs.map(() => createGrid(emptyKernel())) : [];
  const output = createGrid(result.output[0], {
    onCell: (r, c) => go(((steps[index].channel * outH) + r) * outW + c),
  });
  const sums = el("div", { class: "arithmetic", "aria-live": "polite" });

  const rows = inputs.map((grid, c) => el("div", { class: "channel-row" },
    grid.node, conv ? el("span", { class: "op", text: "×" }) : null, conv ? filters[c].node : null,
    conv ? el("span", { class: "op", text: "=" }) : null, conv ? products[c].node : null));
  container.replaceChildren(el("div", { class: "stepper", tabindex: "0" },
    el("p", { class: "muted" }, t("lessons.output.shape", { shape: shapeText(result.output_shape) })),
    ui.bar, chips.length ? el("p", { class: "chips" }, chips) : null,
    el("div", { class: "stepper-grids", tabindex: "0", role: "group", "aria-label": t("lessons.grids") },
      el("div", { class: "channel-rows" }, rows),
      el("span", { class: "op", text: "→" }), output.node),
    sums));

  function show() {
    const step = steps[index];
    const visible = result.operation === "conv" ? [...inputs.keys()] : [step.channel];
    inputs.forEach((grid, c) => {
      rows[c].hidden = !visible.includes(c);
      const marks = visible.includes(c) ? windowCells(step.origin, result.operation === "relu" ? [1, 1] : kernel,
        result.operation === "relu" ? [1, 1] : dilation).map((key) => [key, "win"]) : [];
      if (step.argmax && c === step.channel) {
        marks.push([`${step.origin[0] + step.argmax[0] * dilation[0]},${step.origin[1] + step.argmax[1] * dilation[1]}`, "hit"]);
      }
      grid.mark(marks);
    });
    if (conv) {
      step.products.forEach((plane, c) => {
        filters[c].setValues(kernels[step.channel][c]);
        filters[c].setCaption(t("lessons.filter", { o: step.channel, c }));
        products[c].setValues(plane);
        products[c].setCaption(t("lessons.products", { c }));
      });
    }
    const first = step.channel * outH * outW;
    output.setValues(result.output[step.channel], (r, c) => first + r * outW + c > index);
    output.setCaption(t("lessons.output", { o: step.channel }));
    output.mark([[`${step.y},${step.x}`, "current"]]);
    sums.replaceChildren(...arithmetic(result, step, kernels));
    ui.range.value = index;
    ui.counter.textContent = t("lessons.step", { i: index + 1, n: steps.length });
  }

  function go(target) {
    index = Math.max(0, Math.min(steps.length - 1, target));
    show();
    if (index === steps.length - 1) stop();
  }

  function stop() {
    clearInterval(timer);
    timer = null;
    ui.play.textContent = "▶";
    ui.play.title = t("lessons.play");
  }

  function togglePlay() {
    if (timer) return stop();
    if (index === steps.length - 1) index = -1;
    ui.play.textContent = "‖";
    ui.play.title = t("lessons.pause");
    timer = setInterval(() => go(index + 1), Math.max(25, Math.min(600, 12000 / steps.length)));
  }

  container.firstChild.addEventListener("keydown", (event) => {
    const moves = { ArrowRight: index + 1, ArrowDown: index + 1, ArrowLeft: index - 1, ArrowUp: index - 1, Home: 0, End: Infinity };
    if (event.key === " ") {
      event.preventDefault();
      togglePlay();
    } else if (event.key in moves) {
      event.preventDefault();
      go(moves[event.key]);
    }
  });
  show();
  return { go, stop, index: () => index };
}
