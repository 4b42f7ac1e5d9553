"""Settings a run takes while it trains (``Trainer.adjust``): which, and how a change is checked.

The learning rate, clipping (θ, or None for off), how often samples are written and how they are decoded may
change mid-run; each change is checked as the config checks that setting (the same message as a form's), and
the run takes it at its next minibatch, where a ``Change`` records it. The rest fixes the weights' shapes or the
batches' order, and stays as the run began.
"""
from __future__ import annotations

from typing import Any

from .config import ConfigError, TrainConfig

LIVE = ("lr", "clip_theta", "pred_period", "temperature", "top_k")


def checked(config: TrainConfig, changes: dict[str, Any]) -> dict[str, Any]:
    """The changes that differ from ``config``, each allowed; else ConfigError naming the first that is not."""
    fixed = [name for name in changes if name not in LIVE]
    if fixed:
        raise ConfigError(f"{', '.join(fixed)} cannot change while a run trains: only {', '.join(LIVE)} can")
    problems = TrainConfig.unchecked(**{**vars(config), **changes}).problems()
    for name in changes:
        if name in problems:
            raise ConfigError(problems[name])
    return {name: value for name, value in changes.items() if getattr(config, name) != value}


def extended(config: TrainConfig, epochs: Any) -> TrainConfig:
    """``config`` with ``epochs`` more epochs to train (a run continued); ConfigError if that is not allowed."""
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ConfigError(f"epochs={epochs!r} is not allowed: an integer of at least 1")
    problems = TrainConfig.unchecked(**{**vars(config), "epochs": config.epochs + epochs}).problems()
    if "epochs" in problems:
        raise ConfigError(f"{epochs} more epochs is not allowed: a run trains at most 100000 epochs in all")
    return config.replace(epochs=config.epochs + epochs)
