// Block diagrams drawn as SVG: the Inception module, the residual (bottleneck) block and the dense
// block — the three ideas the seeds name (concatenate, add, connect everything). Drawn in the page's
// language, and again when it changes.
import { el } from "../format.js";
import { registerStrings, t } from "../i18n.js";
import { bi } from "./strings.js";

registerStrings({
  en: {
    "diagram.inception": "Inception module",
    "diagram.residual": "Residual block",
    "diagram.dense": "Dense block",
    "diagram.previous": "previous layer",
    "diagram.conv": "{k} conv",
    "diagram.conv.filters": "{k} conv, {n}",
    "diagram.maxpool": "{k} max pool",
    "diagram.concat": "filter concatenation",
    "diagram.input": "x ({n} ch)",
    "diagram.add": "+  then ReLU",
    "diagram.identity": "identity",
    "diagram.dense.layer": "Hᵢ = BN-ReLU-1×1 conv, BN-ReLU-3×3 conv: it reads all earlier maps, adds k = 32",
  },
  zh: {
    "diagram.inception": "Inception 模块",
    "diagram.residual": "残差块",
    "diagram.dense": "稠密块",
    "diagram.previous": "前一层",
    "diagram.conv": "{k} 卷积",
    "diagram.conv.filters": "{k} 卷积，{n} 个",
    "diagram.maxpool": "{k} 最大池化",
    "diagram.concat": "按通道拼接",
    "diagram.input": "x（{n} 通道）",
    "diagram.add": "+ 再经过 ReLU",
    "diagram.identity": "恒等映射",
    "diagram.dense.layer": "Hᵢ：批归一化、ReLU、1×1 卷积，再批归一化、ReLU、3×3 卷积；读入前面所有特征图，新增 k = 32 张",
  },
});

const NS = "http://www.w3.org/2000/svg";
const BOX = { w: 120, h: 34 };

