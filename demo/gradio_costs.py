"""Costs of Gradio's own that a classroom pays many times over, cut where they arise (``cut()``, called once by
``launch()`` before the app serves). Each leaves what Gradio computes, and what every browser receives, unchanged.

1. Gradio tries ``import matplotlib`` twice around every step of every event; where it is not installed each
   try searches every folder of sys.path: with fifty pages streaming, a tenth of the server's time (py-spy,
   bench/watchers.py). Marked absent, the import fails at once, as it would anyway.
2. Each new browser session (a student's page opening, a watcher joining) makes Gradio build the config of
   every block on the page (``SessionState``), and each block's config starts with
   ``inspect.signature(type(block).__init__)``: 153 signatures per session, 94% of the server's time for a
   new session's first request (py-spy), 14 ms per session here (6.5 ms with this). A class's ``__init__``
   keeps its signature, so ``gradio.blocks`` gets an ``inspect`` whose ``signature`` remembers those; every
   other call (and any other function of ``inspect``) goes to the real module. ``bench/new_sessions.py``
   measures it.
3. Every update of every stream makes Gradio walk each output twice in Python, node by node, looking for file
   objects to move into its cache and to give URLs (``async_move_files_to_cache``, ``add_root_url``; the page's
   whole config too, at each page load). Where nothing can hold a file the walk's answer is a copy:
   - an output the app marks ``Sealed`` (built once, never changed, no file in it: what a stream shows) is its
     own answer, as are strings and numbers, and a list of those (Gradio's list of a stream's outputs);
   - anything else is serialised once with orjson (in C): where the marker that every file object of Gradio
     carries (``"gradio.FileData"``) is absent, the answer is that text read back (a copy, tuples as lists);
     where it is present, or orjson cannot write the value (a pydantic model, a path), Gradio walks as before.
4. Gradio sends each page the difference between a stream's update and the one before (``utils.diff``, a
   Python walk of both). Fifty watchers are sent the same two sealed outputs, so their difference is computed
   once and given to all fifty (the last few pairs are remembered, each with both outputs, so that no other
   object can take their ``id``).
``bench/file_walks.py`` measures 3 and 4 on the app's own outputs; ``bench/watchers.py`` the server's event loop
per update.
5. Gradio keeps every page's ``SessionState`` (the config of all 153 blocks, about half a MB) after the page has
   gone, until 10,000 pages have come (``state_session_capacity``): a class's server grew by 15 MB a wave of 30
   students (bench/classroom.py), up to about 5 GB. A reload gets a new one, so ``forget_page`` (the app's
   unload handler) drops it when its page closes.
6. Gradio's queue looks for a new event to start by waking every millisecond while it has none (and for progress
   to send every 10 ms): an idle server spent 5-8% of a core on it, and on a machine of two cores each wake
   takes a core from a run trained on both, a thousand times a second. ``quiet_queue`` (app.py's ``launch``)
   makes that wait end when there may be work instead: an event joined the queue (``push``) or one ended
   (``process_events``: a slot or a concurrency limit freed), with a wake every half second anyway. Events
   start as soon as they did (sooner: no millisecond's wait); progress goes out ten times a second, as on
   Windows (the app shows no progress bars).
7. Gradio preprocesses each input of an event in a worker thread of its own (``anyio.to_thread.run_sync``, one
   hop per input). Train has 22 inputs and goes through it twice (its validator, then the run): 44 hops a press,
   when the form's preprocessing itself (a number rounded, a choice looked up) takes microseconds. With thirty
   presses at once the hops queue behind each other, and every student's run starts later: the last press
   was through after 0.32 s of preprocessing, 0.05 s with this cut, and the event loop spent 0.17 s of CPU on
   it instead of 0.04 s (``bench/presses.py``). The plain form components (``inline_components``) are
   preprocessed in the event loop instead: the same method, the same value or error. Files and every other
   component keep their thread.
"""
from __future__ import annotations

import asyncio
import collections
import functools
import importlib.util
import inspect
import sys
import threading
import types
import logging
import os
from typing import Any

import orjson

