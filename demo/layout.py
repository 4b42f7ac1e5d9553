"""The page's components, panel by panel, built from the settings table (no event wiring here: ``demo.app``).

``build`` lays out the page and returns a ``Page``: one dataclass per panel (the sidebar's settings and
Train, the lessons, the run's charts and lyrics, writing, inside the model, the class, checkpoints, the
GPU trial), each holding the components its handlers read or write.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gradio as gr
from gradio.components.plot import PlotData

from demo import charts
from demo import controls
from demo import experiment_panel
from demo import growth
from demo import form
from demo import setting_widgets
from demo import render
from demo.languages import LANGS, Texts, shown
from demo.lessons import LESSONS

# The next-character bars send the clicked bar's character (render.next_chars_html); delegated, so it outlives
# the bars being redrawn. Typing in their prefix asks for new bars once it pauses for NEXT_TYPING_MS (a submit
# of the bars: one request per pause, not one per key); the listener is the document's, replaced if the bars
# mount again.
NEXT_TYPING_MS = 300
NEXT_JS = ("element.addEventListener('click', (e) => { const b = e.target.closest('.next-bar'); "
           "if (b) trigger('click', {char: b.dataset.char}); });"
           "let wait = null; const typed = (e) => { "
           "if (!e.target.closest || !e.target.closest('#next-prefix')) return; "
           f"clearTimeout(wait); wait = setTimeout(() => trigger('submit'), {NEXT_TYPING_MS}); }};"
           "if (window.charrnnTyped) document.removeEventListener('input', window.charrnnTyped);"
           "window.charrnnTyped = typed; document.addEventListener('input', typed);")


Component = gr.components.Component


@dataclass
class Sidebar:
    """The settings and the buttons that train them (folded away on a projector)."""
    box: gr.Sidebar
    presets: list[tuple[gr.Button, str]]   # (button, preset name)
    train: gr.Button
    stop: gr.Button
    note: gr.Markdown                      # why a Train started nothing
    restart: gr.Button                     # stop the run and train the new settings
    clock: gr.Number                       # the browser's time of a press (set by js)
    hints: gr.Checkbox                     # show what each setting does (off: the labels only)
    more: gr.Accordion                     # "more settings": those past the chapter's four choices
    settings: dict[str, Component]         # by setting name, in the order of form.NAMES (decoding's: in Write)
    copy_link: gr.Button
    link: gr.Textbox
    presets_box: gr.Column                 # the chapter's setups: their heading and buttons


@dataclass
class Lessons:
    row: gr.Row
    buttons: list[tuple[gr.Button, str]]   # (button, lesson key)
    note: gr.Markdown                      # why a lesson's press started nothing, beside its buttons
    restart: gr.Button                     # stop the run and start the lesson pressed


@dataclass
class RunBar:
    """Train and Stop beside the status line, shown while the sidebar is folded (a projector, a phone): the same
    events as the sidebar's, with their own note and restart button, where they can be seen."""
    train: gr.Button
    stop: gr.Button
    note: gr.Markdown
    restart: gr.Button
    play: controls.Play                    # Pause, Resume, Step (always shown)


@dataclass
class RunPanel:
    """What a render of the session's runs fills: status, charts, newest lyrics, history, progress; and the
    Train and Stop beside the status line."""
    bar: RunBar
    status: gr.Markdown
    ppl_plot: gr.Plot
    grad_plot: gr.Plot
    latest: gr.HTML
    history: gr.Textbox
    compare: gr.Accordion                  # compare runs: which the charts show, and Clear
    shown: gr.CheckboxGroup                # a box per run, ticked when the charts show it
    compare_timer: gr.Timer                # active while the list is open: it follows the runs as they come
    clear: gr.Button
    progress: gr.JSON                      # for API clients; hidden on the page
    points: gr.HTML                        # the points the charts grew by (growth.CHARTS_JS adds them)
    live: controls.Live                    # beside the charts: what changes while it trains, and Continue
    exports: controls.Exports

    @property
    def outputs(self) -> list[Component]:
        """In the order of ``renders.outputs``."""
        return [self.status, self.ppl_plot, self.grad_plot, self.latest, self.history, self.progress, self.points]


