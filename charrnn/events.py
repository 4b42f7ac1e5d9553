"""What a training run reports, as small typed events.

``Trainer.run`` yields an ``EpochEnd`` after every epoch, a ``Sample`` per prefix every ``pred_period``
epochs (and once more at the end), and exactly one ``End`` to close the run: ``Finished``, ``Stopped`` or
``Diverged``. A ``Change`` records a setting changed while the run trained (``Trainer.adjust``). The CLI
prints these events, the app plots them and the tests assert on them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class EpochEnd:
    epoch: int               # 1-based epoch just finished
    epochs: int              # total epochs of the run
    perplexity: float        # exp(mean cross-entropy over the epoch)
    grad_norm: float         # mean global L2 gradient norm before clipping, over the epoch's minibatches
    grad_norm_max: float     # largest of those norms
    clipped: float           # fraction of minibatches whose gradient was clipped (0 when clipping is off)
    seconds: float           # wall time of the epoch (training only, samples excluded; on a GPU it ends with
    #                          the epoch's one wait for the GPU, so it counts the GPU's work too)
    chars_per_sec: float     # characters of input processed per second
    val_perplexity: float | None = None  # on the held-out text (TrainConfig.validation), after the epoch
    lr: float | None = None              # the learning rate the epoch ended with (changes: Trainer.adjust)
    theta: float | None = None           # the clipping threshold it ended with; None: clipping off

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Change:
    """A setting changed while the run trained, from its next minibatch on."""
    at: float      # where on the epoch axis: epochs completed plus the share of the current epoch trained
    epoch: int     # epochs completed when it took effect
    name: str      # the config field: lr, clip_theta (None: clipping off), pred_period, temperature, top_k
    old: Any
    new: Any

    @property
    def label(self) -> str:
        """What a chart's mark says: "lr 100 → 10", "θ 0.01 → off"."""
        name = {"clip_theta": "θ", "pred_period": "samples every", "top_k": "top-k"}.get(self.name, self.name)
        return f"{name} {_shown(self.old)} → {_shown(self.new)}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _shown(value: Any) -> str:
    if value is None:
        return "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Sample:
    epoch: int
    prefix: str
    text: str  # prefix + generated characters


@dataclass(frozen=True)
class End:
    epoch: int    # epochs completed
    message: str

    @property
    def status(self) -> str:
        return type(self).__name__.lower()


class Finished(End):
    """All epochs ran."""


class Stopped(End):
    """A stop was requested; the weights trained so far are kept."""


class Diverged(End):
    """The loss became NaN or infinite; the weights from the last good epoch are kept."""


Event = EpochEnd | Sample | End
