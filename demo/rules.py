"""The form's rules: form values to a TrainConfig with a message for each setting that is not allowed, and back.

``form_to_config`` applies the page's own limits (a shared server allows less than the library), then the
library's rules (``TrainConfig.problems``), and keys every message by the setting it belongs to;
``config_to_form`` goes back (the presets, an uploaded checkpoint and a link's settings all fill the form
through it). ``number`` is the one rule for a number that every endpoint reads (whole or not, its range), and
its message. No gradio here, so every rule is tested without a server.
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable, Mapping

from charrnn.config import PRESETS, TrainConfig
from charrnn.corpus import NAMED
from charrnn.device import machine
from demo.settings import BY_NAME, DEFAULTS, PAGE_PRED_PERIOD, SETTING_OF, SETTINGS, complete


def parse_prefixes(text: str | None) -> list[str]:
    """Prefixes separated by commas (, ，、) or new lines; spaces inside a prefix are kept (no text: none)."""
    return [p.strip() for p in re.split(r"[,，、\n]", text) if p.strip()] if isinstance(text, str) else []


class Refused(ValueError):
    """A value an endpoint does not allow; the message names the parameter and says what is allowed, 中文 · English."""


def _repr(value: Any) -> str:
    """A value as a message quotes it: its repr, at most 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _shown(x: float) -> str:
    return f"{x:,}" if isinstance(x, int) else f"{int(x):,}" if x.is_integer() and abs(x) < 1e16 else f"{x:g}"


def allowed(whole: bool, low: float | None = None, high: float | None = None, means: str = "") -> tuple[str, str]:
    """What ``number`` allows, in words: ("1 到 2,000 的整数", "a whole number from 1 to 2,000")."""
    en, zh = ("a whole number", "整数") if whole else ("a number", "数")
    if low is not None and high is not None:
        en, zh = f"{en} from {_shown(low)} to {_shown(high)}", f"{_shown(low)} 到 {_shown(high)} 的{zh}"
    elif low is not None:
        en, zh = f"{en}, at least {_shown(low)}", f"不小于 {_shown(low)} 的{zh}"
    elif high is not None:
        en, zh = f"{en}, at most {_shown(high)}", f"不大于 {_shown(high)} 的{zh}"
    return zh, en + (f" ({means})" if means else "")


def number(name: str, value: Any, whole: bool = False, low: float | None = None, high: float | None = None,
           means: str = "") -> int | float:
    """The one rule for a number given to any endpoint: a finite int or float (not a bool, a text or None), a
    whole number where ``whole`` (2.0 counts as 2 and comes back as an int: a number box sends floats), and
    from ``low`` to ``high`` where they are given. Refused otherwise, with a message that names ``name`` and
    what is allowed (``means``: what a special value means, "0 = all")."""
    ok = isinstance(value, int) and not isinstance(value, bool) or isinstance(value, float) and math.isfinite(value)
    if ok and whole:
        ok = float(value).is_integer()
        value = int(value) if ok else value
    if ok and not ((low is None or value >= low) and (high is None or value <= high)):
        ok = False
    if ok:
        return value
    raise _refused(name, value, *allowed(whole, low, high, means))


def text(name: str, value: Any, high: int, low: int = 1) -> str:
    """The one rule for a text given to an endpoint: a string of ``low`` to ``high`` characters."""
    if isinstance(value, str) and low <= len(value) <= high:
        return value
    zh, en = f"{low:,} 到 {high:,} 个字符的文字", f"a text of {low:,} to {high:,} characters"
    if low == 1:
        zh, en = f"不超过 {high:,} 个字符的非空文字", f"a text, not empty, of at most {high:,} characters"
    raise _refused(name, value, zh, en)


def _refused(name: str, value: Any, zh: str, en: str) -> Refused:
    """The refusal of ``value`` for ``name``, allowed being ``zh`` and ``en``: 中文 · English, as the page writes."""
    zh = (" " if zh[0].isdigit() else "") + zh  # a space between Chinese and a number, as on the page
    if value is None or value == "":
        return Refused(f"{name} 不能为空，须为{zh} · {name} is empty: {en}")
    shown = f"a text of {len(value):,} characters" if isinstance(value, str) and len(value) > 40 else _repr(value)
    return Refused(f"{name}={shown} 不允许，须为{zh} · {name}={shown} is not allowed: {en}")


def problem(rule: Callable[..., Any], *args: Any, **kwargs: Any) -> str | None:
    """The message of ``rule(*args, **kwargs)`` (``number`` or ``text``) when it refuses, else None."""
    try:
        rule(*args, **kwargs)
    except Refused as e:
        return str(e)
    return None


def file_path(value: Any) -> Any:
    """A file setting as an event gives it: a path, or (an event that leaves Gradio's preprocessing out, to
    read every value by these rules) Gradio's FileData as a dict, whose path is on the server, checked by
    Gradio; anything else as it is, for the rules to refuse."""
    return value.get("path") if isinstance(value, dict) else value


