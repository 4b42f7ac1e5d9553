"""What a page shows of a session's runs, rendered once per change however many pages show it.

``outputs`` makes the seven outputs of a run (status, the two charts, the newest lyrics, the history, the
progress, the charts' new points) as Gradio sends them; ``Renders`` keeps them per session, so that every page
showing the same thing within ``FRESH`` seconds (a class of watchers) gets the same tuple, and the charts are
rebuilt only when the session's runs changed. A session's ``Renders`` also holds how its own page shows it
(language, projector), and which of its runs the charts leave out (``hidden``: the compare view's, and those
before a lesson).

A ``gr.Plot`` draws every new figure it is given afresh, on a new graph: with Gradio's own work on the update, a
freeze of the page's main thread of 0.15-0.26 s per update of the two charts on a 2-core laptop's CPU
(docs/performance.md, "What the browser pays"). So while runs train, a chart's figure stays the one it was
drawn with (its ``Drawn``), and the points it has grown by since go in the seventh output (``growth.growth``),
which the page's script (``growth.CHARTS_JS``) adds to the graph it has. A chart is drawn afresh when it changes
otherwise (a run added or hidden, a ✕, a lesson, the language or the projector), when its curves have grown by
``REDRAW_AFTER`` points, and when nothing on it trains any more (what is left is one figure, as API clients
read it).
"""
from __future__ import annotations

import hashlib
import inspect
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from anyio import to_thread  # its threads end after 10 s idle (asyncio's pool keeps them)

from demo import charts
from demo import growth
from demo import render
from demo.page_state import PerSession
from charrnn.runs import Run
from charrnn.sessions import Session

FRESH = 1.0  # seconds for which one page's outputs serve every other page showing the same thing
CHARTS = ("ppl-plot", "grad-plot")  # the charts' elements on the page (layout.run_panel): the points' keys
REDRAW_AFTER = 120  # points a curve grows by before its chart is drawn afresh (each update sends all of them)
GROWTH = "CHARRNN_CHART_GROWTH"  # "off": every change draws the charts afresh (bench/browser.py compares the two)


@dataclass(frozen=True)
class Drawn:
    """A chart as the pages draw it afresh: its figure, ``gr.Plot``'s payload of it, which carries ``base`` (a
    digest of the figure) in its layout's ``meta``, so that the page grows only the graph it names."""
    figure: dict[str, Any]
    payload: dict[str, str]
    base: str

    @classmethod
    def of(cls, figure: dict[str, Any]) -> "Drawn":
        base = hashlib.blake2b(render.compact_json(figure).encode(), digest_size=8).hexdigest()
        return cls(figure, render.chart({**figure, "layout": {**figure["layout"], "meta": {"base": base}}}), base)


class Renders:
    """A session's charts, rendered once per change however many pages show them (a class of watchers),
    the outputs every page showing the same thing shares, how the session's own page shows them (its
    language, and the projector style), and the runs its charts leave out (every page showing it leaves them
    out: a class sees what the teacher compares)."""
    total_renders = 0      # every session's, since the server started (the classroom benchmark reads them)
    total_seconds = 0.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[tuple, tuple[tuple, tuple]] = {}  # (style, lang) -> (key, the two charts, points)
        self._drawn: dict[tuple, tuple[Drawn, ...]] = {}    # (style, lang) -> each chart as it was drawn afresh
        self._shown: dict[tuple, tuple[float, tuple]] = {}  # what is shown -> (when made, outputs)
        self.lang = "both"
        self.style = charts.NORMAL
        self.hidden: frozenset[int] = frozenset()  # numbers of the runs the charts leave out

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

    def what(self, key: tuple, focus: Run | None, style: charts.Style | None, lang: str | None) -> tuple:
        """What a page shows: the session's state key, the runs left out, the run in focus, style, language."""
        return key, self.hidden, focus.number if focus is not None else None, style or self.style, lang or self.lang

    def hide(self, numbers: set[int]) -> None:
        """Leave these runs out of the charts (all others are shown)."""
        self.hidden = frozenset(numbers)

    def parts(self, session: Session, style: charts.Style, lang: str = "both") -> tuple:
        """(perplexity chart, grad-norm chart, their points) of the session's runs but those hidden, rebuilt only
        when they changed: each chart as it was last drawn afresh, and the points (``{chart's element id: {"base":
        the drawn figure's digest, **growth.growth}}``) that turn it into the runs' chart as it is now."""
        with self._lock:
            hidden = self.hidden
            key = (session.state_key(), hidden)
            cached = self._cache.get((style, lang))
            if cached is None or cached[0] != key:
                start = time.perf_counter()
                shown = [v for v in session.views() if v.number not in hidden]
                training = any(v.active for v in shown) and os.environ.get(GROWTH, "on") != "off"
                before = self._drawn.get((style, lang), (None,) * len(CHARTS))
                drawn, points = [], {}
                for name, figure, was in zip(CHARTS, charts.figures(shown, style, lang), before):
                    grew = growth.growth(was.figure, figure) if training and was is not None else None
                    if grew is None or max((len(t["x"]) for t in grew["traces"].values()), default=0) > REDRAW_AFTER:
                        was, grew = Drawn.of(figure), {"traces": {}, "yaxis": {}}
                    drawn.append(was)
                    points[name] = {"base": was.base, **grew}
                self._drawn[(style, lang)] = tuple(drawn)
                cached = (key, (*(d.payload for d in drawn), points))
                self._cache[(style, lang)] = cached
                Renders.total_renders += 1
                Renders.total_seconds += time.perf_counter() - start
            return cached[1]


RENDERS: PerSession[Renders] = PerSession(lambda _: Renders())


def renders_of(session: Session) -> Renders:
    return RENDERS.of(session)


def outputs(session: Session, focus: Run | None = None, style: charts.Style | None = None,
            lang: str | None = None) -> tuple:
    """What a page shows of a session: status, the two charts, newest samples, history, progress, the charts'
    new points (in the style and language of the session's own page unless given: a watcher's page has its
    own).

    The values are as Gradio sends them (events that show them are wired with ``postprocess=False``), so
    that the same tuple goes to every page showing the same thing, with no work per page; nothing in it is
    changed once made.
    """
    view_of = renders_of(session)
    what = view_of.what(session.state_key(), focus, style, lang)
    style, lang = what[3], what[4]
    if (out := view_of.shown(what)) is not None:
        return out
    runs = list(session.runs)
    run = focus or (runs[-1] if runs else None)
    view = run.view() if run is not None else None
    ppl, grad, points = view_of.parts(session, style, lang)
    status, latest, history, progress = render.texts(view, lang, style.empty)
    if view is not None and view.caption:  # a lesson: its runs' lyrics side by side
        # the lesson's runs on the charts (a lesson pressed again hides the earlier press's runs)
        latest = render.side_by_side([r.view() for r in runs if r.caption == view.caption
                                      and r.number not in view_of.hidden][-2:], lang)
    out = (inspect.cleandoc(status), ppl, grad, latest, history, progress, points)
    view_of.keep(what, out)
    return out


async def rendered(session: Session, focus: Run | None = None, style: charts.Style | None = None,
                   lang: str | None = None, key: tuple | None = None) -> tuple:
    """``outputs(...)`` for the event loop: those made less than ``FRESH`` s ago as they are, else made in a
    worker thread (``key``: the session's state key, where the caller has just read it)."""
    look = renders_of(session)
    what = look.what(key if key is not None else session.state_key(), focus, style, lang)
    return look.shown(what) or await to_thread.run_sync(outputs, session, focus, style, lang)
