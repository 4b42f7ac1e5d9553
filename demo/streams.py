"""Following a session's runs live: the session's own page (``follow``) and a class watching it (``watch``).

A run belongs to its session, not to the stream that shows it: a page that reloads follows it again, and
many pages can watch one session (a class watching a teacher's) for the price of one look and one render
per change (``Channel``; the renders are ``demo.renders``').

Every stream updates on one clock (the ticks of ``RENDER_EVERY``, whole multiples of it in ``time.monotonic``):
a class's screens update every other tick of the teacher's page (``WATCH_EVERY``), in the same instant.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
import weakref
from typing import Callable

from demo import render
from demo.page_state import PerSession
from demo.renders import rendered, renders_of
from charrnn.runs import Run
from charrnn.sessions import Session

RENDER_EVERY = 0.5   # seconds between the ticks on which a stream looks for a change (2 updates per second at most)
WATCH_EVERY = 1.0    # and between a class's watching screens' looks: every other tick of the teacher's page
CLOCK_EVERY = 2.0    # seconds between updates when only the status line's clock moves
POLL_FIRST = 0.05    # how often a stream looks while its run has no epoch yet (a student waits for the first point)


def tick(now: float, every: float) -> int:
    """The number of the tick of ``every`` seconds that ``now`` (``time.monotonic``) falls in: every stream of the
    server counts the same ticks."""
    return math.floor(now / every)


def until_tick(every: float) -> float:
    """Seconds until the next tick of ``every`` seconds."""
    now = time.monotonic()
    return (tick(now, every) + 1) * every - now


async def follow(session: Session, run: Run | None = None, done: Callable[[], bool] | None = None):
    """Renders of ``session`` for its own page whenever something shown changes, until ``run`` ends or
    ``done()`` is true (with neither: once). It looks on the ticks of ``RENDER_EVERY`` (2 updates per second at
    most), and every ``POLL_FIRST`` while ``run`` has no epoch yet: its student has pressed Train and waits for
    the first point, sent at once, as is the run's end; both are sent to the class's screens at once too
    (``Channel.poke``). The clock of the status line (elapsed, the time left) moves every ``CLOCK_EVERY``.
    Outputs that did not change are sent again as they were: Gradio sends a browser only what differs, and a
    ``gr.skip()`` would cost the server a component built per output per update. Nothing is sent when nothing
    changed."""
    sent: tuple = ()
    sent_key, sent_tick, clock = None, None, None
    waiting = run is not None and not run.history  # for its first point: sent as soon as it comes
    while True:
        if session.closed:
            return
        session.touch()  # someone is looking: the session is alive
        ended = (run is not None and not run.alive) or (done is not None and done())
        first = waiting and bool(run.history)
        waiting = waiting and not first
        key, now = session.state_key(), time.monotonic()
        if (sent_key is None or ended or first or (key != sent_key and tick(now, RENDER_EVERY) != sent_tick)
                or tick(now, CLOCK_EVERY) != clock):
            sent_tick, clock = tick(now, RENDER_EVERY), tick(now, CLOCK_EVERY)
            runs = session.all_runs()
            # a run that ended after a newer one started (Stop and start a lesson): its last render shows the newer
            focus = None if ended and runs and runs[-1] is not run else run
            out = await rendered(session, focus, key=key)
            if out != sent:  # the same tuple, shared with other pages, compares in no time
                yield out
                sent, sent_key = out, key
            channel = CHANNELS.get(session)
            if (ended or first) and channel is not None:
                channel.poke()
        if ended or (run is None and done is None):
            return
        await asyncio.sleep(POLL_FIRST if waiting else until_tick(RENDER_EVERY))


LEFT = ("left",)  # put in a watching page's box by ``leave``: its stream ends at once
_WATCHING: dict[str, tuple[asyncio.AbstractEventLoop, "_Box"]] = {}  # a watching page's key -> its stream's box


def leave(page: str) -> None:
    """End the watch stream of the page ``page`` (its session's key) now, not at its next look at ``still``:
    the page joined the class's experiment, and what it shows next is its own. Any thread."""
    held = _WATCHING.get(page)
    if held is not None:
        held[0].call_soon_threadsafe(held[1].put, LEFT)


async def watch(session: Session, style: render.Style | None = None, lang: str | None = None,
                still: Callable[[], bool] | None = None, page: str | None = None):
    """Renders of ``session`` for a page that watches it (a student's screen in a class: ``style`` and ``lang``
    are that page's), until the session closes or ``still()`` is false (the page joined the class's experiment
    and trains its own runs; ``page``, its key: ``leave(page)`` ends it at once): what it shows now, then every
    update of the session's ``Channel``."""
    look = renders_of(session)
    style, lang = style or look.style, lang or look.lang
    box = CHANNELS.of(session).join((style, lang))
    if page is not None:
        _WATCHING[page] = (asyncio.get_running_loop(), box)
    try:
        sent = await rendered(session, None, style, lang)
        yield sent
        while not session.closed:
            if still is None:
                out = await box.get()
            else:
                try:  # looks at ``still`` every second
                    out = await asyncio.wait_for(box.get(), 1.0)
                except asyncio.TimeoutError:
                    if not still():
                        return
                    continue
                if out is LEFT or not still():
                    return
            if out is None:  # the session closed
                return
            if out != sent:  # its first outputs were its own: the channel's may be the same
                yield out
                sent = out
    finally:
        box.leave()
        if page is not None and _WATCHING.get(page, (None, None))[1] is box:
            del _WATCHING[page]


class _Box:
    """One watching page's mailbox: the newest outputs for it (a screen that falls behind skips to the newest),
    or None once the session has closed."""

    def __init__(self, channel: "Channel", look: tuple) -> None:
        self.channel, self.look = channel, look
        self.value: tuple | None = None
        self.ready = asyncio.Event()

    def put(self, value: tuple | None) -> None:
        self.value = value
        self.ready.set()

    async def get(self) -> tuple | None:
        await self.ready.wait()
        self.ready.clear()
        return self.value

    def leave(self) -> None:
        self.channel.leave(self)


class Channel:
    """A session's updates for every page that watches it (a class): one task looks at the session on the ticks
    of ``WATCH_EVERY``, and at once when the session's own page sends a run's first point or its end
    (``poke``); it renders once per look (style, language) and gives the same outputs to every page with
    that look. Fifty screens cost one look a second, not fifty streams each looking on every tick; they
    update in the same instant as the session's own page, on every other of its ticks.

    Used from the server's event loop only (the pages' streams run there). It holds its session weakly (the
    channel is the session's page state, which must not keep it alive); its task holds it while it runs."""

    def __init__(self, session: Session) -> None:
        self._session = weakref.ref(session)
        self._boxes: dict[tuple, set[_Box]] = {}
        self._poked = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.looks = 0  # times the task looked at the session (the tests read it)

    @property
    def watchers(self) -> int:
        return sum(len(b) for b in self._boxes.values())

    def join(self, look: tuple) -> _Box:
        box = _Box(self, look)
        self._boxes.setdefault(look, set()).add(box)
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.get_loop() is not loop:  # (an app launched again has a new loop)
            self._poked = asyncio.Event()
            self._task = loop.create_task(self._run())
        return box

    def leave(self, box: _Box) -> None:
        boxes = self._boxes.get(box.look)
        if boxes is not None:
            boxes.discard(box)
            if not boxes:
                del self._boxes[box.look]

    def poke(self) -> None:
        self._poked.set()

    def every(self) -> float:
        """Seconds between the channel's looks at its session."""
        return WATCH_EVERY

    def state(self, session: Session) -> tuple:
        """What changes whenever what the channel shows changes (a subclass shows something else of a session)."""
        return session.state_key()

    async def render(self, session: Session, look: tuple, key: tuple) -> tuple:
        """The outputs for the pages of one look (their style and language)."""
        return await rendered(session, None, *look, key=key)

    async def _send(self, session: Session, key: tuple, sent: dict[tuple, tuple]) -> None:
        """Render the session once for each look its watchers have, and hand that to each (where it changed)."""
        for look in list(self._boxes):
            out = await self.render(session, look, key)
            if out != sent.get(look):
                sent[look] = out
                for box in self._boxes.get(look, ()):
                    box.put(out)

    async def _run(self) -> None:
        session, sent = self._session(), {}
        if session is None:  # gone: nothing watches it any more
            self._task = None
            return
        sent_key, clock = None, None
        try:
            while self._boxes and not session.closed:
                session.touch()  # a class is looking: the session is alive
                self.looks += 1
                key, now = self.state(session), time.monotonic()
                if key != sent_key or self._poked.is_set() or tick(now, CLOCK_EVERY) != clock:
                    sent_key, clock = key, tick(now, CLOCK_EVERY)
                    self._poked.clear()
                    try:
                        await self._send(session, key, sent)
                    except Exception:  # the pages keep what they show, and the next tick tries again
                        logging.getLogger(__name__).exception("rendering a class's update failed")
                        sent_key = None
                try:
                    await asyncio.wait_for(self._poked.wait(), until_tick(self.every()))
                except asyncio.TimeoutError:
                    pass
        finally:
            self._task = None  # no await since the loop's test: a page that joins now starts a new task
            if session.closed:
                for boxes in self._boxes.values():
                    for box in boxes:
                        box.put(None)


CHANNELS: PerSession[Channel] = PerSession(Channel)  # each session's, made when a page first watches it
