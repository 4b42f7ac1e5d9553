"""A short run on the GPU beside the same run on the CPU: what a GPU would change, in plain numbers.

Made for a ZeroGPU Space, where the app's training runs on the CPU (``charrnn.device``) and a GPU is lent
only to a ``@spaces.GPU`` function, in a forked worker process whose arguments and result are pickled:
the app decorates a thin wrapper of ``gpu_trial`` and shows what it returns. Anywhere else with CUDA it
runs as it is. The result is plain data (str, float, lists of floats), so it crosses a process boundary.
"""
from __future__ import annotations

import math
import statistics
from typing import Any

import torch

from .config import ConfigError, TrainConfig
from .corpus import Corpus, from_text
from .device import in_gpu_call, on_zero_gpu
from .threads import tune_threads
from .train import End, EpochEnd, Trainer

CPU_EPOCHS = 3  # the CPU side trains at most this many epochs: enough for a steady time per epoch


def gpu_trial(config: TrainConfig, corpus_text: str, epochs: int, *, device: str = "cuda") -> dict[str, Any]:
    """Train a fresh model of ``config`` on ``corpus_text`` (cut to ``config.max_chars``) for ``epochs``
    epochs on ``device``, then ``min(epochs, 3)`` epochs of the same run on the CPU; returns

    ``{"device": the GPU's name (or "cpu"), "seconds_per_epoch": float, "perplexities": [one per epoch],
    "cpu_seconds_per_epoch": float, "cpu_threads": int, "status": "finished" or "diverged"}``.

    A time per epoch is the median of the epochs' training times (``EpochEnd.seconds``, samples excluded),
    so the first epoch's warm-up (CUDA context, kernels) does not count once there are 3 epochs or more.
    Both sides use every core (``threads.tune_threads(1)``), as a run alone on the server does.
    ``device="cpu"`` runs both sides on the CPU (to try this without a GPU). Raises ConfigError when
    ``device`` is ``cuda`` and there is no usable CUDA GPU here (with the reason), or ``epochs`` < 1.
    """
    if not (isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 1):
        raise ConfigError(f"epochs={epochs!r} is not allowed: an integer of at least 1")
    if device not in ("cuda", "cpu"):
        raise ConfigError(f"device={device!r} is not allowed: cuda or cpu")
    if device == "cuda" and on_zero_gpu() and not in_gpu_call():
        raise ConfigError("gpu_trial needs the GPU, and on a ZeroGPU Space the GPU exists only inside a "
                          "@spaces.GPU function: call gpu_trial from one")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("gpu_trial needs a CUDA GPU and this machine has none (on a ZeroGPU Space, call it "
                          "from a @spaces.GPU function: the GPU exists only there)")
    corpus = from_text(corpus_text, name="gpu-trial", max_chars=config.max_chars)
    trial = config.replace(corpus="gpu-trial", prefixes=[])  # no samples: only training is timed
    before = torch.get_num_threads()
    try:
        threads = tune_threads(1)  # the caller's thread count comes back below
        gpu, status = _train(trial.replace(device=device, epochs=epochs), corpus)  # refuses unusable CUDA
        cpu, _ = _train(trial.replace(device="cpu", epochs=min(epochs, CPU_EPOCHS)), corpus)
    finally:
        torch.set_num_threads(before)
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    return {"device": name, "seconds_per_epoch": _per_epoch(gpu), "perplexities": [e.perplexity for e in gpu],
            "cpu_seconds_per_epoch": _per_epoch(cpu), "cpu_threads": threads, "status": status}


def _train(config: TrainConfig, corpus: Corpus) -> tuple[list[EpochEnd], str]:
    """The epochs of a fresh run, and how it ended (``diverged`` keeps only the good epochs)."""
    trainer = Trainer(config, corpus)
    end = [e for e in trainer.run() if isinstance(e, End)][-1]
    return trainer.history, end.status


def _per_epoch(history: list[EpochEnd]) -> float:
    """The median training time of the epochs, NaN when there is none (a run that diverged at once)."""
    return float(statistics.median(e.seconds for e in history)) if history else math.nan
