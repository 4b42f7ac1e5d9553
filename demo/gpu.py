"""The GPU trial: train the current settings briefly on the GPU and on the CPU, and show both speeds.

On a ZeroGPU Space this is the app's ``@spaces.GPU`` function: a GPU exists there only inside such a
call (in a forked process, for ``DURATION`` seconds at most, counted against the visitor's daily
quota), and ZeroGPU refuses to start an app that registers none. Training itself stays on the CPU
there (see ``charrnn.device``). On a machine with its own GPU the trial runs as it is; without a GPU
the panel is hidden.
"""
from __future__ import annotations

from typing import Any

from demo import form
from charrnn.config import ConfigError
from charrnn.device import machine, on_zero_gpu
from charrnn.gpu_trial import gpu_trial

DURATION = 60        # seconds a ZeroGPU call may hold the GPU
TRIAL_EPOCHS = 20    # at most: enough for the GPU to warm up and for a steady time per epoch


def available() -> bool:
    """Whether this machine can lend the trial a GPU (a ZeroGPU Space, or a CUDA GPU of its own)."""
    return on_zero_gpu() or machine().device.type == "cuda"


def run_trial(*, corpus_file: str | None = None, **values: Any) -> str:
    """Check the settings, train up to TRIAL_EPOCHS epochs on the GPU (and 3 on the CPU); a Markdown table."""
    checked = form.check({**values, "corpus_file": corpus_file, "resume": False})
    if not checked.ok:
        return "✗ " + " · ".join(f"{k}: {v}" for k, v in checked.problems.items())
    config = checked.config
    epochs = min(config.epochs, TRIAL_EPOCHS)
    try:
        r = gpu_trial(config, checked.corpus.text, epochs)
    except ConfigError as e:
        return f"✗ {e}"
    speedup = r["cpu_seconds_per_epoch"] / r["seconds_per_epoch"]
    return (f"**{config.label()}**, {epochs} epochs on **{r['device']}**: perplexity "
            f"{r['perplexities'][0]:,.1f} → {r['perplexities'][-1]:,.2f} ({r['status']})\n\n"
            "| | seconds per epoch |\n|---|---|\n"
            f"| GPU · {r['device']} | {r['seconds_per_epoch']:.4f} |\n"
            f"| CPU · {r['cpu_threads']} threads | {r['cpu_seconds_per_epoch']:.4f} |\n\n"
            f"The GPU is **{speedup:.1f}x** the CPU on this model · GPU 比 CPU 快 {speedup:.1f} 倍")


def handler():
    """The event handler: ``run_trial`` decorated with ``@spaces.GPU`` on ZeroGPU, as it is elsewhere."""
    if on_zero_gpu():
        import spaces  # present on every ZeroGPU Space; imported only there
        return spaces.GPU(duration=DURATION)(run_trial)
    return run_trial
