"""Many users, one machine: sessions own runs, runs share the machine fairly, nothing outlives its session.

``Lab`` holds every ``Session`` of a server. A session is found by a secret key: a browser page keeps
its key (the app stores it in the browser) and gets its session back after a reload or when a phone
wakes up; an API client's session is keyed by its connection. A session owns its runs (kept for
comparison), the model it writes with and its files. Runs are trained by the lab's ``Scheduler``: every
run that has started makes progress (see ``charrnn.scheduler``). A run belongs to its session, not to
whoever watches it: it ends when it finishes, when Stop is pressed, or when its session closes (every
page of it gone for ``reconnect_seconds``, or no sign of life for ``idle_seconds``).

Limits a server's operator sets (environment variables, read when the lab is made):
``CHARRNN_MAX_RUNS`` runs training at once (default 48; more wait in a queue and see their place),
``CHARRNN_BUSY_RUNS`` from how many runs the server counts as busy (default 4 per core), and
``CHARRNN_BUSY_EPOCHS``, the most epochs a run started while busy may have (default 300),
``CHARRNN_IDLE_SECONDS`` (default 120) and ``CHARRNN_RECONNECT_SECONDS`` (default 60).

Nothing here draws anything: a UI reads ``Run.view()`` and renders it.
"""
from __future__ import annotations

import ctypes
import gc
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch

from .checkpoint import Checkpoint
from .config import TrainConfig
from .corpus import Vocab
from .files import Caps, DiskQuota, SessionFiles, env_int
from .inside import GradientsThroughTime, gradients_through_time, probe_batch
from .models import CharModel
from .scheduler import Scheduler
from .threads import cpu_cores, one_thread
from .train import End, EpochEnd, Event, Sample, Trainer


SNAPSHOT_FRESH = 1.0  # seconds for which one copy of a run's weights serves every reader (writing, the views)
PROBE_ROWS = 8        # windows of the minibatch the gradients-through-time view watches (a quarter of the
#                       chapter's 32: the curve's shape is the same, the cost to the training run a quarter)


@dataclass(frozen=True)
class Limits:
    max_runs: int = 48
    busy_runs: int = 8
    busy_epochs: int = 300
    idle_seconds: float = 120.0
    reconnect_seconds: float = 60.0

    @classmethod
    def from_env(cls) -> "Limits":
        return cls(max_runs=env_int("CHARRNN_MAX_RUNS", 48), busy_runs=env_int("CHARRNN_BUSY_RUNS", 4 * cpu_cores()),
                   busy_epochs=env_int("CHARRNN_BUSY_EPOCHS", 300),
                   idle_seconds=env_int("CHARRNN_IDLE_SECONDS", 120, low=5),
                   reconnect_seconds=env_int("CHARRNN_RECONNECT_SECONDS", 60, low=1))


# ---------------------------------------------------------------- one run
@dataclass
class RunView:
    """What a UI needs to draw a run, copied under the run's lock."""
    number: int
    label: str
    config: TrainConfig
    status: str                      # queued, running, finished, stopped, diverged, error
    message: str
    queue_position: int | None       # 1-based while queued (the server's run limit is reached)
    history: list[EpochEnd]
    samples: list[Sample]
    vocab_size: int
    device: str
    elapsed: float                   # seconds since training began (0 while queued)
    version: int                     # grows with every change
    eta: float | None = None         # seconds until it ends, sharing the machine with every other run
    note: str = ""                   # a limit that applies to this run, said to its user
    caption: str = ""                # what to look at, when the run is part of a lesson
    running_runs: int = 0            # runs training on the server when the view was taken

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


