"""A link's settings: ``?preset=scratch-consecutive&lr=50&clip=off&epochs=120`` read by the form's rules, and written.

``from_query`` reads a link's query parameters (a preset first, then any setting by its name) and checks
them by the form's rules; ``to_query`` writes the shortest link that gives a form's values; ``lang_of``
reads the page language a link asks for. No gradio here.
"""
from __future__ import annotations

import re
from typing import Any, Mapping
from urllib.parse import quote, urlencode

from charrnn.config import PRESETS
from demo.languages import LANGS
from demo.rules import form_to_config, parse_prefixes, preset_form
from demo.settings import BY_NAME, DEFAULTS, NAMES, SETTINGS, Setting, complete

def lang_of(params: Mapping[str, Any]) -> str:
    """The interface language a link asks for: ``lang=zh`` or ``lang=en`` (also zh-CN, en-US...); else "both"."""
    word = _one(params.get("lang", "")).strip().lower().replace("_", "-")
    if word in LANGS:
        return word
    for lang in ("zh", "en"):
        if word.startswith(lang + "-"):
            return lang
    return "both"


def _one(value: Any) -> str:
    """One query value as text (a repeated parameter: its last value)."""
    if isinstance(value, (list, tuple)):
        value = value[-1] if value else ""
    return "" if value is None else str(value)


# ?preset=scratch-consecutive&lr=50&clip=off&epochs=120: a preset first, then any setting by its name.
LINK_IGNORED = ("lesson", "lang", "class", "mode")  # parameters the app reads itself (a banner lists them)
GRADIO_OWN = ("__theme",)  # Gradio's own (?__theme=dark): ignored here and not offered to the page's users
NOT_FROM_LINK = ("corpus_file", "resume")                      # a file, or a checkpoint, cannot come with a link
LINK_NAMES: tuple[str, ...] = tuple(n for n in NAMES if n not in NOT_FROM_LINK)
TRUE_WORDS = ("on", "true", "yes", "1")
FALSE_WORDS = ("off", "false", "no", "0")
_INT_TEXT = re.compile(r"[+-]?\d+")
_NUMBER_TEXT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


class _Unreadable(ValueError):
    """A link's text that is no value of its setting's kind; the message says what is allowed."""


def _number(text: str) -> int | float | None:
    """A number from a link ("50" stays an int, so a message says lr=-1 like the form's); None if none."""
    text = text.strip()
    if _INT_TEXT.fullmatch(text):
        return int(text)
    if _NUMBER_TEXT.fullmatch(text):
        return float(text)
    return None


def _read(s: Setting, text: str) -> Any:
    """A setting's value from the text of a link; raises _Unreadable saying what is allowed."""
    word = text.strip()
    if s.kind == "int":
        if not _INT_TEXT.fullmatch(word):
            raise _Unreadable("a whole number")
        return int(word)
    if s.kind in ("float", "slider"):
        value = _number(word)
        if value is None:
            raise _Unreadable("a number")
        return value
    if s.kind == "bool":
        if word.lower() in TRUE_WORDS + FALSE_WORDS:
            return word.lower() in TRUE_WORDS
        raise _Unreadable("on or off (also true/false, yes/no, 1/0)"
                          + (", or a number: the threshold θ, with clipping on" if s.name == "clip" else ""))
    if s.kind == "choice":
        match = next((v for v in s.values if str(v).lower() == word.lower()), None)
        if s.name == "corpus":
            named = [v for v in s.values if v != "upload"]
            if match == "upload":
                raise _Unreadable("a link cannot bring a file; choose upload on the page, or one of "
                                  + ", ".join(named))
            if match is None:
                raise _Unreadable(f"choose one of {', '.join(named)} (a text of your own: upload it on the page)")
        return match if match is not None else text  # an unknown word: the form's rule says what is allowed
    if s.kind == "text":
        return text if parse_prefixes(text) else ""
    raise _Unreadable("cannot come from a link")


