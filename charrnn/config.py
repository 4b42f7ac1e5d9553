"""One dataclass holds every hyperparameter of a run; it is saved inside every checkpoint.

The chapter's three training setups are named presets (``PRESETS``). Each field carries its help text
in ``metadata["help"]`` so the CLI and the app describe the same thing the same way.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from .models import KINDS, MAX_LAYERS  # the one table of model kinds

MODELS = tuple(KINDS)
SAMPLINGS = ("random", "consecutive")
OPTIMIZERS = ("sgd", "adam")
DEVICES = ("auto", "cpu", "cuda")
# The fields that take one of a fixed set of words, and the words (the CLI's choices, the app's menus).
CHOICES: dict[str, tuple[str, ...]] = {"model": MODELS, "sampling": SAMPLINGS, "optimizer": OPTIMIZERS,
                                       "device": DEVICES}
MAX_PREFIX = 1000  # characters in one prefix (TrainConfig.prefixes, and text to write from); longer is refused
MAX_PREFIXES = 20  # prefixes in TrainConfig.prefixes


class ConfigError(ValueError):
    """A hyperparameter value that is not allowed; the message says which values are."""


def _f(default: Any, help: str) -> Any:
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: list(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    # --- data ---
    corpus: str = _f("jaychou", "corpus: jaychou, timemachine, offline, or a path to a UTF-8 .txt file")
    max_chars: int | None = _f(10_000, "keep only the first N characters (the chapter keeps 10,000); None keeps all")
    validation: float = _f(0.0, "share of the text held out, 0 to 0.5 (its last part): not trained on, its "
                                "perplexity measured after every epoch; 0 in the chapter")
    # --- model ---
    model: str = _f("scratch", "; ".join(f"{name}: {k.about}" for name, k in KINDS.items()))
    num_hiddens: int = _f(256, "hidden units h")
    num_layers: int = _f(1, f"stacked recurrent layers (6.9), 1 to {MAX_LAYERS}; "
                            "more than 1 only for the concise models")
    # --- batching ---
    sampling: str = _f("random", "random (state reset per minibatch) or consecutive (state carried, detached)")
    batch_size: int = _f(32, "windows per minibatch")
    num_steps: int = _f(35, "time steps per window (truncated BPTT length)")
    # --- optimisation ---
    optimizer: str = _f("sgd", "sgd (plain p -= lr * grad, the chapter's scratch runs) or adam (its concise run)")
    lr: float = _f(100.0, "learning rate")
    clip_theta: float | None = _f(0.01, "gradient clipping threshold theta on the global L2 norm; "
                                        "None turns clipping off")
    epochs: int = _f(250, "number of epochs")
    seed: int = _f(0, "random seed for initial weights, shuffling and sampled text")
    device: str = _f("auto", "auto (CUDA when available, else CPU), cpu or cuda")
    fast: bool = _f(False, "opt-in, CUDA only: replay each training step as one CUDA graph (one launch per "
                           "minibatch instead of hundreds; Adam then keeps its step count on the GPU), which may "
                           "change the last digits of the numbers. On the CPU it changes nothing")
    # --- samples printed while training ---
    pred_period: int = _f(50, "write a sample for each prefix every this many epochs")
    pred_len: int = _f(50, "characters generated after each prefix")
    prefixes: list[str] = _f(["分开", "不分开"], "prefixes the samples start from")
    temperature: float = _f(0.0, "sampling temperature for the samples; 0 is greedy argmax (the chapter's)")
    top_k: int | None = _f(None, "sample only among the k likeliest characters; None means all")

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def unchecked(cls, **values: Any) -> "TrainConfig":
        """A config that is not validated yet (to collect every problem with ``problems()``)."""
        obj = cls.__new__(cls)
        for f in dataclasses.fields(cls):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            setattr(obj, f.name, values.get(f.name, default))
        return obj

    def validate(self) -> None:
        """Raise ConfigError for the first field whose value is not allowed, saying what is."""
        problems = self.problems()
        if problems:
            message = next(iter(problems.values()))
            raise ConfigError(message)

    def problems(self) -> dict[str, str]:
        """Every field whose value is not allowed, mapped to a message that says what is allowed."""
        out: dict[str, str] = {}

        def need(ok: bool, name: str, allowed: str) -> None:
            if not ok and name not in out:
                out[name] = f"{name}={getattr(self, name)!r} is not allowed: {allowed}"

        for name, words in CHOICES.items():
            need(getattr(self, name) in words, name, f"choose one of {', '.join(words)}")
        need(isinstance(self.corpus, str) and bool(self.corpus.strip()), "corpus", "a corpus name or a file path")
        need(self.max_chars is None or _int(self.max_chars) and self.max_chars >= 2, "max_chars",
             "an integer of at least 2, or None for the whole text")
        need(_num(self.validation) and 0 <= self.validation <= 0.5, "validation", "a share from 0 to 0.5")
        need(_int(self.num_hiddens) and 1 <= self.num_hiddens <= 4096, "num_hiddens", "an integer from 1 to 4096")
        need(_int(self.num_layers) and 1 <= self.num_layers <= MAX_LAYERS, "num_layers",
             f"an integer from 1 to {MAX_LAYERS}")
        scratch = self.model in KINDS and KINDS[self.model].scratch
        need(not scratch or self.num_layers == 1, "num_layers",
             f"1 for model {self.model} (the from-scratch models have one layer); stack layers with a concise model")
        need(_int(self.batch_size) and 1 <= self.batch_size <= 4096, "batch_size", "an integer from 1 to 4096")
        need(_int(self.num_steps) and 1 <= self.num_steps <= 1000, "num_steps", "an integer from 1 to 1000")
        need(_num(self.lr) and 0 < self.lr <= 1e9, "lr", "a number above 0 and at most 1e9")
        need(self.clip_theta is None or _num(self.clip_theta) and self.clip_theta > 0, "clip_theta",
             "a number above 0, or None for no clipping")
        need(_int(self.epochs) and 1 <= self.epochs <= 100_000, "epochs", "an integer from 1 to 100000")
        need(_int(self.seed) and 0 <= self.seed < 2**63, "seed", "an integer from 0 to 2**63-1")
        need(isinstance(self.fast, bool), "fast", "True or False")
        need(_int(self.pred_period) and self.pred_period >= 1, "pred_period", "an integer of at least 1")
        need(_int(self.pred_len) and 0 <= self.pred_len <= 10_000, "pred_len", "an integer from 0 to 10000")
        need(isinstance(self.prefixes, list) and len(self.prefixes) <= MAX_PREFIXES
             and all(isinstance(p, str) and 1 <= len(p) <= MAX_PREFIX for p in self.prefixes), "prefixes",
             f"a list of at most {MAX_PREFIXES} non-empty strings, each at most {MAX_PREFIX} characters")
        need(_num(self.temperature) and 0 <= self.temperature <= 100, "temperature",
             "a number from 0 (greedy) to 100")
        need(self.top_k is None or _int(self.top_k) and self.top_k >= 1, "top_k",
             "an integer of at least 1, or None for all characters")
        return out

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config fields: {', '.join(unknown)}")
        return cls(**data)

    def label(self) -> str:
        """A short human label, e.g. ``scratch · random · lr 100 · θ 0.01``."""
        theta = "off" if self.clip_theta is None else f"{self.clip_theta:g}"
        layers = f" × {self.num_layers}" if self.num_layers > 1 else ""
        return f"{self.model}{layers} · {self.sampling} · lr {self.lr:g} · θ {theta}"


def _int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x and abs(x) != float("inf")


def field_help(name: str) -> str:
    return next(f.metadata["help"] for f in dataclasses.fields(TrainConfig) if f.name == name)


# The chapter's three setups (Dive into Deep Learning, Chinese edition, PyTorch port: 6.4 RNN from scratch, 6.5
# concise RNN; docs/results.md).
PRESETS: dict[str, dict[str, Any]] = {
    "scratch-random": dict(model="scratch", sampling="random", optimizer="sgd", lr=100.0, clip_theta=0.01),
    "scratch-consecutive": dict(model="scratch", sampling="consecutive", optimizer="sgd", lr=100.0, clip_theta=0.01),
    "concise": dict(model="concise", sampling="consecutive", optimizer="adam", lr=0.001, clip_theta=0.01),
    # the next sections (6.7 GRU, 6.8 LSTM; docs/results.md): consecutive sampling, 160 epochs,
    # samples every 40; the concise runs as the PyTorch port trains them (Adam 0.01, whose clipping never clipped)
    "scratch-gru": dict(model="scratch-gru", sampling="consecutive", optimizer="sgd", lr=100.0, clip_theta=0.01,
                        epochs=160, pred_period=40),
    "scratch-lstm": dict(model="scratch-lstm", sampling="consecutive", optimizer="sgd", lr=100.0, clip_theta=0.01,
                         epochs=160, pred_period=40),
    "concise-gru": dict(model="concise-gru", sampling="consecutive", optimizer="adam", lr=0.01, clip_theta=None,
                        epochs=160, pred_period=40),
    "concise-lstm": dict(model="concise-lstm", sampling="consecutive", optimizer="adam", lr=0.01, clip_theta=None,
                         epochs=160, pred_period=40),
}


def preset(name: str, **overrides: Any) -> TrainConfig:
    """The chapter's setup ``name`` (a key of PRESETS), with any fields overridden."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    return TrainConfig(**{**PRESETS[name], **overrides})


def preset_for(model: str, sampling: str) -> str:
    """The chapter preset closest to a model/sampling pair (the CLI's defaults follow it)."""
    if model in PRESETS:  # concise, and the next sections' four
        return model
    return "scratch-consecutive" if sampling == "consecutive" else "scratch-random"
