// API errors in words a student understands, and the page's status line. The friendly sentence
// comes from the error's `code`; the server's own message and the request id stay available in a
// closed "details" element, for bug reports. Limits are shown in MiB and megapixels.
import { currentLanguage, registerStrings, t } from "./i18n.js";

const FORMATS = "PNG, JPEG, GIF, WebP or BMP";
const FORMATS_ZH = "PNG、JPEG、GIF、WebP 或 BMP";

registerStrings({
  en: {
    "error.network_error": "Cannot reach the convlens server. Is it still running?",
    "error.busy": "The server is busy with other images. Please try again in {seconds} s.",
    "error.rate_limited": "Too many requests in a short time. Please wait {seconds} s and try again.",
    "error.unsupported_image_type": `This file is not an image the network can read. Use ${FORMATS}.`,
    "error.unsupported_media_type": `This file is not an image the network can read. Use ${FORMATS}.`,
    "error.invalid_image": `This file is not an image the network can read. Use ${FORMATS}.`,
    "error.image_too_large": "This image has too many pixels{pixels}: the server takes at most {maxPixels}. Please use a smaller one.",
    "error.image_too_complex": "This image takes too long to decode (for example a JPEG saved in very many passes). Please save it again or use another one.",
    "error.payload_too_large": "This file is too large{size}: the server takes files up to {limit}. Please use a smaller image.",
    "error.corrupt_image": "This image file seems damaged and cannot be opened.",
    "error.empty_image": "The file is empty.",
    "error.missing_image": "No image arrived with the request. Please try again.",
    "error.analysis_not_found": "This analysis is no longer kept on the server. Please give the image again.",
    "error.model_not_found": "This model is not available on the server.",
    "error.layer_not_found": "The server does not know this layer.",
    "error.channel_not_found": "This layer has no such channel.",
    "error.layer_not_run": "This layer did not run for this image, so there is nothing to show.",
    "error.not_a_feature_map": "This works only on layers that output feature maps.",
    "error.no_feature_map": "This network has no feature-map layer to show this on.",
    "error.receptive_field_unavailable": "The receptive field of this layer cannot be computed.",
    "error.request_timeout": "The upload took too long. Please try again.",
    "error.internal_error": "Something went wrong on the server. Please try again.",
    "error.generic": "Something went wrong. Please try again.",
    "error.details": "Details for a bug report",
    "limit.mib": "{value} MiB",
    "limit.megapixels": "{value} megapixels",
    "limit.aside": " ({value})",
    "status.waiting": "The class is busy — trying again in {seconds} s (no need to press again).",
    "status.progress": "Working…",
    "status.analyzing": "Running the image through every layer of {model}…",
    "status.done": "Done: {layers} layers computed. Click a layer block below to look inside.",
    "status.layer": "Loading layer {layer}…",
    "status.restore": "Reopening the saved analysis…",
    "status.pick": "Pick a sample, drop a photo or draw a digit to start.",
  },
  zh: {
    "error.network_error": "无法连接 convlens 服务器。它还在运行吗？",
    "error.busy": "服务器正忙于处理其他图像。请 {seconds} 秒后再试。",
    "error.rate_limited": "短时间内请求太多。请等待 {seconds} 秒后再试。",
    "error.unsupported_image_type": `网络无法读取这种文件。请使用 ${FORMATS_ZH} 图片。`,
    "error.unsupported_media_type": `网络无法读取这种文件。请使用 ${FORMATS_ZH} 图片。`,
    "error.invalid_image": `网络无法读取这种文件。请使用 ${FORMATS_ZH} 图片。`,
    "error.image_too_large": "这张图片像素太多{pixels}：服务器最多接受 {maxPixels}。请换一张小一些的。",
    "error.image_too_complex": "这张图片解码太费时（例如分很多遍保存的 JPEG）。请重新保存或换一张。",
    "error.payload_too_large": "文件太大{size}：服务器最多接受 {limit} 的文件。请换一张小一些的图片。",
    "error.corrupt_image": "这个图片文件似乎已损坏，无法打开。",
    "error.empty_image": "文件是空的。",
    "error.missing_image": "请求里没有收到图片。请再试一次。",
    "error.analysis_not_found": "服务器上已不再保存这次分析。请重新提供图片。",
    "error.model_not_found": "服务器上没有这个模型。",
    "error.layer_not_found": "服务器不认识这一层。",
    "error.channel_not_found": "这一层没有这个通道。",
    "error.layer_not_run": "这张图像没有经过这一层，所以没有可显示的内容。",
    "error.not_a_feature_map": "这只适用于输出特征图的层。",
    "error.no_feature_map": "这个网络没有可以显示它的特征图层。",
    "error.receptive_field_unavailable": "无法计算这一层的感受野。",
    "error.request_timeout": "上传用时太长。请再试一次。",
    "error.internal_error": "服务器出了问题。请再试一次。",
    "error.generic": "出了点问题。请再试一次。",
    "error.details": "错误详情（用于报告问题）",
    "limit.mib": "{value} MiB",
    "limit.megapixels": "{value} 万像素",
    "limit.aside": "（{value}）",
    "status.waiting": "全班都在用，服务器正忙——{seconds} 秒后自动重试（不用再按）。",
    "status.progress": "处理中……",
    "status.analyzing": "正在让图像流过 {model} 的每一层……",
    "status.done": "完成：共计算了 {layers} 层。点击下面的层方块查看内部。",
    "status.layer": "正在加载 {layer} 层……",
    "status.restore": "正在重新打开保存的分析……",
    "status.pick": "选一个样例、拖入一张照片或手写一个数字即可开始。",
  },
});

