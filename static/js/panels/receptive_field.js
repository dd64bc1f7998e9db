// Receptive-field boxes, computed exactly as the server does (app/core/receptive_field/geometry.py),
// and drawn on the model input with a margin so the part outside the image stays visible.
import { cssVar, fitCanvas } from "../canvas.js";
import { registerStrings, t } from "../i18n.js";

registerStrings({
  en: {
    "rf.text": "Receptive field {size} px, jump {jump} px: input rows {top}–{bottom}, columns {left}–{right}.",
    "rf.global": "This unit sees the whole image (every input pixel can change it).",
    "rf.global.seen": "This unit sees everything the network reads of the image: {size} px, rows {top}–{bottom}, columns {left}–{right} (the rest is never read).",
    "rf.gated": "It also passes through a gate (squeeze-and-excitation) computed from everything the units before it saw, so every pixel the network reads can change it a little.",
    "rf.outside": "The hatched part lies outside the image: there the network sees only padding.",
    "rf.none": "The receptive field of this layer cannot be computed.",
  },
  zh: {
    "rf.text": "感受野 {size} 像素，步幅 {jump} 像素：输入第 {top}–{bottom} 行、第 {left}–{right} 列。",
    "rf.global": "这个单元能看到整张图（每个输入像素都会影响它）。",
    "rf.global.seen": "这个单元能看到网络读取的全部图像：{size} 像素，第 {top}–{bottom} 行、第 {left}–{right} 列（其余部分从未被读取）。",
    "rf.gated": "它还经过一个门控（挤压-激励），门控值由它之前各单元看到的全部内容算出，所以网络读取的每个像素都能稍微影响它。",
    "rf.outside": "斜线部分在图像之外：网络在那里看到的只是填充。",
    "rf.none": "无法计算这一层的感受野。",
  },
});

const DISPLAY = 256;
const MIN_MARGIN_FRACTION = 0.05; // a visible frame of "outside the image" even for small fields
const MAX_MARGIN_FRACTION = 0.5;
const MIN_VISIBLE_BOX = 14; // smaller boxes also get a ring, so the eye finds them

// Inclusive input-pixel box of unit (y, x), exactly as the server computes it: may extend past
// the image, and inside the image it is cut to what the layer's units see together (`seen`). A
// global field has jump 0 and describes that region itself, so the same formula gives it.
export function receptiveFieldBox(rf, y, x, [height, width]) {
  if (!rf || !rf.size || rf.size.length === 0) return null;
  const top = Math.round(rf.start[0] - (rf.size[0] - 1) / 2) + y * rf.jump[0];
  const left = Math.round(rf.start[1] - (rf.size[1] - 1) / 2) + x * rf.jump[1];
  const box = { top, left, bottom: top + rf.size[0] - 1, right: left + rf.size[1] - 1 };
  const seen = rf.seen;
  if (!seen) return box;
  return {
    top: seen.top === 0 ? box.top : Math.max(box.top, seen.top),
    left: seen.left === 0 ? box.left : Math.max(box.left, seen.left),
    bottom: seen.bottom === height - 1 ? box.bottom : Math.min(box.bottom, seen.bottom),
    right: seen.right === width - 1 ? box.right : Math.min(box.right, seen.right),
  };
}

// "3×3" for a square, "3×5" otherwise.
export const sizeText = ([h, w]) => (h === w ? `${h}×${h}` : `${h}×${w}`);

export const clipBox = (box, height, width) => ({
  top: Math.max(box.top, 0),
  left: Math.max(box.left, 0),
  bottom: Math.min(box.bottom, height - 1),
  right: Math.min(box.right, width - 1),
});

// How far (in input pixels) any unit's box of this layer reaches past the image, capped.
function layerMargin(layer, input) {
  const [h, w] = layer.output_shape.length === 3 ? layer.output_shape.slice(1) : [1, 1];
  const first = receptiveFieldBox(layer.receptive_field, 0, 0, [input.height, input.width]);
  const last = receptiveFieldBox(layer.receptive_field, h - 1, w - 1, [input.height, input.width]);
  if (!first) return 0;
  const reach = Math.max(-first.top, -first.left, last.bottom - input.height + 1, last.right - input.width + 1, 0);
  const side = Math.max(input.height, input.width);
  return Math.max(Math.ceil(side * MIN_MARGIN_FRACTION), Math.min(reach, Math.ceil(side * MAX_MARGIN_FRACTION)));
}

