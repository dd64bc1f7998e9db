// Live occlusion: a square in the spec's fill (grey for photos, black for digits) that the student
// drags over the input with the mouse, a finger or the arrow keys; the top five and the chosen
// class's score come back for every position (GET …/occlusion/live). At most one request is in
// flight, and the next one always carries the latest position, so a fast drag skips positions
// instead of queueing them; the card shows how many answers arrive per second.
import * as api from "../../api.js";
import { describeError } from "../../status.js";
import { el, fill, formatNumber, formatPercent } from "../../format.js";
import { t } from "../../i18n.js";
import { card, isSmallInput, labelled } from "./common.js";

const RATE_WINDOW_MS = 2000;
const KEY_MOVES = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };

const clamp = (value, low, high) => Math.min(high, Math.max(low, value));
const signed = (value) => `${value >= 0 ? "+" : "−"}${formatNumber(Math.abs(value), 3)}`;

export function liveOcclusionCard(ctx, inputUrl, getClass) {
  const view = card("attr.live.title", "attr.live.help");
  const { height, width } = ctx.model.input;
  const side = Math.min(height, width);
  const size = el("input", { type: "range", class: "live-size", min: "1", max: String(side), value: String(Math.max(1, Math.round(side / 7))) });
  const sizeText = el("output", { class: "small", text: size.value });
  const grey = Math.round(ctx.model.occlusion_fill * 255);
  const square = el("div", {
    class: "live-square", tabindex: "0", role: "slider", "aria-label": t("attr.live.square"),
    "aria-valuemin": "0", style: { background: `rgb(${grey} ${grey} ${grey})` },
  });
  const stage = el("div", { class: `attr-stack live-stage${isSmallInput(ctx.model) ? " pixelated" : ""}` },
    el("img", { src: inputUrl, alt: t("attr.live.image"), draggable: "false" }), square);
  const score = el("p", { class: "small live-score", text: t("attr.live.start") });
  const top5 = el("ol", { class: "live-top5 small", "aria-label": t("attr.live.top5") });
  const rate = el("p", { class: "small muted live-rate" });
  view.body.append(el("div", { class: "attr-controls" }, labelled(t("attr.live.size"), el("span", { class: "live-size-row" }, size, sizeText))),
    el("div", { class: "attr-pair" }, stage, el("div", { class: "live-answer" }, score, top5, rate)));

  const position = { top: Math.round((height - Number(size.value)) / 2), left: Math.round((width - Number(size.value)) / 2) };
  const arrivals = [];
  let started = false;
  let inFlight = false;
  let sent = "";

  function place() {
    const length = Number(size.value);
    position.top = clamp(position.top, 0, height - length);
    position.left = clamp(position.left, 0, width - length);
    Object.assign(square.style, {
      top: `${(100 * position.top) / height}%`, left: `${(100 * position.left) / width}%`,
      width: `${(100 * length) / width}%`, height: `${(100 * length) / height}%`,
    });
    Object.assign(square.dataset, { top: String(position.top), left: String(position.left), size: String(length) });
    square.setAttribute("aria-valuemax", String(width - length));
    square.setAttribute("aria-valuenow", String(position.left));
    square.setAttribute("aria-valuetext", t("attr.live.position", { ...position, size: length }));
    sizeText.textContent = size.value;
  }

  function show(body, elapsed) {
    const now = performance.now();
    arrivals.push(now);
    while (arrivals.length && arrivals[0] < now - RATE_WINDOW_MS) arrivals.shift();
    const span = arrivals.length > 1 ? (arrivals[arrivals.length - 1] - arrivals[0]) / 1000 : 0;
    const perSecond = span > 0 ? (arrivals.length - 1) / span : 0;
    view.root.dataset.top = String(body.top);
    view.root.dataset.left = String(body.left);
    view.root.dataset.size = String(body.size);
    Object.assign(score.dataset, { score: String(body.score), classIndex: String(body.class_index) });
    score.textContent = t("attr.live.score", {
      label: body.label, score: formatNumber(body.score, 3), clean: formatNumber(body.clean_score, 3), change: signed(body.score - body.clean_score),
    });
    fill(top5, body.predictions.map((p) => el("li", { dataset: { index: String(p.index), probability: String(p.probability) } },
      el("span", { translate: "no", text: p.label }), ` ${formatPercent(p.probability)}`)));
    rate.dataset.rate = String(perSecond);
    rate.textContent = t("attr.live.rate", { rate: perSecond.toFixed(1), ms: Math.round(elapsed) });
  }

  // Sends the latest position when nothing is in flight; an answer triggers the next send.
  async function pump() {
    if (inFlight || !started || !view.root.isConnected) return;
    const params = { top: position.top, left: position.left, size: Number(size.value), class_index: getClass() };
    const key = JSON.stringify(params);
    if (key === sent) return;
    inFlight = true;
    sent = key;
    const begun = performance.now();
    try {
      show(await api.getLiveOcclusion(ctx.analysisId, params), performance.now() - begun);
      view.status.textContent = "";
    } catch (error) {
      view.status.textContent = describeError(error);
    } finally {
      inFlight = false;
    }
    pump();
  }

  function moveTo(top, left) {
    Object.assign(position, { top: Math.round(top), left: Math.round(left) });
    started = true;
    place();
    pump();
  }

  // The pointer holds the square by its centre, in input pixels.
  function follow(event) {
    const box = stage.getBoundingClientRect();
    const length = Number(size.value);
    moveTo(((event.clientY - box.top) / box.height) * height - length / 2, ((event.clientX - box.left) / box.width) * width - length / 2);
  }
  stage.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    stage.setPointerCapture(event.pointerId);
    square.focus({ preventScroll: true });
    follow(event);
  });
  stage.addEventListener("pointermove", (event) => { if (stage.hasPointerCapture(event.pointerId)) follow(event); });
  square.addEventListener("keydown", (event) => {
    const move = KEY_MOVES[event.key];
    if (!move) return;
    event.preventDefault();
    const step = Math.max(1, Math.round(side / 56)) * (event.shiftKey ? 4 : 1);
    moveTo(position.top + move[0] * step, position.left + move[1] * step);
  });
  size.addEventListener("input", () => moveTo(position.top, position.left));
  place();

  return { root: view.root, refresh: () => { sent = ""; pump(); } };
}
