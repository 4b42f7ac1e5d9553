"""The race between Train and Stop: a Stop pressed while a Train press is still starting its run cancels it.

A Train press becomes a ``TrainRequest`` at once; the run it asks for starts later (its settings are checked,
its corpus read). A Stop that comes meanwhile cancels the request, so that no run starts. The two presses
travel separately and may reach the server in either order: each carries the browser's clock, and a Stop
pressed after a Train that arrived before it cancels that Train all the same.

``Presses`` holds one session's state of that race. It has no lock of its own: the session calls it under
its lock, the same one under which it starts a run and looks for the run in progress, so a Stop either
cancels the request or finds its run.
"""
from __future__ import annotations

import time


class TrainRequest:
    """A Train press that has not started a run yet: a Stop that arrives meanwhile cancels it."""
    EXPIRES = 60.0  # seconds; an older request was never taken (its client went away) and is replaced

    def __init__(self) -> None:
        self.made = time.monotonic()
        self.cancelled = False

    @property
    def stale(self) -> bool:
        return time.monotonic() - self.made > self.EXPIRES


class Presses:
    """One session's pending Train request, and the browser's clock of its latest Stop.

    Every method is called under the owning session's lock."""

    def __init__(self) -> None:
        self._request: TrainRequest | None = None
        self._stop_at: float | None = None  # browser clock of the latest Stop

    def press(self, new: bool, pressed_at: float | None) -> TrainRequest:
        """The pending request: a new one if ``new``, none is pending, or the pending one is stale. A new one is
        born cancelled when a Stop pressed after ``pressed_at`` (the browser's clock) reached the server first."""
        if new or self._request is None or self._request.stale:
            self._request = TrainRequest()
            if pressed_at is not None and self._stop_at is not None and self._stop_at >= pressed_at:
                self._request.cancelled = True
        return self._request

    def pending(self) -> TrainRequest | None:
        return None if self._request is None or self._request.stale else self._request

    def drop(self, request: TrainRequest | None) -> None:
        """Forget ``request`` if it is the pending one (it will start nothing)."""
        if request is not None and self._request is request:
            self._request = None

    def take(self, request: TrainRequest) -> bool:
        """``request``'s run is about to start: it is pending no more. False if a Stop cancelled it."""
        self.drop(request)
        return not request.cancelled

    def stop(self, pressed_at: float | None) -> TrainRequest | None:
        """A Stop: it cancels the pending request, and remembers ``pressed_at`` for a Train press made before it
        that is still on its way. Returns the pending request."""
        request = self._request
        if request is not None:
            request.cancelled = True
        if pressed_at is not None:
            self._stop_at = pressed_at if self._stop_at is None else max(self._stop_at, pressed_at)
        return request
