// Presenter mode: the teacher's page broadcasts its view; students who open the follow link see
// the same analysis, layer, channel and unit as it changes (server-sent events).
import { registerStrings, t } from "./i18n.js";
import {
  button,
  classroomBar,
  cleanView,
  copyText,
  currentView,
  permalinkFor,
  setView,
  showStatus,
  whenShowing,
} from "./classroom.js";

registerStrings({
  en: {
    "presenter.start": "Present",
    "presenter.stop": "Stop presenting",
    "presenter.live": "Presenting — students open: {url}",
    "presenter.copied": "Follow link copied: {url}",
    "presenter.failed": "Could not start presenting ({status}).",
    "presenter.lost": "The presenter session ended.",
    "follow.on": "Following the teacher.",
    "follow.stop": "Stop following",
    "follow.ended": "The teacher ended the session.",
    "follow.retry": "Connection lost — reconnecting…",
  },
  zh: {
    "presenter.start": "演示",
    "presenter.stop": "停止演示",
    "presenter.live": "正在演示 — 学生打开：{url}",
    "presenter.copied": "跟随链接已复制：{url}",
    "presenter.failed": "无法开始演示（{status}）。",
    "presenter.lost": "演示会话已结束。",
    "follow.on": "正在跟随老师。",
    "follow.stop": "停止跟随",
    "follow.ended": "老师已结束演示。",
    "follow.retry": "连接中断，正在重连…",
  },
});

const STORAGE_KEY = "convlens.presenter";
const SEND_EVERY_MS = 150;
const root = document.documentElement;

function savedSession() {
  try {
    return JSON.parse(sessionStorage.getItem(STORAGE_KEY));
  } catch {
    return null;
  }
}

function saveSession(session) {
  try {
    if (session) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
    else sessionStorage.removeItem(STORAGE_KEY);
  } catch { /* presenting still works on this page */ }
}

// ---- the teacher's side -------------------------------------------------------------------

let presenting = null;
let queued = null;
let timer = null;

function followUrl(session) {
  return new URL(`/?follow=${encodeURIComponent(session.id)}`, window.location.origin).href;
}

async function sendView() {
  timer = null;
  const view = queued;
  queued = null;
  if (!presenting || !view) return;
  const response = await fetch(`/api/v1/sessions/${encodeURIComponent(presenting.id)}/view`, {
    method: "POST",
    headers: { Authorization: `Bearer ${presenting.token}`, "Content-Type": "application/json" },
    body: JSON.stringify(view),
  }).catch(() => null);
  if (response && (response.status === 404 || response.status === 403)) {
    stopPresenting(false);
    showStatus(t("presenter.lost"));
  }
}

// Views change on every mouse move: send the newest one at most every SEND_EVERY_MS.
function queueView(view) {
  queued = cleanView(view);
  if (!timer) timer = setTimeout(sendView, SEND_EVERY_MS);
}

function onView(event) {
  if (presenting) queueView(event.detail || {});
}

function present(session) {
  presenting = session;
  saveSession(session);
  root.classList.add("large-text");
  presentButton.textContent = t("presenter.stop");
  presentButton.dataset.i18n = "presenter.stop";
  showStatus(t("presenter.live", { url: followUrl(session) }));
  if (currentView().analysisId) queueView(currentView());
}

async function startPresenting() {
  const response = await fetch("/api/v1/sessions", { method: "POST" }).catch(() => null);
  if (!response || !response.ok) {
    showStatus(t("presenter.failed", { status: response ? response.status : "offline" }));
    return;
  }
  const body = await response.json();
  present({ id: body.session_id, token: body.presenter_token });
  const url = followUrl(presenting);
  if (await copyText(url)) showStatus(t("presenter.copied", { url }));
}

async function stopPresenting(tellServer = true) {
  const session = presenting;
  presenting = null;
  saveSession(null);
  root.classList.remove("large-text");
  presentButton.textContent = t("presenter.start");
  presentButton.dataset.i18n = "presenter.start";
  showStatus("");
  if (tellServer && session) {
    await fetch(`/api/v1/sessions/${encodeURIComponent(session.id)}`, {
      method: "DELETE",
      headers: { Authorization: `Bearer ${session.token}` },
    }).catch(() => null);
  }
}

// ---- the students' side -------------------------------------------------------------------

function follow(sessionId) {
  const source = new EventSource(`/api/v1/sessions/${encodeURIComponent(sessionId)}/events`);
  showStatus(t("follow.on"));
  source.addEventListener("view", async (event) => {
    const view = cleanView(JSON.parse(event.data));
    showStatus(t("follow.on"));
    const here = currentView().analysisId || document.body.dataset.analysisId;
    if (view.analysisId && view.analysisId !== here) {
      window.location.assign(permalinkFor(view, { follow: sessionId }));
      return;
    }
    await whenShowing(view.analysisId);
    setView(view);
  });
  source.addEventListener("end", () => {
    source.close();
    showStatus(t("follow.ended"));
  });
  source.addEventListener("error", () => {
    if (source.readyState !== EventSource.CLOSED) showStatus(t("follow.retry"));
  });
  const stop = button(t("follow.stop"), () => {
    source.close();
    stop.remove();
    showStatus("");
    const url = new URL(window.location.href);
    url.searchParams.delete("follow");
    window.history.replaceState(null, "", url);
  });
  stop.dataset.i18n = "follow.stop";
  classroomBar().append(stop);
}

// ---- start-up ------------------------------------------------------------------------------

const presentButton = button(t("presenter.start"), () => {
  if (presenting) stopPresenting();
  else startPresenting();
});
presentButton.id = "present-toggle";
presentButton.dataset.i18n = "presenter.start";
document.addEventListener("convlens:view", onView);

const followId = new URLSearchParams(window.location.search).get("follow");
if (followId && /^[A-Za-z0-9_-]{16}$/.test(followId)) {
  follow(followId);
} else {
  classroomBar().append(presentButton);
  const saved = savedSession();
  if (saved && saved.id && saved.token) present(saved);
}
