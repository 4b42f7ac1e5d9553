"""Fair sharing of the machine among every run that has started.

A classroom presses Train at once: a first-come queue behind two slots makes the last student wait
minutes for a first point. Here every admitted run makes progress. Training is cut into slices (the
minibatches of at most ``slice_seconds``, usually one or two epochs of the chapter's run), and a fixed
set of workers, one per core, each repeatedly takes the run furthest behind in its share and trains one
slice of it. A run's share is counted in seconds of a worker's time received; a run that joins starts
level with the least-served run now training, so it neither waits behind the others nor overtakes them.

Threads: only worker 0 ever uses more than one torch thread (all the cores, when it is the only worker
with work), the others one each. libgomp keeps a thread pool for every thread that ran a parallel region
with several threads, and once pools outnumber the cores it stops spin-waiting and everything slows
down (see ``charrnn.threads``); a fixed set of workers with one multi-threaded keeps that from happening
and keeps the process's thread count flat however many runs come and go.

Limits protect a shared machine: at most ``max_runs`` runs train at once (the others wait in a queue and
know their place). What a job must offer: ``advance(seconds, cut) -> bool`` (train about that long, or
until ``cut()`` says its worker's thread count should change, which it asks between minibatches; False
once it has ended), ``stopping`` (a stop was asked: it is served first so it ends at once),
``work_left()`` (thread-seconds it still needs, or None while unknown), ``cancel()``, and optionally
``starting`` (True until its first epoch: such a job goes before the others, so every student's curve
starts within seconds) and ``parked`` (True while it is paused: it keeps its place among the admitted jobs but
takes no worker and no share of the cores, so the others train as if it were not there; ``wake()`` when it
changes).

Grouping (``group``, decided by ``charrnn.grouped.grouping``: on where runs train on a CUDA GPU). A job whose
``trainer`` has a ``shape_key`` (the from-scratch kinds) steps in the ``Group`` of its key for as long as its
worker trains it: it joins at the start of each slice and leaves at its end, so a group never waits for a run
that no worker trains (paused, stopped, ended or queued). For a group to hold every such run, a grouping
scheduler has a worker for every run it may admit (``max_runs``), each with one torch thread (the work is the
GPU's). Without grouping everything above holds as it is.
"""
from __future__ import annotations

import collections
import threading
import time
from typing import Callable, Protocol

import torch

from .grouped import Group, grouping, shape_key
from .threads import cpu_cores


class Job(Protocol):
    stopping: bool

    def advance(self, seconds: float, cut: Callable[[], bool]) -> bool: ...
    def work_left(self) -> float | None: ...
    def cancel(self) -> None: ...


def _parked(job: Job) -> bool:
    return getattr(job, "parked", False)


