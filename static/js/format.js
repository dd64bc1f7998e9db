// Number formatting shared by every panel: short on screen, exact in the title tooltip.

export function formatNumber(value, digits = 4) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  if (magnitude >= 1e5 || magnitude < 10 ** -digits) return value.toExponential(2);
  const fixed = value.toFixed(digits);
  return fixed.includes(".") ? fixed.replace(/\.?0+$/, "") : fixed;
}

// Two decimals for the small number grids (the exact number is in the tooltip); tiny non-zeros "≈0".
export function gridNumber(value) {
  if (value === 0) return "0";
  if (Math.abs(value) < 0.005) return "≈0";
  return Math.abs(value) >= 100 ? value.toFixed(0) : value.toFixed(2);
}

export const formatPercent = (p) => (p < 0.001 ? "< 0.1 %" : `${(p * 100).toFixed(1)} %`);

export const formatCount = (n) => n.toLocaleString("en-US");

export const shapeText = (shape) => shape.join(" × ");

// Create an element with attributes/properties and children in one call.
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style") Object.assign(node.style, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

// A translated sentence whose `{name}` placeholders (left unfilled by t) are formulas: each one
// becomes a <code> element, so formulas read as formulas in either language.
export function withFormulas(text, formulas) {
  return text.split(/\{(\w+)\}/).map((part, i) => (i % 2 ? el("code", { text: formulas[part] ?? part }) : part));
}

// Replace a container's children, skipping null/undefined/false (optional parts of a panel).
export function fill(container, ...children) {
  container.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
}
