"""Find interface text a Chinese reader would see in English.

The page reports every string a person can perceive: visible text nodes, the accessible names and
hints screen readers announce (aria-label, title, placeholder, alt), the options of visible selects
and the document title. Text inside `code`, `kbd`, `samp`, `var` and `cite` is exempt (identifiers,
keys, formulas, paper titles), and so is anything marked `translate="no"` (the HTML attribute for
"names, not words") and whatever declares another language with `lang` (the API reference says it
is English: Swagger UI has no translations). Of the rest, a word is English when it
has two or more Latin letters, holds no digit or underscore (identifiers: conv1, _blocks.15,
im2col), is not part of a file path or a function name in a formula (max(…)), is not a proper noun
or unit below, and is not one of the `identifiers` a test passes (layer names and PyTorch types,
from the API).
"""

import re

from playwright.sync_api import Page

# Names every language writes in Latin letters: networks, libraries, datasets, abbreviations, keys.
PROPER_NOUNS = frozenset(
    {
        "convlens",
        "English",
        "PyTorch",
        "torchvision",
        "LeNet",
        "AlexNet",
        "ZFNet",
        "ZF",
        "Net",
        "VGG",
        "GoogLeNet",
        "Inception",
        "ResNet",
        "DenseNet",
        "EfficientNet",
        "Lite",
        "MNIST",
        "ImageNet",
        "ReLU",
        "CNN",
        "API",
        "JSON",
        "OpenAPI",
        "Swagger",
        "UI",
        "Home",
        "End",
        "Shift",
        "ARGB",
        "RGB",
        # Units.
        "px",
        "KB",
        "MB",
        "GB",
        "TB",
        "MiB",
    }
)

WORD = re.compile(r"[A-Za-z][A-Za-z'’]*")
# Identifiers: anything with a digit or underscore, file paths, and function names in formulas.
IDENTIFIER = re.compile(r"\w[\w.-]*(?:/[\w.-]+)+|[\w.^₀-₉ᵢ]*[\d_][\w.^₀-₉ᵢ]*|[A-Za-z]+(?=\()")

# Runs in the page: every perceivable string with a short path to where it is.
COLLECT = """() => {
  const exempt = "script, style, noscript, template, code, kbd, samp, var, cite, [translate=no]";
  const where = (element) => {
    const parts = [];
    for (let node = element; node && node !== document.body && parts.length < 4;
         node = node.parentElement) {
      parts.unshift(node.tagName.toLowerCase() + (node.id ? `#${node.id}` : "")
        + (node.classList.length ? `.${[...node.classList].join(".")}` : ""));
    }
    return parts.join(" > ");
  };
  const shown = (element) => element.checkVisibility({ visibilityProperty: true });
  const primary = (tag) => (tag || "").toLowerCase().split("-")[0];
  const page = primary(document.documentElement.lang);
  const foreign = (element) => {
    const declared = element.closest("[lang]");
    return declared && declared !== document.documentElement && primary(declared.lang) !== page;
  };
  const found = [{ text: document.title, where: "title" }];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const parent = walker.currentNode.parentElement;
    const text = walker.currentNode.textContent.trim();
    if (!text || !parent || parent.closest(exempt) || !shown(parent) || foreign(parent)) continue;
    found.push({ text, where: where(parent) });
  }
  const attributes = ["aria-label", "title", "placeholder", "alt", "aria-description"];
  for (const element of document.body.querySelectorAll("*")) {
    if (element.closest(exempt) || !shown(element) || foreign(element)) continue;
    for (const name of attributes) {
      const text = element.getAttribute(name);
      if (text) found.push({ text, where: `${where(element)} [${name}]` });
    }
    if (element.tagName === "SELECT") {
      for (const option of element.options) {
        if (option.closest(exempt)) continue;
        found.push({ text: option.text, where: `${where(element)} option` });
      }
    }
  }
  return found;
}"""


def english_words(text: str, identifiers: frozenset[str] = frozenset()) -> list[str]:
    """The words of `text` that are English rather than names, identifiers or formula symbols."""
    stripped = IDENTIFIER.sub(" ", text)
    allowed = PROPER_NOUNS | identifiers
    return [
        word
        for word in WORD.findall(stripped)
        if len(word) >= 2 and word.strip("'’") not in allowed
    ]


def interface_strings(page: Page) -> list[dict[str, str]]:
    """Every perceivable string of the interface: [{text, where}], exemptions left out."""
    return page.evaluate(COLLECT)


def untranslated(page: Page, identifiers: frozenset[str] = frozenset()) -> list[str]:
    """Every perceivable string on the page that still has English words, with where it is."""
    leftovers = []
    for item in interface_strings(page):
        words = english_words(item["text"], identifiers)
        if words:
            leftovers.append(f"{item['where']}: {item['text'][:120]!r} ({', '.join(words)})")
    return leftovers
