"""Many users, one machine: the lab holds every session of a server, and closes those whose users are gone.

``Lab`` finds a session by a secret key: a browser page keeps its key (the app stores it in the browser)
and gets its session back after a reload or when a phone wakes up; an API client's session is keyed by its
connection. A session owns its runs (``charrnn.sessions``), which the lab's ``Scheduler`` trains: every run
that has started makes progress (``charrnn.scheduler``). A run belongs to its session, not to whoever
watches it: it ends when it finishes, when Stop is pressed, or when its session closes (every page of it
gone for ``reconnect_seconds``, or no sign of life for ``idle_seconds``: ``charrnn.limits``).

The names of the modules split from this one stay importable from here.
"""
from __future__ import annotations

import ctypes
import gc
import secrets
import threading
import time
from typing import Any

from .classes import Classes, new_class_code, normal_code
from .config import TrainConfig
from .experiments import Experiment, ExperimentError, Free
from .files import Caps, DiskQuota, SessionFiles
from .limits import Limits
from .presses import TrainRequest
from .runs import Run, RunView
from .scheduler import Scheduler
from .sessions import Session
from .threads import one_thread

__all__ = ["Lab", "Limits", "Run", "RunView", "Session", "TrainRequest", "new_class_code", "normal_code",
           "release_memory"]


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
                 workers: int | None = None, group: bool | None = None, **overrides: float):
        limits = limits or Limits.from_env()
        if max_runs is not None:
            overrides["max_runs"] = max_runs
        self.limits = Limits(**{**limits.__dict__, **overrides})
        # group None: charrnn.grouped.grouping decides (on where runs train on a CUDA GPU, or $CHARRNN_GROUP)
        self.scheduler = Scheduler(workers=workers, max_runs=self.limits.max_runs, group=group)
        self.caps = caps or Caps.from_env()
        self.quota = DiskQuota(self.caps.server_bytes)  # every session's files together
        one_thread()  # the creating (main) thread, and the default for threads started later
        self._sessions: dict[str, Session] = {}          # key -> session
        self._by_page: dict[str, str] = {}               # Gradio session hash -> key
        self.classes = Classes()                         # class code -> key of the session it shows
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
        return self.classes.share(session)

    def by_class(self, code: str | None) -> Session | None:
        """The session a class code shows, or None for a code that is unknown or whose class has ended."""
        return self.by_key(self.classes.key_of(code))

    def open_experiment(self, session: Session, question: str, free: list[Free], fixed: TrainConfig,
                        epochs: int) -> Experiment:
        """Open an experiment in the session's class (``charrnn.experiments``); its code is the class's."""
        return self.classes.open(session, question, free, fixed, epochs)

    def experiment(self, code: str | None) -> Experiment | None:
        """The experiment of the class a code names, or None (no such class, or it runs none)."""
        return self.classes.experiment(code)

    def join(self, session: Session, code: str | None, nickname: str) -> Experiment:
        """The session's user joins the experiment of a class as a student under ``nickname``: their runs are
        the class's from now on. ExperimentError says why not (and nothing changes)."""
        member = session.membership
        if not member.joins.allow():
            raise ExperimentError("too many tries to join: wait a minute, then try again")
        experiment = self.classes.experiment(code)
        if experiment is None:
            raise ExperimentError(f"the class {normal_code(code) or code!r} is unknown, has ended or runs no "
                                  "experiment: ask your teacher for the link")
        if member.experiment is experiment:
            raise ExperimentError("this is your own experiment: your students join it with the class link")
        if session.active is not None and member.joined is not experiment:
            raise ExperimentError("a run is training on this page: stop it first, then join")
        experiment.join(nickname, session.key)
        member.joined, member.watching, member.watched_code = experiment, None, experiment.code
        return experiment

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
        if session is not None:
            self.classes.end(session)
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
                "classes": sum(s.membership.code is not None for s in sessions),
                "watchers": sum(s.membership.watching is not None for s in sessions),
                "runs_training": self.scheduler.running, "runs_queued": self.scheduler.queued,
                "workers": self.scheduler.workers, "cores": self.scheduler.cores, "grouping": self.scheduler.group,
                "trained_seconds": round(self.scheduler.trained_seconds, 3), "threads": threading.active_count(),
                "files_bytes": self.quota.used}


def release_memory() -> None:
    """Give freed memory back to the system (glibc keeps freed blocks of large tensors otherwise)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
