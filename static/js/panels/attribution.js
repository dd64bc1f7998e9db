// Attribution panel: Grad-CAM, saliency, occlusion for a chosen class; effective receptive field,
// feature visualization and top patches for the selected unit; trained vs random first filters.
// Mounted by main.js after each analysis: mountAttributionPanel(container, ctx) → {update}.
// Heatmaps arrive as PNG data URLs coloured on the server (app/core/attribution/colormap.py).
import * as api from "../api.js";
import { el, fill } from "../format.js";
import { t } from "../i18n.js";
import { mountClassMaps } from "./attribution/class_maps.js";
import { mountFiltersCompare } from "./attribution/filters_compare.js";
import "./attribution/strings.js";
import { countCards, labelled } from "./attribution/common.js";
import { mountUnitViews } from "./attribution/unit_views.js";

const STYLESHEET = "/static/css/attribution.css";

function ensureStylesheet() {
  if (document.querySelector(`link[href="${STYLESHEET}"]`)) return;
  document.head.append(el("link", { rel: "stylesheet", href: STYLESHEET }));
}

// "Top prediction" (the API's default), then the top 5 with probabilities, then every class.
function classOptions(model, predictions) {
  const options = [el("option", { value: "", text: t("attr.class.top") })];
  if (predictions.length) {
    options.push(el("optgroup", { label: t("attr.class.top5") },
      predictions.map((p) => el("option", { value: String(p.index), translate: "no", text: `${p.label} (${(p.probability * 100).toFixed(1)} %)` }))));
  }
  // Class labels are the model's own words (translate="no").
  options.push(el("optgroup", { label: t("attr.class.all") },
    model.labels.map((label, index) => el("option", { value: String(index), translate: "no", text: `${index} · ${label}` }))));
  return options;
}

export function mountAttributionPanel(container, ctx) {
  ensureStylesheet();
  const select = el("select", { class: "attr-class" }, classOptions(ctx.model, []));
  const getClass = () => (select.value === "" ? null : Number(select.value));
  const grid = el("div", { class: "attr-grid" });
  const help = el("p", { class: "help attr-intro" });
  fill(container,
    el("div", { class: "panel-head" },
      el("h2", {}, el("span", { class: "step", text: "9" }), " ", el("span", { text: t("attr.title") })),
      help),
    el("div", { class: "attr-controls" }, labelled(t("attr.class"), select)),
    grid);
  const classMaps = mountClassMaps(grid, ctx, getClass);
  const unitViews = mountUnitViews(grid, ctx);
  mountFiltersCompare(grid, ctx);
  countCards(grid, help, "attr.help");
  select.addEventListener("change", () => classMaps.refresh());
  api.getAnalysis(ctx.analysisId).then((analysis) => {
    const chosen = select.value;
    select.replaceChildren(...classOptions(ctx.model, analysis.predictions));
    select.value = chosen;
  }).catch(() => {});
  classMaps.refresh();
  unitViews.update(ctx.getSelection());
  return { update: (selection) => unitViews.update(selection) };
}
