"""The class's experiment on the page: the teacher opens it, students join and train, every screen shows the class.

The teacher's form (``demo.experiment_panel.setup``, in the share panel) opens an experiment on the sidebar's
settings (``on_open``); the class link stays the one shared. A page opened with it watches as before and shows
the class's board, where its user may join with a nickname (``on_join``): the page then trains as a student's,
its sidebar showing the teacher's settings read-only and the free ones to change (``student_view``), and a
Train press takes the teacher's values for every fixed setting (``student_values``; one sent different is
refused with a message, and the library checks again: ``charrnn.experiments``). Every page of the class follows
the board (``on_board``: ``demo.class_stream``). The teacher highlights, removes, ends, and exports.

The API's endpoints (``gr.api``: ``experiment``, ``join``, ``class_runs``, ``remove``, ``highlight``,
``end_experiment``) call the same methods; a refusal is a ``gr.Error`` with the message the page shows.
"""
# No ``from __future__ import annotations``: gr.api reads the endpoints' schemas from their type hints as they are.
import html
from typing import Any, Optional

import gradio as gr

from charrnn.config import ConfigError
from charrnn.export import finite
from charrnn.experiments import Experiment, ExperimentError, Free, check_nickname
from charrnn.lab import Lab
from charrnn.sessions import Session
from demo import charts
from demo import class_export
from demo import form
from demo import streams
from demo.class_stream import follow_class
from demo.classroom import base_url, class_panel
from demo.languages import either, in_language
from demo.problems import in_page
from demo.renders import outputs, renders_of

FORMATS = ("csv", "html")


def said(e: Exception, lang: str) -> str:
    return "✗ " + in_page(str(e), lang)


# ---------------------------------------------------------------- the teacher's form
def free_of(names: list[str], ranges: dict[str, Any]) -> list[Free]:
    """The free settings a teacher asked for, in the order of ``names`` (the first colours the curves)."""
    out = []
    for name in names or []:
        r = ranges.get(name)
        if name in ("model", "sampling", "optimizer"):
            out.append(Free.of(name, choices=tuple(r) if r else None))
        else:
            low, high = (r or (None, None))
            out.append(Free.of(name, low, high))
    return out


