// Language switch (en / zh): modules register their strings; the page re-labels itself on change.
// Elements opt in with data-i18n="key" (text) or data-i18n-attr="attr:key;attr:key" (attributes);
// text the server renders in both languages (a lesson's <title>, a preset's <option>) carries
// data-i18n-en="…" data-i18n-zh="…".

const STORAGE_KEY = "convlens.language";
const LANGUAGES = ["en", "zh"];
const strings = { en: {}, zh: {} };

function storedLanguage() {
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (LANGUAGES.includes(saved)) return saved;
  } catch { /* storage may be disabled */ }
  return (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
}

let language = storedLanguage();

let refreshQueued = false;

// Adds strings; the page re-labels itself once the current task ends (after all modules register).
export function registerStrings(table) {
  for (const lang of LANGUAGES) Object.assign(strings[lang], table[lang] || {});
  if (refreshQueued) return;
  refreshQueued = true;
  queueMicrotask(() => {
    refreshQueued = false;
    applyTranslations();
  });
}

export const currentLanguage = () => language;

// A field of an API object in the page's language: `item.i18n[lang][key]` when the item has one.
export const localized = (item, key) => item.i18n?.[language]?.[key] ?? item[key];

// The string for `key` with {name} placeholders filled from `params`, in the page's language (or
// `lang`, for text rendered in both); English when zh lacks it.
export function t(key, params = {}, lang = language) {
  const template = strings[lang][key] ?? strings.en[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

export function applyTranslations(root = document) {
  for (const element of root.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n);
  }
  for (const element of root.querySelectorAll("[data-i18n-zh]")) {
    element.textContent = language === "zh" ? element.dataset.i18nZh : element.dataset.i18nEn;
  }
  for (const element of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of element.dataset.i18nAttr.split(";")) {
      const [attribute, key] = pair.split(":");
      if (attribute && key) element.setAttribute(attribute.trim(), t(key.trim()));
    }
  }
  document.documentElement.lang = language === "zh" ? "zh-CN" : "en";
}

export function setLanguage(next) {
  if (!LANGUAGES.includes(next)) return;
  language = next;
  try { localStorage.setItem(STORAGE_KEY, next); } catch { /* not persisted */ }
  applyTranslations();
  document.dispatchEvent(new CustomEvent("convlens:language", { detail: { language: next } }));
}

// Keys registered in English without a Chinese string (the browser tests expect none).
export const untranslated = () => Object.keys(strings.en).filter((key) => !(key in strings.zh));
