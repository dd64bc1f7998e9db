// Shared by permalink.js and presenter.js: the classroom toolbar, the page's latest view, links.
// The page's main module announces every view change as a `convlens:view` event (an empty one
// when no analysis is on screen); this module remembers the latest one.
import { registerStrings, t } from "./i18n.js";

registerStrings({
  en: { "classroom.label": "Share this view" },
  zh: { "classroom.label": "分享这个视图" },
});

const VIEW_FIELDS = ["modelId", "analysisId", "layer", "channel", "y", "x"];
const NUMBER_FIELDS = ["channel", "y", "x"];

let latestView = {};
const showing = [];

document.addEventListener("convlens:view", (event) => {
  latestView = cleanView(event.detail || {});
  updateVisibility();
  for (const waiter of showing.splice(0)) {
    if (waiter.analysisId === latestView.analysisId) waiter.resolve();
    else showing.push(waiter);
  }
});

export const currentView = () => latestView;

// Only the contract's fields, without empty ones (the server refuses anything else).
export function cleanView(view) {
  const clean = {};
  for (const field of VIEW_FIELDS) {
    const value = view[field];
    if (value === undefined || value === null || value === "") continue;
    clean[field] = NUMBER_FIELDS.includes(field) ? Number(value) : String(value);
  }
  return clean;
}

// A view from query parameters (?layer=&channel=&y=&x=); integers only, others dropped.
export function viewFromQuery(params) {
  const view = {};
  if (params.get("layer")) view.layer = params.get("layer");
  for (const field of NUMBER_FIELDS) {
    const text = params.get(field);
    if (text !== null && /^\d{1,7}$/.test(text)) view[field] = Number(text);
  }
  return view;
}

// The permalink of a view: /a/<analysis>?layer=&channel=&y=&x= (plus any `extra` parameters).
export function permalinkFor(view, extra = {}) {
  const params = new URLSearchParams();
  for (const field of ["layer", ...NUMBER_FIELDS]) {
    if (view[field] !== undefined) params.set(field, String(view[field]));
  }
  for (const [key, value] of Object.entries(extra)) params.set(key, value);
  const query = params.toString();
  return `/a/${encodeURIComponent(view.analysisId)}${query ? `?${query}` : ""}`;
}

// Resolves once the page shows `analysisId` (its main module announced a view of it).
export function whenShowing(analysisId) {
  if (!analysisId || latestView.analysisId === analysisId) return Promise.resolve();
  return new Promise((resolve) => showing.push({ analysisId, resolve }));
}

export function setView(view) {
  document.dispatchEvent(new CustomEvent("convlens:set-view", { detail: cleanView(view) }));
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

let bar = null;

// The classroom toolbar both modules put their buttons in: in the page's flow (#classroom-slot,
// at the end of the input's status row; styled by classroom.css), so it never covers content. It shows once an analysis is
// on screen, or while it has something to say (following the teacher).
export function classroomBar() {
  if (bar) return bar;
  bar = document.getElementById("classroom-slot");
  bar.classList.add("classroom-bar");
  bar.setAttribute("role", "region");
  bar.dataset.i18nAttr = "aria-label:classroom.label";
  bar.setAttribute("aria-label", t("classroom.label"));
  const status = document.createElement("span");
  status.className = "classroom-status";
  status.setAttribute("role", "status");
  status.setAttribute("aria-live", "polite");
  bar.append(status);
  updateVisibility();
  return bar;
}

let said = null;

function updateVisibility() {
  if (bar) bar.hidden = !latestView.analysisId && !said;
}

function renderStatus() {
  if (bar) bar.querySelector(".classroom-status").textContent = said ? t(said.key, said.params) : "";
}

// The toolbar's message: a string key and its params ("" for none), re-rendered on a language switch.
export function showStatus(key, params = {}) {
  classroomBar();
  said = key ? { key, params } : null;
  renderStatus();
  updateVisibility();
}

document.addEventListener("convlens:language", renderStatus);

// A student following the teacher: views are applied one at a time, each once the page shows the
// one before (of several that arrive meanwhile, the newest wins), so quick moves never leave the
// page on an older unit.
let nextView = null;
let applying = false;
export async function followView(view) {
  nextView = view;
  if (applying) return;
  applying = true;
  try {
    while (nextView) {
      const current = nextView;
      nextView = null;
      await whenShowing(current.analysisId);
      setView(current);
      await whenViewing(current);
      reveal(current);
    }
  } finally {
    applying = false;
  }
}

// Bring the enlarged channel and its arithmetic into sight when the teacher moved to another layer
// or channel, or the panel is out of sight (a unit move alone never pulls the student away from
// what they are reading beside it).
let revealed = "";
function reveal(view) {
  const panel = document.getElementById("channel-panel");
  if (!panel || panel.hidden) return;
  const rect = panel.getBoundingClientRect();
  const outOfSight = rect.bottom < 0 || rect.top > window.innerHeight;
  const place = `${view.analysisId}|${view.layer}|${view.channel}`;
  if (outOfSight || place !== revealed) panel.scrollIntoView({ behavior: "smooth", block: "start" });
  revealed = place;
}

const VIEW_TIMEOUT_MS = 10_000;

// Resolves once the page announces `view` (its layer, channel and unit), or after a while.
function whenViewing(view) {
  const matches = () => ["analysisId", "layer", "channel", "y", "x"].every(
    (field) => view[field] === undefined || latestView[field] === view[field],
  );
  if (matches()) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      document.removeEventListener("convlens:view", check);
      clearTimeout(timer);
      resolve();
    };
    const check = () => matches() && done();
    const timer = setTimeout(done, VIEW_TIMEOUT_MS);
    document.addEventListener("convlens:view", check);
  });
}

export function button(label, onClick, className = "secondary") {
  const element = document.createElement("button");
  element.type = "button";
  element.className = className;
  element.textContent = label;
  element.addEventListener("click", onClick);
  return element;
}