class Scheduler:
    def __init__(self, workers: int | None = None, max_runs: int = 48, slice_seconds: float = 0.3,
                 cores: int | None = None, group: bool | None = None):
        self.cores = cores or cpu_cores()
        self.group = grouping(group)  # compatible runs step as one computation (None: $CHARRNN_GROUP, the device)
        self.workers = max(1, workers or (max_runs if self.group else self.cores))
        self.group_window = 0.02                   # seconds a group's step waits for members that have not asked
        self._groups: dict[tuple, Group] = {}      # shape_key -> the group of the runs of that shape
        self.max_runs = max_runs
        self.slice_seconds = slice_seconds
        self._cv = threading.Condition()
        self._runs: dict[Job, float] = {}          # admitted jobs -> worker seconds received (their share)
        self._busy: set[Job] = set()               # being trained by a worker right now
        self._waiting: collections.deque[Job] = collections.deque()  # not admitted yet (max_runs reached)
        self._threads: list[threading.Thread] = []
        self._closing = False
        self.trained_seconds = 0.0                 # wall seconds of training, all workers together
        self._etas: dict[Job, float | None] = {}   # the latest estimates, and when they were made
        self._etas_at = -1.0
        self._live = 0                             # admitted jobs not parked (read without the lock by cuts)
        self._again: set[Job] = set()              # ended while being trained, and submitted again meanwhile

    # ------------------------------------------------------------ jobs in and out
    def submit(self, job: Job) -> None:
        with self._cv:
            if self._closing:
                raise RuntimeError("the server is shutting down")
            if job in self._busy:  # it ended and goes on again (Run.go_on) before its worker let go of it
                self._again.add(job)
            elif len(self._runs) < self.max_runs:
                self._admit(job)
            else:
                self._waiting.append(job)
            self._start_workers()
            self._cv.notify_all()

    def _admit(self, job: Job) -> None:
        self._runs[job] = self._least_served()  # level with the least-served run
        self._count()

    def _least_served(self) -> float:
        return min((s for j, s in self._runs.items() if not _parked(j)), default=0.0)

    def _count(self) -> None:
        """The admitted jobs that train (the caller holds the lock)."""
        self._live = sum(1 for j in self._runs if not _parked(j))

    def withdraw(self, job: Job) -> bool:
        """Take a job that has not started out of the queue (True), or do nothing if it is admitted."""
        with self._cv:
            if job in self._waiting:
                self._waiting.remove(job)
                return True
            return False

    def wake(self, resumed: Job | None = None) -> None:
        """Something changed (a job asked to stop, paused or went on): let an idle worker look again.
        ``resumed``: a job that was parked and trains again, level with the least-served of the others (the
        time it was parked earns it no lead)."""
        with self._cv:
            if resumed is not None and resumed in self._runs:
                self._runs[resumed] = max(self._runs[resumed], self._least_served())
            self._count()
            self._cv.notify_all()

    def position(self, job: Job) -> int | None:
        """1-based place in the queue of jobs waiting to be admitted; None if admitted or unknown."""
        with self._cv:
            for i, j in enumerate(self._waiting):
                if j is job:
                    return i + 1
            return None

    @property
    def running(self) -> int:
        """Jobs admitted and not ended (training or waiting for their next slice), less those paused."""
        with self._cv:
            return self._live

    @property
    def queued(self) -> int:
        with self._cv:
            return len(self._waiting)

    # ------------------------------------------------------------ estimates
    def estimate(self, job: Job) -> float | None:
        """Seconds until ``job`` ends if every admitted run keeps its pace and shares the cores fairly.

        Processor sharing: n runs each get cores/n thread-seconds per second (a run alone: all of them);
        the run with the least work left ends first and the others speed up. A grouping scheduler's runs share
        no cores: each has a worker of one thread, so its thread-seconds are its wall seconds, measured while it
        stepped with its group (a group's epoch on a GPU costs about one run's): it ends after its own work left,
        unless there are more runs than workers, which then share them. None while some run's pace
        is unknown (no epoch yet) or the job waits to be admitted. Computed for every run at once, at
        most twice a second (thirty pages asking each second cost nothing then).
        """
        now = time.monotonic()
        with self._cv:
            if now - self._etas_at > 0.5:
                self._etas, self._etas_at = self._all_estimates([j for j in self._runs if not _parked(j)]), now
            return self._etas.get(job)

    def _all_estimates(self, jobs: list[Job]) -> dict[Job, float | None]:
        work = {j: j.work_left() for j in jobs}
        if any(w is None for w in work.values()):
            return {}
        out: dict[Job, float | None] = {}
        t, done = 0.0, 0.0
        ordered = sorted(jobs, key=work.__getitem__)
        slots, most = (self.workers, 1.0) if self.group else (self.cores, float(self.cores))
        for i, j in enumerate(ordered):
            rate = min(most, slots / (len(ordered) - i))  # thread-seconds per second for each run still going
            t += (work[j] - done) / rate
            done = work[j]
            out[j] = t
        return out

    # ------------------------------------------------------------ the workers
    def _start_workers(self) -> None:
        while len(self._threads) < self.workers:
            k = len(self._threads)
            t = threading.Thread(target=self._work, args=(k,), name=f"charrnn-worker-{k}", daemon=True)
            self._threads.append(t)
            t.start()

    def _pick(self, k: int) -> Job | None:
        """The job worker ``k`` should train next: a stopping one first, then one that has not finished its
        first epoch (its student waits for a first point; the job's slice lasts until that epoch ends),
        else the least-served idle one.

        Worker k > 0 takes work only when there are more than k jobs, so that a lone run goes to worker 0,
        the only one that may use every core."""
        free = [j for j in self._runs if j not in self._busy and not _parked(j)]
        stopping = [j for j in free if j.stopping]
        if stopping:
            return stopping[0]
        if not free or self._live <= k:
            return None
        starting = [j for j in free if getattr(j, "starting", False)]  # first epochs first, in order of arrival
        return starting[0] if starting else min(free, key=self._runs.__getitem__)

    def _threads_for(self, k: int) -> int:
        if k > 0 or self.group:
            return 1
        return max(1, self.cores - min(self._live, self.workers) + 1)

    def _cut_for(self, k: int) -> Callable[[], bool]:
        """Worker ``k``'s question to its job between minibatches: should the slice end, because the
        threads it trains with no longer fit the runs (a class pressed Train while a lone run had every
        core: its first epoch, never cut by time, would go on with two threads beside another worker's
        one on two cores; or the others ended, and a lone run may take every core now, on worker 0)."""
        if self.group:  # every worker has one thread, whatever the runs
            return lambda: False
        if k > 0:  # the others have ended (or paused): its job goes to worker 0, which may use every core
            return lambda: self._live <= k  # an int: no lock needed
        return lambda: torch.get_num_threads() != self._threads_for(0)

    def _work(self, k: int) -> None:
        torch.set_num_threads(1)
        while True:
            with self._cv:
                job = None
                while not self._closing and (job := self._pick(k)) is None:
                    self._cv.wait(0.5)
                if self._closing:
                    return
                self._busy.add(job)
                threads = self._threads_for(k)
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
            start = time.perf_counter()
            leave = self._join(job)
            try:
                going = job.advance(self.slice_seconds, self._cut_for(k))
            except Exception:  # advance reports its own errors; a worker never dies of one
                going = False
            leave()
            spent = time.perf_counter() - start
            with self._cv:
                self._busy.discard(job)
                self.trained_seconds += spent
                if going and job in self._runs:
                    self._runs[job] += spent
                elif job in self._again:  # it goes on: it keeps its place among the admitted
                    self._again.discard(job)
                    self._runs[job] = self._runs.get(job, 0.0) + spent
                else:
                    self._runs.pop(job, None)
                    while self._waiting and len(self._runs) < self.max_runs:
                        self._admit(self._waiting.popleft())
                self._count()
                self._cv.notify_all()

    def _join(self, job: Job) -> Callable[[], None]:
        """While grouping: ``job``'s trainer steps in the group of its shape for this slice; returns what ends
        that (nothing to end for a job that does not group)."""
        trainer = getattr(job, "trainer", None) if self.group else None
        key = shape_key(trainer) if trainer is not None else None
        if key is None:
            return lambda: None
        with self._cv:
            group = self._groups.setdefault(key, Group(self.group_window))
        group.join(trainer)
        return lambda: group.leave(trainer)

    def groups(self) -> dict[tuple, Group]:
        """The groups made so far, by shape (each keeps its steps' sizes)."""
        with self._cv:
            return dict(self._groups)

    def shutdown(self) -> None:
        with self._cv:
            self._closing = True
            jobs = list(self._runs) + list(self._waiting)
            self._waiting.clear()
            self._cv.notify_all()
        for job in jobs:
            job.cancel()
        for t in self._threads:
            t.join(timeout=5)
