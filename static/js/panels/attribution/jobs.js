// Long computations (occlusion, SmoothGrad, feature visualization) as server jobs: the card shows
// the server's own count of what is done, and Cancel stops the work on the server (DELETE).
// A task is {begin(), poll() → {status, done, total, result, error}, cancel(), unit}; the two
// kinds of server job (analysis jobs and feature visualizations) are adapted below.
import { ApiError } from "../../api.js";
import { el } from "../../format.js";
import { t } from "../../i18n.js";
import { describeError } from "../../status.js";

const POLL_MS = 400;
const MAX_BUSY_RETRIES = 30;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// One request, its JSON and status; errors as the API client's ApiError (jobs need 202 and DELETE).
export async function send(url, method = "GET") {
  const response = await fetch(url, { method });
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (!response.ok) throw new ApiError(response.status, body, Number(response.headers.get("retry-after")) || 0);
  return { status: response.status, body };
}

// Analysis jobs: POST …/occlusion/jobs or …/saliency/jobs starts one; its url is polled and deleted.
export function analysisJob(startUrl, unit) {
  let url = null;
  return {
    unit,
    begin: async () => { url = (await send(startUrl, "POST")).body.url; },
    poll: async () => (await send(url)).body,
    cancel: async () => { if (url) await send(url, "DELETE").catch(() => {}); },
  };
}

// Feature visualization: the GET itself starts the job (202 while it runs); DELETE withdraws.
export function featureVisJob(url) {
  return {
    unit: "attr.progress.steps",
    begin: async () => {},
    poll: async () => {
      const { status, body } = await send(url);
      return { status: status === 202 ? "running" : "done", done: body.done, total: body.steps, result: body };
    },
    cancel: async () => { await send(url, "DELETE").catch(() => {}); },
  };
}

// A retry loop for a full server (503) or a client at its share of jobs (429): both say when.
async function patiently(call, onWait) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await call();
    } catch (error) {
      const busy = error instanceof ApiError && [429, 503].includes(error.status);
      if (!busy || attempt >= MAX_BUSY_RETRIES) throw error;
      onWait();
      await sleep(Math.max(1, error.retryAfter) * 1000);
    }
  }
}

// The progress line of a card: a bar, "62 of 169 positions · 37 %" and Cancel.
function progressLine() {
  const bar = el("progress", { max: "1", value: "0", "aria-label": t("attr.progress") });
  const text = el("span", { class: "small" });
  const cancel = el("button", { type: "button", class: "attr-cancel", text: t("attr.cancel") });
  const root = el("div", { class: "attr-progress", hidden: true }, bar, text, cancel);
  return {
    root, cancel,
    show(done, total, unit) {
      root.hidden = false;
      if (!total) {
        bar.removeAttribute("value");  // indeterminate until the server knows the total
        text.textContent = t("attr.progress.queued");
        return;
      }
      bar.value = done / total;
      root.dataset.done = String(done);
      root.dataset.total = String(total);
      text.textContent = `${t(unit, { done, total })} · ${Math.floor((100 * done) / total)} %`;
    },
    hide() { root.hidden = true; },
  };
}

// `run(task, show)`: starts the task (cancelling the card's previous one), shows its progress
// and hands the result to `show`. A task whose card left the page is cancelled at its next poll.
export function jobRunner(view) {
  const line = progressLine();
  view.status.before(line.root);
  let current = null;

  async function stop(task, { announce }) {
    if (!task || task.over) return;
    task.over = true;
    line.hide();
    if (announce) view.status.textContent = t("attr.cancelled");
    await task.cancel();
  }
  line.cancel.addEventListener("click", () => stop(current, { announce: true }));

  async function run(task, show) {
    await stop(current, { announce: false });
    current = task;
    view.status.textContent = "";
    view.status.classList.remove("error");
    line.show(0, 0, task.unit);
    const waiting = () => line.show(0, 0, task.unit);
    try {
      await patiently(() => task.begin(), waiting);
      while (!task.over) {
        if (!view.root.isConnected) {
          await stop(task, { announce: false });
          return;
        }
        const state = await patiently(() => task.poll(), waiting);
        if (task.over) return;
        line.show(state.done, state.total, task.unit);
        if (state.status === "done") {
          task.over = true;
          line.hide();
          show(state.result);
          return;
        }
        if (state.status === "failed" || state.status === "cancelled") {
          task.over = true;
          line.hide();
          view.status.textContent = state.status === "failed" ? describeError(state.error) : t("attr.cancelled");
          view.status.classList.toggle("error", state.status === "failed");
          return;
        }
        await sleep(POLL_MS);
      }
    } catch (error) {
      if (task.over) return;
      task.over = true;
      line.hide();
      view.status.textContent = describeError(error);
      view.status.classList.add("error");
    }
  }
  return { run, stop: () => stop(current, { announce: false }) };
}