TESTED = "6.31.0"  # the Gradio release every cut was written against and measured on
ENV = "CHARRNN_GRADIO_CUTS"  # on (default), off, a list of cuts to apply, or a list of -cuts to leave out
_log = logging.getLogger("charrnn.gradio_costs")
_warned: list[str] = []

_init_signature = functools.lru_cache(maxsize=None)(inspect.signature)


class _Inspect(types.ModuleType):
    """``inspect`` as ``gradio.blocks`` sees it: the same module, with the signatures of ``__init__``
    methods remembered."""

    def __init__(self) -> None:
        super().__init__("inspect", inspect.__doc__)

    def __getattr__(self, name: str) -> Any:
        return getattr(inspect, name)

    @staticmethod
    def signature(obj: Any, *args: Any, **kwargs: Any) -> inspect.Signature:
        if args or kwargs or getattr(obj, "__name__", None) != "__init__":
            return inspect.signature(obj, *args, **kwargs)
        try:
            return _init_signature(obj)
        except TypeError:  # not hashable: asked afresh each time
            return inspect.signature(obj)


def inline_components() -> tuple[type, ...]:
    """The components whose ``preprocess`` is a few lines of pure Python, no file and no I/O
    (gradio/components/*.py): cut 7 runs it in the event loop."""
    import gradio as gr
    return (gr.Number, gr.Slider, gr.Radio, gr.Dropdown, gr.Textbox, gr.Checkbox)


class _InlineToThread:
    """``anyio.to_thread`` as ``gradio.blocks`` sees it: ``run_sync`` calls the ``preprocess`` of one of
    ``inline_components`` at once; anything else (the event's own function, postprocessing, a file's
    preprocess) goes to a worker thread as before."""

    def __init__(self, to_thread: types.ModuleType, inline: tuple[type, ...]) -> None:
        self._to_thread, self._inline = to_thread, inline

    def __getattr__(self, name: str) -> Any:
        return getattr(self._to_thread, name)

    async def run_sync(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(func, "__name__", None) == "preprocess" and type(getattr(func, "__self__", None)) in self._inline:
            return func(*args)
        return await self._to_thread.run_sync(func, *args, **kwargs)


class _BlocksAnyio(types.ModuleType):
    """``anyio`` as ``gradio.blocks`` sees it: the same module, with ``to_thread`` an ``_InlineToThread``."""

    def __init__(self, anyio: types.ModuleType, inline: tuple[type, ...]) -> None:
        super().__init__("anyio", anyio.__doc__)
        self._anyio = anyio
        self.to_thread = _InlineToThread(anyio.to_thread, inline)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._anyio, name)


class Sealed(dict):
    """An output that the app builds once and never changes afterwards, and that holds no file object: many
    pages may be sent the same one (a class's watchers). Gradio's walks take it as it is, and the difference
    between two of them is computed once for every page (see the module's docstring, 3 and 4)."""

    __slots__ = ()


FILE_MARK = b"gradio.FileData"  # meta._type of every file object (gradio_client.utils.is_file_obj_with_meta)
LEAVES = (str, int, float, Sealed)  # what the walk may answer with as it is (bool is an int)


def file_free_copy(data: Any) -> Any:
    """What Gradio's walk for file objects answers where it finds none: ``data`` itself where nothing in it can
    change or hold a file (``LEAVES``), a new list of such items, else a copy of ``data`` with new dicts and
    lists (tuples become lists). ``None`` where the walk must decide: the marker of a file object is present, or
    ``data`` is not plain JSON (orjson refuses it). NaN and infinities in a copy come back as None (null), as
    every browser receives them anyway."""
    if isinstance(data, LEAVES):
        return data
    if type(data) in (list, tuple) and all(x is None or isinstance(x, LEAVES) for x in data):
        return list(data)
    try:
        raw = orjson.dumps(data)
    except TypeError:  # orjson.JSONEncodeError: a model, a path, a big int, a non-str key, ...
        return None
    return None if FILE_MARK in raw else orjson.loads(raw)