@dataclass
class WritePanel:
    prefix: gr.Textbox
    length: gr.Number
    decoding: gr.Radio
    temperature: gr.Slider
    top_k: gr.Number
    seed: gr.Number
    write: gr.Button
    written: gr.Textbox
    note: gr.Markdown

    @property
    def inputs(self) -> list[Component]:
        return [self.prefix, self.length, self.decoding, self.temperature, self.top_k, self.seed]


@dataclass
class InsidePanel:
    """Inside the model: the next-character bars (n_), hidden units (h_), gradients through time (g_)."""
    box: gr.Accordion
    n_tab: gr.Tab
    n_prefix: gr.Textbox
    n_temperature: gr.Slider
    n_bars: gr.HTML                        # a submit: the prefix was typed and paused (NEXT_JS)
    n_note: gr.Markdown
    n_timer: gr.Timer                      # active while the panel is open: the bars follow the training model
    h_tab: gr.Tab
    h_text: gr.Textbox
    h_unit: gr.Number
    h_which: gr.Radio
    h_show: gr.Button
    h_plot: gr.Plot
    h_unit_text: gr.HTML
    h_note: gr.Markdown
    g_tab: gr.Tab
    g_plot: gr.Plot
    g_note: gr.Markdown
    g_refresh: gr.Button
    g_timer: gr.Timer                      # active while the tab is shown: the curve follows the run


@dataclass
class ClassPanel:
    box: gr.Accordion
    share: gr.Button
    panel: gr.HTML                         # the class code, the link and its QR code
    setup: experiment_panel.Setup          # the teacher's form of a class experiment


@dataclass
class CheckpointsPanel:
    box: gr.Accordion
    save: gr.Button
    saved_file: gr.File
    save_note: gr.Markdown
    upload: gr.File
    upload_note: gr.Markdown


@dataclass
class GpuPanel:
    box: gr.Accordion
    run: gr.Button
    note: gr.Markdown


@dataclass
class Page:
    """Every component a handler reads or writes, panel by panel (``page.sidebar.train``,
    ``page.sidebar.settings["lr"]``, ``page.run.outputs``...)."""
    banner: gr.Markdown                    # a watcher's class, or what a link got wrong
    sidebar: Sidebar
    lessons: Lessons
    board: experiment_panel.Board          # the class's experiment: its chart, results and table
    run: RunPanel
    write: WritePanel
    inside: InsidePanel
    classroom: ClassPanel
    checkpoints: CheckpointsPanel
    gpu: GpuPanel
    key: gr.BrowserState                   # finds this browser's session after a reload
    screen: gr.JSON                        # the browser's window, {"width", "height"} (demo.screens.SIZE_JS)
    texts: Texts = field(default_factory=Texts)

    def in_language(self, lang: str) -> dict[Any, Any]:
        """Updates that show every text of the page in ``lang`` (zh or en; "both" changes nothing)."""
        if lang == "both":
            return {}
        attrs: dict[Any, dict[str, Any]] = {}
        for component, attr, text in self.texts:
            attrs.setdefault(component, {})[attr] = shown(text, lang)
        out: dict[Any, Any] = {component: gr.update(**kw) for component, kw in attrs.items()}
        for name, component in self.sidebar.settings.items():
            s = form.BY_NAME[name]
            label, hint = s.text(lang)
            extra = {"choices": form.choice_labels(s, lang)} if s.kind == "choice" else {}
            out[component] = gr.update(label=label, **extra)
        return out

    def hint_updates(self, show: bool, lang: str) -> dict[Any, Any]:
        """Every setting's hint shown (in ``lang``) or hidden: the sidebar is the labels only until asked."""
        return {component: gr.update(info=form.BY_NAME[name].text(lang)[1] if show else None)
                for name, component in self.sidebar.settings.items() if form.BY_NAME[name].kind != "file"}

    @property
    def teacher_only(self) -> list[Component]:
        """What a watcher's page hides: everything that trains, saves or shares."""
        play = self.run.bar.play
        return [self.sidebar.box, self.lessons.row, self.run.bar.train, self.run.bar.stop, self.run.compare,
                play.pause, play.resume, play.step, self.run.live.box,
                self.classroom.box, self.checkpoints.box, self.gpu.box]


