// Which model reads an image. A model's spec says what it reads (`input_kind`: "photo" or
// "digit"), so this works for models a user adds too: a photo dropped, pasted or picked while a
// digit model is selected goes to a photo model, and a drawing goes to a digit model. Each switch
// leaves one visible line saying why, with a one-click way back; a tiny image gets a word too.
import { el, fill } from "./format.js";
import { localized, registerStrings, t } from "./i18n.js";

registerStrings({
  en: {
    "choice.photo": "This looks like a photo, and {from} reads only handwritten digits, so {to} is analysing it.",
    "choice.drawing": "Drawings go to the digit network, so {to} is analysing yours.",
    "choice.back": "Use {from} instead",
    "choice.tiny": "This image is only {w}×{h} pixels: the network stretches it to {mw}×{mh}, so it sees almost nothing — expect a guess.",
  },
  zh: {
    "choice.photo": "这看起来是一张照片，而 {from} 只能读手写数字，所以改由 {to} 来分析它。",
    "choice.drawing": "手写的数字交给数字网络，所以由 {to} 来分析。",
    "choice.back": "改用 {from}",
    "choice.tiny": "这张图片只有 {w}×{h} 像素：网络会把它拉伸到 {mw}×{mh}，几乎看不到任何内容——结果只能算猜测。",
  },
});

const SAMPLE_SIDE = 32;
const MAX_MEAN_SATURATION = 12; // 0–255: greyscale, give or take a paper's tint
const MIN_TWO_TONE_SHARE = 0.8; // ink and paper: most pixels near the darkest or the lightest
const TINY_SIDE = 16;

// {width, height, kind}: "digit" for a two-tone greyscale picture (ink on paper), else "photo";
// null when the browser cannot decode it (the server then says why).
export async function imageFacts(blob) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob);
  } catch {
    return null;
  }
  const canvas = document.createElement("canvas");
  canvas.width = SAMPLE_SIDE;
  canvas.height = SAMPLE_SIDE;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0, SAMPLE_SIDE, SAMPLE_SIDE);
  const rgba = context.getImageData(0, 0, SAMPLE_SIDE, SAMPLE_SIDE).data;
  const facts = { width: bitmap.width, height: bitmap.height, kind: kindOf(rgba) };
  bitmap.close();
  return facts;
}

function kindOf(rgba) {
  const count = rgba.length / 4;
  const luminance = new Float64Array(count);
  let saturation = 0;
  for (let p = 0; p < count; p += 1) {
    const [r, g, b] = [rgba[p * 4], rgba[p * 4 + 1], rgba[p * 4 + 2]];
    saturation += Math.max(r, g, b) - Math.min(r, g, b);
    luminance[p] = 0.299 * r + 0.587 * g + 0.114 * b;
  }
  if (saturation / count > MAX_MEAN_SATURATION) return "photo";
  const low = Math.min(...luminance);
  const high = Math.max(...luminance);
  const margin = 0.25 * Math.max(high - low, 1);
  const twoTone = luminance.filter((v) => v - low < margin || high - v < margin).length / count;
  return twoTone >= MIN_TWO_TONE_SHARE ? "digit" : "photo";
}

// The model for an image when `selected` is chosen: {modelId, reason?, from?}. A drawing goes to
// a digit model; a photo leaves a digit model for a photo model (a photo model reads anything, so
// a digit-like file stays where the student put it). `models`: the API's list, with `input_kind`.
export function chooseModel({ kind, source }, selected, models) {
  const card = models.find((model) => model.id === selected);
  const wanted = source === "drawing" ? "digit" : kind;
  const leave = source === "drawing" ? wanted !== card?.input_kind : card?.input_kind === "digit" && wanted === "photo";
  const fitting = models.find((model) => model.input_kind === wanted);
  if (!card || !leave || !fitting) return { modelId: selected };
  return { modelId: fitting.id, reason: source === "drawing" ? "choice.drawing" : "choice.photo", from: selected };
}

// The notes under the status line; re-rendered on a language switch (names from the cards).
export function mountChoiceNotes({ onUseModel, models }) {
  const box = document.getElementById("input-notes");
  let notes = [];

  // A model's name up to its " · " subtitle ("LeNet-5 · handwritten digits" → "LeNet-5").
  const nameOf = (id) => {
    const model = models().find((item) => item.id === id);
    return model ? localized(model, "name").split(" · ")[0] : id;
  };

  function render() {
    fill(box, notes.map((note) => {
      if (note.tiny) {
        const { w, h, mw, mh } = note.tiny;
        return el("p", { class: "note", dataset: { note: "tiny" }, text: t("choice.tiny", { w, h, mw, mh }) });
      }
      return el(
        "p",
        { class: "note", dataset: { note: "switched" } },
        el("span", { text: `${t(note.reason, { from: nameOf(note.from), to: nameOf(note.to) })} ` }),
        note.reason === "choice.photo"
          ? el("button", { type: "button", class: "link-button", text: t("choice.back", { from: nameOf(note.from) }), onclick: () => onUseModel(note.from) })
          : null,
      );
    }));
    box.hidden = notes.length === 0;
  }

  document.addEventListener("convlens:language", render);
  return {
    // choice: chooseModel's answer; facts: imageFacts's; input: the model's {height, width}. The
    // line about a switch to the digit model stays while the same drawing goes on.
    show(choice, facts, input, source) {
      const drawingOn = notes.find((note) => note.reason === "choice.drawing" && note.to === choice.modelId);
      notes = [];
      if (choice?.reason) notes.push({ reason: choice.reason, from: choice.from, to: choice.modelId });
      else if (source === "drawing" && drawingOn) notes.push(drawingOn);
      if (facts && input && Math.min(facts.width, facts.height) < TINY_SIDE) {
        notes.push({ tiny: { w: facts.width, h: facts.height, mw: input.width, mh: input.height } });
      }
      render();
    },
    clear() {
      notes = [];
      render();
    },
  };
}
