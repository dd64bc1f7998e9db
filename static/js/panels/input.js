// Input: drag-and-drop, file picker, clipboard paste, bundled samples and a webcam snapshot.
// Every source ends in one call: onImage(blob, modelId?) — a sample names the model it suits.
import * as data from "../data.js";
import { el } from "../format.js";
import { localized, registerStrings, t } from "../i18n.js";

registerStrings({
  en: {
    "input.title": "Pick a model and an image",
    "input.help": "Choose a network, then give it a picture: drop a file, paste one, pick a sample, use the webcam — or draw a digit for the digit network.",
    "input.model": "Model",
    "input.drop": "Drop an image here",
    "input.drop.hint": "or paste it (Ctrl+V), or click / press Enter to choose a file",
    "input.file": "Choose an image file",
    "input.samples": "Samples (click one)",
    "input.webcam": "Use the webcam",
    "input.webcam.snap": "Take the picture",
    "input.webcam.close": "Close",
    "input.webcam.denied": "The webcam is not available here ({reason}).",
    "input.sample.for": "{title} · for {model}",
    "input.not.image": "That is not an image file. Try a PNG, JPEG, GIF, WebP or BMP.",
  },
  zh: {
    "input.title": "选择模型和图片",
    "input.help": "先选一个网络，再给它一张图：拖入文件、粘贴、点选样例、使用摄像头——或为数字网络手写一个数字。",
    "input.model": "模型",
    "input.drop": "把图片拖到这里",
    "input.drop.hint": "或粘贴（Ctrl+V），或点击 / 按回车选择文件",
    "input.file": "选择图片文件",
    "input.samples": "样例（点击一个）",
    "input.webcam": "使用摄像头",
    "input.webcam.snap": "拍照",
    "input.webcam.close": "关闭",
    "input.webcam.denied": "此处无法使用摄像头（{reason}）。",
    "input.sample.for": "{title} · 适用于 {model}",
    "input.not.image": "这不是图片文件。请使用 PNG、JPEG、GIF、WebP 或 BMP。",
  },
});

const $ = (id) => document.getElementById(id);

function firstImage(items) {
  for (const item of items || []) {
    const file = item.kind === "file" ? item.getAsFile() : item;
    if (file && file.type && file.type.startsWith("image/")) return file;
  }
  return null;
}

// onImage(blob, modelId?) for every image; onNotImage() for a file that is none (nothing is sent);
// onError(key, params) for anything else that went wrong here.
export function mountInputPanel({ onImage, onNotImage, onError, modelName }) {
  const dropZone = $("drop-zone");
  const fileInput = $("file-input");
  const samplesBox = $("samples");
  let activeModel = null;
  const samplesLoaded = fetch("/static/samples/samples.json")
    .then((response) => response.json())
    .then((body) => body.samples)
    .catch(() => []);
  let samples = [];

  const submit = (blob, modelId = null) => {
    if (!blob || !blob.type.startsWith("image/")) {
      onNotImage();
      return;
    }
    onImage(blob, modelId);
  };

  dropZone.addEventListener("click", () => fileInput.click());
  dropZone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      fileInput.click();
    }
  });
  fileInput.addEventListener("change", () => {
    if (fileInput.files[0]) submit(fileInput.files[0]);
    fileInput.value = "";
  });
  for (const type of ["dragenter", "dragover"]) {
    dropZone.addEventListener(type, (event) => {
      event.preventDefault();
      dropZone.classList.add("dragging");
    });
  }
  dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
  dropZone.addEventListener("drop", (event) => {
    event.preventDefault();
    dropZone.classList.remove("dragging");
    submit(firstImage(event.dataTransfer.files) || event.dataTransfer.files[0]);
  });
  document.addEventListener("paste", (event) => {
    const image = firstImage(event.clipboardData?.items);
    if (image) {
      event.preventDefault();
      submit(image);
    }
  });

  async function pickSample(sample) {
    const response = await fetch(sample.url);
    submit(await response.blob(), sample.model);
  }

  function renderSamples() {
    const ordered = [...samples].sort((a, b) => (b.model === activeModel) - (a.model === activeModel));
    samplesBox.replaceChildren(...ordered.map((sample) => {
      const label = t("input.sample.for", { title: localized(sample, "title"), model: modelName(sample.model) });
      return el(
        "button",
        {
          type: "button",
          class: `sample${sample.model === activeModel ? "" : " other-model"}`,
          title: label,
          "aria-label": label,
          dataset: { url: sample.url, model: sample.model },
          onclick: () => pickSample(sample).catch(() => onError("error.network_error")),
        },
        el("img", { src: sample.url, alt: "", loading: "lazy" }),
      );
    }));
  }

  samplesLoaded.then((loaded) => {
    samples = loaded;
    renderSamples();
  });

  // The model picker's names in the page's language (the server renders the English ones).
  async function labelModels() {
    const { models } = await data.models();
    for (const option of $("model-select").options) {
      const model = models.find((item) => item.id === option.value);
      if (model) option.textContent = localized(model, "name");
    }
    renderSamples();
  }

  // A bundled sample by its file name without extension (deep links): {blob, model} or null.
  async function sample(name) {
    const found = (await samplesLoaded).find((item) => item.url.split("/").pop().replace(/\.[^.]+$/, "") === name);
    return found ? { blob: await (await fetch(found.url)).blob(), model: found.model } : null;
  }

  mountWebcam(submit, onError);
  return {
    labelModels,
    sample,
    setModel(modelId) {
      activeModel = modelId;
      renderSamples();
    },
  };
}

function mountWebcam(submit, onError) {
  const button = $("webcam-button");
  const box = $("webcam");
  const video = $("webcam-video");
  let stream = null;
  if (!navigator.mediaDevices?.getUserMedia) {
    button.hidden = true;
    return;
  }
  const stop = () => {
    for (const track of stream?.getTracks() || []) track.stop();
    stream = null;
    box.hidden = true;
    button.hidden = false;
  };
  button.addEventListener("click", async () => {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
      video.srcObject = stream;
      box.hidden = false;
      button.hidden = true;
    } catch (error) {
      onError("input.webcam.denied", { reason: error.name || error.message });
    }
  });
  $("webcam-close").addEventListener("click", stop);
  $("webcam-snap").addEventListener("click", () => {
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    canvas.toBlob((blob) => submit(blob), "image/png");
  });
}
