// Permalinks: /a/<analysis>?layer=&channel=&y=&x= reopens that exact view, and "Copy link"
// puts the current view's permalink on the clipboard (for the projector or a chat).
import { registerStrings, t } from "./i18n.js";
import {
  button,
  classroomBar,
  copyText,
  currentView,
  permalinkFor,
  setView,
  showStatus,
  viewFromQuery,
  whenShowing,
} from "./classroom.js";

registerStrings({
  en: {
    "permalink.copy": "Copy link",
    "permalink.copied": "Link copied: {url}",
    "permalink.manual": "Copy this link: {url}",
  },
  zh: {
    "permalink.copy": "复制链接",
    "permalink.copied": "链接已复制：{url}",
    "permalink.manual": "请复制此链接：{url}",
  },
});

const page = document.body.dataset;
const wanted = viewFromQuery(new URLSearchParams(window.location.search));

// The main module renders the analysis named on <body>; once it shows it, open the linked view.
if (page.analysisId && Object.keys(wanted).length > 0) {
  whenShowing(page.analysisId).then(() => {
    setView({ modelId: page.modelId, analysisId: page.analysisId, ...wanted });
  });
}

const copy = button(t("permalink.copy"), async () => {
  const view = { analysisId: page.analysisId, ...currentView() };
  const url = new URL(permalinkFor(view), window.location.origin).href;
  showStatus(t((await copyText(url)) ? "permalink.copied" : "permalink.manual", { url }));
});
copy.dataset.i18n = "permalink.copy";
copy.disabled = !page.analysisId;
copy.id = "copy-permalink";
classroomBar().append(copy);

document.addEventListener("convlens:view", () => {
  copy.disabled = !currentView().analysisId;
});
