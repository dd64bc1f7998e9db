// API errors in words a student understands (the API's own message is kept as the detail).
import { registerStrings, t } from "./i18n.js";

registerStrings({
  en: {
    "error.network_error": "Cannot reach the convlens server. Is it still running?",
    "error.busy": "The server is busy with other images. Please try again in {seconds} s.",
    "error.rate_limited": "Too many requests in a short time. Please wait {seconds} s and try again.",
    "error.unsupported_image_type": "This file is not an image the network can read. Use PNG, JPEG, GIF, WebP or BMP.",
    "error.unsupported_media_type": "This file is not an image the network can read. Use PNG, JPEG, GIF, WebP or BMP.",
    "error.image_too_large": "This image is too large. Please use a smaller one.",
    "error.payload_too_large": "This file is too large to upload. Please use a smaller image.",
    "error.corrupt_image": "This image file seems damaged and cannot be opened.",
    "error.empty_image": "The file is empty.",
    "error.analysis_not_found": "This analysis is no longer kept on the server. Please give the image again.",
    "error.model_not_found": "This model is not available on the server.",
    "error.generic": "Something went wrong: {message}",
    "error.detail": "(server said: {message}{id})",
  },
  zh: {
    "error.network_error": "无法连接 convlens 服务器。它还在运行吗？",
    "error.busy": "服务器正忙于处理其他图像。请 {seconds} 秒后再试。",
    "error.rate_limited": "短时间内请求太多。请等待 {seconds} 秒后再试。",
    "error.unsupported_image_type": "网络无法读取这种文件。请使用 PNG、JPEG、GIF、WebP 或 BMP 图片。",
    "error.unsupported_media_type": "网络无法读取这种文件。请使用 PNG、JPEG、GIF、WebP 或 BMP 图片。",
    "error.image_too_large": "这张图片太大了，请换一张小一些的。",
    "error.payload_too_large": "文件太大，无法上传，请换一张小一些的图片。",
    "error.corrupt_image": "这个图片文件似乎已损坏，无法打开。",
    "error.empty_image": "文件是空的。",
    "error.analysis_not_found": "服务器上已不再保存这次分析。请重新提供图片。",
    "error.model_not_found": "服务器上没有这个模型。",
    "error.generic": "出错了：{message}",
    "error.detail": "（服务器信息：{message}{id}）",
  },
});

export function describeError(error) {
  const code = error && error.code;
  const seconds = error && error.retryAfter ? error.retryAfter : 2;
  const key = `error.${code}`;
  const friendly = t(key, { seconds });
  if (friendly !== key) {
    if (!error.message || code === "network_error") return friendly;
    const id = error.requestId ? `, request ${error.requestId}` : "";
    return `${friendly} ${t("error.detail", { message: error.message, id })}`;
  }
  return t("error.generic", { message: (error && error.message) || String(error) });
}