class Run:
    """One Trainer, trained slice by slice by the lab's workers; records its events for readers."""

    def __init__(self, number: int, trainer: Trainer, scheduler: Scheduler, label: str | None = None,
                 note: str = "", caption: str = ""):
        self.number = number
        self.trainer: Trainer | None = trainer  # None once released: the curves stay, the weights go
        self.config = trainer.config
        self.vocab_size = len(trainer.vocab)
        self.device = str(trainer.device)
        self.label = label or trainer.config.label()
        self.note = note
        self.caption = caption          # what this run shows, when it is part of a lesson
        self.on_end: Any = None         # called with the run once it has ended (a lesson starts its next run)
        self._scheduler = scheduler
        self._lock = threading.Lock()
        self.stop_event = threading.Event()
        self._ended = threading.Event()
        self.status = "running"
        self.message = "training"
        self.history: list[EpochEnd] = list(trainer.history)
        self.samples: list[Sample] = []
        self.version = 0
        self._work = None
        self._costs: list[float] = []  # thread-seconds of each epoch trained here
        self._started: float | None = None
        self._ended_at: float | None = None
        self._inside_lock = threading.Lock()
        self._gradients: tuple[int, GradientsThroughTime] | None = None  # (epoch, the latest gradients view)
        self._snapshot: tuple[float, CharModel] | None = None  # (when, a copy of the weights) for readers

    # ------------------------------------------------------------ the scheduler's side
    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    @property
    def starting(self) -> bool:
        """No epoch trained yet (a student is waiting for the first point of their curve)."""
        return not self._costs

    def start(self) -> "Run":
        self._scheduler.submit(self)
        return self

    def advance(self, seconds: float, cut: Callable[[], bool] = lambda: False) -> bool:
        """Train for about ``seconds`` (whole minibatches) or until ``cut()``; False once the run has ended."""
        if self._ended.is_set():
            return False
        trainer = self.trainer
        if self._work is None:
            if trainer is None or self.stop_event.is_set():  # stopped (or its session closed) before it began
                self._end("stopped", "stopped before it started")
                return False
            with self._lock:
                self._started = time.monotonic()
            self._work = trainer.work(self.stop_event)
        threads = torch.get_num_threads()
        deadline = time.perf_counter() + seconds
        try:
            for events in self._work:
                if events:
                    self._record(events, threads)
                    if isinstance(events[-1], End):
                        return False
                if time.perf_counter() >= deadline and not self.starting:
                    return True  # a run's first epoch is not cut by time: its curve starts as soon as possible
                if cut():
                    return True  # its worker's threads no longer fit: the scheduler gives it the right number
        except Exception as e:  # a bug or resource error ends this run, never the server
            self._end("error", f"training failed: {type(e).__name__}: {e}")
            return False
        self._end("error", "training ended without saying how")
        return False

    def _record(self, events: list[Event], threads: int) -> None:
        with self._lock:
            for ev in events:
                if isinstance(ev, EpochEnd):
                    self.history.append(ev)
                    self._costs.append(ev.seconds * threads)
                elif isinstance(ev, Sample):
                    self.samples.append(ev)
                elif isinstance(ev, End):
                    self.status, self.message = ev.status, ev.message
            self.version += 1
        if isinstance(events[-1], End):
            self._end()

    def _end(self, status: str | None = None, message: str | None = None) -> None:
        with self._lock:
            if status is not None:
                self.status, self.message = status, message
            self._ended_at = time.monotonic()
            self.version += 1
        self._work = None
        try:  # the gradients view of its last epoch, kept once the weights are released (one minibatch's work)
            self.gradients()
        except Exception:  # noqa: BLE001 (a view must never keep a run from ending)
            pass
        self._ended.set()
        if self.on_end is not None:
            self.on_end(self)

    def work_left(self) -> float | None:
        """Thread-seconds of training still to do, from the pace of its recent epochs (None before the first)."""
        with self._lock:
            if not self._costs:
                return None
            recent = self._costs[-10:]
            left = max(self.config.epochs - (self.history[-1].epoch if self.history else 0), 0)
        return left * sum(recent) / len(recent)

    def cancel(self) -> None:
        """The server is going away: end now, whatever the state."""
        self.stop_event.set()
        if not self._ended.is_set():
            self._end("stopped", "the server stopped")

    # ------------------------------------------------------------ the user's side
    def stop(self, timeout: float = 0.0) -> bool:
        """Ask the run to stop (honoured within one minibatch); wait up to ``timeout`` s. True if ended."""
        self.stop_event.set()
        if self._scheduler.withdraw(self):  # never started: it ends here
            self._end("stopped", "stopped before it started")
        else:
            self._scheduler.wake()
        return self._ended.wait(timeout) if timeout > 0 else self._ended.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._ended.wait(timeout)

    @property
    def alive(self) -> bool:
        return not self._ended.is_set()

    def release(self) -> None:
        """Drop the model and optimizer of a run that has ended; its curves and samples stay for comparison,
        and so does its view of gradients through time (made for its last epoch when it ended)."""
        if not self.alive:
            self.trainer = None
            self._snapshot = None

    def snapshot(self) -> CharModel:
        """A consistent CPU copy of the weights, shared by every reader for ``SNAPSHOT_FRESH`` seconds (a
        page dragging the temperature slider asks several times a second; a copy each time took the
        training run's lock and a deep copy of the model each time). Readers only read it."""
        with self._inside_lock:
            now = time.monotonic()
            trainer = self.trainer
            stale = self._snapshot is None or (now - self._snapshot[0] > SNAPSHOT_FRESH and (
                self.alive or self._snapshot[0] <= (self._ended_at or now)))  # an ended run's weights stay put
            if stale:
                if trainer is None:
                    raise RuntimeError("this run's weights are released")
                self._snapshot = (now, trainer.snapshot())
            return self._snapshot[1]

    def gradients(self) -> tuple[int, GradientsThroughTime] | None:
        """(epoch, the norms of the loss's gradient with respect to each step's state) for the run's fixed
        minibatch (``charrnn.inside``): made from a snapshot of the weights (on the CPU, in the calling thread,
        which should use one torch thread) when the run has trained an epoch since the last one, so any number
        of pages asking cost one computation per epoch; a released run keeps its last. None before the first
        epoch."""
        with self._inside_lock:
            trainer = self.trainer
            if trainer is None or trainer.epoch == 0 or (self._gradients and self._gradients[0] == trainer.epoch):
                return self._gradients
            epoch, model = trainer.epoch, trainer.snapshot()
            X, Y = probe_batch(trainer.indices, min(PROBE_ROWS, self.config.batch_size), self.config.num_steps)
            self._gradients = (epoch, gradients_through_time(model, X, Y))
            return self._gradients

    def view(self) -> RunView:
        position = self._scheduler.position(self) if self.alive else None
        eta = self._scheduler.estimate(self) if self.alive and position is None else None
        with self._lock:
            now = self._ended_at or time.monotonic()
            status = "queued" if position is not None else self.status
            message = "waiting for the server's run limit" if position is not None else self.message
            return RunView(
                number=self.number, label=self.label, config=self.config, status=status, message=message,
                queue_position=position, history=list(self.history), samples=list(self.samples),
                vocab_size=self.vocab_size, device=self.device,
                elapsed=(now - self._started) if self._started else 0.0, version=self.version, eta=eta,
                note=self.note, caption=self.caption, running_runs=self._scheduler.running)


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
    """One user's session: its runs (kept for comparison), the model it writes with, its files."""

    def __init__(self, key: str, scheduler: Scheduler, files: SessionFiles, limits: Limits = Limits(),
                 keyed: bool = False):
        self.key = key                  # the secret that finds this session (a page keeps it)
        self.keyed = keyed              # True once a page attached by key: it may come back after a reload
        self._scheduler = scheduler
        self._limits = limits
        self.files = files
        self._lock = threading.Lock()
        self.runs: list[Run] = []
        self.loaded: Checkpoint | None = None  # an uploaded checkpoint, until the next run starts
        self._numbers = 0
        self._cleared = 0
        self.last_seen = time.monotonic()
        self.heartbeats = False         # True once a browser tab's timer has pinged it
        self.pages: set[str] = set()    # the connections (Gradio session hashes) attached now
        self.orphaned_at: float | None = None  # when its last page went away
        self.closed = False
        self.shared: Any = None         # what the app keeps for the session (its render cache)
        self.class_code: str | None = None  # set while the session is shared with a class
        self.watching: str | None = None    # the key of the class session this one watches, if any
        self.watched_code: str | None = None  # and that class's code (it outlives the class)
        self._plan: list[Callable[[Run | None], Trainer]] = []  # the runs a lesson still has to start
        self._plan_caption = ""
        self.last_write = 0.0           # when this session last wrote (watchers are rate-limited)
        self.write_gate = threading.Semaphore(1)  # one writer at a time with this session's model
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
        return next((r for r in reversed(self.runs) if r.alive), None)

    def state_key(self) -> tuple:
        """Changes whenever anything shown of the session's runs changes (for caching renders)."""
        with self._lock:
            runs = list(self.runs)
        return (self._cleared, *((r.number, r.version) for r in runs))

    def start(self, trainer: Trainer, label: str | None = None, request: TrainRequest | None = None,
              caption: str = "") -> Run | None:
        """Start training ``trainer``. One run per session at a time.

        The check and the start happen under one lock, so two clicks at once start one run, not two.
        ``request``: the Train request this run answers; if a Stop cancelled it meanwhile, nothing starts
        (None is returned). When the server is busy the run's epochs are capped, and its note says so.
        """
        with self._lock:
            if request is not None:
                if self._request is request:
                    self._request = None
                if request.cancelled:
                    return None
            if self.closed:
                raise RuntimeError("this session has ended: reload the page")
            if self._active() is not None:
                raise RuntimeError("a run is already training in this session: stop it first")
            if self.watching is not None:
                raise RuntimeError("this page watches a class: it trains nothing")
            if not caption:
                self._plan = []  # an ordinary Train ends a lesson that was waiting for its next run
            note = self._busy_limit(trainer)
            for old in self.runs:  # only the newest run's model is used to write: free the others
                old.release()
            self._numbers += 1
            run = Run(self._numbers, trainer, self._scheduler, label, note, caption)
            run.on_end = self._next_of_plan
            self.runs.append(run)
            self.loaded = None
            return run.start()

    def start_plan(self, steps: list[Callable[[Run | None], Trainer]], caption: str) -> Run | None:
        """Start a lesson: runs one after the other, each made by its step from the run before (None for the
        first). A Stop ends the lesson; a run that ends by itself (finished or diverged) starts the next."""
        with self._lock:
            if self._active() is not None:
                raise RuntimeError("a run is already training in this session: stop it first")
            self._plan, self._plan_caption = list(steps[1:]), caption
        return self.start(steps[0](None), caption=caption)

    @property
    def in_lesson(self) -> bool:
        """A lesson is going: a run of it trains, or its next run is about to start."""
        with self._lock:
            return bool(self._plan) or any(r.alive and r.caption for r in self.runs)

    def _next_of_plan(self, ended: Run) -> None:
        with self._lock:
            if not self._plan or ended.status not in ("finished", "diverged") or self.closed:
                self._plan = []
                return
            step, caption = self._plan.pop(0), self._plan_caption
        try:
            self.start(step(ended), caption=caption)
        except Exception as e:  # the lesson ends; the page says why
            with self._lock:
                self._plan = []
            with ended._lock:
                ended.note = f"the lesson's next run could not start: {e}"
                ended.version += 1

    def _busy_limit(self, trainer: Trainer) -> str:
        running, limits = self._scheduler.running, self._limits
        cap = trainer.epoch + limits.busy_epochs
        if running < limits.busy_runs or trainer.config.epochs <= cap:
            return ""
        trainer.config = trainer.config.replace(epochs=cap)
        return (f"the server is busy ({running} runs training): this run is limited to {limits.busy_epochs} "
                f"epochs · 服务器繁忙：本次最多训练 {limits.busy_epochs} 个周期")

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
            self._plan = []  # Stop ends a lesson
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
            self._cleared += 1

    def all_runs(self) -> list[Run]:
        """The session's runs, oldest first (a copy of the list)."""
        with self._lock:
            return list(self.runs)

    def views(self) -> list[RunView]:
        return [r.view() for r in self.all_runs()]

    def model(self) -> tuple[CharModel, Vocab, str] | None:
        """The model to write with: an uploaded checkpoint, else the latest run's (a consistent copy)."""
        one_thread()
        with self._lock:
            loaded, run = self.loaded, (self.runs[-1] if self.runs else None)
        if loaded is not None:
            return loaded.model, loaded.vocab, f"uploaded checkpoint ({loaded.config.label()}, epoch {loaded.epoch})"
        trainer = run.trainer if run is not None else None
        if trainer is None:
            return None
        return run.snapshot(), trainer.vocab, f"run #{run.number} ({run.label}, epoch {trainer.epoch})"

    def training_text(self, length: int) -> str:
        """The first ``length`` characters of the latest run's training text ("" when there is none)."""
        trainer = self.latest_trainer()
        corpus = trainer.corpus if trainer is not None else None
        return corpus.text[:length] if corpus is not None else ""

    def latest_trainer(self) -> Trainer | None:
        with self._lock:
            return self.runs[-1].trainer if self.runs else None

    def close(self) -> None:
        """Stop every run, drop every model and delete every file the session holds."""
        with self._lock:
            self.closed = True
            self._plan = []
            runs, self.runs, self.loaded, self.shared = self.runs, [], None, None
        for r in runs:
            r.stop()
            r.trainer = None  # the scheduler lets go of a stopped run within a slice; the weights go now
        self.files.close()


