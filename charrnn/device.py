"""Where training runs, decided in one place from what the machine really is.

Four kinds of machine:

- ``local``: your own machine or a server; training runs on its CUDA GPU when torch sees one, else on CPU.
- ``cpu-space`` / ``gpu-space``: a Hugging Face Space on CPU or GPU hardware (a GPU Space trains on its GPU).
- ``zerogpu-space``: a Space on ZeroGPU. Training runs on the CPU there, and CUDA is never touched. Importing
  ``spaces`` on ZeroGPU patches torch in the main process: ``torch.cuda.is_available()`` answers True,
  CUDA tensors are emulated and a real CUDA initialisation raises. A GPU exists only inside a function
  decorated with ``@spaces.GPU``, run in a forked worker process for a short call, never in a thread,
  and training runs in the server's background threads. So ZeroGPU is recognised by its environment
  variable, before torch is asked anything.

A Space describes itself in environment variables: ``SYSTEM=spaces``, ``SPACE_ID`` (``user/name``),
``SPACE_HOST`` (``user-name.hf.space``), ``CPU_CORES``, ``MEMORY``, ``ACCELERATOR`` (``none`` on CPU), and
on ZeroGPU ``SPACES_ZERO_GPU=true``. ``detect(environ)`` reads them (and torch); ``machine()`` is its
answer for this process, computed once.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from .config import ConfigError

KINDS = ("local", "cpu-space", "gpu-space", "zerogpu-space")


@dataclass(frozen=True)
class Machine:
    kind: str                 # one of KINDS
    device: torch.device      # where training runs (``auto``)
    cores: int                # CPU cores this process may use: $CPU_CORES on a Space, else the affinity mask
    space_id: str | None      # ``user/name`` on a Space, else None
    space_host: str | None    # ``user-name.hf.space`` on a Space (the direct address to share), else None
    accelerator: str | None   # the Space's $ACCELERATOR (None when unset or ``none``)
    gpu_name: str | None      # the CUDA device's name when training runs on it, else None

    @property
    def on_space(self) -> bool:
        return self.kind != "local"

    @property
    def url(self) -> str | None:
        """The direct address of the Space (its page on huggingface.co shows it in an iframe), else None."""
        return f"https://{self.space_host}/" if self.space_host else None

    def header(self, lang: str = "both") -> str:
        """One line for the page: the device, the cores, and the Space if any, e.g.
        ``GPU · NVIDIA H100 · 16 核 · 16 cores`` or ``CPU · 2 核 · 2 cores · Hugging Face Space user/name``
        (``lang`` "both"), ``CPU · 2 cores`` ("en"), ``CPU · 2 核`` ("zh")."""
        def said(zh: str, en: str) -> list[str]:
            return {"zh": [zh], "en": [en]}.get(lang, [zh, en])

        parts = [f"GPU · {self.gpu_name or 'CUDA'}" if self.device.type == "cuda" else self.device.type.upper(),
                 *said(f"{self.cores} 核", f"{self.cores} core{'s' if self.cores != 1 else ''}")]
        name = f" {self.space_id}" if self.space_id else ""
        if self.kind == "zerogpu-space":
            parts += [f"ZeroGPU Space{name}",
                      *said("这里在 CPU 上训练（GPU 只借给短时的 @spaces.GPU 调用）",
                            "training runs on the CPU here (the GPU is lent only to short @spaces.GPU calls)")]
        elif self.on_space:
            parts.append(f"Hugging Face Space{name}")
            if self.accelerator and self.device.type != "cuda":
                parts += said(f"硬件 {self.accelerator}，但 torch 找不到 CUDA",
                              f"hardware {self.accelerator}, but torch finds no CUDA")
        return " · ".join(parts)


def _flag(value: str | None) -> bool:
    """True for 1 / t / true in any case: the values the ``spaces`` package itself takes as on."""
    return value is not None and value.strip().lower() in ("1", "t", "true")


def on_zero_gpu(environ: Mapping[str, str] = os.environ) -> bool:
    return _flag(environ.get("SPACES_ZERO_GPU"))


def on_space(environ: Mapping[str, str] = os.environ) -> bool:
    """A Hugging Face Space: ``SYSTEM=spaces`` (what Gradio looks at), a ``SPACE_ID``, or ZeroGPU."""
    return environ.get("SYSTEM") == "spaces" or bool(environ.get("SPACE_ID")) or on_zero_gpu(environ)


def available_cores(environ: Mapping[str, str] = os.environ) -> int:
    """The CPU cores this process may use (the one source of that number; ``threads.cpu_cores`` asks here).

    On a Space, $CPU_CORES: its container is capped by a CPU quota but may see every core of the host in
    its affinity mask (a 2-vCPU Space can report dozens). Elsewhere, or when $CPU_CORES is missing or not
    a whole number of at least 1, the affinity mask.
    """
    if on_space(environ):
        value = environ.get("CPU_CORES", "").strip()
        if value.isdigit() and int(value) >= 1:
            return int(value)
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _text(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def detect(environ: Mapping[str, str] = os.environ) -> Machine:
    """What this machine is and where training runs, from ``environ`` and torch.

    On ZeroGPU torch's CUDA is never asked (see the module docstring): the device is the CPU.
    """
    space = on_space(environ)
    accelerator = _text(environ, "ACCELERATOR")
    common = dict(cores=available_cores(environ), space_id=_text(environ, "SPACE_ID") if space else None,
                  space_host=_text(environ, "SPACE_HOST") if space else None,
                  accelerator=accelerator if space and accelerator and accelerator.lower() != "none" else None)
    if on_zero_gpu(environ):
        return Machine(kind="zerogpu-space", device=torch.device("cpu"), gpu_name=None, **common)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    kind = "local" if not space else "gpu-space" if cuda else "cpu-space"
    return Machine(kind=kind, device=device, gpu_name=torch.cuda.get_device_name(0) if cuda else None, **common)


@functools.lru_cache(maxsize=1)
def machine() -> Machine:
    """``detect()`` for this process, computed once (for the page's header)."""
    return detect()


def in_gpu_call() -> bool:
    """True where CUDA is already initialised in this process. On ZeroGPU that is the case only inside a
    ``@spaces.GPU`` call: its worker process initialises CUDA before running the function, while in the
    main process initialisation raises. Reads a flag; touches no CUDA."""
    return torch.cuda.is_initialized()


def training_device(name: str = "auto", environ: Mapping[str, str] = os.environ) -> torch.device:
    """The device a run with ``TrainConfig.device == name`` trains on (``train.pick_device`` asks here).

    ``auto``: ``detect(environ).device``. ``cuda``: refused with a ConfigError where it cannot work: on
    ZeroGPU outside a ``@spaces.GPU`` call, and on a machine without a CUDA GPU. ``cpu``: the CPU.
    """
    if name == "auto":
        return detect(environ).device
    if name == "cuda":
        if on_zero_gpu(environ) and not in_gpu_call():
            raise ConfigError("device='cuda' is not allowed on this ZeroGPU Space: CUDA exists here only inside "
                              "@spaces.GPU functions (short calls in a separate process), and training runs in "
                              "the server's background threads, on the CPU; use auto or cpu")
        if not torch.cuda.is_available():
            raise ConfigError("device='cuda' is not allowed here: this machine has no CUDA GPU; use auto or cpu")
    return torch.device(name)
