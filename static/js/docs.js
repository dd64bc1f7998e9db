// The API docs page: its own words in both languages, and the vendored Swagger UI on /openapi.json
// (loaded by a classic script before this module runs; kept out of the HTML: the CSP forbids inline
// scripts). Swagger UI has no translations, so the reference itself stays English (lang="en").
// Deep links are off: they put a link inside each operation's toggle button (nested controls); the
// scrolling code examples Swagger adds are made reachable by keyboard (they hold no control).
import { registerStrings } from "./i18n.js";

registerStrings({
  en: {
    "docs.page": "API docs · convlens",
    "docs.title": "The convlens API",
    "docs.intro": "Every number the pages show comes from this JSON API: predictions, feature maps, filters, receptive fields, lessons and the playground. Open an endpoint and press “Try it out” to send a real request.",
    "docs.english": "The reference below is generated from the code (its docstrings and response models) and is in English, like the field names of the JSON it describes.",
    "docs.back": "← Back to the app",
    "docs.schema": "The OpenAPI schema (JSON)",
    "docs.reference": "Endpoints",
  },
  zh: {
    "docs.page": "API 文档 · convlens",
    "docs.title": "convlens 的 API",
    "docs.intro": "页面上显示的每个数字都来自这个 JSON API：预测、特征图、滤波器、感受野、课程和卷积游乐场。展开一个接口，点击它右上角的按钮就能发送真实的请求。",
    "docs.english": "下面的接口参考由代码（文档字符串和响应模型）自动生成，只有英文版，与它所描述的 JSON 字段名一致。",
    "docs.back": "← 返回应用",
    "docs.schema": "OpenAPI 架构（JSON）",
    "docs.reference": "接口参考",
  },
});

const root = document.getElementById("swagger-ui");
new MutationObserver(() => {
  for (const example of root.querySelectorAll("pre.microlight:not([tabindex])")) example.tabIndex = 0;
}).observe(root, { childList: true, subtree: true });
window.SwaggerUIBundle({ url: root.dataset.openapiUrl, dom_id: "#swagger-ui", deepLinking: false });
