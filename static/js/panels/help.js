// One line per layer kind: "what am I looking at", in English and Chinese.
import { registerStrings, t } from "../i18n.js";

registerStrings({
  en: {
    "help.conv": "A convolution ({type}): each of its {channels} channels comes from one learned filter slid over every input channel — multiply, add, slide. Strong values mark where the filter's pattern was found.",
    "help.depthwise_conv": "A depthwise convolution: each of its {channels} channels slides its own small filter over just one input channel (the matching one).",
    "help.batchnorm": "Batch normalization: every channel is shifted and scaled by two constants learned in training, keeping the numbers in a useful range.",
    "help.activation": "Activation ({type}): negative numbers become 0{cap} — the network keeps only the evidence it found.",
    "help.activation.cap": " and numbers above 6 become 6",
    "help.activation.smooth": "Activation ({type}): one fixed non-linear function applied to every number on its own, so the network can bend its answers instead of only adding things up.",
    "help.norm": "Normalization ({type}): each number is shifted by the mean and divided by the spread of its group of numbers — computed from this very image — then scaled and shifted by two learned constants.",
    "help.flatten": "Flatten: the maps are laid out as one long list of numbers, channel by channel and row by row — nothing is computed.",
    "help.add": "A residual (skip) connection: two maps of the same shape are added unit by unit, so the block only has to learn a correction to its input.",
    "help.mul": "A product of two maps, unit by unit — often a gate: one number per channel, computed from the whole map, that turns the channel up or down.",
    "help.cat": "Concatenation: the channels of several maps are stacked into one map; every number is copied unchanged.",
    "help.pool": "Pooling ({type}): each unit summarises a window of the previous layer, so maps get smaller and each unit sees more of the image.",
    "help.linear": "Fully connected: each of its {channels} units is a weighted sum of all the numbers of the previous layer.",
    "help.classifier": "The classifier: one score (a logit) per class — {channels} of them. Softmax turns the scores into the probabilities you see above.",
    "help.block": "A residual block's output: what the block computed, plus its own input when the shapes match (the skip connection).",
    "help.layer": "A layer of the network.",
  },
  zh: {
    "help.conv": "卷积层（{type}）：它的 {channels} 个通道各由一个学到的滤波器在所有输入通道上滑动得到——相乘、相加、滑动。数值大的地方表示找到了滤波器的图案。",
    "help.depthwise_conv": "逐通道卷积：它的 {channels} 个通道各用自己的小滤波器，只在对应的那一个输入通道上滑动。",
    "help.batchnorm": "批归一化：每个通道按训练时学到的两个常数平移和缩放，让数值保持在合适的范围。",
    "help.activation": "激活函数（{type}）：负数变成 0{cap}——网络只保留它找到的证据。",
    "help.activation.cap": "，大于 6 的数变成 6",
    "help.activation.smooth": "激活函数（{type}）：对每个数单独应用一个固定的非线性函数，让网络的回答能够“弯曲”，而不只是把数加起来。",
    "help.norm": "归一化（{type}）：每个数减去它所在那组数的均值、除以这组数的离散程度（由这张图像算出），再用两个学到的常数缩放和平移。",
    "help.flatten": "展平：把特征图按通道、按行排成一长串数——不做任何计算。",
    "help.add": "残差（跳跃）连接：两个形状相同的特征图逐单元相加，这样模块只需学习对输入的修正。",
    "help.mul": "两个特征图逐单元相乘——常见的是门控：每个通道一个由整张特征图算出的数，把该通道调强或调弱。",
    "help.cat": "拼接：把几个特征图的通道叠成一个特征图；每个数原样复制。",
    "help.pool": "池化（{type}）：每个单元概括上一层的一个窗口，特征图变小，每个单元看到图像的更大范围。",
    "help.linear": "全连接层：它的 {channels} 个单元各是上一层所有数值的加权和。",
    "help.classifier": "分类器：每个类别一个分数（logit），共 {channels} 个。Softmax 把分数变成上面看到的概率。",
    "help.block": "残差块的输出：模块计算的结果，在形状相同时再加上模块自己的输入（跳跃连接）。",
    "help.layer": "网络中的一层。",
  },
});

const RELUS = ["relu", "relu6"];
const HELP_KINDS = ["conv", "depthwise_conv", "batchnorm", "norm", "pool", "linear", "flatten", "add", "mul", "cat", "block"];

export const isClassifier = (layer, card) => layer.name === card.layers[card.layers.length - 1].name;

export function layerHelp(layer, card) {
  const params = { type: layer.type, channels: layer.output_shape[0] };
  if (layer.kind === "linear" && isClassifier(layer, card)) return t("help.classifier", params);
  if (layer.kind === "activation") {
    const type = layer.type.toLowerCase();
    if (!RELUS.includes(type)) return t("help.activation.smooth", params);
    return t("help.activation", { ...params, cap: type === "relu6" ? t("help.activation.cap") : "" });
  }
  return t(HELP_KINDS.includes(layer.kind) ? `help.${layer.kind}` : "help.layer", params);
}
