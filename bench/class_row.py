"""bench_gpu.py's class row: N runs of the chapter's scratch-random trained at once through a Lab, as a class's
sessions train them on the page, with the scheduler grouping them (``Lab(group=True)``: one computation per
minibatch for the whole group, ``charrnn.grouped``) and keeping them separate (``group=False``: every run its own
steps, on the workers of a CPU's cores).

For each count and way: aggregate characters per second, seconds per epoch per run (the wall time over the
epochs: every run trains the whole time), the wall time relative to one run alone (the issue's targets: 30 runs
at most 3x, 100 runs at most 8x, grouped on a GPU), GPU memory per run (the peak allocated over the runs; "-" on
a CPU) and the mean number of runs a grouped step held.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

import charrnn
from charrnn import Trainer
from charrnn.config import preset
from charrnn.lab import Lab, Limits

PRED_PERIOD = 10  # the page samples every 10 epochs (demo/form.py PAGE_PRED_PERIOD)
TARGETS = {30: 3.0, 100: 8.0}  # runs -> the most wall time, relative to one run alone, the issue asks of a GPU
HEADER = (f"{'runs':>5}  {'mode':<8} {'chars/s':>12} {'s/epoch/run':>12} {'wall s':>8} {'x alone':>8} "
          f"{'MB/run':>8} {'group':>6}")


@dataclass
class ClassRun:
    runs: int
    grouped: bool
    wall: float             # seconds from the first Train to the last run's end
    chars: int              # characters trained, all runs together
    epochs: int
    memory: float | None    # peak GPU memory allocated per run, MB (None on a CPU)
    group_size: float | None  # mean minibatches per grouped computation (None: separate)

    @property
    def rate(self) -> float:
        return self.chars / self.wall

    @property
    def per_epoch(self) -> float:
        return self.wall / self.epochs


def train_class(corpus: charrnn.Corpus, device: str, runs: int, epochs: int, grouped: bool | None,
                fast: bool = False) -> ClassRun:
    """``runs`` sessions of one Lab each training scratch-random (``TrainConfig.fast`` if asked) for ``epochs``
    epochs at once; ``grouped`` None: where the server would (``charrnn.grouped.grouping``)."""
    threads = torch.get_num_threads()  # the Lab sets its creating thread to one torch thread
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    lab = Lab(limits=Limits(max_runs=runs, busy_runs=10**6), group=grouped)
    grouped = lab.scheduler.group
    try:
        people = [lab.session(f"class-{grouped}-{i}") for i in range(runs)]
        trainers = [Trainer(preset("scratch-random", epochs=epochs, pred_period=PRED_PERIOD, device=device,
                                   fast=fast), corpus) for _ in people]
        start = time.perf_counter()
        started = [p.start(t) for p, t in zip(people, trainers)]
        for run in started:
            if not run.wait(600):
                raise SystemExit(f"a run of {runs} at once on {device} did not end within 600 s")
        wall = time.perf_counter() - start
        bad = [(r.status, r.message) for r in started if r.status != "finished"]
        sizes = [s for g in lab.scheduler.groups().values() for s in g.sizes]
    finally:
        lab.shutdown()
        torch.set_num_threads(threads)
    if bad:
        raise SystemExit(f"runs on {device} ended as {bad}")
    memory = (torch.cuda.max_memory_allocated() - base) / runs / 2**20 if cuda else None
    chars = sum(t.batches_per_epoch * t.config.batch_size * t.config.num_steps * epochs for t in trainers)
    return ClassRun(runs, grouped, wall, chars, epochs, memory, statistics.mean(sizes) if sizes else None)


def row(r: ClassRun, alone: float) -> str:
    memory = "-" if r.memory is None else f"{r.memory:.1f}"
    size = "-" if r.group_size is None else f"{r.group_size:.1f}"
    return (f"{r.runs:>5}  {'grouped' if r.grouped else 'separate':<8} {r.rate:>12,.0f} {r.per_epoch:>12.4f} "
            f"{r.wall:>8.2f} {r.wall / alone:>7.2f}x {memory:>8} {size:>6}")


def class_row(corpus: charrnn.Corpus, device: str, counts: list[int], epochs: int) -> list[ClassRun]:
    """Print the class row's table (one line per count and way, as each is measured) and return its rows."""
    print(f"class row: N scratch-random runs (the chapter's sizes) trained at once through a Lab on {device}, "
          f"{epochs} epoch(s) each, separate then grouped; x alone: the wall time over one run's alone")
    print(HEADER, flush=True)
    for grouped in (False, True):  # untimed: the first run of a process pays for CUDA's and torch's start
        train_class(corpus, device, 1, 1, grouped)
    alone = train_class(corpus, device, 1, epochs, grouped=False)  # the baseline: one run, as today
    out = []
    for n in counts:
        for grouped in (False, True):
            r = alone if (n, grouped) == (1, False) else train_class(corpus, device, n, epochs, grouped)
            out.append(r)
            print(row(r, alone.wall), flush=True)
    met = [f"{n} runs {r.wall / alone.wall:.2f}x (target ≤ {TARGETS[n]:g}x)"
           for n in TARGETS for r in out if r.runs == n and r.grouped]
    if met:
        print("targets, grouped: " + "; ".join(met))
    return out