def build(header: dict[str, str], gpu: bool = False) -> Page:
    """Lay out the page inside the current ``gr.Blocks``: settings and Train in a sidebar (folded away on a
    projector), the lessons, the charts and lyrics in the middle, then writing, inside the model, sharing,
    checkpoints and the GPU trial. ``header``: the page's title and introduction in each language (both, zh, en)."""
    tr = Texts()
    tr(gr.Markdown(header["both"], elem_id="header"), header)
    banner = gr.Markdown("", visible=False, elem_id="banner")
    side = sidebar(tr)
    return Page(banner=banner, sidebar=side, lessons=lessons(tr), board=experiment_panel.board(tr), run=run_panel(tr),
                write=write_panel(tr, side.settings), inside=inside_panel(tr), classroom=class_panel(tr),
                checkpoints=checkpoints_panel(tr), gpu=gpu_panel(tr, gpu),
                key=gr.BrowserState("", storage_key="charrnn-session"), screen=gr.JSON(None, visible=False), texts=tr)


def sidebar(tr: Texts) -> Sidebar:
    """Train and Stop, the chapter's four choices, the chapter's setups, then the rest folded away."""
    with tr(gr.Sidebar(label=(t := "设置 · Settings"), open=True, width=420, elem_id="settings-sidebar"),
            t, "label") as box:
        with gr.Row():
            train = tr(gr.Button(t := "▶ 训练 · Train", variant="primary"), t)
            stop = tr(gr.Button(t := "■ 停止 · Stop", variant="stop"), t)
        note = gr.Markdown("", elem_id="train-note")
        restart = tr(gr.Button(t := "■▶ 停止并开始新的训练 · Stop it and train the new settings", visible=False,
                               variant="primary", size="sm"), t)
        clock = gr.Number(None, visible=False)
        out: dict[str, Component] = {}
        setting_widgets.first_settings(out)
        hints = tr(gr.Checkbox(False, label=(t := "显示各项说明 · show what each setting does"), elem_id="hints"),
                   t, "label")
        with gr.Column(elem_id="presets") as presets_box:  # hidden on a student's page: the teacher set them
            tr(gr.Markdown(t := "**书中的设置 · The chapter's setups**"), t)
            presets = [(tr(gr.Button(text, size="sm", variant="secondary"), text), name)
                       for text, name in setting_widgets.PRESET_BUTTONS]
        with tr(gr.Accordion(t := setting_widgets.MORE_LABEL, open=False, elem_id="more-settings"),
                t, "label") as more:
            setting_widgets.more_settings(out)
        copy_link = tr(gr.Button(t := "🔗 复制链接 · Copy link", size="sm"), t)
        link = tr(gr.Textbox(label=(t := "带设置的链接 · a link with these settings"), visible=False, buttons=["copy"],
                             elem_id="link"), t, "label")
    settings = {name: out[name] for name in form.NAMES}
    return Sidebar(box, presets, train, stop, note, restart, clock, hints, more, settings, copy_link, link,
                   presets_box)


def lessons(tr: Texts) -> Lessons:
    with gr.Row(elem_id="lessons") as row:
        tr(gr.Markdown(t := "**课程 · Lessons**", elem_classes=["lessons-title"]), t)
        buttons = [(tr(gr.Button(lesson.button, size="sm"), lesson.button), key) for key, lesson in LESSONS.items()]
        note = gr.Markdown("", elem_id="lesson-note")
        restart = gr.Button("", visible=False, variant="primary", size="sm", elem_id="lesson-restart")
    return Lessons(row, buttons, note, restart)


