"""How a page of a class looks in an experiment: the teacher's, a watcher's (who may join) and a student's.

Each function gives the component updates that turn a page into that view (its load, a join, the teacher's
Open): a student's sidebar shows the teacher's settings read-only and the free ones to change, with Train and
Stop, Pause, Resume and Step; what trains a lesson, shares, saves or changes a run while it trains is hidden.
"""
from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

import gradio as gr

from demo import form
from demo.languages import either, in_language
from charrnn.experiments import Experiment, ExperimentError
from charrnn.sessions import Session

if TYPE_CHECKING:
    from demo.layout import Page

FORM_FREE = {"lr": ("lr",), "clip": ("clip", "theta"), "model": ("model",), "sampling": ("sampling",),
             "num_hiddens": ("num_hiddens",), "optimizer": ("optimizer",)}  # a free setting's fields on the form
FORM_SAMPLES = ("pred_len", "pred_period", "decoding", "temperature", "top_k")  # how samples are written: free
FREE_WORDS = {"lr": "学习率 · learning rate", "clip": "梯度裁剪和 θ · clipping and θ",
              "model": "模型 · model", "sampling": "采样 · sampling", "num_hiddens": "隐藏单元 · hidden units",
              "optimizer": "优化器 · optimizer"}


def teacher_form(experiment: Experiment) -> dict[str, Any]:
    """The form that trains the experiment's fixed settings (never ``fast``: on a GPU a class's runs train as one
    computation, which a CUDA graph of one run's step would leave)."""
    return {**form.config_to_form(experiment.fixed), "epochs": experiment.epochs, "resume": False,
            "corpus_file": None, "fast": False}


def free_names(experiment: Experiment) -> set[str]:
    """The form's settings a student may change: the free ones, and how the samples are written."""
    return {n for f in experiment.free for n in FORM_FREE[f.name]} | set(FORM_SAMPLES)


def _same(a: Any, b: Any) -> bool:
    """Two form values alike (the page sends numbers as text or floats: "100", 100.0 and 100 are the same)."""
    if a == b:
        return True
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)
    except (TypeError, ValueError):
        return str(a).strip() == str(b).strip()


