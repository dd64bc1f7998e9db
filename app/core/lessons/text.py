"""Bilingual text: every string a lesson shows exists in English and Chinese."""

from typing import NamedTuple


class Text(NamedTuple):
    """One piece of lesson text in both languages."""

    en: str
    zh: str

    def to_json(self) -> dict[str, str]:
        return {"en": self.en, "zh": self.zh}
