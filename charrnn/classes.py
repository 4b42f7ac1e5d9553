"""Classes: a session shared under a code, which any number of other sessions watch.

A teacher's session gets a class code (``Classes.share``); a page opened with the code watches that
session's runs. Watchers train nothing; they may write with the teacher's model, one writer at a time and
each at most once every few seconds (the page sets the pace with ``Membership.last_write``). A class ends
with its session: its code then finds nothing.
"""
from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .config import TrainConfig
from .experiments import Experiment, Free, JoinPace

if TYPE_CHECKING:
    from .sessions import Session

CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # 32 symbols (no 0/O, 1/I): 5 bits each, easy to read out


@dataclass
class Membership:
    """A session's part in classes: the class it shares, or the one it watches."""
    code: str | None = None           # its class code, while the session is shared with a class
    watching: str | None = None       # the key of the class session this one watches, if any
    watched_code: str | None = None   # and that class's code (it outlives the class)
    experiment: Experiment | None = None  # the experiment its class runs (the teacher's session)
    joined: Experiment | None = None      # the experiment this session's user joined as a student
    joins: JoinPace = field(default_factory=JoinPace)  # this session's join attempts (rate-limited)
    last_write: float = 0.0           # when this session last wrote (watchers are rate-limited)
    write_gate: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(1))  # one writer at a
    #                                   time with this session's model (its watchers share it)


class Classes:
    """The class codes of one lab, each with the key of the session it shows."""

    def __init__(self) -> None:
        self._keys: dict[str, str] = {}  # class code -> key of the session it shows
        self._experiments: dict[str, Experiment] = {}  # class code -> the experiment its class runs
        self._lock = threading.Lock()

    def share(self, session: Session) -> str:
        """The class code of ``session`` (made on first call): anyone with it may watch the session's runs."""
        with self._lock:
            member = session.membership
            if member.code is None:
                code = new_class_code()
                while code in self._keys:
                    code = new_class_code()
                member.code = code
                self._keys[code] = session.key
            return member.code

    def key_of(self, code: str | None) -> str:
        """The key of the session a code (as typed) shows; "" for a code that is unknown or whose class ended."""
        with self._lock:
            return self._keys.get(normal_code(code), "")

    def open(self, session: Session, question: str, free: list[Free], fixed: TrainConfig,
             epochs: int) -> Experiment:
        """Open an experiment in the class of ``session`` (shared now if it was not): its students' runs are
        the class's. One experiment per class at a time: a new one ends the one before."""
        code = self.share(session)
        experiment = Experiment(code, question, free, fixed, epochs)
        with self._lock:
            old, session.membership.experiment = session.membership.experiment, experiment
            self._experiments[code] = experiment
        if old is not None:
            old.close()
        return experiment

    def experiment(self, code: str | None) -> Experiment | None:
        """The experiment of the class a code (as typed) names, if the class is going and has one."""
        with self._lock:
            return self._experiments.get(normal_code(code))

    def end(self, session: Session) -> None:
        """The session has closed: its class ends, and its experiment with everything in it."""
        with self._lock:
            if session.membership.code is not None:
                self._keys.pop(session.membership.code, None)
                self._experiments.pop(session.membership.code, None)
            experiment, session.membership.experiment = session.membership.experiment, None
        if experiment is not None:
            experiment.close()


def new_class_code() -> str:
    """8 random symbols, 40 bits, shown as ``ABCD-EFGH``: far too many to guess, short enough to type."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


def normal_code(code: str | None) -> str:
    """A code as typed (any case, with or without the dash or spaces) in its canonical form ("" if malformed)."""
    raw = "".join(c for c in str(code or "").upper() if c.isalnum())
    return f"{raw[:4]}-{raw[4:]}" if len(raw) == 8 else ""