def _whole(value: Any) -> Any:
    """2.0 -> 2 (a number box sends floats); 0.5 stays 0.5 and is refused by the integer rule."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


FAST_NEEDS_CUDA = "fast needs a CUDA GPU, and this machine trains on the CPU: untick it"


def trains_on_cuda() -> bool:
    """Whether this server's runs train on a CUDA GPU (where ``fast`` is offered; not on ZeroGPU, whose
    training runs on the CPU: ``charrnn.device``)."""
    return machine().device.type == "cuda"


def form_to_config(values: Mapping[str, Any]) -> tuple[TrainConfig, dict[str, str]]:
    """A TrainConfig (unchecked) from form values, and every problem keyed by the setting it belongs to."""
    v = complete(values)
    sample = v["decoding"] == "sample"
    config = TrainConfig.unchecked(
        corpus=str(file_path(v["corpus_file"])) if v["corpus"] == "upload" and v["corpus_file"] else v["corpus"],
        max_chars=None if v["max_chars"] in (None, 0) else _whole(v["max_chars"]),
        model=v["model"], sampling=v["sampling"], optimizer=v["optimizer"], lr=v["lr"],
        clip_theta=v["theta"] if v["clip"] else None, epochs=_whole(v["epochs"]),
        num_hiddens=_whole(v["num_hiddens"]), num_layers=_whole(v["num_layers"]), batch_size=_whole(v["batch_size"]),
        num_steps=_whole(v["num_steps"]), seed=_whole(v["seed"]), prefixes=parse_prefixes(v["prefixes"]),
        pred_len=_whole(v["pred_len"]), pred_period=_whole(v["pred_period"]),
        temperature=v["temperature"] if sample else 0.0,
        top_k=None if not sample or v["top_k"] in (None, 0) else _whole(v["top_k"]), validation=v["validation"],
        fast=v["fast"])
    problems = _number_problems(v)  # the one rule for numbers first, with the page's own limits
    if v["prefixes"] is not None and not isinstance(v["prefixes"], str):
        problems["prefixes"] = str(_refused("prefixes", v["prefixes"], "用逗号分开的前缀",
                                            "prefixes separated by commas"))
    for name, message in config.problems().items():
        setting = SETTING_OF.get(name, name)
        problems.setdefault(setting, message.replace(f"{name}=", f"{setting}=", 1))
    if v["corpus"] not in BY_NAME["corpus"].values:
        problems["corpus"] = (f"corpus={v['corpus']!r} is not allowed: "
                              f"choose one of {', '.join(BY_NAME['corpus'].values)}")
    elif v["corpus"] == "upload" and not v["corpus_file"]:
        problems["corpus_file"] = "choose a UTF-8 .txt file to upload, or pick another corpus"
    for name in ("clip", "resume", "fast"):
        if not isinstance(v[name], bool):
            problems[name] = f"{name}={v[name]!r} is not allowed: true or false"
    if v["fast"] is True and not trains_on_cuda():
        problems["fast"] = FAST_NEEDS_CUDA
    if v["decoding"] not in ("greedy", "sample"):
        problems["decoding"] = f"decoding={v['decoding']!r} is not allowed: choose greedy or sample"
    return config, problems


ALL_WHEN_EMPTY = ("max_chars", "top_k")  # settings where an empty box means what 0 does: all


def _number_problems(v: Mapping[str, Any]) -> dict[str, str]:
    """``number``'s message for every number setting that breaks it, by the page's limits (a shared server
    allows less than the library; the library's rules come after). θ counts only with clipping on."""
    problems: dict[str, str] = {}
    for s in SETTINGS:
        if s.kind not in ("int", "float", "slider") or (s.name == "theta" and v["clip"] is False):
            continue
        if v[s.name] is None and s.name in ALL_WHEN_EMPTY:
            continue
        means = "0 = all" if s.name in ALL_WHEN_EMPTY else ""
        message = problem(number, s.name, v[s.name], whole=s.kind == "int", low=s.low, high=s.high, means=means)
        if message:
            problems[s.name] = message
    return problems


def config_to_form(config: TrainConfig) -> dict[str, Any]:
    """The form values that give ``config`` (corpus_file and resume are left to the caller; fast too: it is
    this machine's choice, not the run's, and a checkpoint trained with it on a GPU resumes on a CPU)."""
    named = config.corpus in NAMED
    return dict(
        corpus=config.corpus if named else "upload", max_chars=config.max_chars or 0, model=config.model,
        sampling=config.sampling, optimizer=config.optimizer, lr=config.lr, clip=config.clip_theta is not None,
        theta=config.clip_theta if config.clip_theta is not None else DEFAULTS["theta"], epochs=config.epochs,
        num_hiddens=config.num_hiddens, num_layers=config.num_layers, batch_size=config.batch_size,
        num_steps=config.num_steps, seed=config.seed,
        prefixes=", ".join(config.prefixes), pred_len=config.pred_len, pred_period=config.pred_period,
        decoding="sample" if config.temperature > 0 else "greedy",
        temperature=config.temperature if config.temperature > 0 else DEFAULTS["temperature"],
        top_k=config.top_k or 0, validation=config.validation)


def preset_form(name: str) -> dict[str, Any]:
    """The form for one of the chapter's setups: its values, the chapter's corpus, the page's sample period."""
    return {**config_to_form(TrainConfig(**PRESETS[name])), "pred_period": PAGE_PRED_PERIOD, "resume": False}
