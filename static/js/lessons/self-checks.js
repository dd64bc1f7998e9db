// The self-checks that end a lesson (GET /api/v1/lessons/{slug}/checks): each question was computed
// from a real model; the student's answer is graded by the server (POST …/checks/{id}), which
// sends back the expected numbers and the worked solution in both languages either way.
import * as api from "../api.js";
import { el } from "../format.js";
import { explainError } from "./preset-runner.js";
import { bi, biString } from "./strings.js";

const shape = (numbers) => numbers.join("×");

function verdict(grade) {
  const expected = shape(grade.expected);
  return [
    el("p", { class: grade.correct ? "verdict right" : "verdict wrong" }, biString(grade.correct ? "checks.right" : "checks.wrong", { expected })),
    el("p", { class: "solution" }, bi(grade.solution)),
  ];
}

function checkItem(slug, check) {
  const input = el("input", { type: "text", name: "answer", autocomplete: "off", spellcheck: "false", required: true, maxlength: "200" });
  const result = el("div", { class: "check-result", role: "status" });
  const button = el("button", { type: "submit" }, biString("checks.check"));
  const form = el("form", { class: "check-form" },
    el("label", {}, el("span", { class: "check-label" }, biString("checks.answer")), input),
    button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      const grade = await api.answerSelfCheck(slug, check.id, input.value);
      result.dataset.correct = String(grade.correct);
      result.dataset.expected = shape(grade.expected);
      result.replaceChildren(...verdict(grade));
    } catch (error) {
      result.replaceChildren(explainError(error));
    } finally {
      button.disabled = false;
    }
  });
  return el("li", { class: "self-check", dataset: { check: check.id } },
    el("p", { class: "question" }, bi(check.question)), form, result);
}

export async function mountSelfChecks(section) {
  const list = section.querySelector(".check-list");
  const slug = section.dataset.lesson;
  try {
    const { checks } = await api.getSelfChecks(slug);
    list.replaceChildren(...checks.map((check) => checkItem(slug, check)));
    section.hidden = checks.length === 0;
  } catch (error) {
    list.replaceChildren(el("li", {}, explainError(error)));
  }
  section.dataset.state = "shown";
}
