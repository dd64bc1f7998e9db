// Shared by permalink.js and presenter.js: the classroom toolbar, the page's latest view, links.
// The page's main module announces every view change as a `convlens:view` event (see
// /work/notes/frontend-contract.md); this module remembers the latest one.

const VIEW_FIELDS = ["modelId", "analysisId", "layer", "channel", "y", "x"];
const NUMBER_FIELDS = ["channel", "y", "x"];

let latestView = {};
const showing = [];

document.addEventListener("convlens:view", (event) => {
  latestView = cleanView(event.detail || {});
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

// The small toolbar both modules put their buttons in (created once, styled by classroom.css).
export function classroomBar() {
  if (bar) return bar;
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = "/static/css/classroom.css";
  document.head.append(link);
  bar = document.createElement("aside");
  bar.className = "classroom-bar";
  bar.setAttribute("aria-label", "classroom");
  const status = document.createElement("span");
  status.className = "classroom-status";
  status.setAttribute("role", "status");
  status.setAttribute("aria-live", "polite");
  bar.append(status);
  document.body.append(bar);
  return bar;
}

export function showStatus(text) {
  classroomBar().querySelector(".classroom-status").textContent = text;
}

export function button(label, onClick, className = "secondary") {
  const element = document.createElement("button");
  element.type = "button";
  element.className = className;
  element.textContent = label;
  element.addEventListener("click", onClick);
  return element;
}