class _FileWalks:
    """Gradio's two walks for file objects, each skipped where ``file_free_copy`` can answer."""

    def __init__(self, processing_utils: types.ModuleType) -> None:
        self.move = processing_utils.async_move_files_to_cache
        self.add_root = processing_utils.add_root_url

    async def async_move_files_to_cache(self, data: Any, *args: Any, **kwargs: Any) -> Any:
        copy = file_free_copy(data)
        return copy if copy is not None else await self.move(data, *args, **kwargs)

    def add_root_url(self, data: Any, *args: Any, **kwargs: Any) -> Any:
        copy = file_free_copy(data)
        return copy if copy is not None else self.add_root(data, *args, **kwargs)


class _SharedDiffs:
    """``gradio.utils.diff`` that computes the difference of two sealed outputs once for every page."""

    def __init__(self, diff: Any, size: int = 32) -> None:
        self.diff, self.size = diff, size
        self._lock = threading.Lock()
        self._pairs: collections.OrderedDict[tuple[int, int], tuple[Any, Any, Any]] = collections.OrderedDict()

    def __call__(self, old: Any, new: Any) -> Any:
        if type(old) is not Sealed or type(new) is not Sealed:
            return self.diff(old, new)
        key = (id(old), id(new))
        with self._lock:
            hit = self._pairs.get(key)
            if hit is not None and hit[0] is old and hit[1] is new:
                self._pairs.move_to_end(key)
                return hit[2]
        edits = self.diff(old, new)
        with self._lock:
            self._pairs[key] = (old, new, edits)
            while len(self._pairs) > self.size:
                self._pairs.popitem(last=False)
        return edits


CUTS = ("matplotlib", "signatures", "walks", "diffs", "pages", "queue", "preprocess")  # 1-7, in order
OFF = ("off", "none", "0", "false", "no")


def chosen(value: str | None) -> frozenset[str]:
    """The cuts that ``$CHARRNN_GRADIO_CUTS`` asks for: unset or ``on`` every one; ``off`` none; a list of names
    (``walks,diffs``) those only; names with a minus (``-queue,-pages``) every one but those (what
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
    """Cut 5: drop the state Gradio keeps for a page that has closed (nothing reads it again: a page that
    comes back has a new session hash)."""
    if not enabled("pages"):
        return
    holder = getattr(blocks, "state_holder", None)
    if holder is None or session_hash is None:
        return
    with holder.lock:
        holder.session_data.pop(session_hash, None)
        holder.time_last_used.pop(session_hash, None)


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


IDLE_WAKE = 0.5       # seconds: the queue looks for work at least this often (the 6th cut's safety net)
PROGRESS_EVERY = 0.1  # seconds between the queue's looks for progress to send (Gradio's on Windows)


def quiet_queue(queue: Any) -> None:
    """Cut 6, for one app's queue (``blocks._queue``, made by ``Blocks.queue()``, before the app starts;
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


def cut() -> bool:
    """Apply cuts 1-4 and 7 that ``enabled`` allows (idempotent); cut 5 is the app's unload handler's, cut 6 its
    ``launch``'s. False where none of them applies."""
    applied = [name for name in ("matplotlib", "signatures", "walks", "diffs", "preprocess") if enabled(name)]
    if "matplotlib" in applied and importlib.util.find_spec("matplotlib") is None:
        sys.modules["matplotlib"] = None  # type: ignore[assignment]
    import gradio.blocks
    if "signatures" in applied and gradio.blocks.__dict__.get("inspect") is inspect:
        gradio.blocks.inspect = _Inspect()  # type: ignore[attr-defined]
    import gradio.processing_utils as pu
    if "walks" in applied and not isinstance(getattr(pu.add_root_url, "__self__", None), _FileWalks):
        walks = _FileWalks(pu)
        pu.async_move_files_to_cache = walks.async_move_files_to_cache  # type: ignore[assignment]
        pu.add_root_url = walks.add_root_url  # type: ignore[assignment]
    import gradio.utils
    if "diffs" in applied and not isinstance(gradio.utils.diff, _SharedDiffs):
        gradio.utils.diff = _SharedDiffs(gradio.utils.diff)  # type: ignore[assignment]
    if "preprocess" in applied and not isinstance(gradio.blocks.anyio, _BlocksAnyio):
        gradio.blocks.anyio = _BlocksAnyio(gradio.blocks.anyio, inline_components())  # type: ignore[attr-defined]
    return bool(applied)
