"""The form's rules: form values to a TrainConfig with a message for each setting that is not allowed, and back.

``form_to_config`` applies the page's own limits (a shared server allows less than the library), then the
library's rules (``TrainConfig.problems``), and keys every message by the setting it belongs to;
``config_to_form`` goes back (the presets, an uploaded checkpoint and a link's settings all fill the form
through it). No gradio here, so every rule is tested without a server.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from charrnn.config import PRESETS, TrainConfig
from charrnn.corpus import NAMED
from demo.settings import BY_NAME, DEFAULTS, PAGE_PRED_PERIOD, SETTING_OF, SETTINGS, Setting, complete


def parse_prefixes(text: str | None) -> list[str]:
    """Prefixes separated by commas (, ，、) or new lines; spaces inside a prefix are kept."""
    return [p.strip() for p in re.split(r"[,，、\n]", text or "") if p.strip()]


def _whole(value: Any) -> Any:
    """2.0 -> 2 (a number box sends floats); 0.5 stays 0.5 and is refused by the integer rule."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def form_to_config(values: Mapping[str, Any]) -> tuple[TrainConfig, dict[str, str]]:
    """A TrainConfig (unchecked) from form values, and every problem keyed by the setting it belongs to."""
    v = complete(values)
    sample = v["decoding"] == "sample"
    config = TrainConfig.unchecked(
        corpus=str(v["corpus_file"]) if v["corpus"] == "upload" and v["corpus_file"] else v["corpus"],
        max_chars=None if v["max_chars"] in (None, 0) else _whole(v["max_chars"]),
        model=v["model"], sampling=v["sampling"], optimizer=v["optimizer"], lr=v["lr"],
        clip_theta=v["theta"] if v["clip"] else None, epochs=_whole(v["epochs"]),
        num_hiddens=_whole(v["num_hiddens"]), num_layers=_whole(v["num_layers"]), batch_size=_whole(v["batch_size"]),
        num_steps=_whole(v["num_steps"]), seed=_whole(v["seed"]), prefixes=parse_prefixes(v["prefixes"]),
        pred_len=_whole(v["pred_len"]), pred_period=_whole(v["pred_period"]),
        temperature=v["temperature"] if sample else 0.0,
        top_k=None if not sample or v["top_k"] in (None, 0) else _whole(v["top_k"]))
    problems: dict[str, str] = {}
    for s in SETTINGS:  # the page's own limits first: they are the ones that hold here
        message = _page_limit(s, v[s.name])
        if message:
            problems[s.name] = message
    for name, message in config.problems().items():
        setting = SETTING_OF.get(name, name)
        problems.setdefault(setting, message.replace(f"{name}=", f"{setting}=", 1))
    for s in SETTINGS:  # a fraction where the library did not already say what is allowed (top_k when greedy)
        if s.kind == "int" and v[s.name] is not None and not _is_whole(v[s.name]):
            problems.setdefault(s.name, f"{s.name}={v[s.name]!r} is not allowed: a whole number")
    if v["corpus"] not in BY_NAME["corpus"].values:
        problems["corpus"] = (f"corpus={v['corpus']!r} is not allowed: "
                              f"choose one of {', '.join(BY_NAME['corpus'].values)}")
    elif v["corpus"] == "upload" and not v["corpus_file"]:
        problems["corpus_file"] = "choose a UTF-8 .txt file to upload, or pick another corpus"
    for name in ("clip", "resume"):
        if not isinstance(v[name], bool):
            problems[name] = f"{name}={v[name]!r} is not allowed: true or false"
    if v["decoding"] not in ("greedy", "sample"):
        problems["decoding"] = f"decoding={v['decoding']!r} is not allowed: choose greedy or sample"
    return config, problems


def _page_limit(s: Setting, value: Any) -> str | None:
    """What the page allows beyond the library's rules (a shared server allows less)."""
    if s.kind in ("int", "float", "slider") and isinstance(value, (int, float)) and not isinstance(value, bool):
        if s.high is not None and value > s.high:
            return f"{s.name}={value:g} is not allowed on this page: at most {s.high:,g}"
        if s.low is not None and value < s.low:
            return f"{s.name}={value:g} is not allowed on this page: at least {s.low:,g}"
    return None


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) or isinstance(value, float) and value.is_integer()


def config_to_form(config: TrainConfig) -> dict[str, Any]:
    """The form values that give ``config`` (corpus_file and resume are left to the caller)."""
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
        top_k=config.top_k or 0)


def preset_form(name: str) -> dict[str, Any]:
    """The form for one of the chapter's setups: its values, the chapter's corpus, the page's sample period."""
    return {**config_to_form(TrainConfig(**PRESETS[name])), "pred_period": PAGE_PRED_PERIOD, "resume": False}
