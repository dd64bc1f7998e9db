// Page-wide preferences every page shares: language, light/dark theme, large text (projector mode).
import { applyTranslations, currentLanguage, registerStrings, setLanguage, t } from "./i18n.js";

registerStrings({
  en: {
    "nav.analyze": "Analyze",
    "nav.lessons": "Lessons",
    "nav.playground": "Playground",
    "nav.gallery": "Gallery",
    "nav.docs": "API docs",
    "nav.label": "Site",
    "brand.tagline": "see inside a real CNN",
    "prefs.language": "中文",
    "prefs.language.label": "Switch to Chinese",
    "prefs.label": "Display",
    "prefs.theme.dark": "Dark",
    "prefs.theme.light": "Light",
    "prefs.theme.label": "Switch between light and dark colours",
    "prefs.large": "Large text",
    "prefs.large.label": "Larger text and controls for a projector",
    "skip": "Skip to content",
  },
  zh: {
    "nav.analyze": "分析",
    "nav.lessons": "课程",
    "nav.playground": "卷积游乐场",
    "nav.gallery": "经典结构画廊",
    "nav.docs": "API 文档",
    "nav.label": "网站导航",
    "brand.tagline": "看清真实卷积神经网络的内部",
    "prefs.language": "English",
    "prefs.language.label": "切换到英文",
    "prefs.label": "显示设置",
    "prefs.theme.dark": "深色",
    "prefs.theme.light": "浅色",
    "prefs.theme.label": "切换浅色/深色配色",
    "prefs.large": "大字号",
    "prefs.large.label": "适合投影的大字号和大控件",
    "skip": "跳到正文",
  },
});

const THEME_KEY = "convlens.theme";
const LARGE_KEY = "convlens.largeText";
const root = document.documentElement;

function read(key, fallback) {
  try { return localStorage.getItem(key) ?? fallback; } catch { return fallback; }
}

function write(key, value) {
  try { localStorage.setItem(key, value); } catch { /* not persisted */ }
}

function preferredTheme() {
  const dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  return read(THEME_KEY, dark ? "dark" : "light");
}

function applyTheme(theme) {
  root.dataset.theme = theme;
  const button = document.getElementById("theme-toggle");
  if (!button) return;
  button.textContent = t(theme === "dark" ? "prefs.theme.light" : "prefs.theme.dark");
  button.setAttribute("aria-pressed", String(theme === "dark"));
  document.dispatchEvent(new CustomEvent("convlens:theme", { detail: { theme } }));
}

// Large text as the user set it (presenter mode turns it on for a while without saving it).
export const savedLargeText = () => read(LARGE_KEY, "0") === "1";

export function applyLargeText(on) {
  root.classList.toggle("large-text", on);
  document.getElementById("text-size-toggle")?.setAttribute("aria-pressed", String(on));
  document.dispatchEvent(new CustomEvent("convlens:layout"));
}

applyTheme(preferredTheme());
applyLargeText(savedLargeText());
applyTranslations();

document.getElementById("lang-toggle")?.addEventListener("click", () => {
  setLanguage(currentLanguage() === "en" ? "zh" : "en");
});
document.getElementById("theme-toggle")?.addEventListener("click", () => {
  const next = root.dataset.theme === "dark" ? "light" : "dark";
  write(THEME_KEY, next);
  applyTheme(next);
});
document.getElementById("text-size-toggle")?.addEventListener("click", () => {
  const on = !root.classList.contains("large-text");
  write(LARGE_KEY, on ? "1" : "0");
  applyLargeText(on);
});
document.addEventListener("convlens:language", () => applyTheme(root.dataset.theme));
