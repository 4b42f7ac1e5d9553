"""Many users, one machine: training runs in background threads, grouped by user session.

``Lab`` keys ``Session`` objects by an opaque session id (the app uses Gradio's session hash). A
session owns its runs and the model it writes with. ``Slots`` lets at most ``max_jobs`` runs train
at once; the others wait in a first-come queue and can ask for their position. Sessions that stop
being seen are closed by ``Lab.reap``: their runs stop and their models are dropped.

Nothing here draws anything: a UI reads ``Run.view()`` and renders it.
"""
from __future__ import annotations

import collections
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from .checkpoint import Checkpoint
from .config import TrainConfig
from .corpus import Vocab
from .files import Caps, DiskQuota, SessionFiles
from .models import CharModel
from .threads import cpu_cores, one_thread, tune_threads
from .train import End, EpochEnd, Sample, Trainer

MAX_JOBS_ENV = "CHARRNN_MAX_JOBS"


def default_max_jobs() -> int:
    """$CHARRNN_MAX_JOBS, else the number of CPU cores this process may use."""
    value = os.environ.get(MAX_JOBS_ENV, "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{MAX_JOBS_ENV}={value!r} is not allowed: use a whole number of at least 1")
        return int(value)
    return max(1, cpu_cores())


# ---------------------------------------------------------------- the queue
class Slots:
    """At most ``limit`` holders at once; waiters are served first come, first served."""

    def __init__(self, limit: int):
        self.limit = limit
        self._cv = threading.Condition()
        self._holders: set[object] = set()
        self._queue: collections.deque[object] = collections.deque()

    def enqueue(self, key: object) -> None:
        """Take a place in the queue now (``acquire`` then waits from that place)."""
        with self._cv:
            if key not in self._queue and key not in self._holders:
                self._queue.append(key)

    def acquire(self, key: object, cancelled: threading.Event) -> bool:
        """Block until ``key`` holds a slot (True) or ``cancelled`` is set (False)."""
        self.enqueue(key)
        with self._cv:
            try:
                while not (self._queue[0] is key and len(self._holders) < self.limit):
                    if cancelled.is_set():
                        return False
                    self._cv.wait(0.05)
                self._queue.popleft()
                self._holders.add(key)
                return True
            finally:
                if key in self._queue:
                    self._queue.remove(key)
                self._cv.notify_all()

    def release(self, key: object) -> None:
        with self._cv:
            self._holders.discard(key)
            self._cv.notify_all()

    def position(self, key: object) -> int | None:
        """0 while holding a slot, k when k-th in the queue, None otherwise."""
        with self._cv:
            if key in self._holders:
                return 0
            for i, k in enumerate(self._queue):
                if k is key:
                    return i + 1
            return None

    @property
    def busy(self) -> int:
        with self._cv:
            return len(self._holders)


# ---------------------------------------------------------------- one run
@dataclass
class RunView:
    """What a UI needs to draw a run, copied under the run's lock."""
    number: int
    label: str
    config: TrainConfig
    status: str                      # queued, running, finished, stopped, diverged, error
    message: str
    queue_position: int | None       # 1-based while queued
    history: list[EpochEnd]
    samples: list[Sample]
    vocab_size: int
    device: str
    elapsed: float                   # seconds since training began (0 while queued)
    version: int                     # grows with every change

    @property
    def last(self) -> EpochEnd | None:
        return self.history[-1] if self.history else None

    @property
    def epoch(self) -> int:
        """Epochs completed (a resumed run counts the checkpoint's too)."""
        return self.history[-1].epoch if self.history else 0

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")

    @property
    def remaining(self) -> float | None:
        """Seconds left, from the mean epoch time so far."""
        if not self.history:
            return None
        per_epoch = self.elapsed / len(self.history)
        return max(self.config.epochs - self.history[-1].epoch, 0) * per_epoch