def run_panel(tr: Texts) -> RunPanel:
    # Train and Stop beside the status line: styles.CSS shows them only while the sidebar is folded
    with gr.Row(elem_id="run-bar"):
        train = tr(gr.Button(t := "▶ 训练 · Train", variant="primary", scale=0, elem_classes=["run-button"]), t)
        stop = tr(gr.Button(t := "■ 停止 · Stop", variant="stop", scale=0, elem_classes=["run-button"]), t)
        play = controls.play_buttons(tr)
        status = gr.Markdown(render.status_line(None), elem_id="status")
        note = gr.Markdown("", elem_id="bar-note")
        restart = tr(gr.Button(t := "■▶ 停止并开始新的训练 · Stop it and train the new settings", visible=False,
                               variant="primary", size="sm", scale=0, elem_id="bar-restart"), t)
    with gr.Row():
        # a gr.Plot's first value is a PlotData: render.chart's payload, as every update sends it
        empty = [PlotData(**render.chart(f)) for f in charts.figures([])]
        ppl_plot = tr(gr.Plot(empty[0], label=(t := "困惑度 · perplexity"), show_label=False, elem_id="ppl-plot"),
                      t, "label")
        grad_plot = tr(gr.Plot(empty[1], label=(t := "梯度范数 · gradient norm"), show_label=False,
                               elem_id="grad-plot"), t, "label")
    points = gr.HTML({}, html_template="", js_on_load=growth.CHARTS_JS, elem_id="chart-points")
    live = controls.live_panel(tr)
    tr(gr.Markdown(t := "### 最新歌词 · Newest lyrics", elem_id="latest-head"), t)
    latest = tr(gr.HTML(render.latest_samples(None), elem_id="latest"),
                {lang: render.latest_samples(None, lang) for lang in LANGS})
    with tr(gr.Accordion(t := "历史 · Samples by epoch (the chapter's printout)", open=False), t, "label"):
        history = tr(gr.Textbox(lines=10, max_lines=30, label=(t := "各周期的歌词 · samples by epoch"),
                                show_label=False, elem_id="history", buttons=["copy"]), t, "label")
    with tr(gr.Accordion(t := "比较各次训练 · Compare runs", open=False), t, "label") as compare:
        shown = tr(gr.CheckboxGroup([], label=(t := "图上显示的训练（点图例也能隐藏一条曲线） · the runs on the charts "
                                                 "(a click on a legend entry hides a curve too)"),
                                    elem_id="compare-runs"), t, "label")
        clear = tr(gr.Button(t := "清除历史 · Clear history", size="sm"), t)
        timer = gr.Timer(2.0, active=False)
    exports = controls.exports_panel(tr)
    return RunPanel(RunBar(train, stop, note, restart, play), status, ppl_plot, grad_plot, latest, history, compare,
                    shown, timer, clear, progress=gr.JSON(visible=False), points=points, live=live, exports=exports)


def write_panel(tr: Texts, settings: dict[str, Component]) -> WritePanel:
    """Writing with the model; the samples' decoding settings sit here, one set for Write and the samples."""
    with tr(gr.Accordion(t := "用模型写作 · Write with the model", open=True), t, "label"):
        with gr.Row():
            prefix = tr(gr.Textbox("分开", label=(t := "前缀 · prefix"), scale=2, elem_id="write-prefix"), t, "label")
            # numbers keep what was typed, as the settings do: 0.5 is refused (demo.writing.RULES), not rounded
            length = tr(gr.Number(100, step=1, label=(t := "长度 · length"), scale=1), t, "label")
            seed = tr(gr.Number(0, step=1, label=(t := "种子 · seed (0 = random)"), scale=1), t, "label")
        tr(gr.Markdown(t := "解码：用于“写”，也用于训练时的样本 · Decoding: for Write, and for the samples while "
                            "training", elem_id="decoding-head"), t)
        setting_widgets.render_decoding(settings)
        write = tr(gr.Button(t := "写 · Write", variant="primary"), t)
        written = tr(gr.Textbox(label=(t := "模型写的 · written"), lines=4, elem_id="written", interactive=False),
                     t, "label")
        note = gr.Markdown("", elem_id="write-note")
    decoding, temperature, top_k = (settings[name] for name in setting_widgets.DECODING)
    return WritePanel(prefix, length, decoding, temperature, top_k, seed, write, written, note)