function svgNode(tag, attributes = {}, text = "") {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

function canvas(width, height, kind) {
  const svg = svgNode("svg", {
    viewBox: `0 0 ${width} ${height}`, width, class: "block-diagram", role: "img", "aria-label": t(`diagram.${kind}`),
  });
  const marker = svgNode("marker", { id: `arrow-${kind}`, viewBox: "0 0 10 10", refX: 9, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(svgNode("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow-head" }));
  const defs = svgNode("defs");
  defs.append(marker);
  svg.append(defs);
  return { svg, arrowId: marker.id };
}

function box(svg, x, y, text, kind = "conv", width = BOX.w) {
  svg.append(svgNode("rect", { x: x - width / 2, y, width, height: BOX.h, rx: 6, class: `diagram-box kind-${kind}` }));
  svg.append(svgNode("text", { x, y: y + BOX.h / 2 + 5, "text-anchor": "middle", class: "diagram-text" }, text));
  return { x, top: y, bottom: y + BOX.h };
}

function arrow(svg, arrowId, from, to, { bend = 0, label = "" } = {}) {
  const [x1, y1, x2, y2] = [from.x, from.bottom, to.x, to.top];
  const d = bend ? `M${x1},${y1} C${x1 + bend},${y1 + 30} ${x2 + bend},${y2 - 30} ${x2},${y2}` : `M${x1},${y1} L${x2},${y2}`;
  svg.append(svgNode("path", { d, class: "diagram-edge", "marker-end": `url(#${arrowId})` }));
  if (label) svg.append(svgNode("text", { x: (x1 + x2) / 2 + bend / 2 + 6, y: (y1 + y2) / 2, class: "diagram-label" }, label));
}

function inception() {
  const { svg, arrowId } = canvas(640, 300, "inception");
  const conv = (k) => t("diagram.conv", { k });
  const input = box(svg, 320, 10, t("diagram.previous"), "layer", 160);
  const columns = [95, 245, 395, 545];
  const firsts = [
    box(svg, columns[0], 90, conv("1×1")), box(svg, columns[1], 90, conv("1×1")),
    box(svg, columns[2], 90, conv("1×1")), box(svg, columns[3], 90, t("diagram.maxpool", { k: "3×3" }), "pool"),
  ];
  const seconds = [null, box(svg, columns[1], 170, conv("3×3")), box(svg, columns[2], 170, conv("5×5")),
    box(svg, columns[3], 170, conv("1×1"))];
  const concat = box(svg, 320, 250, t("diagram.concat"), "block", 200);
  for (let i = 0; i < 4; i += 1) {
    arrow(svg, arrowId, input, firsts[i]);
    arrow(svg, arrowId, seconds[i] ?? firsts[i], concat);
    if (seconds[i]) arrow(svg, arrowId, firsts[i], seconds[i]);
  }
  return svg;
}

function residual() {
  const { svg, arrowId } = canvas(420, 330, "residual");
  const conv = (k, n) => t("diagram.conv.filters", { k, n });
  const input = box(svg, 160, 10, t("diagram.input", { n: 256 }), "layer");
  const a = box(svg, 160, 80, conv("1×1", 64));
  const b = box(svg, 160, 140, conv("3×3", 64));
  const c = box(svg, 160, 200, conv("1×1", 256));
  const add = box(svg, 160, 270, t("diagram.add"), "block");
  arrow(svg, arrowId, input, a);
  arrow(svg, arrowId, a, b);
  arrow(svg, arrowId, b, c);
  arrow(svg, arrowId, c, add);
  svg.append(svgNode("path", { d: "M220,27 C360,27 360,287 220,287", class: "diagram-edge skip", "marker-end": `url(#${arrowId})` }));
  svg.append(svgNode("text", { x: 300, y: 160, class: "diagram-label" }, t("diagram.identity")));
  return svg;
}

function dense() {
  const { svg, arrowId } = canvas(640, 200, "dense");
  const xs = [70, 195, 320, 445, 570];
  const nodes = xs.map((x, i) => box(svg, x, 120, i === 0 ? "x₀" : `H${i}`, i === 0 ? "layer" : "conv", 80));
  for (let to = 1; to < nodes.length; to += 1) {
    for (let from = 0; from < to; from += 1) {
      const start = { x: nodes[from].x, bottom: nodes[from].top };
      const end = { x: nodes[to].x - 20 + from * 6, top: nodes[to].top };
      const lift = 25 + (to - from) * 18;
      svg.append(svgNode("path", {
        d: `M${start.x},${start.bottom} C${start.x},${start.bottom - lift} ${end.x},${end.top - lift} ${end.x},${end.top}`,
        class: "diagram-edge", "marker-end": `url(#${arrowId})`,
      }));
    }
  }
  svg.append(svgNode("text", { x: 320, y: 190, "text-anchor": "middle", class: "diagram-label" },
    t("diagram.dense.layer")));
  return svg;
}

const CAPTIONS = {
  inception: {
    en: "Four branches see 1×1, 3×3, 5×5 and pooled neighbourhoods; their maps are concatenated. The 1×1 convolutions first shrink the depth. (torchvision's '5×5' branch uses 3×3.)",
    zh: "四个分支分别看 1×1、3×3、5×5 和池化后的邻域，结果拼接在一起；1×1 卷积先降低深度。（torchvision 的“5×5”分支用的是 3×3。）",
  },
  residual: {
    en: "The block's input skips the three convolutions and is added to their output: the layers only learn a correction.",
    zh: "模块的输入跳过三个卷积，与它们的输出相加：这些层只需学习一个修正量。",
  },
  dense: {
    en: "Every layer receives the concatenated maps of the block's input and of all earlier layers.",
    zh: "每一层都接收模块输入与前面所有层的特征图的拼接。",
  },
};

export function renderDiagram(container, kind) {
  const draw = { inception, residual, dense }[kind];
  if (!draw) return;
  const show = () => container.replaceChildren(draw(), el("p", { class: "note" }, ...bi(CAPTIONS[kind])));
  show();
  document.addEventListener("convlens:language", show);
}
