"""Train and Stop, and following a session's runs live: what the page's Train button does.

A run belongs to its session, not to the stream that shows it: a page that reloads follows it again
(``follow``), and many pages can watch one session (a class watching a teacher's: ``watch``) for the price of
one look and one render per change (``Channel``, ``Renders``).

Every stream updates on one clock (the ticks of ``RENDER_EVERY``, whole multiples of it in ``time.monotonic``):
a class's screens update every other tick of the teacher's page (``WATCH_EVERY``), in the same instant.
"""
from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import math
import threading
import time
from pathlib import Path
from typing import Any

import gradio as gr
from anyio import to_thread  # its threads end after 10 s idle (asyncio's pool keeps them)

from demo import form
from demo import render
from demo.gradio_costs import Sealed
from charrnn.config import ConfigError
from charrnn.corpus import CorpusError
from charrnn.files import QuotaError
from charrnn.lab import Lab, Run, Session
from charrnn.threads import one_thread
from charrnn.train import STRUCTURE, Trainer

RENDER_EVERY = 0.5   # seconds between the ticks on which a stream looks for a change (2 updates per second at most)
WATCH_EVERY = 1.0    # and between a class's watching screens' looks: every other tick of the teacher's page
FRESH = 1.0          # seconds for which one page's outputs serve every other page showing the same thing
CLOCK_EVERY = 2.0    # seconds between updates when only the status line's clock moves
POLL_FIRST = 0.05    # how often a stream looks while its run has no epoch yet (a student waits for the first point)
STOPPED_EARLY = "■ Stopped before it started · 训练开始前已停止"
BUSY_NOTE = ("A run is training · 正在训练: stop it first, or press the button below to stop it and train "
             "the new settings · 请先停止，或点下面的按钮停止并用新设置训练")


class Renders:
    """A session's charts, rendered once per change however many pages show them (a class of watchers),
    the outputs every page showing the same thing shares, and how the session's own page shows them (its
    language, and the projector style)."""
    total_renders = 0      # every session's, since the server started (the classroom benchmark reads them)
    total_seconds = 0.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[render.Style, tuple[tuple, tuple]] = {}  # style -> (state key, the two charts)
        self._shown: dict[tuple, tuple[float, tuple]] = {}          # what is shown -> (when made, outputs)
        self.lang = "both"
        self.style = render.NORMAL
        self.note: tuple[str, bool] | None = None  # the Train note the page shows once its stream ends
        self.channel: Channel | None = None        # the class's screens, while some watch (event loop only)

    def shown(self, what: tuple) -> tuple | None:
        """The outputs made for ``what`` (state key, focus, style, language) less than ``FRESH`` s ago."""
        with self._lock:
            hit = self._shown.get(what)
        return hit[1] if hit is not None and time.monotonic() - hit[0] < FRESH else None

    def keep(self, what: tuple, out: tuple) -> None:
        now = time.monotonic()
        with self._lock:
            self._shown = {k: v for k, v in self._shown.items() if now - v[0] < FRESH}
            self._shown[what] = (now, out)

    def parts(self, session: Session, style: render.Style) -> tuple:
        """(perplexity chart, grad-norm chart) of the session's runs, rebuilt only when they changed."""
        with self._lock:
            key = session.state_key()
            cached = self._cache.get(style)
            if cached is None or cached[0] != key:
                start = time.perf_counter()
                cached = (key, tuple(chart(f) for f in render.figures(session.views(), style)))
                self._cache[style] = cached
                Renders.total_renders += 1
                Renders.total_seconds += time.perf_counter() - start
            return cached[1]


def renders_of(session: Session) -> Renders:
    if session.shared is None:
        session.shared = Renders()
    return session.shared


def chart(figure_json: str) -> Sealed:
    """A chart as ``gr.Plot`` sends it to the browser (plotly JSON, no plotly objects built)."""
    return Sealed(type="plotly", plot=figure_json)


def outputs(session: Session, focus: Run | None = None, style: render.Style | None = None,
            lang: str | None = None) -> tuple:
    """What a page shows of a session: status, the two charts, newest samples, history, progress (in the
    style and language of the session's own page unless given: a watcher's page has its own).

    The values are as Gradio sends them (events that show them are wired with ``postprocess=False``), so
    that the same tuple goes to every page showing the same thing, with no work per page; its dicts are
    ``Sealed`` (never changed once made), so that Gradio walks them and diffs them once for all those pages.
    """
    view_of = renders_of(session)
    style, lang = style or view_of.style, lang or view_of.lang
    what = (session.state_key(), focus.number if focus is not None else None, style, lang)
    if (out := view_of.shown(what)) is not None:
        return out
    runs = list(session.runs)
    run = focus or (runs[-1] if runs else None)
    view = run.view() if run is not None else None
    ppl, grad = view_of.parts(session, style)
    status, latest, history, progress = render.texts(view, lang)
    if view is not None and view.caption:  # a lesson: its runs' lyrics side by side
        latest = render.side_by_side([r.view() for r in runs if r.caption == view.caption][-2:])
    out = (inspect.cleandoc(status), ppl, grad, latest, history, Sealed(progress))
    view_of.keep(what, out)
    return out