def student_values(session: Session, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """A student's Train: their free settings as sent, the teacher's value of every other. A fixed setting sent
    with a value other than the teacher's (and other than the form's default: an API call sends every default)
    is refused, by name. A page that is no student's is left as it is."""
    experiment = session.membership.joined
    if experiment is None:
        return values, {}
    teacher, free, out, problems = teacher_form(experiment), free_names(experiment), dict(values), {}
    for name in form.NAMES:
        if name in free or name not in teacher:
            continue
        sent = values.get(name)
        if sent in (None, "") or _same(sent, teacher[name]) or _same(sent, form.DEFAULTS.get(name)):
            out[name] = teacher[name]
        else:
            problems[name] = (f"老师在这个实验里把它定为 {teacher[name]!r} · the teacher fixed it at "
                              f"{teacher[name]!r} for this experiment")
    return out, problems


def student_problems(session: Session, checked: form.Checked) -> form.Checked:
    """A checked press of a student, with what the experiment refuses: the student (removed, or the experiment
    ended), or a free value outside the teacher's range, by the form's name, so that it shows next to it."""
    experiment = session.membership.joined
    if experiment is None:
        return checked
    try:  # removed, or the experiment has ended: said beside Train and in the status line
        experiment.check_student(session.key)
    except ExperimentError as e:
        return form.Checked(problems={"experiment": str(e)})
    if not checked.ok:
        return checked
    problems = {("theta" if k == "clip_theta" else k): v for k, v in experiment.problems(checked.config).items()}
    return form.Checked(problems=problems) if problems else checked


def allowed_text(experiment: Experiment, lang: str) -> str:
    """What a student may change, with the teacher's ranges or choices."""
    parts = []
    for f in experiment.free:
        word = in_language(FREE_WORDS[f.name], lang)
        if f.scale == "choice":
            parts.append(f"{word}: {', '.join(f.choices)}")
        else:
            extra = in_language(" 或不裁剪 · or off", lang) if f.name == "clip" else ""
            parts.append(f"{word} {f.low:g}–{f.high:g}{extra}")
    return ("；" if lang == "zh" else "; ").join(parts)


def board_parts(page: Page) -> list[Any]:
    """Every component the views change (the outputs of a join and of the page's load)."""
    b, play = page.board, page.run.bar.play
    return [page.sidebar.box, *page.sidebar.settings.values(), page.sidebar.presets_box, page.sidebar.copy_link,
            page.run.bar.train, page.run.bar.stop, play.pause, play.resume, play.step, page.lessons.row,
            page.classroom.box, page.checkpoints.box, page.gpu.box, page.run.live.box, page.run.compare, page.banner,
            b.box, b.join_row, b.teacher_row, b.join_note, b.timer, b.end]


def teacher_view(page: Page, experiment: Experiment | None = None) -> dict[Any, Any]:
    """The teacher's page: the board with its row of actions (End pressable until the experiment has ended)."""
    b = page.board
    return {b.box: gr.update(visible=True), b.teacher_row: gr.update(visible=True),
            b.join_row: gr.update(visible=False),
            b.end: gr.update(interactive=experiment is None or not experiment.ended)}


def watcher_view(page: Page, experiment: Experiment | None) -> dict[Any, Any]:
    """A watcher's page: the board and its join row once the class runs an experiment (until then the board's
    timer looks for one)."""
    b, going = page.board, experiment is not None and not experiment.ended
    return {b.box: gr.update(visible=experiment is not None), b.join_row: gr.update(visible=going),
            b.teacher_row: gr.update(visible=False), b.timer: gr.Timer(active=experiment is None)}


def student_view(page: Page, experiment: Experiment, nickname: str, lang: str, sidebar_open: bool = True
                 ) -> dict[Any, Any]:
    """A student's page: the teacher's settings read-only, the free ones to change (a choice narrowed to the
    teacher's), Train and the instrument's buttons; the board without its join row."""
    teacher, free = teacher_form(experiment), free_names(experiment)
    choices = {f.name: f.choices for f in experiment.free if f.choices}
    out: dict[Any, Any] = {page.sidebar.box: gr.update(visible=True, open=sidebar_open)}
    for name, component in page.sidebar.settings.items():
        if name == "corpus_file":
            out[component] = gr.update(visible=False)
        elif name in free:
            extra = {}
            if name in choices:
                extra["choices"] = [c for c in form.choice_labels(form.BY_NAME[name], lang) if c[1] in choices[name]]
            out[component] = gr.update(value=teacher[name], interactive=True, **extra)
        else:
            out[component] = gr.update(value=teacher[name], interactive=False)
    play = page.run.bar.play
    out.update({c: gr.update(visible=True) for c in (page.run.bar.train, page.run.bar.stop, play.pause, play.resume,
                                                     play.step)})
    out.update({c: gr.update(visible=False) for c in (page.lessons.row, page.classroom.box, page.checkpoints.box,
                                                      page.gpu.box, page.run.live.box, page.run.compare,
                                                      page.sidebar.presets_box, page.sidebar.copy_link)})
    b = page.board
    out.update({b.box: gr.update(visible=True), b.join_row: gr.update(visible=False),
                b.teacher_row: gr.update(visible=False), b.timer: gr.Timer(active=False)})
    out[page.banner] = gr.update(visible=True, value=student_banner(experiment, nickname, lang))
    return out


def student_banner(experiment: Experiment, nickname: str, lang: str) -> str:
    """A student's banner: who they are in which class, what they may change (the teacher's ranges)."""
    name, code = html.escape(nickname), experiment.code
    zh = (f"🙋 **你是班级 {code} 实验里的“{name}”** — 你可以改：{html.escape(allowed_text(experiment, 'zh'))}；"
          "其余设置由老师决定。然后点“训练”。")
    en = (f"🙋 **You are “{name}” in the experiment of class {code}** — you may change: "
          f"{html.escape(allowed_text(experiment, 'en'))}; the rest is the teacher's. Then press Train.")
    return either(zh, en, lang, "  \n")
