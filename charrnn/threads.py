"""How many torch threads each thread of a process uses: only training runs use more than one.

torch's thread count (OpenMP and MKL) is per calling thread. libgomp keeps a pool of worker threads
for each thread that ever ran a parallel region with more than one thread; once pools outnumber the
cores it stops spin-waiting and a run's two threads go 2x slower (measured: 0.23 s/epoch instead of
0.11). So every thread but a training worker's calls ``one_thread``; the scheduler's workers are a
fixed set and only one of them ever uses several threads (all the cores, when it trains a run alone;
see ``charrnn.scheduler``). ``tune_threads`` gives a thread its share of the cores (a run trained on
its own, as ``gpu_trial`` does).
"""
from __future__ import annotations

import torch

from .device import available_cores


def cpu_cores() -> int:
    """The CPU cores this process may use: $CPU_CORES on a Hugging Face Space, else the affinity mask
    (``charrnn.device.available_cores``, the one place that decides; read at every call)."""
    return available_cores()


def one_thread() -> None:
    """Use one torch thread in the calling thread (every thread but a training run's should).

    A thread that ran torch work with more than one thread keeps an OpenMP pool for as long as it
    lives (see the module docstring): generation, checkpoint loading and the server's own threads
    stay at one, so the only pools are the runs'.
    """
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def tune_threads(running: int) -> int:
    """Give the calling run's thread its share of the cores: cores // running, at least 1; returns it.

    ``running`` is the number of runs training now (the caller's included; below 1 counts as 1).
    Called at the start of a run and after every epoch, so the share follows runs starting and ending.
    """
    n = max(1, cpu_cores() // max(1, running))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