class Run:
    """One Trainer in a background thread, recording its events for readers on other threads."""

    def __init__(self, number: int, trainer: Trainer, slots: Slots, label: str | None = None):
        self.number = number
        self.trainer: Trainer | None = trainer  # None once released: the curves stay, the weights go
        self.config = trainer.config
        self.vocab_size = len(trainer.vocab)
        self.device = str(trainer.device)
        self.label = label or trainer.config.label()
        self._slots = slots
        self._lock = threading.Lock()
        self.stop_event = threading.Event()
        self.status = "queued"
        self.message = "waiting for a free slot"
        self.history: list[EpochEnd] = list(trainer.history)
        self.samples: list[Sample] = []
        self.version = 0
        self._started: float | None = None
        self._ended: float | None = None
        self._thread = threading.Thread(target=self._work, name=f"charrnn-run-{number}", daemon=True)

    def start(self) -> "Run":
        self._slots.enqueue(self)  # in the queue before start() returns, so its position is known at once
        self._thread.start()
        return self

    def _set(self, **changes: Any) -> None:
        with self._lock:
            for k, v in changes.items():
                setattr(self, k, v)
            self.version += 1

    def _work(self) -> None:
        if not self._slots.acquire(self, self.stop_event):
            self._set(status="stopped", message="stopped before it started")
            return
        try:
            self._set(status="running", message="training", _started=time.monotonic())
            tune_threads(self._slots.busy)
            for ev in self.trainer.run(self.stop_event):
                self._record(ev)
                if isinstance(ev, EpochEnd):
                    tune_threads(self._slots.busy)
        except Exception as e:  # a bug or resource error must end this run, never the server
            self._set(status="error", message=f"training failed: {type(e).__name__}: {e}")
        finally:
            self._slots.release(self)
            with self._lock:
                self._ended = time.monotonic()

    def _record(self, ev: Any) -> None:
        with self._lock:
            if isinstance(ev, EpochEnd):
                self.history.append(ev)
            elif isinstance(ev, Sample):
                self.samples.append(ev)
            elif isinstance(ev, End):
                self.status, self.message = ev.status, ev.message
            self.version += 1

    def stop(self, timeout: float = 0.0) -> bool:
        """Ask the run to stop (honoured within one minibatch); wait up to ``timeout`` s. True if ended."""
        self.stop_event.set()
        if timeout > 0 and self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def release(self) -> None:
        """Drop the model and optimizer of a run that has ended; its curves and samples stay for comparison."""
        if not self.alive:
            self.trainer = None

    def view(self) -> RunView:
        with self._lock:
            now = self._ended or time.monotonic()
            return RunView(
                number=self.number, label=self.label, config=self.config, status=self.status,
                message=self.message, queue_position=self._slots.position(self) if self.status == "queued" else None,
                history=list(self.history), samples=list(self.samples), vocab_size=self.vocab_size,
                device=self.device, elapsed=(now - self._started) if self._started else 0.0,
                version=self.version)


# ---------------------------------------------------------------- one user's session
class TrainRequest:
    """A Train press that has not started a run yet: a Stop that arrives meanwhile cancels it."""
    EXPIRES = 60.0  # seconds; an older request was never taken (its client went away) and is replaced

    def __init__(self) -> None:
        self.made = time.monotonic()
        self.cancelled = False
        self.checked: Any = None  # what the app's check of the settings found, kept for the start

    @property
    def stale(self) -> bool:
        return time.monotonic() - self.made > self.EXPIRES


class Session:
    """One browser session: its runs (kept for comparison) and the model it writes with."""

    def __init__(self, slots: Slots, files: SessionFiles | None = None):
        self._slots = slots
        self.files = files or SessionFiles(Caps.from_env(), DiskQuota(Caps.from_env().server_bytes))
        self._lock = threading.Lock()
        self.runs: list[Run] = []
        self.loaded: Checkpoint | None = None  # an uploaded checkpoint, until the next run starts
        self._numbers = 0
        self.last_seen = time.monotonic()
        self.heartbeats = False  # True once a browser tab's timer has pinged it
        self._request: TrainRequest | None = None
        self._idle_stop_at: float | None = None  # browser clock of the latest Stop that found nothing to stop

    def touch(self, heartbeat: bool = False) -> None:
        self.last_seen = time.monotonic()
        self.heartbeats = self.heartbeats or heartbeat

    @property
    def active(self) -> Run | None:
        with self._lock:
            return self._active()

    def _active(self) -> Run | None:
        """The run in progress (queued or training); the caller holds ``self._lock``."""
        return next((r for r in reversed(self.runs) if r.alive or r.status == "queued"), None)

    def start(self, trainer: Trainer, label: str | None = None, request: TrainRequest | None = None) -> Run | None:
        """Start training ``trainer`` in the background. One run per session at a time.

        The check and the start happen under one lock, so two clicks at once start one run, not two.
        ``request``: the Train request this run answers; if a Stop cancelled it meanwhile, nothing starts
        (None is returned).
        """
        with self._lock:
            if request is not None:
                if self._request is request:
                    self._request = None
                if request.cancelled:
                    return None
            if self._active() is not None:
                raise RuntimeError("a run is already training in this session: stop it first")
            for old in self.runs:  # only the newest run's model is used to write: free the others
                old.release()
            self._numbers += 1
            run = Run(self._numbers, trainer, self._slots, label)
            self.runs.append(run)
            self.loaded = None
            return run.start()

    def request_train(self, new: bool = False, pressed_at: float | None = None) -> TrainRequest:
        """The pending Train request: a new one if ``new``, none is pending, or the pending one is stale.

        ``pressed_at`` is the browser's clock when Train was pressed: a Stop pressed after it that reached
        the server first (two requests in flight can swap) cancels it all the same.
        """
        with self._lock:
            if new or self._request is None or self._request.stale:
                self._request = TrainRequest()
                if pressed_at is not None and self._idle_stop_at is not None and self._idle_stop_at >= pressed_at:
                    self._request.cancelled = True
            return self._request

    def pending_request(self) -> TrainRequest | None:
        """The Train request waiting for its run (it stays pending until ``start`` or ``drop_request``)."""
        with self._lock:
            return None if self._request is None or self._request.stale else self._request

    def drop_request(self, request: TrainRequest | None) -> None:
        """Forget a Train request that will start nothing (its settings were refused)."""
        with self._lock:
            if request is not None and self._request is request:
                self._request = None

    def stop(self, timeout: float = 1.0, pressed_at: float | None = None) -> Run | TrainRequest | None:
        """Stop the run in progress, or cancel the Train request that is about to start one.

        ``pressed_at``: the browser's clock when Stop was pressed (see ``request_train``).
        """
        with self._lock:
            run, request = self._active(), self._request
            if request is not None:
                request.cancelled = True
            elif run is None and pressed_at is not None:
                self._idle_stop_at = pressed_at
        if run is not None:
            run.stop(timeout)
            return run
        return request if request is not None and not request.stale else None

    def clear(self) -> None:
        """Forget every run but the one in progress (and the latest, which is the model to write with)."""
        with self._lock:
            keep = [r for r in self.runs if r.alive]
            if not keep and self.runs:
                keep = [self.runs[-1]]
            self.runs = keep

    def views(self) -> list[RunView]:
        with self._lock:
            runs = list(self.runs)
        return [r.view() for r in runs]

    def model(self) -> tuple[CharModel, Vocab, str] | None:
        """The model to write with: an uploaded checkpoint, else the latest run's (a consistent copy)."""
        one_thread()
        with self._lock:
            loaded, run = self.loaded, (self.runs[-1] if self.runs else None)
        if loaded is not None:
            return loaded.model, loaded.vocab, f"uploaded checkpoint ({loaded.config.label()}, epoch {loaded.epoch})"
        if run is None:
            return None
        return run.trainer.snapshot(), run.trainer.vocab, f"run #{run.number} ({run.label}, epoch {run.trainer.epoch})"

    def latest_trainer(self) -> Trainer | None:
        with self._lock:
            return self.runs[-1].trainer if self.runs else None

    def close(self) -> None:
        """Stop every run, drop every model and delete every file the session holds."""
        with self._lock:
            runs, self.runs, self.loaded = self.runs, [], None
        for r in runs:
            r.stop_event.set()
        self.files.close()


