"""Train and Stop, and following a session's runs live: what the page's Train button does.

A run belongs to its session, not to the stream that shows it: a page that reloads follows it again
(``follow``), and many pages can follow one session (a class watching a teacher's) for the price of one
render per change (``Renders``).
"""
from __future__ import annotations

import asyncio
import dataclasses
import inspect
import threading
import time
from pathlib import Path
from typing import Any

import gradio as gr
from anyio import to_thread  # its threads end after 10 s idle (asyncio's pool keeps them)

import form
import render
from gradio_costs import Sealed
from charrnn.config import ConfigError
from charrnn.corpus import CorpusError
from charrnn.files import QuotaError
from charrnn.lab import Lab, Run, Session
from charrnn.threads import one_thread
from charrnn.train import STRUCTURE, Trainer

RENDER_EVERY = 0.5   # seconds between updates of a stream when its runs change (2 per second at most)
FRESH = 1.0          # seconds for which one page's outputs serve every other page showing the same thing
CLOCK_EVERY = 2.0    # seconds between updates when only the status line's clock moves
POLL = 0.2           # how often a stream looks for a change
POLL_FIRST = 0.05    # and while its run has no epoch yet (a student is waiting for the first point)
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


async def follow(session: Session, run: Run | None = None, forever: bool = False, done: Any = None,
                 style: render.Style | None = None, lang: str | None = None):
    """Renders of ``session`` whenever something shown changes, until ``run`` ends, ``done()`` is true, or
    (``forever``) the session closes. A change of the runs is sent within ``RENDER_EVERY`` (2 per second
    at most), except the first epoch of ``run``, sent within ``POLL_FIRST`` (its student has pressed Train
    and waits for the first point); the clock of the status line (elapsed, the time left) every
    ``CLOCK_EVERY``. Outputs that did not change are sent again as they were: Gradio sends a browser only
    what differs, and a ``gr.skip()`` would cost the server a component built per output per update (with
    fifty watchers, most of its time). Nothing is sent when nothing changed."""
    sent: tuple = ()
    sent_key, last = None, 0.0
    waiting = run is not None and not run.history  # for its first point: sent as soon as it comes
    while True:
        if session.closed:
            return
        session.touch()  # someone is looking: the session is alive
        ended = (run is not None and not run.alive) or (done is not None and done())
        first = waiting and bool(run.history)
        waiting = waiting and not first
        key = session.state_key()
        since = time.monotonic() - last
        if (sent_key is None or ended or first or (key != sent_key and since >= RENDER_EVERY)
                or since >= CLOCK_EVERY):
            last = time.monotonic()
            look = renders_of(session)
            what = (key, run.number if run is not None else None, style or look.style, lang or look.lang)
            out = look.shown(what) or await to_thread.run_sync(outputs, session, run, style, lang)
            if out != sent:  # the same tuple, shared with other pages, compares in no time
                yield out
                sent, sent_key = out, key
        if ended or (run is None and done is None and not forever):
            return
        await asyncio.sleep(POLL_FIRST if waiting else POLL)


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
            yield note(session, BUSY_NOTE if "already training" in str(e) else f"✗ {e}", busy="already training" in str(e))
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
