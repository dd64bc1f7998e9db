// Channel zoom: one feature map enlarged with its exact values; the hovered unit's receptive field
// is drawn on the model input (the part outside the image, where the network sees padding, hatched).
import { bitmapOf, cssVar, fitCanvas, loadImage } from "../canvas.js";
import { drawLegend, makeScale, paintValues } from "../colormap.js";
import { el, fill, formatNumber } from "../format.js";
import { registerStrings, t } from "../i18n.js";
import { drawReceptiveField, receptiveFieldBox } from "./receptive_field.js";

registerStrings({
  en: {
    "channel.title": "One channel, up close",
    "channel.help": "Point at a unit (or focus the map and use the arrow keys) to read its exact value; the box on the input shows the pixels that unit can see — its receptive field.",
    "channel.name": "{layer} · channel {c}",
    "channel.name.vector": "{layer} · unit {c}",
    "channel.unit": "unit (y {y}, x {x}) = {value}",
    "channel.vector.unit": "unit {c}{label} = {value}",
    "channel.map.aria": "Feature map; arrow keys move the unit",
    "channel.locked": "Unit locked — click the map again to follow the pointer.",
    "channel.unlocked": "Click the map to lock a unit.",
    "channel.input": "The input, with what this unit sees",
  },
  zh: {
    "channel.title": "放大看一个通道",
    "channel.help": "指向一个单元（或聚焦特征图后用方向键）读出它的精确数值；输入图上的方框是这个单元能看到的像素——它的感受野。",
    "channel.name": "{layer} · 通道 {c}",
    "channel.name.vector": "{layer} · 单元 {c}",
    "channel.unit": "单元（y {y}，x {x}）= {value}",
    "channel.vector.unit": "单元 {c}{label} = {value}",
    "channel.map.aria": "特征图；用方向键移动单元",
    "channel.locked": "单元已锁定——再次点击特征图以跟随指针。",
    "channel.unlocked": "点击特征图可锁定一个单元。",
    "channel.input": "输入图像，以及这个单元看到的范围",
  },
});

const MAP_SIZE = 256;

