// Predictions: the exact model input beside a top-5 bar chart of labels and probabilities.
import { el, fill, formatPercent } from "../format.js";
import { registerStrings, t } from "../i18n.js";

registerStrings({
  en: {
    "predictions.title": "What the network sees and predicts",
    "predictions.help": "Left: the exact pixels the network received (resized and cropped). Right: its five most likely answers.",
    "predictions.input": "The {h}×{w} input the network saw",
    "predictions.input.alt": "the exact image the network received",
    "predictions.top": "Top 5 answers",
    "predictions.how": "How are these percentages computed? Open the last layer",
    "predictions.cached": "(this image was analysed before: answer from the cache)",
  },
  zh: {
    "predictions.title": "网络看到了什么、预测了什么",
    "predictions.help": "左边：网络实际收到的像素（已缩放和裁剪）。右边：它认为最可能的五个答案。",
    "predictions.input": "网络实际看到的 {h}×{w} 输入",
    "predictions.input.alt": "网络实际接收的图像",
    "predictions.top": "前 5 个答案",
    "predictions.how": "这些百分比是怎么算出来的？打开最后一层",
    "predictions.cached": "（这张图之前分析过：结果来自缓存）",
  },
});

export function renderPredictions(container, analysis, card, { onExplain } = {}) {
  const { height, width } = card.input;
  const scale = Math.max(1, Math.floor(224 / width));
  const image = el("img", {
    id: "input-image",
    class: "model-input",
    src: analysis.input_url,
    alt: t("predictions.input.alt"),
    width: width * scale,
    height: height * scale,
  });
  const top = analysis.predictions[0]?.probability || 1;
  const bars = analysis.predictions.map((p, rank) => el(
    "li",
    { class: rank === 0 ? "prediction best" : "prediction", dataset: { index: p.index, probability: p.probability } },
    el("span", { class: "prediction-label", translate: "no", text: p.label }), // the model's own label
    el(
      "span",
      { class: "bar-track" },
      el("span", { class: "bar", style: { width: `${Math.max(1, (p.probability / top) * 100)}%` } }),
    ),
    el("span", { class: "prediction-value", text: formatPercent(p.probability) }),
  ));
  const classifier = card.layers[card.layers.length - 1];
  container.dataset.analysisId = analysis.analysis_id;
  fill(container,
    el(
      "figure",
      { class: "input-figure" },
      image,
      el("figcaption", { text: t("predictions.input", { h: height, w: width }) }),
    ),
    el(
      "div",
      { class: "prediction-list" },
      el("h3", { text: t("predictions.top") }),
      el("ol", { id: "predictions-list" }, bars),
      el("button", {
        type: "button",
        class: "link-button",
        text: t("predictions.how"),
        onclick: () => onExplain?.(classifier.name),
      }),
      analysis.cached ? el("p", { class: "muted", text: t("predictions.cached") }) : null,
    ),
  );
}
