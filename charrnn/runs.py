"""One training run of a session: a Trainer trained slice by slice by the lab's scheduler, and what it records.

A ``Run`` keeps its events (epochs, samples, its end) for any number of readers, and hands a UI a ``RunView``
copied under its lock. Readers of its weights (writing, the views inside the model) share one snapshot.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch

from .config import TrainConfig
from .inside import GradientsThroughTime, gradients_through_time, probe_batch
from .models import CharModel
from .pace import pace
from .scheduler import Scheduler
from .events import Change
from .train import End, EpochEnd, Event, Sample, Trainer

SNAPSHOT_FRESH = 1.0  # seconds for which one copy of a run's weights serves every reader (writing, the views)
PROBE_ROWS = 8        # windows of the minibatch the gradients-through-time view watches (a quarter of the
#                       chapter's 32: the curve's shape is the same, the cost to the training run a quarter)


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
    continues: int | None = None     # the run of the session whose model this one goes on with (a lesson's fork)
    paused: bool = False             # training waits for Resume or Step (Run.pause)
    changes: tuple[Change, ...] = ()  # settings changed while it trained, in order (Trainer.adjust)

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
                 note: str = "", caption: str = "", continues: int | None = None):
        self.number = number
        self.trainer: Trainer | None = trainer  # None once released: the curves stay, the weights go
        self._config = trainer.config
        self.vocab_size = len(trainer.vocab)
        self.device = str(trainer.device)
        self.label = label or trainer.config.label()
        self.note = note
        self.caption = caption          # what this run shows, when it is part of a lesson
        self.continues = continues      # the run whose model it goes on with (its epochs are that run's too)
        self.on_end: Callable[[Run], None] | None = None  # called once it has ended (a lesson starts its next run)
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
        self._costs: list[tuple[float, int]] = []  # (thread-seconds, threads) of each epoch trained here
        self._busy = 0.0               # thread-seconds trained since the last epoch ended
        self._started: float | None = None
        self._ended_at: float | None = None
        self._inside_lock = threading.Lock()
        self._gradients: tuple[int, GradientsThroughTime] | None = None  # (epoch, the latest gradients view)
        self._snapshot: tuple[float, CharModel] | None = None  # (when, a copy of the weights) for readers
        self._paused = False            # Pause was pressed: training waits for Resume or Step
        self._until: tuple[str, int] | None = None  # a Step going: ("epoch", n) trains to epoch n, ("batch", k)
        self._drive = threading.Lock()  # held while a worker trains it (so a change may be applied at once when not)
        self._changes: tuple[Change, ...] = ()  # the trainer's changes, as last seen

    @property
    def config(self) -> TrainConfig:
        """The run's settings as they are now (changes while it trains, more epochs when it goes on)."""
        trainer = self.trainer
        if trainer is not None:
            self._config = trainer.config
        return self._config

    # ------------------------------------------------------------ the scheduler's side
    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    @property
    def parked(self) -> bool:
        """Paused, and no Step or Stop to carry out: it takes no worker (the scheduler's ``parked``)."""
        return self._paused and self._until is None and not self.stop_event.is_set() and not self._ended.is_set()

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
        with self._drive:
            return self._advance(seconds, cut)

    def _advance(self, seconds: float, cut: Callable[[], bool]) -> bool:
        if self.parked:
            return True
        trainer = self.trainer
        if self._work is None:
            if trainer is None or self.stop_event.is_set():  # stopped (or its session closed) before it began
                self._end("stopped", "stopped before it started")
                return False
            with self._lock:
                self._started = time.monotonic()
            self._work = trainer.work(self.stop_event)
        threads = torch.get_num_threads()
        mark = time.perf_counter()
        deadline = mark + seconds
        try:
            for events in self._work:
                now = time.perf_counter()  # what an epoch costs: the time of its minibatches, samples and steps
                self._busy, mark = self._busy + (now - mark) * threads, now
                if events:
                    self._record(events, threads)
                    if isinstance(events[-1], End):
                        return False
                self._saw_changes(trainer)
                if self._stepped(trainer, bool(events)) or self.parked:
                    return True  # paused: the scheduler leaves it until Resume or Step
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
                    self._costs.append((self._busy, threads))
                    self._busy = 0.0
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

    def _saw_changes(self, trainer: Trainer) -> None:
        if len(trainer.changes) != len(self._changes):
            with self._lock:
                self._changes = tuple(trainer.changes)
                self.version += 1

    def _stepped(self, trainer: Trainer, epoch_ended: bool) -> bool:
        """After a slice of a Step: True once it has trained what was asked (the run is paused again)."""
        until = self._until
        if until is None:
            return False
        kind, n = until
        if kind == "batch":  # a minibatch's slice has no events; the epoch's last one waits for its epoch's end
            n -= 0 if epoch_ended else 1
            done = n <= 0 and trainer.batch < trainer.batches_per_epoch
        else:
            done = trainer.epoch >= n
        with self._lock:
            self._until = None if done else (kind, n)
            if done:
                self.version += 1
        return done

    # ------------------------------------------------------------ pause, step, go on, change (the user's)
    def pause(self) -> bool:
        """Pause within one minibatch: weights, optimizer, carried state and the place in the epoch are kept,
        and the run takes no worker until ``resume`` or ``step``. False if it has ended."""
        with self._lock:
            if self._ended.is_set():
                return False
            self._paused, self._until = True, None
            self.version += 1
        self._scheduler.wake()
        return True

    def resume(self) -> bool:
        """Go on from exactly where the pause left it. False if it is not paused."""
        with self._lock:
            if not self._paused or self._ended.is_set():
                return False
            self._paused, self._until = False, None
            self.version += 1
        self._scheduler.wake(resumed=self)
        return True

    def step(self, epochs: int = 1, batches: int = 0) -> bool:
        """While paused: train to the end of the next epoch (``epochs`` of them; the rest of the current one if
        the pause came inside it), or ``batches`` minibatches, then pause again. False if not paused."""
        trainer = self.trainer
        with self._lock:
            if not self._paused or self._ended.is_set() or trainer is None:
                return False
            self._until = ("batch", batches) if batches > 0 else ("epoch", trainer.epoch + max(1, epochs))
            self.version += 1
        self._scheduler.wake(resumed=self)
        return True

    def go_on(self, epochs: int) -> None:
        """Continue a run that ended (finished, stopped or diverged) for ``epochs`` more: the same run, its
        curve and number, the optimizer's state kept. RuntimeError if it cannot; ConfigError for the epochs."""
        trainer = self.trainer
        with self._lock:
            if not self._ended.is_set():
                raise RuntimeError("this run is still training: it goes on by itself")
            if trainer is None:
                raise RuntimeError("this run's model is released (a newer run started): only the newest run "
                                   "and the latest lesson's runs can go on")
            if self.status == "error":
                raise RuntimeError(f"this run ended with an error ({self.message}): start a new one")
            trainer.extend(epochs)
            self._config = trainer.config
            self.status, self.message = "running", "training"
            self._paused, self._until, self._work, self._ended_at = False, None, None, None
            self.stop_event.clear()
            self.version += 1
            self._ended.clear()
        self._scheduler.submit(self)

    def adjust(self, **changes: Any) -> TrainConfig:
        """Change live settings (``charrnn.live``): checked now (ConfigError: nothing changes), taken at the
        next minibatch, or at once while no worker trains it (paused, or ended: for when it goes on).
        Returns the settings as they will be."""
        trainer = self.trainer
        if trainer is None:
            raise RuntimeError("this run's model is released (a newer run started): change the newest run")
        ahead = trainer.adjust(**changes)
        if self._drive.acquire(blocking=False):
            try:
                trainer.apply_pending()
                self._saw_changes(trainer)
            finally:
                self._drive.release()
        return ahead

    def tell(self, note: str) -> None:
        """Say something to the run's user (its note), after it has begun."""
        with self._lock:
            self.note = note
            self.version += 1

    def work_left(self) -> float | None:
        """Thread-seconds of training still to do: the epochs left at the run's pace (``pace``), less what the
        current epoch has had, so that the estimate counts down within a long epoch (None before the first)."""
        with self._lock:
            if not self._costs:
                return None
            left = max(self.config.epochs - (self.history[-1].epoch if self.history else 0), 0)
            return max(left * pace(self._costs) - self._busy, 0.0) if left else 0.0

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

    def wait_paused(self, timeout: float = 30.0) -> bool:
        """Wait until the run rests: paused with no Step left to train and no worker on it, or ended."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self.alive or (self.parked and not self._drive.locked()):
                return True
            time.sleep(0.01)
        return False

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
        page dragging the temperature slider asks several times a second, and each copy takes the training
        run's lock and a deep copy of the model). Readers only read it."""
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
                note=self.note, caption=self.caption, running_runs=self._scheduler.running,
                continues=self.continues, paused=self._paused and self.alive, changes=self._changes)
