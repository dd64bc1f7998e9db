// First-layer filters of the trained model beside those of a randomly initialised twin, and what
// their neighbour correlations support (the server's verdict, worded with both numbers).
import * as api from "../../api.js";
import { el, fill, formatNumber } from "../../format.js";
import { t } from "../../i18n.js";
import { card, latest, picture } from "./common.js";

export function mountFiltersCompare(grid, ctx) {
  const view = card("attr.filters.title", "attr.filters.help");
  const figure = el("div", { class: "attr-pair" });
  const verdict = el("p", { class: "small attr-filters-verdict" });
  view.body.append(figure, verdict);
  grid.append(view.root);
  const side = (bank, key) => el("figure", {},
    picture(bank.atlas_url, t(key, { value: "" }), true),
    el("figcaption", { class: "small", text: t(key, { value: formatNumber(bank.neighbour_correlation, 2) }) }));
  latest(view)(
    () => api.getFirstLayerFilters(ctx.modelId),
    (body) => {
      fill(figure, side(body.trained, "attr.filters.trained"), side(body.random, "attr.filters.random"));
      verdict.dataset.verdict = body.verdict;
      verdict.textContent = t(`attr.filters.${body.verdict}`, {
        trained: formatNumber(body.trained.neighbour_correlation, 2),
        random: formatNumber(body.random.neighbour_correlation, 2),
      });
    },
  );
}
