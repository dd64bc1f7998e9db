// Architecture strip: one block per layer (type, output shape, parameters, receptive field), in
// execution order; layers inside a residual block are grouped under it. Keyboard: Tab reaches the
// strip, arrow keys move between layers, Enter/Space opens one (a roving tabindex).
import { el, formatCount, shapeText } from "../format.js";
import { registerStrings, t } from "../i18n.js";
import { sizeText } from "./receptive_field.js";

registerStrings({
  en: {
    "architecture.title": "Every layer, in the order the image flows through them",
    "architecture.help": "Each block is one layer: its type, the shape of its output (channels × height × width), its learned parameters and how many input pixels one of its units can see. Click a block (or use the arrow keys) to open it.",
    "arch.params": "{count} params",
    "arch.rf": "sees {size} px",
    "arch.rf.global": "sees the whole image",
    "arch.rf.seen": "sees {size} px: all the network reads",
    "arch.rf.gated": "{field} + a whole-image gate",
    "arch.group": "block {name}",
    "arch.group.sum": "output = inside + input",
    "kind.conv": "convolution",
    "kind.depthwise_conv": "depthwise conv",
    "kind.batchnorm": "batch norm",
    "kind.norm": "normalization",
    "kind.activation": "activation",
    "kind.pool": "pooling",
    "kind.linear": "fully connected",
    "kind.flatten": "flatten",
    "kind.add": "residual add",
    "kind.mul": "multiply",
    "kind.cat": "concatenate",
    "kind.block": "block output",
    "kind.layer": "layer",
  },
  zh: {
    "architecture.title": "所有层，按图像流过的顺序排列",
    "architecture.help": "每个方块是一层：它的类型、输出形状（通道 × 高 × 宽）、学到的参数数量，以及它的一个单元能看到多少输入像素。点击方块（或用方向键）打开它。",
    "arch.params": "{count} 个参数",
    "arch.rf": "感受野 {size} 像素",
    "arch.rf.global": "看到整张图",
    "arch.rf.seen": "看到 {size} 像素：网络读取的全部",
    "arch.rf.gated": "{field} + 全图门控",
    "arch.group": "模块 {name}",
    "arch.group.sum": "输出 = 模块内结果 + 输入",
    "kind.conv": "卷积",
    "kind.depthwise_conv": "逐通道卷积",
    "kind.batchnorm": "批归一化",
    "kind.norm": "归一化",
    "kind.activation": "激活函数",
    "kind.pool": "池化",
    "kind.linear": "全连接",
    "kind.flatten": "展平",
    "kind.add": "残差相加",
    "kind.mul": "相乘",
    "kind.cat": "拼接",
    "kind.block": "模块输出",
    "kind.layer": "层",
  },
});

// What one unit sees: a window, the part of the image the network reads (a global field's size
// is that part), or the whole image; a gated unit also hears every pixel through its gate.
function rfText(rf) {
  if (!rf || !rf.size || rf.size.length === 0) return "";
  let field = t("arch.rf", { size: sizeText(rf.size) });
  if (rf.is_global) field = rf.seen ? t("arch.rf.seen", { size: sizeText(rf.size) }) : t("arch.rf.global");
  return rf.gated ? t("arch.rf.gated", { field }) : field;
}

// The short label inside a group: "_blocks.3._expand_conv" → "_expand_conv".
const shortName = (name, group) => (group && name.startsWith(`${group}.`) ? name.slice(group.length + 1) : name);

// Layer names and module types are the program's identifiers: shown as they are, in any language
// (translate="no"); the full name is the tooltip when the block shows a shortened one.
function layerBlock(layer, group) {
  const short = shortName(layer.name, group);
  return el(
    "button",
    {
      type: "button",
      class: `layer-block kind-${layer.kind}`,
      tabindex: "-1",
      dataset: { layer: layer.name },
      title: short === layer.name ? null : layer.name,
    },
    el("span", { class: "layer-kind", text: t(`kind.${layer.kind}`) }),
    el("span", { class: "layer-name", translate: "no", text: short }),
    el("span", { class: "layer-type", translate: "no", text: layer.type }),
    el("span", { class: "layer-shape", text: shapeText(layer.output_shape) }),
    el("span", { class: "layer-meta", text: layer.params ? t("arch.params", { count: formatCount(layer.params) }) : "" }),
    el("span", { class: "layer-meta", text: rfText(layer.receptive_field) }),
  );
}

// Layers grouped by the block that contains them: [{group: name|null, layers: [...]}], in order.
function groupLayers(layers) {
  const blocks = new Set(layers.filter((l) => l.kind === "block").map((l) => l.name));
  const parentOf = (name) => [...blocks].find((b) => name.startsWith(`${b}.`)) || null;
  const groups = [];
  for (const layer of layers) {
    const parent = blocks.has(layer.name) ? layer.name : parentOf(layer.name);
    const last = groups[groups.length - 1];
    if (parent && last && last.group === parent) last.layers.push(layer);
    else groups.push({ group: parent, layers: [layer] });
  }
  return groups;
}

export function renderArchitectureStrip(container, layers, options = {}) {
  const { onSelect = () => {} } = options;
  const strip = el("div", { class: "strip", role: "toolbar", "aria-orientation": "horizontal" });
  for (const { group, layers: members } of groupLayers(layers)) {
    const blocks = members.map((layer) => layerBlock(layer, group));
    if (!group) {
      strip.append(...blocks);
      continue;
    }
    strip.append(el(
      "div",
      { class: "layer-group", role: "group", "aria-label": t("arch.group", { name: group }) },
      el("span", { class: "group-label", text: t("arch.group", { name: group }) }),
      el("div", { class: "group-members" }, blocks),
    ));
  }
  container.replaceChildren(strip);
  const buttons = [...strip.querySelectorAll(".layer-block")];

  // Scroll the strip sideways to show `button`, never the page up or down.
  function reveal(button) {
    const outer = container.getBoundingClientRect();
    const inner = button.getBoundingClientRect();
    if (inner.left < outer.left) container.scrollLeft += inner.left - outer.left - 8;
    else if (inner.right > outer.right) container.scrollLeft += inner.right - outer.right + 8;
  }

  function select(name, { focus = false, scroll = true } = {}) {
    let chosen = null;
    for (const button of buttons) {
      const on = button.dataset.layer === name;
      button.classList.toggle("selected", on);
      button.setAttribute("aria-pressed", String(on));
      button.tabIndex = on ? 0 : -1;
      if (on) chosen = button;
    }
    if (!chosen && buttons.length) buttons[0].tabIndex = 0;
    if (chosen && scroll) reveal(chosen);
    if (chosen && focus) chosen.focus({ preventScroll: true });
  }

  strip.addEventListener("click", (event) => {
    const button = event.target.closest(".layer-block");
    if (!button) return;
    select(button.dataset.layer, { scroll: false });
    onSelect(button.dataset.layer);
  });
  strip.addEventListener("keydown", (event) => {
    const index = buttons.indexOf(document.activeElement);
    if (index < 0) return;
    const moves = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1, Home: -Infinity, End: Infinity };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const next = Math.max(0, Math.min(buttons.length - 1, index + moves[event.key]));
    for (const button of buttons) button.tabIndex = -1;
    buttons[next].tabIndex = 0;
    buttons[next].focus({ preventScroll: true });
    reveal(buttons[next]);
  });
  select(options.selected ?? null, { scroll: false });
  return { select };
}
