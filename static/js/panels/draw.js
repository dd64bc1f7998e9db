// Draw-a-digit canvas: dark ink on white paper (the server turns it into an MNIST-style digit).
// While the pen moves the drawing is re-analysed at most every THROTTLE_MS, one request at a time
// (the latest drawing wins), so every layer below changes during the stroke; Clear wipes the
// paper and tells the page (which removes the prediction).
import { registerStrings } from "../i18n.js";

registerStrings({
  en: {
    "draw.title": "Draw a digit (0–9) with the mouse, a pen or a finger",
    "draw.clear": "Clear",
    "draw.hint": "Every layer below updates as you draw.",
    "draw.aria": "Drawing area for a digit",
  },
  zh: {
    "draw.title": "用鼠标、触控笔或手指写一个数字（0–9）",
    "draw.clear": "清除",
    "draw.hint": "你一边写，下面每一层都会跟着更新。",
    "draw.aria": "手写数字的画板",
  },
});

const THROTTLE_MS = 250;
const INK_WIDTH = 22;

export function mountDrawPanel({ onDrawing, onClear }) {
  const canvas = document.getElementById("draw-canvas");
  const context = canvas.getContext("2d");
  let drawing = false;
  let hasInk = false;
  let timer = 0;
  let busy = false;
  let pending = false;
  let sheet = 0; // a new sheet of paper after every Clear: a drawing from an older one is dropped

  function clear() {
    sheet += 1;
    context.fillStyle = "#fff";
    context.fillRect(0, 0, canvas.width, canvas.height);
    hasInk = false;
    pending = false;
    clearTimeout(timer);
    timer = 0;
  }

  function point(event) {
    const rect = canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - rect.left) / rect.width) * canvas.width,
      y: ((event.clientY - rect.top) / rect.height) * canvas.height,
    };
  }

  async function send() {
    if (!hasInk) return;
    if (busy) {
      pending = true;
      return;
    }
    busy = true;
    pending = false;
    const drawnOn = sheet;
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    try {
      if (drawnOn === sheet) await onDrawing(blob);
    } finally {
      busy = false;
      if (pending) send();
    }
  }

  // During a stroke: the first move starts the clock, later ones ride along until it fires.
  function schedule() {
    if (timer) return;
    timer = setTimeout(() => {
      timer = 0;
      send();
    }, THROTTLE_MS);
  }

  canvas.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    drawing = true;
    const { x, y } = point(event);
    context.beginPath();
    context.moveTo(x, y);
    context.lineTo(x + 0.01, y);
    context.stroke();
    hasInk = true;
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    const { x, y } = point(event);
    context.lineTo(x, y);
    context.stroke();
    schedule();
  });
  const end = () => {
    if (!drawing) return;
    drawing = false;
    clearTimeout(timer);
    timer = 0;
    send();
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  document.getElementById("draw-clear").addEventListener("click", () => {
    clear();
    onClear?.();
  });

  context.lineWidth = INK_WIDTH;
  context.lineCap = "round";
  context.lineJoin = "round";
  context.strokeStyle = "#000";
  clear();
  return { clear };
}
