// Presenter mode: the teacher's page broadcasts its view; students who open the follow link see
// the same analysis, layer, channel and unit as it changes (server-sent events). While presenting,
// the page sends a heartbeat: a session with neither views nor heartbeats ends on the server.
// A server that sets a presenter key asks for it once per tab.
import { registerStrings, t } from "./i18n.js";
import { applyLargeText, savedLargeText } from "./prefs.js";
import {
  button,
  classroomBar,
  cleanView,
  copyText,
  currentView,
  followView,
  permalinkFor,
  showStatus,
} from "./classroom.js";

registerStrings({
  en: {
    "presenter.start": "Present",
    "presenter.stop": "Stop presenting",
    "presenter.live": "Presenting — students open: {url}",
    "presenter.copied": "Follow link copied: {url}",
    "presenter.failed": "Could not start presenting ({status}).",
    "presenter.lost": "The presenter session ended.",
    "presenter.key": "This server needs the presenter key:",
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
    "presenter.key": "此服务器需要演示密钥：",
    "follow.on": "正在跟随老师。",
    "follow.stop": "停止跟随",
    "follow.ended": "老师已结束演示。",
    "follow.retry": "连接中断，正在重连…",
  },
});

const STORAGE_KEY = "convlens.presenter";
const KEY_STORAGE_KEY = "convlens.presenter-key";
const SEND_EVERY_MS = 150;
const MIN_HEARTBEAT_MS = 5000;
const KEY_ERRORS = ["presenter_key_required", "wrong_presenter_key"];

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

let presenterKey = null;
try {
  presenterKey = sessionStorage.getItem(KEY_STORAGE_KEY);
} catch { /* asked again when needed */ }

function rememberKey(key) {
  presenterKey = key;
  try {
    sessionStorage.setItem(KEY_STORAGE_KEY, key);
  } catch { /* kept for this page only */ }
}

// Every request that creates or drives a session: the token (once there is a session) and the
// presenter key (when the server asked for one).
function presenterHeaders(session, extra = {}) {
  const headers = { ...extra };
  if (session) headers.Authorization = `Bearer ${session.token}`;
  if (presenterKey) headers["X-Presenter-Key"] = presenterKey;
  return headers;
}

async function errorCode(response) {
  try {
    return (await response.clone().json()).error.code;
  } catch {
    return null;
  }
}

// ---- the teacher's side -------------------------------------------------------------------

let presenting = null;
let queued = null;
let timer = null;
let heartbeat = null;

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
    headers: presenterHeaders(presenting, { "Content-Type": "application/json" }),
    body: JSON.stringify(view),
  }).catch(() => null);
  endIfLost(response);
}

// The server forgot the session (expired, ended elsewhere) or no longer accepts this presenter.
function endIfLost(response) {
  if (response && [401, 403, 404].includes(response.status)) {
    stopPresenting(false);
    showStatus("presenter.lost");
  }
}

async function sendHeartbeat() {
  if (!presenting) return;
  const url = `/api/v1/sessions/${encodeURIComponent(presenting.id)}/heartbeat`;
  const response = await fetch(url, {
    method: "POST",
    headers: presenterHeaders(presenting),
  }).catch(() => null);
  endIfLost(response);
}

// Views change on every mouse move: send the newest one at most every SEND_EVERY_MS.
function queueView(view) {
  queued = cleanView(view);
  if (!timer) timer = setTimeout(sendView, SEND_EVERY_MS);
}

function onView(event) {
  if (presenting && event.detail?.analysisId) queueView(event.detail);
}

function present(session) {
  presenting = session;
  saveSession(session);
  // Three beats per idle period: one lost request never ends the session.
  const every = Math.max(MIN_HEARTBEAT_MS, ((session.idleSeconds || 900) * 1000) / 3);
  clearInterval(heartbeat);
  heartbeat = setInterval(sendHeartbeat, every);
  applyLargeText(true); // for the projector; not saved, so stopping returns to the user's setting
  presentButton.textContent = t("presenter.stop");
  presentButton.dataset.i18n = "presenter.stop";
  showStatus("presenter.live", { url: followUrl(session) });
  if (currentView().analysisId) queueView(currentView());
}

function createSession() {
  return fetch("/api/v1/sessions", { method: "POST", headers: presenterHeaders(null) }).catch(
    () => null,
  );
}

async function startPresenting() {
  let response = await createSession();
  if (response && KEY_ERRORS.includes(await errorCode(response))) {
    const key = window.prompt(t("presenter.key"));
    if (key) {
      rememberKey(key.trim());
      response = await createSession();
    }
  }
  if (!response || !response.ok) {
    showStatus("presenter.failed", { status: response ? response.status : "—" });
    return;
  }
  const body = await response.json();
  present({ id: body.session_id, token: body.presenter_token, idleSeconds: body.idle_seconds });
  const url = followUrl(presenting);
  if (await copyText(url)) showStatus("presenter.copied", { url });
}

async function stopPresenting(tellServer = true) {
  const session = presenting;
  presenting = null;
  clearInterval(heartbeat);
  heartbeat = null;
  saveSession(null);
  applyLargeText(savedLargeText());
  presentButton.textContent = t("presenter.start");
  presentButton.dataset.i18n = "presenter.start";
  showStatus("");
  if (tellServer && session) {
    await fetch(`/api/v1/sessions/${encodeURIComponent(session.id)}`, {
      method: "DELETE",
      headers: presenterHeaders(session),
    }).catch(() => null);
  }
}

// ---- the students' side -------------------------------------------------------------------

function follow(sessionId) {
  const source = new EventSource(`/api/v1/sessions/${encodeURIComponent(sessionId)}/events`);
  showStatus("follow.on");
  source.addEventListener("view", (event) => {
    const view = cleanView(JSON.parse(event.data));
    showStatus("follow.on");
    const here = currentView().analysisId || document.body.dataset.analysisId;
    if (view.analysisId && view.analysisId !== here) {
      window.location.assign(permalinkFor(view, { follow: sessionId }));
      return;
    }
    followView(view);
  });
  source.addEventListener("end", () => {
    source.close();
    showStatus("follow.ended");
  });
  source.addEventListener("error", () => {
    if (source.readyState !== EventSource.CLOSED) showStatus("follow.retry");
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
