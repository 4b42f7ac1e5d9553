"""A class's experiment: a question the students answer by training, each with their own value of a few settings.

A teacher who shares a session (``charrnn.classes``) may open an experiment on it (``Classes.open``): a
question, the settings students may change (``Free``: each with a range or a set of choices, narrower than the
library's if the teacher likes), and the epochs every run trains; every other setting is the teacher's
(``Experiment.fixed``, a ``TrainConfig``). Whoever has the class code may join with a nickname
(``Experiment.join``); the student's session then trains as any other, but ``Session.start`` asks the
experiment first (``Experiment.admit``): a fixed setting changed, a value outside the range, a removed student
or an ended experiment is refused with a message that says what to do, and the run is recorded
(``Experiment.record``). ``class_runs`` is the class's table: one entry per student run, the latest and the
older ones, with their numbers.

Nothing of an experiment outlives the teacher's session: ``close`` stops its runs and forgets its students.
"""
from __future__ import annotations

import dataclasses
import math
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .config import CHOICES, TrainConfig

if TYPE_CHECKING:
    from .runs import Run

# the settings a teacher may leave to the students, and what each is in a TrainConfig
FREE_FIELDS: dict[str, tuple[str, ...]] = {"lr": ("lr",), "clip": ("clip_theta",), "model": ("model",),
                                           "sampling": ("sampling",), "num_hiddens": ("num_hiddens",),
                                           "optimizer": ("optimizer",)}
# the widest ranges a free setting may have (the teacher narrows them): the page's own limits for these settings
WIDEST: dict[str, tuple[float, float]] = {"lr": (1e-4, 1e4), "clip": (1e-4, 1e3), "num_hiddens": (1, 4096)}
# what a student may choose freely in any experiment: how the samples are written, not how the model trains
SAMPLE_FIELDS = ("pred_period", "pred_len", "temperature", "top_k")
MAX_NICKNAME = 20
JOINS_PER_MINUTE = 10  # join attempts per page and minute: enough for typos, too few to try every nickname


class ExperimentError(RuntimeError):
    """What a student (or the teacher) asked of an experiment is not allowed; the message says why, and what to do."""


@dataclass(frozen=True)
class Free:
    """A setting the students of an experiment may change: a range (``low``..``high``: lr, clip's θ, hidden
    units) or the values allowed (``choices``: model, sampling, optimizer)."""
    name: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def scale(self) -> str:
        """How its values are compared and coloured: "log" (lr, θ), "linear" (hidden units), "choice"."""
        return "log" if self.name in ("lr", "clip") else "linear" if self.name == "num_hiddens" else "choice"

    @classmethod
    def of(cls, name: str, low: float | None = None, high: float | None = None,
           choices: tuple[str, ...] | list[str] | None = None) -> "Free":
        """A free setting as a teacher asks for it, checked: a range inside the widest one (its ends default to
        them), or choices among the library's (all of them by default)."""
        if name not in FREE_FIELDS:
            raise ExperimentError(f"students cannot be given {name!r}: choose among {', '.join(FREE_FIELDS)}")
        if name in WIDEST:
            lo, hi = WIDEST[name]
            low, high = (lo if low is None else float(low)), (hi if high is None else float(high))
            if not (math.isfinite(low) and math.isfinite(high)) or not lo <= low <= high <= hi:
                raise ExperimentError(f"{name}: the range must lie within {lo:g} to {hi:g}, low ≤ high "
                                      f"(got {low:g} to {high:g})")
            if name == "num_hiddens":
                low, high = float(math.ceil(low)), float(math.floor(high))
            return cls(name, low, high)
        allowed = CHOICES[name]
        chosen = tuple(dict.fromkeys(choices or allowed))
        unknown = [c for c in chosen if c not in allowed]
        if unknown or len(chosen) < 2:
            raise ExperimentError(f"{name}: give at least two of {', '.join(allowed)}"
                                  + (f" (unknown: {', '.join(map(str, unknown))})" if unknown else ""))
        return cls(name, choices=chosen)

    def value(self, config: TrainConfig) -> Any:
        """This setting's value in a config (clip: θ, or None when clipping is off)."""
        return getattr(config, FREE_FIELDS[self.name][0])

    def problem(self, value: Any) -> str:
        """Why a student's value is not allowed ("" when it is)."""
        if self.scale == "choice":
            return "" if value in self.choices else f"choose one of {', '.join(self.choices)}"
        if self.name == "clip" and value is None:
            return ""  # clipping off is one of the choices a student has
        if value is None or not self.low <= float(value) <= self.high:
            return f"choose a value from {self.low:g} to {self.high:g}"
        return ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "scale": self.scale, "low": self.low, "high": self.high,
                "choices": list(self.choices)}