const MIB = 1024 * 1024;
const round1 = (value) => String(Math.round(value * 10) / 10);

// The server's limits, rendered into the page (templates/index.html).
function limits() {
  const data = document.getElementById("status")?.dataset || {};
  return { bytes: Number(data.maxUploadBytes) || 0, pixels: Number(data.maxImagePixels) || 0 };
}

const mib = (bytes) => t("limit.mib", { value: round1(bytes / MIB) });
const megapixels = (pixels) => t("limit.megapixels", {
  value: currentLanguage() === "zh" ? String(Math.round(pixels / 1e4)) : round1(pixels / 1e6),
});

// The sentence for `error`; `upload` ({bytes, width, height}) lets limits name the file's size.
export function describeError(error, upload = {}) {
  const code = error?.code;
  const seconds = error?.retryAfter || 2;
  const { bytes, pixels } = limits();
  const params = {
    seconds,
    limit: bytes ? mib(bytes) : "",
    size: upload.bytes ? t("limit.aside", { value: mib(upload.bytes) }) : "",
    maxPixels: pixels ? megapixels(pixels) : "",
    pixels: upload.width ? t("limit.aside", { value: `${upload.width}×${upload.height}` }) : "",
  };
  const key = `error.${code}`;
  const friendly = t(key, params);
  if (friendly !== key) return friendly;
  return t(error?.status >= 500 ? "error.internal_error" : "error.generic");
}

// What a bug report needs: the code, the server's words and the request id.
export function errorDetails(error) {
  const parts = [error?.code, error?.status ? `HTTP ${error.status}` : "", error?.message, error?.requestId ? `request ${error.requestId}` : ""];
  return parts.filter(Boolean).join(" · ");
}

// The status line under the input: text kept as a key so it follows a language switch, a
// progress bar while busy, an error's details, and the countdown while the server is full.
export function mountStatusLine() {
  const box = document.getElementById("status");
  const text = document.getElementById("status-text");
  const progress = document.getElementById("status-progress");
  const detailsBox = document.getElementById("status-details");
  let current = null;
  let countdown = 0;

  function render() {
    if (!current) return;
    text.textContent = current.render();
    detailsBox.hidden = !current.details;
    detailsBox.querySelector("code").textContent = current.details || "";
  }

  function show(make, { busy = false, error = false, details = "", waiting = false } = {}) {
    clearInterval(countdown);
    current = { render: make, details };
    progress.hidden = !busy;
    box.classList.toggle("error", error);
    box.toggleAttribute("data-waiting", waiting);
    document.body.setAttribute("aria-busy", String(busy));
    detailsBox.open = false;
    render();
  }

  document.addEventListener("convlens:language", render);
  return {
    // A translated line: `key` and its params, or a function making them (re-rendered on a
    // language switch, so names given by a function follow it too).
    set: (key, params = {}, options = {}) => show(() => t(key, typeof params === "function" ? params() : params), options),
    error: (error, upload) => show(() => describeError(error, upload), { error: true, details: errorDetails(error) }),
    clear: () => show(() => "", {}),
    // The server is full: count down to the automatic retry.
    waiting(seconds) {
      const until = Date.now() + seconds * 1000;
      const left = () => Math.max(0, Math.ceil((until - Date.now()) / 1000));
      show(() => t("status.waiting", { seconds: left() }), { busy: true, waiting: true });
      countdown = setInterval(render, 250);
    },
  };
}
