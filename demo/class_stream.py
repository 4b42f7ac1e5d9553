"""The class experiment on every screen of the class: rendered once per change and look, sent to every page.

``ClassRenders`` keeps one experiment's outputs (its title, the class chart, the results, the table and the class
chart's new points) per look (style, language), rebuilt only when the experiment changed (a student joined, an
epoch ended, the teacher highlighted someone). The class chart grows as the page's own charts do
(``demo.renders``): while runs train its figure stays the one the pages drew, and the points since go in the
points output, which Gradio sends as the items added to its lists. ``ClassChannel`` is the teacher's session's
broadcast of them (``demo.streams.Channel``, looking at the experiment instead of the runs): thirty students and a
projector cost one look a second and one render per look.
"""
from __future__ import annotations

import asyncio
import html
import threading
import time
from typing import Callable

from anyio import to_thread  # its threads end after 10 s idle (asyncio's pool keeps them)

from demo import charts
from demo import class_chart
from demo import growth
from demo import render
from demo.experiment_panel import CLASS_PLOT
from demo.languages import either, in_language
from demo.page_state import PerSession
from demo.renders import REDRAW_AFTER, Drawn
from demo.streams import Channel
from charrnn.experiments import Experiment
from charrnn.sessions import Session

CHART_TITLE = "全班的训练曲线 · the class's runs"
CLASS_EVERY = 0.6   # seconds between the class channel's looks: a student's epoch on every board within a second
BESIDE_EVERY = 2.0  # seconds between the results chart's and the table's updates while only numbers move
ACTIVE = ("queued", "running", "training", "paused")


def title(experiment: Experiment | None, lang: str, ended_code: str = "") -> str:
    """The board's heading: the question (as text), the class code, how many students, whether it has ended."""
    if experiment is None:
        code = html.escape(ended_code)
        return either(f"**班级 {code} 的实验已结束。**", f"**The experiment of class {code} has ended.**", lang)
    n, code, epochs = len(experiment.students()), experiment.code, experiment.epochs
    zh = f"班级 {code} — {n} 名学生 · 每次 {epochs} 个周期" + (" · ■ 已结束" if experiment.ended else "")
    en = (f"class {code} — {n} student{'' if n == 1 else 's'} · {epochs} epochs a run"
          + (" · ■ ended" if experiment.ended else ""))
    return f"### 🧪 {html.escape(experiment.question)}\n" + either(zh, en, lang, "  \n")


class ClassRenders:
    """One teacher's experiment as its screens show it, per look, rebuilt when it changed."""
    total_renders = 0  # every experiment's, since the server started (the benchmark reads them)
    total_seconds = 0.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[tuple, tuple[tuple, tuple]] = {}  # look -> (experiment's key, outputs)
        self._drawn: dict[tuple, Drawn] = {}                # look -> the class chart as the pages drew it
        self._side: dict[tuple, tuple] = {}                 # look -> (what is on them, when, results and table)

    def outputs(self, experiment: Experiment, style: charts.Style, lang: str) -> tuple:
        key, look = (id(experiment), experiment.state_key()), (style, lang)
        with self._lock:
            hit = self._cache.get(look)
            if hit is not None and hit[0] == key:
                return hit[1]
            start = time.perf_counter()
            entries = experiment.class_runs()
            shown = entries if experiment.older == "grey" else [e for e in entries if e["latest"]]
            # the board's heading holds the question: the chart's title says what it draws (an export has the question)
            figure = class_chart.class_figure(shown, list(experiment.free), in_language(CHART_TITLE, lang), style,
                                              lang, experiment.older)
            was = self._drawn.get(look)
            training = any(e["status"] in ACTIVE for e in shown)
            grew = growth.growth(was.figure, figure) if training and was is not None else None
            if grew is None or max((len(t["x"]) for t in grew["traces"].values()), default=0) > REDRAW_AFTER:
                was, grew = Drawn.of(figure), {"traces": {}, "yaxis": {}}
            self._drawn[look] = was
            results, table = self._beside(experiment, shown, style, lang)
            out = (title(experiment, lang), was.payload, results, table, {CLASS_PLOT: {"base": was.base, **grew}})
            self._cache[look] = (key, out)
            ClassRenders.total_renders += 1
            ClassRenders.total_seconds += time.perf_counter() - start
            return out


    def _beside(self, experiment: Experiment, shown: list[dict], style: charts.Style, lang: str) -> tuple:
        """The results chart and the table: made again when who is on them or how changed (a student, a run, a
        status, the highlight), else at most every ``BESIDE_EVERY`` s. They are sent whole to every page (the
        class chart grows by its points): so their numbers move every other second, and cost half as much."""
        look, now = (style, lang), time.monotonic()
        shape = (experiment.highlight, experiment.older, experiment.ended,
                 *((e["id"], e["run"], e["status"], e["latest"]) for e in shown))
        kept = self._side.get(look)
        if kept is not None and kept[0] == shape and now - kept[1] < BESIDE_EVERY:
            return kept[2]
        free = list(experiment.free)
        made = (render.chart(class_chart.results_figure(shown, free, style, lang)),
                class_chart.table_html(shown, free, lang, experiment.older))
        self._side[look] = (shape, now, made)
        return made


CLASS_RENDERS: PerSession[ClassRenders] = PerSession(lambda _: ClassRenders())


def class_outputs(teacher: Session, style: charts.Style, lang: str) -> tuple:
    """The board's outputs of the teacher's experiment (an empty board once it is gone)."""
    experiment = teacher.membership.experiment
    if experiment is None:
        return ended_outputs(teacher.membership.code or "", lang)
    return CLASS_RENDERS.of(teacher).outputs(experiment, style, lang)


def ended_outputs(code: str, lang: str) -> tuple:
    empty = class_chart.class_figure([], [], "")
    return (title(None, lang, code), render.chart(empty), render.chart(class_chart.results_figure([], [])), "", {})


class ClassChannel(Channel):
    """The teacher's session's broadcast of its experiment to every page of the class."""

    def every(self) -> float:
        return CLASS_EVERY

    def state(self, session: Session) -> tuple:
        experiment = session.membership.experiment
        return (id(experiment), experiment.state_key()) if experiment is not None else ()

    async def render(self, session: Session, look: tuple, key: tuple) -> tuple:
        return await to_thread.run_sync(class_outputs, session, *look)


CLASS_CHANNELS: PerSession[ClassChannel] = PerSession(ClassChannel)


async def follow_class(teacher: Session, style: charts.Style, lang: str, still: Callable[[], bool]):
    """The board's outputs for one page of the class: what it shows now, then every change, while ``still()``
    (the page is still part of this class) and the teacher's session is open; then the ended board."""
    box = CLASS_CHANNELS.of(teacher).join((style, lang))
    try:
        sent = await to_thread.run_sync(class_outputs, teacher, style, lang)
        yield sent
        while not teacher.closed and still():
            try:
                out = await asyncio.wait_for(box.get(), 1.0)
            except asyncio.TimeoutError:
                continue
            if out is None:
                break
            if out != sent:
                yield out
                sent = out
    finally:
        box.leave()
    if teacher.closed:
        yield ended_outputs(teacher.membership.code or "", lang)
