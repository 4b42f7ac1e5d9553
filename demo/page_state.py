"""What the page keeps for each session, outside the library's ``Session`` (which knows nothing of the page).

Each room of the page that needs per-session state keeps one ``PerSession`` of it: its renders and the look
of the session's own page (``demo.renders``), its class's broadcast (``demo.streams``), its Train notes and
checked settings (``demo.training``). An entry is keyed by the Session object itself, weakly, so it goes
when the lab has closed the session and let go of it. A closed session that something still holds (a
stream that has not noticed yet) loses its entries the next time any session's entry is made.
"""
from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Callable, Generic, TypeVar

if TYPE_CHECKING:
    from charrnn.sessions import Session

T = TypeVar("T")


class PerSession(Generic[T]):
    """One ``T`` per session, made by ``make(session)`` on first use (``of``); thread-safe."""

    def __init__(self, make: Callable[[Session], T]):
        self._make = make
        self._kept: weakref.WeakKeyDictionary[Session, T] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def of(self, session: Session) -> T:
        """The session's entry, made now if it has none."""
        kept = self._kept.get(session)
        if kept is not None:
            return kept
        with self._lock:  # two threads asking at once make one entry
            kept = self._kept.get(session)
            if kept is None:
                for closed in [s for s in list(self._kept.keys()) if s.closed]:
                    self._kept.pop(closed, None)
                kept = self._kept[session] = self._make(session)
            return kept

    def get(self, session: Session) -> T | None:
        """The session's entry, or None (none is made)."""
        return self._kept.get(session)

    def __contains__(self, session: Session) -> bool:
        return session in self._kept

    def __len__(self) -> int:
        return len(self._kept)
