"""One Chinese word per concept: the lessons' texts, the playground's explanations, every template
and every JavaScript module use the glossary's term, never a variant it rejects."""

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.glossary import GLOSSARY, avoided_terms
from app.core.lessons.course import LESSONS
from app.core.lessons.gallery import NETWORKS
from app.core.lessons.parameters import COMPARISONS
from app.core.lessons.presets import PRESETS
from app.core.lessons.sizes import SIZE_EXAMPLES
from app.core.lessons.text import Text
from app.core.playground import AxisFit
from app.paths import STATIC_DIR, TEMPLATES_DIR


def texts(value: object) -> Iterator[Text]:
    """Every Text in dataclasses, tuples, lists and dicts (sources and citations are plain str)."""
    if isinstance(value, Text):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            yield from texts(getattr(value, item.name))
    elif isinstance(value, tuple | list):
        for item in value:
            yield from texts(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from texts(item)


def lesson_chinese() -> list[str]:
    content = (LESSONS, PRESETS, COMPARISONS, SIZE_EXAMPLES, NETWORKS)
    fits = [AxisFit("width", 7, 3, stride, 0, 1).explanation()["zh"] for stride in (1, 2, 3)]
    return [text.zh for text in texts(content)] + fits


def interface_files() -> list[Path]:
    return sorted(STATIC_DIR.glob("js/**/*.js")) + sorted(TEMPLATES_DIR.glob("**/*.html"))


def slips(text: str) -> list[str]:
    return [
        f"{variant} → {term.zh}" for variant, term in avoided_terms().items() if variant in text
    ]


def test_the_glossary_is_one_word_per_concept() -> None:
    chosen = [term.zh for term in GLOSSARY]
    assert len(chosen) == len(set(chosen))
    avoided = avoided_terms()
    assert not set(chosen) & set(avoided), "a chosen word is also rejected"
    assert avoided["过滤器"].zh == "滤波器" and avoided["步长"].zh == "步幅"


def test_lessons_and_playground_use_the_glossary() -> None:
    strings = lesson_chinese()
    assert len(strings) > 200
    found = {text: slips(text) for text in strings if slips(text)}
    assert found == {}


@pytest.mark.parametrize(
    "path", interface_files(), ids=lambda path: str(path.relative_to(STATIC_DIR.parent))
)
def test_pages_and_scripts_use_the_glossary(path: Path) -> None:
    assert slips(path.read_text(encoding="utf-8")) == []


def test_every_lesson_text_is_translated_in_full() -> None:
    """Chinese exists for every text, and a sentence in English is not a formula alone in Chinese
    (lessons 3 and 5 once ended their summaries after the formula)."""
    for text in texts((LESSONS, PRESETS, COMPARISONS, SIZE_EXAMPLES, NETWORKS)):
        assert text.zh.strip(), text
        english_words = [word for word in text.en.split() if word.isalpha() and len(word) > 2]
        if len(english_words) >= 3:
            assert any("\u4e00" <= char <= "\u9fff" for char in text.zh), text
