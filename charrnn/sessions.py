"""One user's session: its runs (kept for comparison), the model it writes with, its files.

A session trains one run at a time (``start``); the lab's scheduler trains it beside every other session's.
A Train press is a request that a Stop may cancel before its run starts (``charrnn.presses``); a lesson is a
plan of runs started one after another (``charrnn.plans``); a session may be shared with a class, or watch
one (``charrnn.classes``). Closing a session stops its runs, drops its models and deletes its files.

Nothing here draws anything: a UI reads ``Run.view()`` and renders it.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from .checkpoint import Checkpoint
from .classes import Membership
from .config import TrainConfig
from .corpus import Vocab
from .files import SessionFiles
from .limits import Limits
from .models import CharModel
from .plans import Continues, Plan, Step
from .presses import Presses, TrainRequest
from .runs import Run, RunView
from .scheduler import Scheduler
from .threads import one_thread
from .train import Trainer

STOPPING_WAIT = 10.0  # s: how long a Train pressed just after a Stop waits for the stopped run's last minibatch


@dataclass(frozen=True)
class ModelSource:
    """Where a model to write with comes from: run ``number`` of its session (None: an uploaded checkpoint), the
    run's label and the epoch the model has trained."""
    number: int | None
    label: str
    epoch: int

    def __str__(self) -> str:
        what = f"run #{self.number}" if self.number is not None else "uploaded checkpoint"
        return f"{what} ({self.label}, epoch {self.epoch})"


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
        self.membership = Membership()  # the class it shares or watches
        self._plan: Plan | None = None  # the runs a lesson still has to start
        self._presses = Presses()       # the Train press waiting for its run (guarded by self._lock)

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

    # ------------------------------------------------------------ starting runs
    def start(self, trainer: Trainer, label: str | None = None, request: TrainRequest | None = None,
              caption: str = "", continues: int | None = None) -> Run | None:
        """Start training ``trainer``. One run per session at a time.

        The check and the start happen under one lock, so two clicks at once start one run, not two.
        ``request``: the Train request this run answers; if a Stop cancelled it meanwhile, nothing starts
        (None is returned). When the server is busy the run's epochs are capped, and its note says so.
        ``continues``: the number of the run whose model ``trainer`` goes on with (``plans.Continues``).
        """
        with self._lock:
            if request is not None and not self._presses.take(request):
                return None
            if self.closed:
                raise RuntimeError("this session has ended: reload the page")
            if self._active() is not None:
                raise RuntimeError("a run is already training in this session: stop it first")
            if self.membership.watching is not None:
                raise RuntimeError("this page watches a class: it trains nothing")
            joined = self.membership.joined  # a student's run: the experiment's rules, and its epochs
            if joined is not None:
                trainer.config = joined.admit(self.key, trainer.config)
            if not caption:
                self._plan = None  # an ordinary Train ends a lesson that was waiting for its next run
            note = self._busy_limit(trainer)
            for old in self.runs:  # only the newest run's model writes: free the others, but a lesson's own runs
                if not (caption and old.caption == caption):  # (each of them can go on: ``go_on``)
                    old.release()
            self._numbers += 1
            run = Run(self._numbers, trainer, self._scheduler, label, note, caption, continues)
            run.on_end = self._next_of_plan
            self.runs.append(run)
            if joined is not None:
                joined.record(self.key, run)
            self.loaded = None
            return run.start()

    def _busy_limit(self, trainer: Trainer) -> str:
        running, limits = self._scheduler.running, self._limits
        cap = trainer.epoch + limits.busy_epochs
        if running < limits.busy_runs or trainer.config.epochs <= cap:
            return ""
        trainer.config = trainer.config.replace(epochs=cap)
        return (f"the server is busy ({running} runs training): this run is limited to {limits.busy_epochs} "
                f"epochs · 服务器繁忙：本次最多训练 {limits.busy_epochs} 个周期")

    # ------------------------------------------------------------ lessons: plans of runs
    def start_plan(self, steps: list[Step], caption: str) -> Run | None:
        """Start a lesson: runs one after the other, each made by its step from the run before (None for the
        first). A Stop ends the lesson; a run that ends by itself (finished or diverged) starts the next."""
        plan = Plan(steps, caption)
        with self._lock:
            if self._active() is not None:
                raise RuntimeError("a run is already training in this session: stop it first")
            first, self._plan = plan.first(), plan
        return self.start(first(None), caption=caption)

    @property
    def in_lesson(self) -> bool:
        """A lesson is going: a run of it trains, or its next run is about to start."""
        with self._lock:
            return (self._plan is not None and not self._plan.done) or any(r.alive and r.caption for r in self.runs)

    def _next_of_plan(self, ended: Run) -> None:
        """A run has ended (``Run.on_end``): start the plan's next run, or end the plan."""
        with self._lock:
            plan = self._plan
            step = plan.after(ended) if plan is not None and not self.closed else None
            if step is None:
                self._plan = None
                return
        try:
            trainer = step(ended)
            goes_on = isinstance(step, Continues)  # with ended's model: its label says whose
            self.start(trainer, f"{trainer.config.label()} · model of #{ended.number}" if goes_on else None,
                       caption=plan.caption, continues=ended.number if goes_on else None)
        except Exception as e:  # the lesson ends; the page says why
            with self._lock:
                self._plan = None
            ended.tell(f"the lesson's next run could not start: {e}")

    # ------------------------------------------------------------ Train and Stop
    def request_train(self, new: bool = False, pressed_at: float | None = None) -> TrainRequest:
        """The pending Train request: a new one if ``new``, none is pending, or the pending one is stale.

        ``pressed_at`` is the browser's clock when Train was pressed: a Stop pressed after it that reached
        the server first (two requests in flight can swap) cancels it all the same.
        """
        with self._lock:
            return self._presses.press(new, pressed_at)

    def pending_request(self) -> TrainRequest | None:
        """The Train request waiting for its run (it stays pending until ``start`` or ``drop_request``)."""
        with self._lock:
            return self._presses.pending()

    def drop_request(self, request: TrainRequest | None) -> None:
        """Forget a Train request that will start nothing (its settings were refused)."""
        with self._lock:
            self._presses.drop(request)

    def stop(self, timeout: float = 1.0, pressed_at: float | None = None) -> Run | TrainRequest | None:
        """Stop the run in progress, or cancel the Train request that is about to start one.

        ``pressed_at``: the browser's clock when Stop was pressed (see ``request_train``).
        """
        with self._lock:
            run = self._active()
            self._plan = None  # Stop ends a lesson
            request = self._presses.stop(pressed_at=pressed_at)
        if run is not None:
            run.stop(timeout)
            return run
        return request if request is not None and not request.stale else None

    def restart(self, timeout: float = 1.0, pressed_at: float | None = None) -> tuple[Run | None, TrainRequest]:
        """Stop the run in progress and press Train, in one step ("stop it and train the new settings"): the new
        request is pending before the run is asked to stop, so a Stop pressed after this one cancels it, as it
        would a Train's. Returns the run stopped (None if none was) and the request."""
        with self._lock:
            run = self._active()
            self._plan = None
            request = self._presses.press(True, pressed_at)
        if run is not None:
            run.stop(timeout)
        return run, request

    def settle(self, timeout: float = STOPPING_WAIT) -> Run | None:
        """The run in progress, once a run asked to stop has ended (it finishes its minibatch first, which
        can take seconds on a busy machine): waits up to ``timeout`` s for that."""
        run = self.active
        if run is not None and run.stopping:
            run.wait(timeout)
        return self.active

    # ------------------------------------------------------------ pause, step, go on, change mid-run
    def _training(self) -> Run:
        """The run in progress, or RuntimeError saying there is none (or that this page only watches)."""
        self._trains()
        run = self.active
        if run is None:
            raise RuntimeError("no run is training: press Train first")
        return run

    def _trains(self) -> None:
        if self.membership.watching is not None:
            raise RuntimeError("this page watches a class: it trains nothing")

    def pause(self) -> Run:
        """Pause the run in progress (``Run.pause``)."""
        run = self._training()
        run.pause()
        return run

    def resume(self) -> Run:
        run = self._training()
        if not run.resume():
            raise RuntimeError("the run is not paused: Pause it first")
        return run

    def step(self, epochs: int = 1, batches: int = 0) -> Run:
        """While the run is paused: train ``epochs`` more (or ``batches`` minibatches) and pause again."""
        run = self._training()
        if not run.step(epochs, batches):
            raise RuntimeError("the run is not paused: Pause it first, then Step trains one epoch at a time")
        return run

    def go_on(self, epochs: int, number: int | None = None) -> Run:
        """Continue a run that has ended for ``epochs`` more (``Run.go_on``): the newest, or run ``number`` (the
        newest run's model is kept, and so are those of the latest lesson's runs)."""
        self._trains()
        with self._lock:
            if self._active() is not None:
                raise RuntimeError("a run is still training: it goes on by itself")
            if self.membership.joined is not None:
                raise RuntimeError(f"in the class's experiment every run trains {self.membership.joined.epochs} "
                                   "epochs: press Train for another run")
            run = self.runs[-1] if self.runs else None
            if run is None:
                raise RuntimeError("no run yet: press Train first")
            if number is not None:
                run = next((r for r in self.runs if r.number == number), None)
                if run is None:
                    raise RuntimeError(f"there is no run #{number} in this session")
            run.go_on(epochs)
            self.loaded = None  # its model is the one to write with again
        return run

    def adjust(self, **changes) -> tuple[Run, TrainConfig]:
        """Change live settings of the run in progress, or of the newest run (for when it goes on)."""
        self._trains()
        with self._lock:
            run = self._active() or (self.runs[-1] if self.runs else None)
        if run is None:
            raise RuntimeError("no run yet: press Train first")
        trained = [n for n in changes if n in ("lr", "clip_theta")]
        if self.membership.joined is not None and trained:  # the class chart compares runs by their settings
            raise RuntimeError(f"in the class's experiment a run keeps its {' and '.join(trained)}: press Train "
                               "again to try another value")
        return run, run.adjust(**changes)

    # ------------------------------------------------------------ runs kept, the model to write with
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

    def model(self) -> tuple[CharModel, Vocab, ModelSource] | None:
        """The model to write with: an uploaded checkpoint, else the latest run's (a consistent copy)."""
        one_thread()
        with self._lock:
            loaded, run = self.loaded, (self.runs[-1] if self.runs else None)
        if loaded is not None:
            return loaded.model, loaded.vocab, ModelSource(None, loaded.config.label(), loaded.epoch)
        trainer = run.trainer if run is not None else None
        if trainer is None:
            return None
        return run.snapshot(), trainer.vocab, ModelSource(run.number, run.label, trainer.epoch)

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
            self._plan = None
            runs, self.runs, self.loaded = self.runs, [], None
        for r in runs:
            r.stop()
            r.trainer = None  # the scheduler lets go of a stopped run within a slice; the weights go now
        self.files.close()
