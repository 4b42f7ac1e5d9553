"""The class experiment's components (no event wiring here: ``demo.app``; the handlers: ``demo.experiment``).

``setup`` is the teacher's form, inside the share panel: the question, the settings students may change with
their ranges or choices, the epochs. ``board`` is the class's view, above the page's own charts: the question,
the join row (a watcher's page), the class chart and the results side by side, the table, and the teacher's
row (highlight, remove, older runs, end, export).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import gradio as gr
from gradio.components.plot import PlotData

from demo import class_chart
from demo import form
from demo import growth
from demo import render
from demo.languages import LANGS, Texts, in_language
from charrnn.config import CHOICES

FREE_LABELS = (("学习率 · learning rate", "lr"), ("梯度裁剪和 θ · clipping and θ", "clip"),
               ("模型 · model", "model"), ("采样 · sampling", "sampling"), ("隐藏单元 · hidden units", "num_hiddens"),
               ("优化器 · optimizer", "optimizer"))
QUESTION = "哪个学习率在 {n} 个周期里训练得最好？ · Which learning rate trains best in {n} epochs?"
DEFAULT_QUESTION = QUESTION.format(n=60)


def question_for(question: str, epochs: Any) -> Any:
    """The question after the epochs changed: the default question (in any of the page's languages) says the new
    number; a question of the teacher's own stays as it is."""
    try:
        n = int(epochs)
    except (TypeError, ValueError):
        return gr.skip()
    for lang in LANGS:
        pattern = re.escape(in_language(QUESTION, lang)).replace(re.escape("{n}"), r"\d+")
        if re.fullmatch(pattern, (question or "").strip()):
            return in_language(QUESTION.format(n=n), lang)
    return gr.skip()
OLDER = (("灰色 · grey", "grey"), ("隐藏 · hidden", "hidden"))  # the students' older runs on the class chart
CLASS_PLOT = "class-plot"  # the class chart's element: the key of its points (growth.charts_js)
Component = gr.components.Component


@dataclass
class Setup:
    """The teacher's form of an experiment."""
    question: gr.Textbox
    free: gr.CheckboxGroup
    lr: tuple[gr.Number, gr.Number]          # the students' range, low and high
    theta: tuple[gr.Number, gr.Number]
    hidden: tuple[gr.Number, gr.Number]
    models: gr.CheckboxGroup                  # the choices students have, where the setting is a choice
    samplings: gr.CheckboxGroup
    optimizers: gr.CheckboxGroup
    epochs: gr.Number
    open: gr.Button
    note: gr.Markdown
    boxes: tuple[gr.Row, gr.Row, gr.Row]      # the rows of lr's, θ's and the hidden units' ranges

    @property
    def shown(self) -> list[Component]:
        """What ``ranges_shown`` shows or hides."""
        return [*self.boxes, self.models, self.samplings, self.optimizers]

    @property
    def inputs(self) -> dict[str, Component]:
        return {"question": self.question, "free": self.free, "lr_low": self.lr[0], "lr_high": self.lr[1],
                "theta_low": self.theta[0], "theta_high": self.theta[1], "hidden_low": self.hidden[0],
                "hidden_high": self.hidden[1], "models": self.models, "samplings": self.samplings,
                "optimizers": self.optimizers, "experiment_epochs": self.epochs}


@dataclass
class Board:
    """The class's view of the experiment, on every screen of the class."""
    box: gr.Column
    title: gr.Markdown
    join_row: gr.Row
    nickname: gr.Textbox
    join: gr.Button
    join_note: gr.Markdown
    chart: gr.Plot
    results: gr.Plot
    table: gr.HTML
    points: gr.HTML                           # the points the class chart grew by (growth.charts_js adds them)
    teacher_row: gr.Column
    pick: gr.Dropdown                         # a student, for highlight and remove
    highlight: gr.Button
    remove: gr.Button
    older: gr.Radio
    end: gr.Button
    export_format: gr.Radio
    export: gr.Button
    file: gr.File
    note: gr.Markdown                         # what the teacher's buttons did, or why not
    timer: gr.Timer                           # a watcher's page: looks for the class's experiment until there is one

    @property
    def outputs(self) -> list[Component]:
        """What the class's stream updates (``demo.experiment.class_outputs``)."""
        return [self.title, self.chart, self.results, self.table, self.points]


def ranges_shown(free: list[str] | None) -> list[Any]:
    """The ranges and choices of the settings ticked as free, shown; the others hidden."""
    ticked = set(free or [])
    return [gr.update(visible=name in ticked) for name in ("lr", "clip", "num_hiddens", "model", "sampling",
                                                           "optimizer")]


def setup(tr: Texts) -> Setup:
    """Inside the share panel: the teacher's form (the fixed settings are the sidebar's)."""
    tr(gr.Markdown(t := "### 全班实验 · A class experiment"), t)
    tr(gr.Markdown(t := "学生们各自选一个值训练，投影上显示所有人的曲线 · Each student trains their own value; the "
                        "projector shows every curve"), t)
    question = tr(tr(gr.Textbox(DEFAULT_QUESTION, label=(t := "问题 · the question"), max_length=200,
                                elem_id="exp-question"), t, "label"), DEFAULT_QUESTION)  # one language, as the page
    t = "学生可以改的设置（第一项决定颜色） · what students may change (the first one colours the curves)"
    free = tr(tr(gr.CheckboxGroup(list(FREE_LABELS), value=["lr"], label=t, elem_id="exp-free"), t, "label"),
              list(FREE_LABELS), "choices")
    # each free setting's range or choices, shown while it is ticked (``ranges_shown``)
    with gr.Row(elem_id="exp-ranges"):
        with gr.Row(visible=True) as lr_box:
            lr = (gr.Number(0.1, label="lr ≥", min_width=80), gr.Number(1000.0, label="lr ≤", min_width=80))
        with gr.Row(visible=False) as theta_box:
            theta = (gr.Number(0.001, label="θ ≥", min_width=80), gr.Number(10.0, label="θ ≤", min_width=80))
        with gr.Row(visible=False) as hidden_box:
            hidden = (gr.Number(16, label="h ≥", precision=0, min_width=80),
                      gr.Number(512, label="h ≤", precision=0, min_width=80))
    with gr.Row():
        models, samplings, optimizers = (
            tr(tr(gr.CheckboxGroup(form.choice_labels(form.BY_NAME[name], "both"), value=list(CHOICES[name]),
                                   label=form.BY_NAME[name].label, visible=False, elem_id=f"exp-{name}"),
                  form.BY_NAME[name].label, "label"), form.choice_labels(form.BY_NAME[name], "both"), "choices")
            for name in ("model", "sampling", "optimizer"))
    epochs = tr(gr.Number(60, label=(t := "每次训练的周期数 · epochs per run"), precision=0, minimum=1,
                          maximum=form.BY_NAME["epochs"].high, elem_id="exp-epochs"), t, "label")
    opened = tr(gr.Button(t := "🧪 开始实验 · Open the experiment", variant="primary", elem_id="exp-open"), t)
    note = gr.Markdown("", elem_id="exp-note")
    return Setup(question, free, lr, theta, hidden, models, samplings, optimizers, epochs, opened, note,
                 (lr_box, theta_box, hidden_box))


def board(tr: Texts) -> Board:
    """The class's view (hidden until the page is part of an experiment)."""
    with gr.Column(visible=False, elem_id="class-board") as box:
        title = gr.Markdown("", elem_id="class-title")
        with gr.Row(visible=False, elem_id="join-row") as join_row:
            nickname = tr(tr(gr.Textbox(label=(t := "昵称 · nickname"), max_length=40, scale=2, elem_id="nickname",
                                        placeholder=(p := "1-20 个字符 · 1-20 characters")), t, "label"),
                          p, "placeholder")
            join = tr(gr.Button(t := "🙋 加入实验 · Join the experiment", variant="primary", scale=1,
                                elem_id="join"), t)
        join_note = gr.Markdown("", elem_id="join-note")
        empty = class_chart.class_figure([], [], "")
        with gr.Row(elem_id="class-charts"):
            chart = gr.Plot(PlotData(**render.chart(empty)), show_label=False, elem_id=CLASS_PLOT, scale=3)
            results = gr.Plot(PlotData(**render.chart(class_chart.results_figure([], []))), show_label=False,
                              elem_id="class-results", scale=2)
        table = gr.HTML("", elem_id="class-table")
        points = gr.HTML({}, html_template="", js_on_load=growth.charts_js((CLASS_PLOT,)), elem_id="class-points")
        with gr.Column(visible=False, elem_id="class-teacher") as teacher_row:
            with gr.Row(elem_classes="class-actions"):
                pick = tr(gr.Dropdown([], value=None, label=(t := "学生 · student"), allow_custom_value=False,
                                      scale=2, elem_id="class-pick"), t, "label")
                highlight = tr(gr.Button(t := "✨ 突出显示 · Highlight", scale=1, elem_id="class-highlight"), t)
                remove = tr(gr.Button(t := "✕ 移出 · Remove", variant="stop", scale=1, elem_id="class-remove"), t)
                older = tr(tr(gr.Radio(OLDER, value="grey", label=(t := "以前的训练 · older runs"), scale=2,
                                       elem_id="class-older"), t, "label"), list(OLDER), "choices")
            with gr.Row(elem_classes="class-actions"):
                end = tr(gr.Button(t := "■ 结束实验 · End the experiment", variant="stop", elem_id="class-end"), t)
                export_format = gr.Radio([("CSV", "csv"), ("HTML", "html")], value="csv", show_label=False,
                                         elem_id="class-export-format")
                export = tr(gr.Button(t := "⬇ 导出结果 · Export the results", elem_id="class-export"), t)
            file = tr(gr.File(label=(t := "下载 · download"), interactive=False, visible=False,
                              elem_id="class-file"), t, "label")  # on a line of its own: its name whole
        note = gr.Markdown("", elem_id="class-note")
    timer = gr.Timer(3.0, active=False)
    return Board(box, title, join_row, nickname, join, join_note, chart, results, table, points, teacher_row, pick,
                 highlight, remove, older, end, export_format, export, file, note, timer)

