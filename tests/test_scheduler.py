"""The fair scheduler: every admitted run makes progress, the least-served goes next, limits hold."""
from __future__ import annotations

import threading
import time

import pytest
import torch

from charrnn.scheduler import Scheduler


class FakeJob:
    """A job whose slices take a fixed time; records when each slice ran and with how many threads."""

    def __init__(self, name: str, slices: int, left: float | None = None):
        self.name, self.todo, self.left = name, slices, left
        self.stopping = False
        self.slices: list[tuple[float, int]] = []
        self.spans: list[tuple[float, float]] = []  # (start, end) of each slice
        self.cancelled = False
        self.done = threading.Event()

    def advance(self, seconds: float, cut=lambda: False) -> bool:
        start = time.monotonic()
        self.slices.append((start, torch.get_num_threads()))
        time.sleep(0.01)
        self.spans.append((start, time.monotonic()))
        self.todo -= 1
        if self.todo <= 0 or self.stopping:
            self.done.set()
            return False
        return True

    def work_left(self):
        return self.left

    def cancel(self):
        self.cancelled = True
        self.done.set()


@pytest.fixture
def sched():
    s = Scheduler(workers=2, cores=2, max_runs=4, slice_seconds=0.01)
    yield s
    s.shutdown()


def test_every_run_progresses_and_the_least_served_goes_next(sched):
    jobs = [FakeJob(f"j{i}", 30) for i in range(4)]
    for j in jobs:
        sched.submit(j)
    for j in jobs:
        assert j.done.wait(10)
    # interleaved, not one after another: each job's slices spread over the whole period
    firsts = sorted(j.slices[0][0] for j in jobs)
    lasts = sorted(j.slices[-1][0] for j in jobs)
    assert firsts[-1] < lasts[0], "a job only started after another had finished"
    # the shares stay level: at any moment no job has been served more than a few slices' time ahead of
    # another. The scheduler charges the time a slice took, which a busy machine stretches (a 10 ms sleep can
    # take 100 ms), so the test counts time as well, and measures "a slice" by the longest it saw.
    events = sorted((start, end - start, j.name) for j in jobs for start, end in j.spans)
    served, longest = {j.name: 0.0 for j in jobs}, 0.0
    for _, spent, name in events:
        served[name] += spent
        longest = max(longest, spent)
        assert max(served.values()) - min(served.values()) <= 3 * longest, (served, longest)


def test_a_newcomer_starts_at_once_and_level_with_the_others(sched):
    old = [FakeJob(f"old{i}", 10_000) for i in range(3)]
    for j in old:
        sched.submit(j)
    time.sleep(0.5)  # the old ones have had many slices each
    before = {j.name: len(j.slices) for j in old}
    new = FakeJob("new", 10_000)
    t0 = time.monotonic()
    sched.submit(new)
    while not new.slices:
        assert time.monotonic() - t0 < 1.0, "the newcomer waited"
        time.sleep(0.005)
    time.sleep(0.8)
    # from its arrival on it gets its share, about what each old job gets, not every slice until it has
    # caught up (without levelling it would take one worker's slices for the next ~0.7 s)
    gained = [len(j.slices) - before[j.name] for j in old]
    assert min(gained) > 0, "an old job starved after the newcomer came"
    assert len(new.slices) <= 1.5 * sum(gained) / len(gained) + 3, (len(new.slices), gained)
    for j in [*old, new]:
        j.stopping = True


def test_only_worker_zero_uses_several_threads(sched):
    alone = FakeJob("alone", 20)
    sched.submit(alone)
    assert alone.done.wait(10)
    assert {n for _, n in alone.slices} == {2}, "a run alone should use both cores"
    pair = [FakeJob("a", 40), FakeJob("b", 40)]
    for j in pair:
        sched.submit(j)
    for j in pair:
        assert j.done.wait(10)
    assert {n for j in pair for _, n in j.slices[5:-5]} == {1}, "two runs on two cores: one thread each"


class MinibatchJob(FakeJob):
    """A job that trains minibatches of 5 ms for as long as its slice lasts, asking ``cut()`` after each,
    as ``charrnn.lab.Run`` does; records each minibatch's start and thread count."""

    def __init__(self, name: str):
        super().__init__(name, 10_000)
        self.minibatches: list[tuple[float, int]] = []

    def advance(self, seconds: float, cut=lambda: False) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.stopping:
            self.minibatches.append((time.monotonic(), torch.get_num_threads()))
            time.sleep(0.005)
            if cut():
                return True
        self.done.set()
        return not self.stopping