def _base(params: Mapping[str, str], problems: dict[str, str]) -> dict[str, Any]:
    """The values a link's settings change: its preset's, or the defaults; notes the parameters that are not
    allowed in ``problems``."""
    base = dict(DEFAULTS)
    if "preset" in params:
        name = params["preset"].strip()
        if name in PRESETS:
            base = complete(preset_form(name))
        else:
            problems["preset"] = f"preset={params['preset']!r} is not allowed: choose one of {', '.join(PRESETS)}"
    unknown = [k for k in params if k != "preset" and k not in LINK_IGNORED + GRADIO_OWN and k not in BY_NAME]
    for name in NOT_FROM_LINK:
        if name in params:
            problems[name] = (f"{name} cannot come from a link: "
                              + ("choose the file on the page" if name == "corpus_file"
                                 else "upload a checkpoint on the page, then tick resume"))
    if unknown:
        allowed = ", ".join(("preset",) + LINK_NAMES + LINK_IGNORED)
        problems["link"] = (f"unknown parameter{'s' if len(unknown) > 1 else ''} in the link: "
                            f"{', '.join(map(repr, unknown))}; allowed: {allowed}")
    return base


def _given(params: Mapping[str, str], problems: dict[str, str]) -> tuple[dict[str, Any], bool]:
    """The link's settings read as their kinds, by setting, and whether θ came from ``clip=<number>``; notes
    the texts that are no value of their kind in ``problems``."""
    given: dict[str, Any] = {}
    theta_from_clip = False
    for s in SETTINGS:
        if s.name not in params or s.name in NOT_FROM_LINK:
            continue
        text = params[s.name]
        if s.name == "clip" and text.strip().lower() not in TRUE_WORDS + FALSE_WORDS and _number(text) is not None:
            given["clip"] = True  # clip=0.05: clipping on with θ = 0.05
            if "theta" in params:
                problems["clip"] = f"clip={text!r} and theta={params['theta']!r} both set θ: give only one of them"
            else:
                given["theta"], theta_from_clip = _number(text), True
            continue
        try:
            given[s.name] = _read(s, text)
        except _Unreadable as e:
            problems[s.name] = f"{s.name}={text!r} is not allowed: {e}"
    return given, theta_from_clip


def from_query(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The form values (every setting) a link's query parameters give, and the problems by setting name.

    ``preset`` (a name of PRESETS) is applied first, then every setting the link names, read as its kind and
    checked by the form's rules; a value that is not allowed keeps the default (or the preset's value) and
    gets the form's message. ``clip=off`` turns clipping off, ``clip=<number>`` turns it on with that θ.
    Problems that belong to no setting are under "preset" and "link". lesson, lang, class and mode are the
    app's and Gradio's __theme is Gradio's: ignored here; corpus_file and resume cannot come from a link.
    """
    params = {str(k): _one(v) for k, v in params.items()}
    problems: dict[str, str] = {}
    base = _base(params, problems)
    given, theta_from_clip = _given(params, problems)
    while True:  # the form's rules; a setting that breaks one keeps its value from before the link
        values = {**base, **given}
        found = form_to_config(values)[1]  # as on the form, θ is not checked while clipping is off
        bad = {k: m for k, m in found.items() if k in given}
        if not bad:
            break
        for name, message in bad.items():
            if name == "theta" and theta_from_clip:
                problems["clip"] = message.replace("theta=", "clip=", 1)
                given.pop("clip", None)
            else:
                problems[name] = message
            del given[name]
    for name, value in given.items():  # a number box holds floats
        if BY_NAME[name].kind in ("float", "slider"):
            values[name] = float(value)
    return complete(values), problems


def _link_text(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, float):
        return repr(value)
    if value is None:
        return "0"  # max_chars / top_k: None means all, as 0 does
    text = str(value)
    return text if text.strip() else ","  # no prefixes: a lone comma, which survives a link (a blank value may not)


def _link_pairs(values: Mapping[str, Any], base: Mapping[str, Any]) -> list[tuple[str, str]]:
    pairs = []
    for name in LINK_NAMES:
        if values[name] != base[name]:  # θ too when clipping is off, if it was changed: the link keeps it
            pairs.append((name, _link_text(values[name])))
    return pairs


def to_query(values: Mapping[str, Any]) -> str:
    """A link's query (no "?") that gives ``values``: only what differs from the page's defaults, in table order.

    Where a preset plus its differences is shorter, ``preset=<name>`` comes first. ``clip=off`` when clipping
    is off (θ only if it was changed too); corpus_file and resume are never in a link.
    """
    v = complete(values)
    options = [_link_pairs(v, DEFAULTS)]
    options += [[("preset", name), *_link_pairs(v, complete(preset_form(name)))] for name in PRESETS]
    queries = [urlencode(pairs, quote_via=quote, safe=",") for pairs in options]
    return min(queries, key=len)  # the first of the shortest: no preset on a tie