function hatch(context, x, y, w, h, color) {
  context.save();
  context.beginPath();
  context.rect(x, y, w, h);
  context.clip();
  context.strokeStyle = color;
  context.lineWidth = 1;
  for (let d = -h; d < w; d += 6) {
    context.beginPath();
    context.moveTo(x + d, y + h);
    context.lineTo(x + d + h, y);
    context.stroke();
  }
  context.restore();
}

// Draw the input and `box` on `canvas`; returns the sentence describing the box. The canvas carries
// the box and the drawing geometry in data attributes (what the browser tests compare to the API).
export function drawReceptiveField(canvas, image, layer, box, input) {
  const margin = layerMargin(layer, input);
  const extent = Math.max(input.height, input.width) + 2 * margin;
  const scale = DISPLAY / extent;
  const origin = margin * scale;
  const context = fitCanvas(canvas, DISPLAY, DISPLAY);
  context.fillStyle = cssVar("--padding-bg");
  context.fillRect(0, 0, DISPLAY, DISPLAY);
  context.imageSmoothingEnabled = input.width >= 100;
  context.drawImage(image, origin, origin, input.width * scale, input.height * scale);
  context.imageSmoothingEnabled = false;
  Object.assign(canvas.dataset, { scale: String(scale), origin: String(origin), box: "", clipped: "" });
  if (!box) return t("rf.none");
  const clipped = clipBox(box, input.height, input.width);
  const px = (v) => origin + v * scale;
  const [bx, by] = [px(box.left), px(box.top)];
  const [bw, bh] = [(box.right - box.left + 1) * scale, (box.bottom - box.top + 1) * scale];
  context.save();
  context.fillStyle = "rgba(0, 0, 0, 0.45)";
  context.beginPath();
  context.rect(0, 0, DISPLAY, DISPLAY);
  context.rect(bx, by, bw, bh);
  context.fill("evenodd");
  context.restore();
  const highlight = cssVar("--highlight");
  const outside = clipped.top !== box.top || clipped.left !== box.left
    || clipped.bottom !== box.bottom || clipped.right !== box.right;
  if (outside) {
    hatch(context, bx, by, bw, bh, highlight);
    context.drawImage(
      image,
      clipped.left, clipped.top, clipped.right - clipped.left + 1, clipped.bottom - clipped.top + 1,
      px(clipped.left), px(clipped.top), (clipped.right - clipped.left + 1) * scale, (clipped.bottom - clipped.top + 1) * scale,
    );
    context.setLineDash([5, 4]);
    context.lineWidth = 1.5;
    context.strokeStyle = highlight;
    context.strokeRect(bx, by, bw, bh);
    context.setLineDash([]);
  }
  context.lineWidth = 2.5;
  context.strokeStyle = highlight;
  context.strokeRect(
    px(clipped.left), px(clipped.top),
    (clipped.right - clipped.left + 1) * scale, (clipped.bottom - clipped.top + 1) * scale,
  );
  if (Math.min(bw, bh) < MIN_VISIBLE_BOX) {
    context.beginPath();
    context.arc(bx + bw / 2, by + bh / 2, MIN_VISIBLE_BOX, 0, 2 * Math.PI);
    context.stroke();
  }
  canvas.dataset.box = [box.top, box.left, box.bottom, box.right].join(",");
  canvas.dataset.clipped = [clipped.top, clipped.left, clipped.bottom, clipped.right].join(",");
  return fieldSentence(layer.receptive_field, box, outside);
}

// What the box means, in words: a local window, everything the network reads, or the whole
// image; a gated field adds that the gate hears every pixel too.
function fieldSentence(rf, box, outside) {
  const where = { top: box.top, bottom: box.bottom, left: box.left, right: box.right };
  let sentence;
  if (rf.is_global && rf.seen) sentence = t("rf.global.seen", { size: sizeText(rf.size), ...where });
  else if (rf.is_global) sentence = t("rf.global");
  else {
    const jump = rf.jump[0] === rf.jump[1] ? rf.jump[0] : rf.jump.join("×");
    sentence = t("rf.text", { size: sizeText(rf.size), jump, ...where });
    if (outside) sentence = `${sentence} ${t("rf.outside")}`;
  }
  return rf.gated ? `${sentence} ${t("rf.gated")}` : sentence;
}