async def rendered(session: Session, focus: Run | None = None, style: render.Style | None = None,
                   lang: str | None = None, key: tuple | None = None) -> tuple:
    """``outputs(...)`` for the event loop: those made less than ``FRESH`` s ago as they are, else made in a
    worker thread (``key``: the session's state key, where the caller has just read it)."""
    look = renders_of(session)
    what = (key if key is not None else session.state_key(), focus.number if focus is not None else None,
            style or look.style, lang or look.lang)
    return look.shown(what) or await to_thread.run_sync(outputs, session, focus, style, lang)


def tick(now: float, every: float) -> int:
    """The number of the tick of ``every`` seconds that ``now`` (``time.monotonic``) falls in: every stream of the
    server counts the same ticks."""
    return math.floor(now / every)


def until_tick(every: float) -> float:
    """Seconds until the next tick of ``every`` seconds."""
    now = time.monotonic()
    return (tick(now, every) + 1) * every - now


async def follow(session: Session, run: Run | None = None, done: Any = None):
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
            out = await rendered(session, run, key=key)
            if out != sent:  # the same tuple, shared with other pages, compares in no time
                yield out
                sent, sent_key = out, key
            channel = renders_of(session).channel
            if (ended or first) and channel is not None:
                channel.poke()
        if ended or (run is None and done is None):
            return
        await asyncio.sleep(POLL_FIRST if waiting else until_tick(RENDER_EVERY))