@dataclass
class Student:
    """One student of an experiment: the nickname they joined with, their session, their runs (oldest first)."""
    id: int                      # join order: a stable colour key and trace id on every screen
    nickname: str
    session_key: str
    runs: list[Run] = field(default_factory=list)


def check_nickname(nickname: Any) -> str:
    """A nickname as it will be shown (spaces at its ends dropped), or ExperimentError saying what is wrong."""
    name = unicodedata.normalize("NFC", nickname if isinstance(nickname, str) else "").strip()
    if not name:
        raise ExperimentError("type a nickname to join (1 to 20 characters)")
    if len(name) > MAX_NICKNAME:
        raise ExperimentError(f"a nickname has at most {MAX_NICKNAME} characters (this one has {len(name)})")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise ExperimentError("a nickname cannot hold control characters")
    return name


class Experiment:
    """One experiment of a class; thread-safe (the teacher's page, the students' and the workers call it)."""

    def __init__(self, code: str, question: str, free: list[Free], fixed: TrainConfig, epochs: int):
        if not free:
            raise ExperimentError("choose at least one setting the students may change")
        names = [f.name for f in free]
        if len(set(names)) != len(names):
            raise ExperimentError("each free setting once")
        question = " ".join(str(question or "").split())
        if not question:
            raise ExperimentError("type the question the class answers, e.g. which learning rate trains best?")
        if len(question) > 200:
            raise ExperimentError("a question has at most 200 characters")
        if not 1 <= int(epochs) <= 10_000:
            raise ExperimentError("epochs: from 1 to 10000")
        for f in free:  # the teacher's own values must be allowed: the students' forms start from them
            value = f.value(fixed)
            if f.problem(value):
                raise ExperimentError(f"{f.name}: your own value ({value}) is outside the range you give the "
                                      f"students: {f.problem(value)}")
        self.code, self.question, self.free = code, question, tuple(free)
        self.fixed, self.epochs = fixed.replace(epochs=int(epochs)), int(epochs)
        self.older = "grey"            # the students' older runs on the class chart: "grey" or "hidden"
        self.highlight: str | None = None  # the nickname the teacher highlights
        self.ended = False
        self.opened_at = time.time()
        self._students: dict[str, Student] = {}  # casefolded nickname -> student
        self._removed: set[str] = set()          # session keys of removed students
        self._lock = threading.Lock()
        self._version = 0
        self._joined = 0  # students who joined so far: the next one's id

    # ------------------------------------------------------------ students
    def join(self, nickname: Any, session_key: str) -> Student:
        """Join (or join again, from the same session, under the same or a new nickname)."""
        name = check_nickname(nickname)
        with self._lock:
            if self.ended:
                raise ExperimentError("this experiment has ended: ask your teacher for the next one")
            if session_key in self._removed:
                raise ExperimentError("the teacher removed you from this experiment")
            taken = self._students.get(name.casefold())
            if taken is not None and taken.session_key != session_key:
                raise ExperimentError(f"the nickname {name!r} is taken in this class: choose another")
            mine = next((s for s in self._students.values() if s.session_key == session_key), None)
            if mine is not None:
                del self._students[mine.nickname.casefold()]
                mine.nickname = name
            else:
                self._joined += 1
                mine = Student(self._joined, name, session_key)
            self._students[name.casefold()] = mine
            self._version += 1
            return mine

    def student(self, session_key: str) -> Student | None:
        with self._lock:
            return next((s for s in self._students.values() if s.session_key == session_key), None)

    def students(self) -> list[Student]:
        with self._lock:
            return sorted(self._students.values(), key=lambda s: s.id)

    def remove(self, nickname: str) -> Student:
        """The teacher removes a student: their runs stop, leave the class chart, and they cannot join again."""
        with self._lock:
            student = self._students.pop(str(nickname or "").strip().casefold(), None)
            if student is None:
                raise ExperimentError(f"no student is called {nickname!r} in this experiment")
            self._removed.add(student.session_key)
            if self.highlight is not None and self.highlight.casefold() == student.nickname.casefold():
                self.highlight = None
            self._version += 1
        for run in student.runs:
            run.stop()
        return student

    # ------------------------------------------------------------ runs
    def admit(self, session_key: str, config: TrainConfig) -> TrainConfig:
        """The config a student's run trains: theirs, with the experiment's epochs; ExperimentError when a fixed
        setting differs from the teacher's or a free one is outside its range."""
        self.check_student(session_key)
        problems = self.problems(config)
        if problems:
            raise ExperimentError("; ".join(f"{k}: {v}" for k, v in problems.items()))
        return config.replace(epochs=self.epochs)

    def check_student(self, session_key: str) -> None:
        """ExperimentError unless the session's student may train in the experiment now."""
        with self._lock:
            if self.ended:
                raise ExperimentError("this experiment has ended: your runs stay on your page")
            if session_key in self._removed:
                raise ExperimentError("the teacher removed you from this experiment")
            if not any(s.session_key == session_key for s in self._students.values()):
                raise ExperimentError("join the experiment first: type a nickname")

    def problems(self, config: TrainConfig) -> dict[str, str]:
        """What of a student's config the experiment refuses, by TrainConfig field (free) or field (fixed)."""
        free = {f for one in self.free for f in FREE_FIELDS[one.name]}
        out: dict[str, str] = {}
        for name in (f.name for f in dataclasses.fields(TrainConfig)):
            if name in free or name in SAMPLE_FIELDS or name == "epochs":
                continue
            mine, theirs = getattr(config, name), getattr(self.fixed, name)
            if mine != theirs:
                out[name] = f"the teacher fixed it at {theirs!r} for this experiment"
        for f in self.free:
            if problem := f.problem(f.value(config)):
                out[FREE_FIELDS[f.name][0]] = problem
        return out

    def record(self, session_key: str, run: Run) -> None:
        """A student's run has started: it is their latest on the class chart."""
        with self._lock:
            student = next((s for s in self._students.values() if s.session_key == session_key), None)
            if student is not None:
                student.runs.append(run)
                self._version += 1

    # ------------------------------------------------------------ the teacher
    def set_highlight(self, nickname: str | None) -> None:
        with self._lock:
            if nickname and str(nickname).strip().casefold() not in self._students:
                raise ExperimentError(f"no student is called {nickname!r} in this experiment")
            self.highlight = self._students[str(nickname).strip().casefold()].nickname if nickname else None
            self._version += 1

    def set_older(self, older: str) -> None:
        if older not in ("grey", "hidden"):
            raise ExperimentError("older runs: grey or hidden")
        with self._lock:
            self.older = older
            self._version += 1

    def end(self) -> None:
        """The teacher ends the experiment: the runs still training stop where they are; the results stay."""
        with self._lock:
            self.ended = True
            self._version += 1
            runs = [r for s in self._students.values() for r in s.runs]
        for run in runs:
            run.stop()

    def close(self) -> None:
        """The teacher's session has closed: the experiment's runs stop, and nothing of it is kept."""
        self.end()
        with self._lock:
            self._students.clear()
            self._removed.clear()
            self._version += 1

    # ------------------------------------------------------------ reading it
    def state_key(self) -> tuple:
        """Changes whenever anything shown of the experiment changes (for caching renders)."""
        with self._lock:
            students = list(self._students.values())
            head = (self._version, self.highlight, self.older, self.ended)
        return (*head, *((s.id, *((r.number, r.version) for r in s.runs)) for s in students))

    def class_runs(self, older: bool = True) -> list[dict[str, Any]]:
        """One entry per student run (each student's latest first, then, with ``older``, their earlier runs):
        nickname, the free settings, epoch, perplexity, every epoch's perplexity, status."""
        out = []
        highlight = (self.highlight or "").casefold()
        for student in self.students():
            runs = list(student.runs)
            for i, run in enumerate(reversed(runs)):
                if i and not older:
                    break
                view = run.view()
                ppl = [e.perplexity for e in view.history]
                settings: dict[str, Any] = {}
                for f in self.free:
                    if f.name == "clip":
                        settings.update(clip=view.config.clip_theta is not None, theta=view.config.clip_theta)
                    else:
                        settings[f.name] = f.value(view.config)
                out.append({"id": student.id, "nickname": student.nickname, "settings": settings,
                            "epoch": view.epoch, "epochs": view.config.epochs,
                            "perplexity": ppl[-1] if ppl else None, "perplexities": ppl,
                            "status": "paused" if view.paused else view.status, "run": view.number,
                            "latest": i == 0, "highlight": i == 0 and student.nickname.casefold() == highlight,
                            "vocab_size": view.vocab_size})
        return out

    def about(self) -> dict[str, Any]:
        """What a student's page and the API show of the experiment: the question, the free settings with their
        ranges or choices, the teacher's value of each, the epochs, whether it has ended."""
        return {"code": self.code, "question": self.question, "epochs": self.epochs, "ended": self.ended,
                "free": [{**f.as_dict(), "teacher": f.value(self.fixed)} for f in self.free]}


class JoinPace:
    """At most ``JOINS_PER_MINUTE`` join attempts per page in any minute (a page's own record)."""

    def __init__(self) -> None:
        self._times: list[float] = []
        self._lock = threading.Lock()

    def allow(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._times = [t for t in self._times if now - t < 60.0]
            if len(self._times) >= JOINS_PER_MINUTE:
                return False
            self._times.append(now)
            return True