def test_a_slice_ends_when_its_threads_no_longer_fit_the_runs():
    """A lone run trains with both cores; when a second run comes, its slice (here 30 s, longer than the
    test: only the cut can end it) goes on with one thread after the minibatch under way, and with both
    again once the other has ended."""
    s = Scheduler(workers=2, cores=2, max_runs=4, slice_seconds=30.0)
    lone, other = MinibatchJob("lone"), MinibatchJob("other")
    try:
        s.submit(lone)
        while len(lone.minibatches) < 5:
            time.sleep(0.005)
        assert {n for _, n in lone.minibatches} == {2}
        came = time.monotonic()
        s.submit(other)
        while len(other.minibatches) < 10:
            time.sleep(0.005)
        during = [n for t, n in lone.minibatches if t > came]
        assert during and during.count(2) <= 1, f"two threads beside another run's one on two cores: {during}"
        other.stopping = True
        assert other.done.wait(5)
        left = time.monotonic()
        while len([t for t, _ in lone.minibatches if t > left]) < 10:
            time.sleep(0.005)
        after = [n for t, n in lone.minibatches if t > left]
        assert after.count(1) <= 2 and after[-1] == 2, f"alone again, still on one thread: {after}"
    finally:
        lone.stopping = other.stopping = True
        s.shutdown()


def test_a_stopping_job_is_served_first(sched):
    jobs = [FakeJob(f"j{i}", 10_000) for i in range(4)]
    for j in jobs:
        sched.submit(j)
    time.sleep(0.2)
    t0 = time.monotonic()
    jobs[2].stopping = True
    sched.wake()
    assert jobs[2].done.wait(1.0)
    assert time.monotonic() - t0 < 0.5
    for j in jobs:
        j.stopping = True


def test_beyond_max_runs_jobs_wait_with_their_place(sched):
    jobs = [FakeJob(f"j{i}", 10_000) for i in range(6)]
    for j in jobs:
        sched.submit(j)
    assert sched.running == 4 and sched.queued == 2
    assert [sched.position(j) for j in jobs] == [None] * 4 + [1, 2]
    assert sched.withdraw(jobs[4]) and sched.position(jobs[5]) == 1
    jobs[0].stopping = True
    sched.wake()
    deadline = time.monotonic() + 5
    while not jobs[5].slices:
        assert time.monotonic() < deadline, "the waiting job was not admitted when a run ended"
        time.sleep(0.01)
    assert sched.position(jobs[5]) is None
    for j in jobs:
        j.stopping = True


def test_estimate_is_processor_sharing():
    s = Scheduler(workers=2, cores=2, max_runs=10)
    # jobs that never run (no workers started): only the estimate is exercised
    a, b, c = FakeJob("a", 1, left=10.0), FakeJob("b", 1, left=30.0), FakeJob("c", 1, left=None)
    with s._cv:
        s._runs.update({a: 0.0, b: 0.0})
    # 2 runs share 2 cores: 1 thread-second/s each. a ends at 10 s; b has 20 left, alone with 2 cores: 10 s more
    assert s.estimate(a) == pytest.approx(10.0) and s.estimate(b) == pytest.approx(20.0)
    assert s.estimate(FakeJob("x", 1, left=1.0)) is None  # not admitted
    with s._cv:
        s._runs[c] = 0.0
    assert s.estimate(a) == pytest.approx(10.0)  # estimates are made twice a second at most
    s._etas_at = -1.0
    assert s.estimate(a) is None  # a run whose pace is unknown makes every estimate unknown


def test_a_grouping_schedulers_runs_each_end_after_their_own_wall_time():
    """Grouping: each run has a worker of one thread, and its measured pace (thread-seconds = wall seconds, taken
    while it stepped with its group) already counts the others: it ends after its own work left."""
    s = Scheduler(cores=2, max_runs=10, group=True)
    assert s.workers == 10
    jobs = [FakeJob(f"g{i}", 1, left=w) for i, w in enumerate([4.0, 8.0, 12.0])]
    with s._cv:
        s._runs.update({j: 0.0 for j in jobs})
    assert [s.estimate(j) for j in jobs] == pytest.approx([4.0, 8.0, 12.0])  # not shared among 2 cores
    # more runs than workers: the workers are shared. 4 runs on 3: 3/4 s per second each until the first ends
    # (4 / 0.75 = 5.33 s), then one worker each: 4 s more for each of the others
    s = Scheduler(workers=3, cores=2, max_runs=10, group=True)
    jobs = [FakeJob(f"h{i}", 1, left=w) for i, w in enumerate([4.0, 8.0, 12.0, 20.0])]
    with s._cv:
        s._runs.update({j: 0.0 for j in jobs})
    first = 4.0 / 0.75
    assert [s.estimate(j) for j in jobs] == pytest.approx([first, first + 4, first + 8, first + 16])


def test_shutdown_cancels_every_job():
    s = Scheduler(workers=1, cores=1, max_runs=1, slice_seconds=0.01)
    jobs = [FakeJob("a", 10_000), FakeJob("b", 10_000)]
    for j in jobs:
        s.submit(j)
    time.sleep(0.1)
    s.shutdown()
    assert all(j.cancelled for j in jobs)
    assert all(not t.is_alive() for t in s._threads)
