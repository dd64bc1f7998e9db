// Permalinks: /a/<analysis>?layer=&channel=&y=&x= reopens that exact view, and "Copy link"
// puts the current view's permalink on the clipboard (for the projector or a chat). The address
// bar always holds the permalink of what is on screen (history.replaceState, no new entries).
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
  showStatus((await copyText(url)) ? "permalink.copied" : "permalink.manual", { url });
});
copy.dataset.i18n = "permalink.copy";
copy.disabled = !page.analysisId;
copy.id = "copy-permalink";
classroomBar().append(copy);

// The address of the current view; `follow` stays (a student following the teacher reloads into
// the session). Pointer moves announce many views: the address follows at most every ADDRESS_MS.
const ADDRESS_MS = 200;
let addressTimer = 0;

function updateAddress() {
  addressTimer = 0;
  const view = currentView();
  const follow = new URLSearchParams(window.location.search).get("follow");
  const extra = follow ? { follow } : {};
  let target = null;
  if (view.analysisId) target = permalinkFor(view, extra);
  else if (window.location.pathname.startsWith("/a/")) target = follow ? `/?follow=${encodeURIComponent(follow)}` : "/";
  if (target && target !== window.location.pathname + window.location.search) {
    window.history.replaceState(null, "", target);
  }
}

document.addEventListener("convlens:view", () => {
  copy.disabled = !currentView().analysisId;
  if (!addressTimer) addressTimer = setTimeout(updateAddress, ADDRESS_MS);
});