class Experiments:
    """The handlers of the teacher's form, the join row, the board and the teacher's row; and the API."""

    def __init__(self, lab: Lab):
        self.lab = lab

    def session(self, request: gr.Request) -> Session:
        return self.lab.session(request.session_hash)

    def open(self, session: Session, question: str, free: list[Free], values: dict[str, Any],
             epochs: Any) -> Experiment:
        """Open the experiment of the session's class on its form's settings (refusals as ExperimentError)."""
        if values.get("corpus") == "upload":
            raise ExperimentError("an experiment trains a corpus every student has: choose jaychou, timemachine or "
                                  "offline, not an upload")
        # the students' runs train the experiment's epochs: the form's rule for epochs applies to them
        checked = form.check({**values, "epochs": epochs, "resume": False, "corpus_file": None})
        if not checked.ok:
            raise ExperimentError("your settings are not allowed: " + " · ".join(
                f"{k}: {v}" for k, v in checked.problems.items()))
        count = checked.config.epochs
        return self.lab.open_experiment(session, question, free, checked.config, count)

    def on_open(self, request: gr.Request, question: str = "", free: Optional[list] = None,
                lr_low: Any = None, lr_high: Any = None, theta_low: Any = None, theta_high: Any = None,
                hidden_low: Any = None, hidden_high: Any = None, models: Optional[list] = None,
                samplings: Optional[list] = None, optimizers: Optional[list] = None,
                experiment_epochs: Any = 60, **values: Any) -> tuple:
        """The teacher's Open: (note, the share panel, the board, the teacher's row, the join row, End)."""
        session = self.session(request)
        lang = renders_of(session).lang
        ranges = {"lr": (lr_low, lr_high), "clip": (theta_low, theta_high), "num_hiddens": (hidden_low, hidden_high),
                  "model": models, "sampling": samplings, "optimizer": optimizers}
        try:
            experiment = self.open(session, question, free_of(free or [], ranges), values, experiment_epochs)
        except (ExperimentError, ConfigError, ValueError) as e:
            return said(e, lang), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        code = experiment.code
        text = in_language(f"🧪 实验已开始：学生扫码或打开班级链接，输入昵称加入 · The experiment is open: students "
                           f"scan the code or open the class link and join with a nickname (class {code})", lang)
        return (text, class_panel(code, f"{base_url(request)}?class={code}"), gr.update(visible=True),
                gr.update(visible=True), gr.update(visible=False), gr.update(interactive=True))

    # ------------------------------------------------------------ a page of the class
    def experiment_of(self, session: Session) -> Experiment | None:
        """The experiment a page shows: its own (a teacher), the one it joined, or its class's (a watcher)."""
        member = session.membership
        if member.experiment is not None:
            return member.experiment
        if member.joined is not None:
            return member.joined
        return self.lab.experiment(member.watched_code) if member.watching is not None else None

    async def on_board(self, request: gr.Request):
        """The board of the page's class, live, until the page leaves the class (or it ends)."""
        page = self.lab.session(request.session_hash)
        experiment = self.experiment_of(page)
        teacher = self.lab.by_class(experiment.code) if experiment is not None else None
        if teacher is None:
            return
        look, mine = renders_of(page), object()
        BOARDS[page.key] = mine  # a newer board stream of this page (after a join) takes over

        def still() -> bool:
            return BOARDS.get(page.key) is mine and not page.closed and teacher.membership.experiment is not None
        try:
            async for out in follow_class(teacher, look.style, look.lang, still):
                yield out
        finally:
            if BOARDS.get(page.key) is mine:
                del BOARDS[page.key]

    def on_join(self, nickname: str, request: gr.Request) -> tuple[str, bool]:
        """Join with a nickname: (the note, whether the page is a student's now)."""
        session = self.session(request)
        lang = renders_of(session).lang
        code = session.membership.watched_code
        try:
            experiment = self.lab.join(session, code, nickname)
        except ExperimentError as e:
            return said(e, lang), False
        look = renders_of(session)
        look.style = charts.own(look.style, student=True)  # its own runs now: "press Train", not "waiting"
        streams.leave(session.key)  # the teacher's runs leave its charts now, before it presses Train
        name = html.escape(experiment.student(session.key).nickname)  # the user's text, shown as text
        return either(f"🙋 你已作为“{name}”加入：改老师留给你的设置，然后点“训练”。",
                      f"🙋 You joined as “{name}”: change what the teacher left free and press Train.", lang), True

    def on_joined(self, request: gr.Request) -> Any:
        """After a Join: a page that is a student's now shows its own runs (none yet: its status line says to
        set the free settings and press Train), not the teacher's; one that did not join stays as it was."""
        session = self.session(request)
        return outputs(session) if session.membership.joined is not None else gr.skip()

    # ------------------------------------------------------------ the teacher's row
    def _teacher(self, request: gr.Request) -> tuple[Session, Experiment]:
        session = self.session(request)
        experiment = session.membership.experiment
        if experiment is None:
            raise ExperimentError("open an experiment first (in the share panel)")
        return session, experiment

    def _act(self, request: gr.Request, act, done: str) -> str:
        session = self.session(request)
        lang = renders_of(session).lang
        try:
            _, experiment = self._teacher(request)
            act(experiment)
        except ExperimentError as e:
            return said(e, lang)
        return in_language(done, lang)

    def on_students(self, request: gr.Request) -> Any:
        """The student list of the teacher's row, as it is when the list is opened."""
        experiment = self.session(request).membership.experiment
        names = [s.nickname for s in experiment.students()] if experiment is not None else []
        return gr.update(choices=names)

    def on_highlight(self, nickname: Optional[str], request: gr.Request) -> str:
        return self._act(request, lambda x: x.set_highlight(nickname or None),
                         f"✨ 突出显示 · Highlighted: {nickname}" if nickname else "✨ 不再突出显示 · No highlight")

    def on_remove(self, nickname: Optional[str], request: gr.Request) -> tuple[str, Any]:
        if not nickname:
            return in_language("✗ 请先在列表里选一名学生 · Pick a student in the list first", renders_of(
                self.session(request)).lang), gr.skip()
        return self._act(request, lambda x: x.remove(nickname), f"✕ 已移出 · Removed: {nickname}"), \
            gr.update(value=None)

    def on_older(self, older: str, request: gr.Request) -> str:
        return self._act(request, lambda x: x.set_older(older), "")

    def on_end(self, request: gr.Request) -> tuple[str, Any]:
        """End the experiment: (the note, End no longer pressable)."""
        note = self._act(request, lambda x: x.end(),
                          "■ 实验已结束，结果保留在这个页面，直到你关闭它 · The experiment has ended: its results stay "
                          "on this page until you close it")
        experiment = self.session(request).membership.experiment
        return note, gr.update(interactive=not (experiment is not None and experiment.ended))

    def on_export(self, fmt: str, request: gr.Request) -> tuple[Any, str]:
        session = self.session(request)
        lang = renders_of(session).lang
        try:
            path = self.export_file(session, fmt)
        except (ExperimentError, ValueError) as e:
            return gr.update(visible=False), said(e, lang)
        return gr.update(value=str(path), visible=True), ""

    def export_file(self, session: Session, fmt: str):
        """The class's results as a file of the teacher's session: every run's epochs (CSV) or the class chart
        and results, interactive and offline (HTML)."""
        if fmt not in FORMATS:
            raise ValueError(f"format={fmt!r} is not allowed: choose one of {', '.join(FORMATS)}")
        experiment = session.membership.experiment
        if experiment is None:
            raise ExperimentError("open an experiment first (in the share panel)")
        entries, free = experiment.class_runs(), list(experiment.free)
        if not entries:
            raise ExperimentError("no student has trained yet: nothing to export")
        lang = renders_of(session).lang
        text = (class_export.csv_text(entries, free) if fmt == "csv"
                else class_export.html_text(entries, free, experiment.question, lang))
        path = session.files.new_path(f"class-{experiment.code}.{fmt}")
        path.write_text(text, encoding="utf-8")
        session.files.add(path, make_room=True)
        return path

    # ------------------------------------------------------------ the API's endpoints (gr.api)
    def experiment(self, question: str = "", free: Optional[list] = None, epochs: int = 60,
                   settings: Optional[dict] = None, ranges: Optional[dict] = None, request: gr.Request = None) -> dict:
        """Open an experiment in this session's class: ``question``, the settings students may change (``free``:
        lr, clip, model, sampling, num_hiddens, optimizer; the first colours the class chart; default: lr), the
        epochs of every run; ``settings``: the fixed ones (the names of ``/train``'s parameters; the form's
        defaults otherwise); ``ranges``: {"lr": [low, high], "model": [choices]...} (the widest otherwise).
        Returns the class code, its link and the experiment."""
        session = self.session(request)
        limits = _named("ranges", lambda: _mapping(ranges))
        chosen = _named("free", lambda: free_of(["lr"] if free is None else _listed(free), limits))
        fixed = _named("settings", lambda: _mapping(settings))
        try:
            experiment = self.open(session, _named("question", lambda: _question(question)), chosen, fixed, epochs)
        except (ExperimentError, ConfigError, ValueError) as e:
            raise gr.Error(str(e)) from None
        return {"code": experiment.code, "link": f"{base_url(request)}?class={experiment.code}",
                **finite(experiment.about())}

    def join(self, code: str = "", nickname: str = "", request: gr.Request = None) -> dict:
        """Join the experiment of class ``code`` as ``nickname``: the settings a student may change (with their
        ranges or choices) and the teacher's value of each; then ``/train`` trains this session's runs for the
        class. A refusal says why."""
        session = self.session(request)
        _named("nickname", lambda: check_nickname(nickname))
        try:
            experiment = self.lab.join(session, code, nickname)
        except ExperimentError as e:
            raise gr.Error(f"code: {e}" if "the class" in str(e) else str(e)) from None
        return {"nickname": experiment.student(session.key).nickname, **finite(experiment.about())}

    def class_runs(self, code: Optional[str] = None, request: gr.Request = None) -> list:
        """One entry per student of the class (its latest run): nickname, the free settings, epoch, perplexity,
        perplexities (one per epoch), status. ``code``: the class (the teacher's own without it)."""
        session = self.session(request)
        experiment = self.lab.experiment(str(code)) if code else session.membership.experiment
        if experiment is None:
            raise gr.Error(f"code: the class {code!r} is unknown, has ended or runs no experiment" if code else
                           "open an experiment first, or give the class code")
        keep = ("nickname", "settings", "epoch", "epochs", "perplexity", "perplexities", "status", "run")
        return [finite({k: e[k] for k in keep}) for e in experiment.class_runs(older=False)]

    def remove(self, nickname: str = "", request: gr.Request = None) -> list:
        """Remove a student (the teacher): their run stops and leaves the class; they cannot join again. Returns the
        class's nicknames."""
        return self._api(request, lambda x: x.remove(nickname), "nickname")

    def highlight(self, nickname: Optional[str] = None, request: gr.Request = None) -> list:
        """Highlight a student's run on every screen (none: no highlight). Returns the class's nicknames."""
        return self._api(request, lambda x: x.set_highlight(nickname or None), "nickname")

    def end_experiment(self, request: gr.Request = None) -> list:
        """End the experiment (the teacher): runs still training stop; the results stay. Returns the nicknames."""
        return self._api(request, lambda x: x.end())

    def _api(self, request: gr.Request, act, name: str = "") -> list:
        """The teacher's act on the experiment; a refusal of the value names its parameter ``name``."""
        try:
            _, experiment = self._teacher(request)
        except ExperimentError as e:
            raise gr.Error(str(e)) from None
        try:
            act(experiment)
        except ExperimentError as e:
            raise gr.Error(f"{name}: {e}" if name else str(e)) from None
        return [s.nickname for s in experiment.students()]


def _named(name: str, make):
    """``make()``, or a gr.Error that names the parameter whose value it refused."""
    try:
        return make()
    except (ExperimentError, ValueError, TypeError) as e:
        raise gr.Error(f"{name}: {e}") from None


def _listed(value: Any) -> list:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"a list of setting names, not {value!r}")
    return list(value)


def _mapping(value: Any) -> dict:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"a dict, not {value!r}")
    return value


def _question(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ExperimentError("type the question the class answers, e.g. which learning rate trains best?")
    return value


BOARDS: dict[str, object] = {}  # a page's session key -> the token of its board stream (the newest wins)