# ---------------------------------------------------------------- every session
class Lab:
    """All sessions of one server, the scheduler that trains their runs, and the reaper of abandoned ones.

    A page attaches to its session by key (``attach``); an API client's connection gets a session of its
    own on first use (``session``). When a connection goes (``detach``: Gradio's unload event), a
    session that a page attached by key waits ``reconnect_seconds`` for a page to come back (a reload, a
    phone waking up), then closes; an API session closes at once. The reaper also closes sessions with
    no sign of life for ``idle_seconds`` (a page pings every few seconds; API clients get 10 minutes).
    """

    API_IDLE_SECONDS = 600.0

    def __init__(self, max_runs: int | None = None, caps: Caps | None = None, limits: Limits | None = None,
                 workers: int | None = None, **overrides: float):
        limits = limits or Limits.from_env()
        if max_runs is not None:
            overrides["max_runs"] = max_runs
        self.limits = Limits(**{**limits.__dict__, **overrides})
        self.scheduler = Scheduler(workers=workers, max_runs=self.limits.max_runs)
        self.caps = caps or Caps.from_env()
        self.quota = DiskQuota(self.caps.server_bytes)  # every session's files together
        one_thread()  # the creating (main) thread, and the default for threads started later
        self._sessions: dict[str, Session] = {}          # key -> session
        self._by_page: dict[str, str] = {}               # Gradio session hash -> key
        self._classes: dict[str, str] = {}               # class code -> key of the session it shows
        self._lock = threading.Lock()
        self._reaper: threading.Thread | None = None
        self._closing = threading.Event()

    # ------------------------------------------------------------ finding sessions
    def attach(self, page: str, key: str | None) -> Session:
        """Attach a page's connection to the session of ``key``.

        An unknown key (a first visit, or a server restarted since) makes the page's session keyed, and
        new if the page has none yet."""
        with self._lock:
            session = self._sessions.get(key or "")
            if session is None:
                session = self._sessions.get(self._by_page.get(page, "")) or self._new(keyed=True)
            old = self._sessions.get(self._by_page.get(page, ""))
            if old is not None and old is not session:
                old.pages.discard(page)
            self._by_page[page] = session.key
            session.pages.add(page)
            session.keyed = True
            session.orphaned_at = None
        session.touch(heartbeat=True)
        return session

    def session(self, page: str | None, heartbeat: bool = False) -> Session:
        """The session of a connection (a new one, keyed by nobody, on first use).

        A connection that went away and came back (a phone waking up) finds its session again."""
        page = page or "anonymous"
        with self._lock:
            session = self._sessions.get(self._by_page.get(page, ""))
            if session is None:
                session = self._new(keyed=False)
                self._by_page[page] = session.key
            session.pages.add(page)
            session.orphaned_at = None
        session.touch(heartbeat)
        return session

    def _new(self, keyed: bool) -> Session:
        key = secrets.token_urlsafe(24)
        session = Session(key, self.scheduler, SessionFiles(self.caps, self.quota), self.limits, keyed)
        self._sessions[key] = session
        return session

    def peek(self, page: str | None) -> Session | None:
        with self._lock:
            return self._sessions.get(self._by_page.get(page or "anonymous", ""))

    def by_key(self, key: str) -> Session | None:
        with self._lock:
            return self._sessions.get(key)

    def sessions(self) -> list[Session]:
        with self._lock:
            return list(self._sessions.values())

    # ------------------------------------------------------------ classes
    def share(self, session: Session) -> str:
        """The class code of a session (made on first call): anyone with it may watch the session's runs."""
        with self._lock:
            if session.class_code is None:
                code = new_class_code()
                while code in self._classes:
                    code = new_class_code()
                session.class_code = code
                self._classes[code] = session.key
            return session.class_code

    def by_class(self, code: str | None) -> Session | None:
        """The session a class code shows, or None for a code that is unknown or whose class has ended."""
        with self._lock:
            return self._sessions.get(self._classes.get(normal_code(code), ""))

    # ------------------------------------------------------------ ending sessions
    def detach(self, page: str | None) -> None:
        """A connection went away (its tab closed, or its network). A page's session waits for it to return."""
        page = page or "anonymous"
        with self._lock:
            session = self._sessions.get(self._by_page.get(page, ""))
            if session is None:
                return
            session.pages.discard(page)
            if session.pages:
                return
            if session.keyed:
                session.orphaned_at = time.monotonic()
                return
        self.close(session.key)

    def close(self, key: str) -> None:
        with self._lock:
            session = self._sessions.pop(key, None)
            for page in [p for p, k in self._by_page.items() if k == key]:
                del self._by_page[page]
            if session is not None and session.class_code is not None:
                self._classes.pop(session.class_code, None)
        if session is not None:
            session.close()

    def reap(self, now: float | None = None) -> list[str]:
        """Close the sessions whose pages are gone for good, or that show no sign of life; returns their keys."""
        now = time.monotonic() if now is None else now
        limits = self.limits
        with self._lock:
            gone = [k for k, s in self._sessions.items()
                    if (s.orphaned_at is not None and now - s.orphaned_at > limits.reconnect_seconds)
                    or now - s.last_seen > (limits.idle_seconds if s.heartbeats else self.API_IDLE_SECONDS)]
        for k in gone:
            self.close(k)
        if gone:
            release_memory()
        return gone

    def start_reaper(self, every: float = 2.0) -> None:
        if self._reaper is not None:
            return

        def loop() -> None:
            while not self._closing.wait(every):
                self.reap()
        self._reaper = threading.Thread(target=loop, name="charrnn-reaper", daemon=True)
        self._reaper.start()

    def shutdown(self) -> None:
        self._closing.set()
        for s in self.sessions():
            self.close(s.key)
        self.scheduler.shutdown()

    def stats(self) -> dict[str, Any]:
        """What the server is doing, for its operator and the benchmarks."""
        sessions = self.sessions()
        return {"sessions": len(sessions), "pages": sum(len(s.pages) for s in sessions),
                "classes": sum(s.class_code is not None for s in sessions),
                "watchers": sum(s.watching is not None for s in sessions),
                "runs_training": self.scheduler.running, "runs_queued": self.scheduler.queued,
                "workers": self.scheduler.workers, "cores": self.scheduler.cores,
                "trained_seconds": round(self.scheduler.trained_seconds, 3), "threads": threading.active_count(),
                "files_bytes": self.quota.used}


CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # 32 symbols (no 0/O, 1/I): 5 bits each, easy to read out


def new_class_code() -> str:
    """8 random symbols, 40 bits, shown as ``ABCD-EFGH``: far too many to guess, short enough to type."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


def normal_code(code: str | None) -> str:
    """A code as typed (any case, with or without the dash or spaces) in its canonical form ("" if malformed)."""
    raw = "".join(c for c in (code or "").upper() if c.isalnum())
    return f"{raw[:4]}-{raw[4:]}" if len(raw) == 8 else ""


def release_memory() -> None:
    """Give freed memory back to the system (glibc keeps freed blocks of large tensors otherwise)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
