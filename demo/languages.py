"""The page's two languages: every text of the page is written "中文 · English", and a page may show one side.

``in_language`` is the one splitter: the settings' labels (``demo.settings``), the page's texts
(``demo.layout``) and a lesson's caption in the status line (``demo.render``) all go through it.
"""
from __future__ import annotations

import re
from typing import Any

LANGS = ("both", "zh", "en")  # both side by side (the default), Chinese only, English only
SEP = " · "
CLASS_ENDED = "课堂已结束 · The class has ended"
# Symbols in front (an emoji, a ① of the presets) and Markdown stars at the end belong to both sides.
_PARTS = re.compile(r"^(?P<pre>[^\w\u3400-\u9fff]*(?:[\u2460-\u2473]\s*)?)(?P<body>.*?)(?P<post>\**)$", re.S)


def check_lang(lang: str) -> str:
    if lang not in LANGS:
        raise ValueError(f"lang={lang!r} is not allowed: choose one of {', '.join(LANGS)}")
    return lang


def in_language(text: str, lang: str) -> str:
    """One side of a "中文 · English" text ("zh" or "en"); "both", or a text in no one language ("top-k",
    "nn.RNN"): the text as it is."""
    if check_lang(lang) == "both" or SEP not in text:
        return text
    m = _PARTS.match(text)
    zh, _, en = m["body"].partition(SEP)
    return m["pre"] + (zh if lang == "zh" else en) + m["post"]


def either(zh: str, en: str, lang: str, sep: str = SEP) -> str:
    """A text written in each language: the one of ``lang``, or both ("both"), joined by ``sep``. For a text
    of several sentences (a banner, a heading), which ``in_language``'s one " · " cannot split."""
    lang = check_lang(lang)
    return zh if lang == "zh" else en if lang == "en" else f"{zh}{sep}{en}"


class Texts(list):
    """(component, attribute, text) of every text that a page in one language shows in that one
    (``Page.in_language``); calling it notes one and returns the component. A text is "中文 · English", the
    choices of a radio [("中文 · English", value), ...], or a dict of the text in each language."""

    def __call__(self, component: Any, text: str | list | dict, attr: str = "value") -> Any:
        self.append((component, attr, text))
        return component


def shown(text: str | list | dict, lang: str) -> Any:
    """One of ``Texts``' texts in ``lang``."""
    if isinstance(text, dict):
        return text[lang]
    if isinstance(text, list):
        return [(in_language(label, lang), value) for label, value in text]
    return in_language(text, lang)