# ---------------------------------------------------------------- every session
class Lab:
    """All sessions of one server, the shared training slots, and the reaper of abandoned sessions.

    The app closes a session as soon as Gradio reports its tab closed (the unload event). As a fallback,
    a session that a browser's heartbeat has pinged is closed ``idle_seconds`` after its last sign of
    life (long enough for a background tab whose timers the browser throttles to once a minute);
    other sessions (API clients) after ``api_idle_seconds``. A run's stream also stops it when closed.
    """

    def __init__(self, max_jobs: int | None = None, idle_seconds: float = 120.0, api_idle_seconds: float = 600.0,
                 caps: Caps | None = None):
        self.slots = Slots(max_jobs or default_max_jobs())
        self.caps = caps or Caps.from_env()
        self.quota = DiskQuota(self.caps.server_bytes)  # every session's files together
        one_thread()  # the creating (main) thread, and the default for threads started later
        self.idle_seconds = idle_seconds
        self.api_idle_seconds = api_idle_seconds
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._reaper: threading.Thread | None = None
        self._closing = threading.Event()

    def session(self, key: str | None, heartbeat: bool = False) -> Session:
        key = key or "anonymous"
        with self._lock:
            s = self._sessions.get(key)
            if s is None:
                s = self._sessions[key] = Session(self.slots, SessionFiles(self.caps, self.quota))
        s.touch(heartbeat)
        return s

    def peek(self, key: str | None) -> Session | None:
        with self._lock:
            return self._sessions.get(key or "anonymous")

    def close(self, key: str | None) -> None:
        with self._lock:
            s = self._sessions.pop(key or "anonymous", None)
        if s is not None:
            s.close()

    def reap(self, now: float | None = None) -> list[str]:
        """Close the sessions nobody has shown signs of life in; returns their keys."""
        now = time.monotonic() if now is None else now
        with self._lock:
            gone = [k for k, s in self._sessions.items()
                    if now - s.last_seen > (self.idle_seconds if s.heartbeats else self.api_idle_seconds)]
        for k in gone:
            self.close(k)
        return gone

    def start_reaper(self, every: float = 5.0) -> None:
        if self._reaper is not None:
            return

        def loop() -> None:
            while not self._closing.wait(every):
                self.reap()
        self._reaper = threading.Thread(target=loop, name="charrnn-reaper", daemon=True)
        self._reaper.start()

    def shutdown(self) -> None:
        self._closing.set()
        with self._lock:
            keys = list(self._sessions)
        for k in keys:
            self.close(k)
