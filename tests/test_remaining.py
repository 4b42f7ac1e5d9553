"""The remaining time of a run (``Run.work_left``, ``charrnn.runs.pace``): within a quarter of the truth for a
lone run once a tenth of its epochs are done, on a simulated run with noisy epochs and on a real one."""
from __future__ import annotations

import math
import random
import threading
import time
import types

import pytest
import torch

import charrnn.runs as runs_mod
from charrnn import TrainConfig, Trainer, from_text
from charrnn.events import EpochEnd, Finished
from charrnn.files import Caps, DiskQuota, SessionFiles
from charrnn.lab import Session
from charrnn.runs import Run, pace
from charrnn.scheduler import Scheduler
from conftest import make_text

QUARTER = 0.25  # the bound on the error, relative to the time really left
# The status line shows whole seconds, and an estimate is read at one moment of an epoch: within the last
# second (or the last epoch) a relative bound means nothing, so the bound is at least this many seconds.
FLOOR = 1.0


def test_pace_leaves_out_the_warm_up_and_caps_a_stall():
    one = lambda costs: [(c, 2) for c in costs]  # noqa: E731  (all at one thread count)
    assert pace(one([3.0])) == 3.0                      # one epoch: all there is
    assert pace(one([30.0, 1.0, 1.0, 1.0])) == 1.0      # the first epoch's warm-up counts no more
    # a stall of 10 in ten epochs of 1 counts as 3 (three times the median): the window's mean is 1.2
    assert abs(pace(one([1.0] * 10 + [10.0])) - 1.2) < 1e-12
    assert pace(one([1.0] * 10 + [2.0] * 20)) == 2.0     # the last 20 epochs: the run got slower
    assert pace(one([1.0] * 61 + [2.0] * 40)) == 1.8     # of 100 epochs (and the first) the last 50, steadier
    # another run joined: one thread instead of two. Two epochs at one thread: all epochs count (but the
    # first); from the third on, only those at one thread (but the first of them, begun at two)
    assert abs(pace([(1.0, 2)] * 10 + [(0.7, 1)] * 2) - (9 * 1.0 + 2 * 0.7) / 11) < 1e-12
    assert pace([(1.0, 2)] * 10 + [(0.9, 1), (0.7, 1), (0.7, 1)]) == 0.7


class FakeClock:
    """The ``time`` that charrnn.runs reads, moved on by the simulated training below."""

    def __init__(self):
        self.now = 100.0

    def perf_counter(self) -> float:
        return self.now

    monotonic = perf_counter


def simulated_epochs(n: int, seed: int) -> list[tuple[float, float]]:
    """(seconds of its minibatches, seconds of its samples) for each epoch of a lone run, with the noise seen on
    a busy 2-core machine: each epoch 0.3 s times a log-normal factor (σ = 0.25), the first epoch 6x slower
    (a process's first minibatches), a pause of 0.3 s in one epoch of 30 (the collector, a chart drawn
    beside it), and samples of 0.05 s every 10 epochs, which an epoch's own ``seconds`` leave out."""
    rng = random.Random(seed)
    out = []
    for i in range(1, n + 1):
        train = 0.3 * rng.lognormvariate(0, 0.25) * (6 if i == 1 else 1) + (0.3 if rng.random() < 1 / 30 else 0)
        out.append((train, 0.05 if i % 10 == 0 else 0.0))
    return out


class SimulatedTrainer:
    """What a Run asks of a Trainer, training on a fake clock; every 0.25 s of it, the run's estimate is read
    (as the page's status line does, twice a second) and kept with the time it was read at."""

    def __init__(self, clock: FakeClock, epochs: list[tuple[float, float]], minibatches: int = 10):
        self.clock, self.epochs, self.minibatches = clock, epochs, minibatches
        self.config = types.SimpleNamespace(epochs=len(epochs), label=lambda: "simulated", batch_size=1,
                                            num_steps=1)
        self.vocab, self.device, self.history, self.epoch = "ab", "cpu", [], 0
        self.changes: list = []  # no settings changed mid-run
        self.run: Run | None = None
        self.readings: list[tuple[float, float | None, int]] = []   # (time, estimate, epochs done)
        self._next_reading = clock.now

    def _tick(self, seconds: float) -> None:
        end = self.clock.now + seconds
        while self._next_reading <= end:
            self.clock.now = self._next_reading
            left = self.run.work_left()
            self.readings.append((self.clock.now, None if left is None else left / torch.get_num_threads(),
                                  self.epoch))
            self._next_reading += 0.25
        self.clock.now = end

    def work(self, stop: threading.Event):
        for i, (train, samples) in enumerate(self.epochs, start=1):
            for _ in range(self.minibatches):
                self._tick(train / self.minibatches)
                yield []
            self._tick(samples)
            self.epoch = i
            yield [EpochEnd(i, len(self.epochs), 10.0, 1.0, 1.0, 0.0, train, 1000.0)]
        yield [Finished(len(self.epochs), "finished")]


