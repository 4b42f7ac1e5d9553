"""Three of Gradio's own costs that a class pays many times over, cut where they arise. They leave what Gradio
computes, and what every browser receives, unchanged; each applies only on the Gradio release it was tested with
(``TESTED``), and ``$CHARRNN_GRADIO_CUTS`` chooses them (``off``: the app runs on Gradio as published).

- ``pages`` (``forget_page``, the app's unload handler): Gradio keeps every page's ``SessionState`` (the
  config of every block on the page, about half a MB) after the page has gone, until 10,000 pages have come
  (``state_session_capacity``, which evicts the least recently used, open pages too). A page that closes never
  reads its state again (a reload gets a new one), so the handler drops it: a class's server stays the same
  size wave after wave instead of growing by every student's page.
- ``queue`` (``quiet_queue``, applied by the app's ``launch``): Gradio's queue looks for a new event to start by
  waking every millisecond while it has none (and for progress to send every 10 ms), which keeps an idle
  server busy and, on a machine of two cores, takes a core from a run a thousand times a second. The wait ends
  instead when there may be work: an event joined the queue (``push``) or one ended (``process_events``: a slot
  freed), with a wake every half second anyway. Events start as soon as before; progress goes out ten times a
  second, as on Windows (the app shows no progress bars).
- ``imports`` (``block_absent_imports``, applied by the app's ``launch``): around every call of an event's function
  (each update of a stream) Gradio imports matplotlib to switch its backend. Where matplotlib is not installed
  (this app does not need it), each of those imports fails after searching ``sys.path`` again, since Python
  keeps no record of a failed import; a class following its board pays that on every update.
  ``sys.modules["matplotlib"] = None``, Python's documented way to say that a module is absent,
  makes each fail at once. Nothing changes where matplotlib is installed.

What each does for a user, measured with ``bench/gradio_cuts.py``, and what we would ask of Gradio instead:
docs/performance.md ("Gradio").
"""
from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import sys
import types
from typing import Any

TESTED = "6.31.0"  # the Gradio release the cuts were written against and measured on
ENV = "CHARRNN_GRADIO_CUTS"  # on (default), off, a list of cuts to apply, or a list of -cuts to leave out
_log = logging.getLogger("charrnn.gradio_costs")
_warned: list[str] = []


CUTS = ("pages", "queue", "imports")
ABSENT = ("matplotlib",)  # modules Gradio imports on every event's call, and this app needs none of
OFF = ("off", "none", "0", "false", "no")


def chosen(value: str | None) -> frozenset[str]:
    """The cuts that ``$CHARRNN_GRADIO_CUTS`` asks for: unset or ``on`` every one; ``off`` none; a list of names
    (``pages``) those only; names with a minus (``-queue``) every one but those (what
    ``bench/gradio_cuts.py`` compares). A name not in ``CUTS`` is an error, so that a typo does not measure the
    wrong app."""
    text = (value or "on").strip().lower()
    if text in ("on", "all", "1", "true", "yes"):
        return frozenset(CUTS)
    if text in OFF:
        return frozenset()
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n.lstrip("-") for n in names if n.lstrip("-") not in CUTS]
    if unknown:
        raise ValueError(f"${ENV}: no cut named {', '.join(unknown)} (the cuts: {', '.join(CUTS)})")
    minus = [n[1:] for n in names if n.startswith("-")]
    plus = [n for n in names if not n.startswith("-")]
    if minus and plus:
        raise ValueError(f"${ENV}: either names of cuts to apply or names with a minus to leave out, not both")
    return frozenset(CUTS) - frozenset(minus) if minus else frozenset(plus)