async def watch(session: Session, style: render.Style | None = None, lang: str | None = None):
    """Renders of ``session`` for a page that watches it (a student's screen in a class: ``style`` and ``lang``
    are that page's), until the session closes: what it shows now, then every update of the session's
    ``Channel``."""
    look = renders_of(session)
    style, lang = style or look.style, lang or look.lang
    if look.channel is None:
        look.channel = Channel(session)
    box = look.channel.join((style, lang))
    try:
        sent = await rendered(session, None, style, lang)
        yield sent
        while not session.closed:
            out = await box.get()
            if out is None:  # the session closed
                return
            if out != sent:  # its first outputs were its own: the channel's may be the same
                yield out
                sent = out
    finally:
        box.leave()


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
    that look. Fifty screens cost one look a second, not fifty streams looking five times a second; they
    update in the same instant as the session's own page, on every other of its ticks.

    Used from the server's event loop only (the pages' streams run there)."""

    def __init__(self, session: Session) -> None:
        self.session = session
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

    async def _send(self, key: tuple, sent: dict[tuple, tuple]) -> None:
        """Render the session once for each look its watchers have, and hand that to each (where it changed)."""
        for look in list(self._boxes):
            out = await rendered(self.session, None, *look, key=key)
            if out != sent.get(look):
                sent[look] = out
                for box in self._boxes.get(look, ()):
                    box.put(out)

    async def _run(self) -> None:
        session, sent = self.session, {}
        sent_key, clock = None, None
        try:
            while self._boxes and not session.closed:
                session.touch()  # a class is looking: the session is alive
                self.looks += 1
                key, now = session.state_key(), time.monotonic()
                if key != sent_key or self._poked.is_set() or tick(now, CLOCK_EVERY) != clock:
                    sent_key, clock = key, tick(now, CLOCK_EVERY)
                    self._poked.clear()
                    try:
                        await self._send(key, sent)
                    except Exception:  # the pages keep what they show, and the next tick tries again
                        logging.getLogger(__name__).exception("rendering a class's update failed")
                        sent_key = None
                try:
                    await asyncio.wait_for(self._poked.wait(), until_tick(WATCH_EVERY))
                except asyncio.TimeoutError:
                    pass
        finally:
            self._task = None  # no await since the loop's test: a page that joins now starts a new task
            if session.closed:
                for boxes in self._boxes.values():
                    for box in boxes:
                        box.put(None)


class Training:
    """The handlers of Train, Stop and Clear."""

    def __init__(self, lab: Lab):
        self.lab = lab

    def session(self, request: gr.Request) -> Session:
        return self.lab.session(request.session_hash)

    def on_press(self, pressed_at: float, request: gr.Request) -> tuple[str, Any]:
        """The first thing Train does: from now on a Stop cancels the run it starts, even before it starts."""
        self.session(request).request_train(new=True, pressed_at=pressed_at)
        return "", gr.update(visible=False)

    def validate_train(self, request: gr.Request, **values: Any) -> list:
        """Runs when Train is pressed: every problem shows next to its setting, and then no run starts."""
        session = self.session(request)
        pending = session.request_train()  # the press (on_press), or an API call's request
        if values.get("corpus") == "upload" and values.get("corpus_file"):
            try:
                hold_upload(session, values["corpus_file"])
            except (QuotaError, OSError) as e:
                session.drop_request(pending)
                return [gr.validate(n != "corpus_file", str(e)) for n in form.NAMES]
        pending.checked = form.check(values, session.loaded)
        problems = pending.checked.problems
        if problems:
            session.drop_request(pending)
        return [gr.validate(name not in problems, problems.get(name, "")) for name in form.NAMES]

    async def on_train(self, request: gr.Request, *, corpus_file: str | None = None, **values: Any):
        """Start a run in this session and stream its progress until it ends (the run goes on without it)."""
        session = self.session(request)
        pending = session.pending_request()
        if pending is not None and pending.cancelled:
            session.drop_request(pending)
            yield note(session, STOPPED_EARLY)
            return
        if session.active is not None:
            session.drop_request(pending)
            yield note(session, BUSY_NOTE, busy=True)
            return
        checked = pending.checked if pending is not None and pending.checked is not None else None
        if checked is None:
            checked = await to_thread.run_sync(form.check, {**values, "corpus_file": corpus_file}, session.loaded)
        if not checked.ok:
            session.drop_request(pending)
            raise gr.Error(" · ".join(f"{k}: {v}" for k, v in checked.problems.items()), title="Not started 未开始")
        try:
            run = session.start(await to_thread.run_sync(make_trainer, checked, session), request=pending)
        except RuntimeError as e:  # another Train of this session started its run meanwhile, or it closed
            yield note(session, BUSY_NOTE if "already training" in str(e) else f"✗ {e}",
                       busy="already training" in str(e))
            return
        except (ConfigError, CorpusError) as e:
            session.drop_request(pending)
            raise gr.Error(str(e), title="Not started 未开始")
        if run is None:  # a Stop came while the run was being prepared
            yield note(session, STOPPED_EARLY)
            return
        async for out in follow(session, run):
            yield out

    def on_streamed(self, request: gr.Request) -> tuple:
        """After a Train or lesson stream: the note it left (why nothing started), or nothing (Stop's note
        stays)."""
        session = self.lab.peek(request.session_hash)
        look = session.shared if session is not None else None
        if look is None or look.note is None:
            return gr.skip(), gr.skip()
        (text, busy), look.note = look.note, None
        return text, gr.update(visible=busy)

    def on_stop(self, request: gr.Request, pressed_at: float | None = None) -> tuple[str, Any]:
        """Stop this session's run (within one minibatch), or the one its latest Train is about to start.

        ``pressed_at``: the browser's clock (ms) when Stop was pressed; API clients leave it out.
        """
        stopped = self.session(request).stop(timeout=1.0, pressed_at=pressed_at or None)
        if stopped is None:
            text = "Nothing is training · 没有正在进行的训练"
        elif isinstance(stopped, Run):
            epochs = stopped.view().epoch
            text = f"■ Stopped run #{stopped.number} after {epochs} epoch{'' if epochs == 1 else 's'} · 已停止"
        else:
            text = STOPPED_EARLY
        return text, gr.update(visible=False)

    def on_clear(self, request: gr.Request) -> tuple:
        session = self.session(request)
        session.clear()
        return outputs(session)


def note(session: Session, text: str, busy: bool = False) -> tuple:
    """The Train stream's answer when it starts nothing: a progress dict that says why (API clients read it),
    and the note beside the buttons, which the page's event after the stream shows (``Training.on_streamed``:
    a stream that carried the note's two outputs would send Gradio's skip for them with every update, each
    costing the server a component built)."""
    renders_of(session).note = (text, busy)
    progress = {"status": "busy" if busy else "stopped", "message": text}
    return (*[gr.skip()] * 5, progress)


def hold_upload(session: Session, path: str) -> None:
    """An uploaded text belongs to the session: deleted when it closes, or now if it does not fit its caps."""
    try:
        session.files.add(path, make_room=True, upload=True)
    except QuotaError:
        Path(path).unlink(missing_ok=True)
        raise


def make_trainer(checked: form.Checked, session: Session) -> Trainer:
    """A new Trainer for checked settings; when resuming, the uploaded checkpoint with the form's changes."""
    one_thread()
    if not checked.resume:
        return Trainer(checked.config, checked.corpus)
    ck = session.loaded  # "epochs" more than the checkpoint has; its structure stays as saved
    keep = (*STRUCTURE, "seed")
    changes = {k: v for k, v in dataclasses.asdict(checked.config).items() if k not in keep}
    return Trainer.from_checkpoint(ck, checked.corpus, **{**changes, "epochs": ck.epoch + checked.config.epochs})