def worst_error(readings: list[tuple[float, float | None, int]], end: float, epochs: int) -> float:
    """The largest error of the estimates read once a tenth of the epochs were done, in units of the bound
    (above 1: outside it)."""
    worst = 0.0
    for t, estimate, done in readings:
        if done >= epochs / 10:
            truth = end - t
            worst = max(worst, abs(estimate - truth) / max(QUARTER * truth, FLOOR))
    return worst


def test_a_simulated_lone_run_is_estimated_within_a_quarter(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(runs_mod, "time", clock)
    for seed in range(5):
        epochs = simulated_epochs(100, seed)
        trainer = SimulatedTrainer(clock, epochs)
        run = trainer.run = Run(1, trainer, scheduler=None)
        while run.advance(0.3):  # a lone run: served slice after slice, no time between them
            pass
        assert run.status == "finished"
        assert worst_error(trainer.readings, clock.now, len(epochs)) <= 1, f"seed {seed}"


STEADY = 1.5  # a real run is judged only on a machine that kept it steady: its epochs per second of wall time
#               in the two halves after the first tenth within this factor (the simulated run above has the noise
#               the estimate must handle)


def steadiness(readings: list[tuple[float, float, int]], epochs: int) -> float:
    """How much faster one half of the run went than the other (after its first tenth), in epochs per second of
    wall time as the readings saw them: 1.0 for a steady machine."""
    seen: dict[int, float] = {}
    for t, _, epoch in readings:
        seen.setdefault(epoch, t)
    marks = sorted((e, t) for e, t in seen.items() if e >= epochs / 10)
    if len(marks) < 3:
        return math.inf
    (e0, t0), (e1, t1), (e2, t2) = marks[0], marks[len(marks) // 2], marks[-1]
    first, second = (e1 - e0) / max(t1 - t0, 1e-9), (e2 - e1) / max(t2 - t1, 1e-9)
    return max(first, second) / max(min(first, second), 1e-9)


STALL = 0.5  # seconds: a run whose epochs (about 0.035 s each) did not advance for this long was stopped by the
#             machine (another process, a collection), which no estimate foresees: more than half the 1 s FLOOR


def longest_stall(readings: list[tuple[float, float, int]], epochs: int) -> float:
    """The longest time after the first tenth during which the readings saw no new epoch."""
    longest, since, last = 0.0, None, None
    for t, _, epoch in readings:
        if epoch < epochs / 10:
            continue
        if epoch != last:
            since, last = t, epoch
        longest = max(longest, t - since)
    return longest


def real_lone_run() -> tuple[list, float, int]:
    """A real run of 240 epochs alone on its scheduler (8-10 s on a quiet 2-core machine: long enough that its
    first tenth is past the warm-up), its estimate read from its view ten times a second (the page reads it
    twice): the readings, when it ended, and its epochs."""
    corpus = from_text(make_text(3000, seed=1), name="words")
    config = TrainConfig(corpus="words", max_chars=None, model="scratch", num_hiddens=64, batch_size=16,
                         num_steps=20, optimizer="sgd", lr=1.0, clip_theta=1.0, epochs=240, seed=0, pred_period=10,
                         pred_len=30, prefixes=["the"], temperature=0.0, top_k=None)
    scheduler = Scheduler(workers=1, cores=1)
    session = Session("alone", scheduler, SessionFiles(Caps(10, 2**30, 2**30), DiskQuota(2**30)))
    readings, done = [], threading.Event()

    def read(run: Run) -> None:
        while not done.wait(0.1):
            view = run.view()
            if view.eta is not None:
                readings.append((time.monotonic(), view.eta, view.epoch))

    run = session.start(Trainer(config, corpus))
    reader = threading.Thread(target=read, args=(run,))
    reader.start()
    try:
        assert run.wait(300)
        end = time.monotonic()
    finally:
        done.set()
        reader.join()
        scheduler.shutdown()
    view = run.view()
    assert view.status == "finished" and len(readings) > 20, readings
    return readings, end, config.epochs


@pytest.mark.slow  # a real run of 8-10 s, up to three times
def test_a_real_lone_run_is_estimated_within_a_quarter():
    """The estimate of a real run, on one torch thread: two threads on a 2-core machine that other processes
    also use slow down by several times, at moments nobody can foresee (seen here: epochs from 0.25 s to 14 s
    while other tests ran), and the estimate is not what that measures. So a run the machine disturbed (its two
    halves' speeds apart by more than ``STEADY``, or no new epoch for ``STALL`` seconds) is run again, up to three
    times; a failure says where the estimate was furthest off."""
    seen = []
    for _ in range(3):
        readings, end, epochs = real_lone_run()
        steady, stall = steadiness(readings, epochs), longest_stall(readings, epochs)
        if steady <= STEADY and stall <= STALL:
            worst = max((r for r in readings if r[2] >= epochs / 10),
                        key=lambda r: abs(r[1] - (end - r[0])) / max(QUARTER * (end - r[0]), FLOOR))
            assert worst_error(readings, end, epochs) <= 1, (
                f"at epoch {worst[2]} the estimate was {worst[1]:.2f} s, the truth {end - worst[0]:.2f} s", readings)
            return
        seen.append(f"one half {steady:.1f}x as fast as the other, no epoch for {stall:.2f} s")
    pytest.skip("the machine never kept a run steady enough to judge its estimate: " + "; ".join(seen))