def enabled(name: str) -> bool:
    """Whether cut ``name`` applies here: ``$CHARRNN_GRADIO_CUTS`` asks for it, and Gradio is the release the
    cuts were tested with (on any other the app runs without them, and says so once in the log)."""
    if name not in chosen(os.environ.get(ENV)):
        return False
    import gradio
    if gradio.__version__ != TESTED:
        if not _warned:
            _warned.append(gradio.__version__)
            _log.warning("Gradio %s is not %s, the release demo/gradio_costs.py was tested with: the app runs "
                         "without its cuts (see docs/performance.md)", gradio.__version__, TESTED)
        return False
    return True


def forget_page(blocks: Any, session_hash: str | None) -> None:
    """The pages cut: drop the state Gradio keeps for a page that has closed (nothing reads it again: a page that
    comes back has a new session hash)."""
    if not enabled("pages"):
        return
    holder = getattr(blocks, "state_holder", None)
    if holder is None or session_hash is None:
        return
    with holder.lock:
        holder.session_data.pop(session_hash, None)
        holder.time_last_used.pop(session_hash, None)


def block_absent_imports() -> list[str]:
    """The imports cut: the modules of ``ABSENT`` not installed here, marked absent in ``sys.modules`` (an import
    of one then fails at once); the names so marked."""
    if not enabled("imports"):
        return []
    marked = []
    for name in ABSENT:
        if name not in sys.modules and importlib.util.find_spec(name) is None:
            sys.modules[name] = None  # type: ignore[assignment]
            marked.append(name)
    return marked


class _Idle(float):
    """The queue's wait for work (its ``sleep_when_free``): at most this many seconds, ended early by ``wake``."""

    def __init__(self, seconds: float) -> None:
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.waits = 0  # waits ended so far (an idle server's stays still; Gradio's own ended 1000 a second)

    def wake(self) -> None:
        if self._event is not None:
            self._event.set()

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # an Event serves one loop: a server launched again runs in a new one
            self._event, self._loop = asyncio.Event(), loop
        try:
            await asyncio.wait_for(self._event.wait(), float(self))
        except asyncio.TimeoutError:
            pass
        self._event.clear()  # no await since the wait ended: a wake after it is not lost
        self.waits += 1


class _QueueAsyncio(types.ModuleType):
    """``asyncio`` as ``gradio.queueing`` sees it: the same module, whose ``sleep`` waits for a wake when it is
    given an ``_Idle``."""

    def __init__(self) -> None:
        super().__init__("asyncio", asyncio.__doc__)

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    @staticmethod
    async def sleep(delay: float, result: Any = None) -> Any:
        if isinstance(delay, _Idle):
            await delay.wait()
            return result
        return await asyncio.sleep(delay, result)


IDLE_WAKE = 0.5       # seconds: the queue looks for work at least this often (the queue cut's safety net)
PROGRESS_EVERY = 0.1  # seconds between the queue's looks for progress to send (Gradio's on Windows)


def quiet_queue(queue: Any) -> None:
    """The queue cut, for one app's queue (``blocks._queue``, made by ``Blocks.queue()``, before the app starts;
    idempotent)."""
    if not enabled("queue") or isinstance(queue.sleep_when_free, _Idle):
        return
    import gradio.queueing
    if not isinstance(gradio.queueing.asyncio, _QueueAsyncio):
        gradio.queueing.asyncio = _QueueAsyncio()  # type: ignore[attr-defined]
    push, process_events = queue.push, queue.process_events

    def wake() -> None:
        if isinstance(queue.sleep_when_free, _Idle):
            queue.sleep_when_free.wake()

    async def push_and_wake(*args: Any, **kwargs: Any) -> Any:
        try:
            return await push(*args, **kwargs)
        finally:
            wake()

    async def process_and_wake(*args: Any, **kwargs: Any) -> Any:
        try:
            return await process_events(*args, **kwargs)
        finally:
            wake()

    queue.push, queue.process_events = push_and_wake, process_and_wake
    queue.sleep_when_free = _Idle(IDLE_WAKE)
    queue.progress_update_sleep_when_free = PROGRESS_EVERY