def inside_panel(tr: Texts) -> InsidePanel:
    with tr(gr.Accordion(t := "🔬 模型内部 · Inside the model", open=False), t, "label") as box:
        with gr.Tabs():
            with tr(gr.Tab(t := "下一个字 · Next character"), t, "label") as n_tab:
                with gr.Row():
                    n_prefix = tr(gr.Textbox("分开", label=(t := "前缀 · prefix (click a bar to write it)"), scale=3,
                                             elem_id="next-prefix"), t, "label")
                    n_temperature = tr(gr.Slider(0.0, 3.0, value=1.0, step=0.05, label=(t := "温度 · temperature"),
                                                 scale=2), t, "label")
                n_bars = tr(gr.HTML(render.next_chars_html(None), js_on_load=NEXT_JS, elem_id="next-chars"),
                            {lang: render.next_chars_html(None, lang) for lang in LANGS})
                n_note = gr.Markdown("", elem_id="next-note")
                n_timer = gr.Timer(1.0, active=False)
            with tr(gr.Tab(t := "隐藏单元 · Hidden units"), t, "label") as h_tab:
                h_text = tr(gr.Textbox("", lines=3, label=(t := "一段文字（空：训练文本的开头） · a passage (empty: "
                                                                "the start of the training text)")), t, "label")
                with gr.Row():
                    h_unit = tr(gr.Number(-1, step=1, label=(t := "单元 · unit (−1: the most active)")),
                                t, "label")
                    states = [("隐状态 H · hidden state H", "hidden"), ("记忆细胞 C · memory cell C (LSTM)", "cell")]
                    h_which = tr(tr(gr.Radio(states, value="hidden", label=(t := "看什么 · show")), t, "label"),
                                 states, "choices")
                    h_show = tr(gr.Button(t := "看一看 · Show", variant="primary"), t)
                h_plot = gr.Plot(show_label=False, elem_id="hidden-plot")
                h_unit_text = gr.HTML("", elem_id="unit-text")
                h_note = gr.Markdown("")
            with tr(gr.Tab(t := "梯度随时间 · Gradients through time"), t, "label") as g_tab:
                g_plot = gr.Plot(PlotData(**render.chart(render.gradients_figure([]))), show_label=False,
                                 elem_id="gtt-plot")
                with gr.Row():
                    g_note = gr.Markdown("")
                    g_refresh = tr(gr.Button(t := "刷新 · Refresh", size="sm", scale=0), t)
                g_timer = gr.Timer(2.0, active=False)
    return InsidePanel(box, n_tab, n_prefix, n_temperature, n_bars, n_note, n_timer, h_tab, h_text, h_unit, h_which,
                       h_show, h_plot, h_unit_text, h_note, g_tab, g_plot, g_note, g_refresh, g_timer)


def class_panel(tr: Texts) -> ClassPanel:
    with tr(gr.Accordion(t := "全班一起看 · Share with the class", open=False), t, "label") as box:
        share = tr(gr.Button(t := "📣 分享给全班 · Share with the class", variant="primary"), t)
        panel = gr.HTML("", elem_id="class-panel")
        setup = experiment_panel.setup(tr)
    return ClassPanel(box, share, panel, setup)


def checkpoints_panel(tr: Texts) -> CheckpointsPanel:
    with tr(gr.Accordion(t := "检查点 · Checkpoints", open=False), t, "label") as box:
        with gr.Row():
            save = tr(gr.Button(t := "保存当前模型 · Save the current model"), t)
            saved_file = tr(gr.File(label=(t := "下载 · download"), interactive=False, elem_id="saved-file"), t,
                            "label")
        save_note = gr.Markdown("", elem_id="save-note")
        upload = tr(gr.File(label=(t := "上传检查点 · upload a .safetensors checkpoint (max 64 MB)"),
                            file_types=[".safetensors"], type="filepath"), t, "label")
        upload_note = gr.Markdown("")
    return CheckpointsPanel(box, save, saved_file, save_note, upload, upload_note)


def gpu_panel(tr: Texts, gpu: bool) -> GpuPanel:
    """Shown only where the machine can lend the trial a GPU (``gpu``)."""
    with tr(gr.Accordion(t := "GPU 试验 · Try the GPU", open=False, visible=gpu), t, "label") as box:
        gr.Markdown("Train the current settings for a few epochs on the GPU and on the CPU, and compare "
                    "the time per epoch (on ZeroGPU this uses your daily GPU minutes) · "
                    "在 GPU 和 CPU 上各训练几个周期，比较速度")
        run = tr(gr.Button(t := "在 GPU 上试一试 · Run on the GPU"), t)
        note = gr.Markdown("")
    return GpuPanel(box, run, note)