export function mountChannelPanel({ onUnit }) {
  const body = document.getElementById("channel-body");
  let state = null;

  function drawMap() {
    const { mapCanvas, bitmap, height, width, unit, cell } = state;
    const context = fitCanvas(mapCanvas, width * cell, height * cell);
    context.drawImage(bitmap, 0, 0, width * cell, height * cell);
    context.lineWidth = 2;
    context.strokeStyle = cssVar("--highlight");
    if (cell >= 6) {
      context.strokeRect(unit.x * cell + 1, unit.y * cell + 1, cell - 2, cell - 2);
      return;
    }
    context.beginPath();
    context.arc((unit.x + 0.5) * cell, (unit.y + 0.5) * cell, 7, 0, 2 * Math.PI);
    context.stroke();
  }

  function update({ announce = true } = {}) {
    const { unit, values, width, card, layer, channel } = state;
    const value = values[unit.y * width + unit.x];
    const box = receptiveFieldBox(layer.receptive_field, unit.y, unit.x, [card.input.height, card.input.width]);
    if (state.isVector) {
      const label = state.labels ? ` (${state.labels[channel]})` : "";
      state.valueLine.textContent = t("channel.vector.unit", { c: channel, label, value: formatNumber(value, 6) });
    } else {
      drawMap();
      state.valueLine.textContent = t("channel.unit", { y: unit.y, x: unit.x, value: formatNumber(value, 6) });
    }
    state.valueLine.title = String(value);
    Object.assign(state.valueLine.dataset, { y: unit.y, x: unit.x, value: String(value) });
    state.rfText.textContent = drawReceptiveField(state.inputCanvas, state.inputImage, layer, box, card.input);
    if (announce) onUnit(unit.y, unit.x, { layer: layer.name, channel });
  }

  function moveUnit(y, x, options) {
    const clampedY = Math.max(0, Math.min(state.height - 1, y));
    const clampedX = Math.max(0, Math.min(state.width - 1, x));
    if (clampedY === state.unit.y && clampedX === state.unit.x) return;
    state.unit = { y: clampedY, x: clampedX };
    update(options);
  }

  function unitAt(event) {
    const rect = state.mapCanvas.getBoundingClientRect();
    return {
      y: Math.floor(((event.clientY - rect.top) / rect.height) * state.height),
      x: Math.floor(((event.clientX - rect.left) / rect.width) * state.width),
    };
  }

  async function show({ card, layer, channel, channelData, inputUrl, unit }) {
    const isVector = layer.output_shape.length === 1;
    const [height, width] = channelData.shape;
    const scale = makeScale(channelData.min, channelData.max, channelData.min < 0 ? "diverging" : "sequential");
    const inputImage = await loadImage(inputUrl);
    const cell = Math.max(2, Math.floor(MAP_SIZE / Math.max(height, width)));
    const mapCanvas = el("canvas", { class: "feature-map", tabindex: "0", "aria-label": t("channel.map.aria") });
    const legend = el("canvas", { class: "legend", style: { width: `${Math.min(MAP_SIZE, width * cell)}px` } });
    const lockNote = el("p", { class: "muted small", text: t("channel.unlocked") });
    state = {
      card, layer, channel, isVector, height, width, cell, mapCanvas, inputImage,
      values: channelData.values,
      bitmap: bitmapOf(paintValues(channelData.values, width, height, scale)),
      unit: { y: Math.min(unit?.y ?? 0, height - 1), x: Math.min(unit?.x ?? 0, width - 1) },
      locked: false,
      labels: layer.name === card.layers[card.layers.length - 1].name ? card.labels : null,
      valueLine: el("p", { id: "unit-value", class: "unit-value", "aria-live": "polite" }),
      inputCanvas: el("canvas", { id: "rf-canvas", class: "rf-canvas" }),
      rfText: el("p", { id: "rf-text", class: "rf-text" }),
    };
    const mapFigure = isVector
      ? el("div", { class: "zoom-figure" }, el("h3", { text: t("channel.name.vector", { layer: layer.name, c: channel }) }), state.valueLine)
      : el(
        "div",
        { class: "zoom-figure" },
        el("h3", { text: t("channel.name", { layer: layer.name, c: channel }) }),
        mapCanvas,
        legend,
        state.valueLine,
        lockNote,
      );
    fill(body,
      el(
        "div",
        { class: "zoom-layout" },
        mapFigure,
        el("div", { class: "zoom-figure" }, el("h3", { text: t("channel.input") }), state.inputCanvas, state.rfText),
      ),
    );
    state.drawLegend = () => !isVector && drawLegend(legend, scale, (v) => formatNumber(v, 3));
    if (!isVector) {
      state.drawLegend();
      mapCanvas.addEventListener("mousemove", (event) => {
        if (state.locked) return;
        const { y, x } = unitAt(event);
        moveUnit(y, x);
      });
      mapCanvas.addEventListener("click", (event) => {
        state.locked = !state.locked;
        lockNote.textContent = t(state.locked ? "channel.locked" : "channel.unlocked");
        const { y, x } = unitAt(event);
        moveUnit(y, x);
      });
      mapCanvas.addEventListener("keydown", (event) => {
        const step = event.shiftKey ? 4 : 1;
        const moves = { ArrowUp: [-step, 0], ArrowDown: [step, 0], ArrowLeft: [0, -step], ArrowRight: [0, step] };
        if (!(event.key in moves)) return;
        event.preventDefault();
        moveUnit(state.unit.y + moves[event.key][0], state.unit.x + moves[event.key][1]);
      });
    }
    update();
    body.dataset.view = `${layer.name}|${channel}`;
  }

  // Canvases are drawn in the theme's colours (the legend's numbers in the text colour).
  const redraw = () => {
    if (!state) return;
    update({ announce: false });
    state.drawLegend();
  };
  window.addEventListener("resize", redraw);
  document.addEventListener("convlens:theme", redraw);
  document.addEventListener("convlens:layout", redraw);
  return {
    show,
    get unit() { return state ? { ...state.unit } : null; },
    moveUnit: (y, x) => state && moveUnit(y, x),
  };
}
