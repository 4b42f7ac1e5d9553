"""The page's components, built from the settings table and returned by name (no event wiring here)."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import gradio as gr
from gradio.components.plot import PlotData

from demo import form
from demo import render
from demo.languages import in_language
from demo.lessons import LESSONS

PRESET_BUTTONS = (("① 从零开始，随机采样 · scratch · random", "scratch-random"),
                  ("② 从零开始，相邻采样 · scratch · consecutive", "scratch-consecutive"),
                  ("③ 简洁实现 nn.RNN + Adam · concise nn.RNN + Adam", "concise"),
                  ("④ 门控循环单元 GRU，从零开始 · GRU from scratch (6.7)", "scratch-gru"),
                  ("⑤ 长短期记忆 LSTM，从零开始 · LSTM from scratch (6.8)", "scratch-lstm"))
# The next-character bars send the clicked bar's character (render.next_chars_html); delegated, so it outlives
# the bars being redrawn.
NEXT_JS = ("element.addEventListener('click', (e) => { const b = e.target.closest('.next-bar'); "
           "if (b) trigger('click', {char: b.dataset.char}); });")
# How the settings sit on the page: one tuple per row.
ROWS = (("corpus",), ("corpus_file",), ("max_chars",), ("model", "sampling"), ("optimizer", "num_layers"),
        ("lr", "epochs"), ("clip", "theta"), ("num_hiddens", "batch_size"), ("num_steps", "seed"), ("prefixes",),
        ("pred_len", "pred_period"), ("decoding",), ("temperature", "top_k"), ("resume",))
CSS = """
.sample {font-size: 1.3rem; line-height: 1.7; margin: .2rem 0 .6rem; font-family: 'Noto Sans CJK SC', sans-serif;}
.sample .prefix {color: #d62728; font-weight: 700; margin-right: .15rem;}
.sample .epoch {color: #999; font-size: .8rem; margin-left: .6rem;}
.sample .blank {color: #999; font-size: .9rem;}
.sample-empty {color: #888; font-style: italic;}
#status {font-size: 1.05rem;}
#train-note {color: #b45309;}
#banner {font-size: 1.15rem; padding: .4rem .8rem; background: #fff7e6; border-radius: 8px;}
#lessons {align-items: center; flex-wrap: wrap; gap: .4rem;}
#lessons button {flex: 0 1 auto; min-width: 0;}
.lessons-title {flex: 0 0 auto !important; min-width: 0 !important;}
.side-by-side {display: flex; gap: 1.5rem;} .side-by-side .column {flex: 1;}
.column-head {font-weight: 700; margin-bottom: .3rem;}
.class-share {display: flex; gap: 1.2rem; align-items: center;}
.class-code {font-size: 2.6rem; font-weight: 800; letter-spacing: .15rem; font-family: monospace;}
.class-share .hint {color: #666; font-size: .9rem; margin-top: .3rem;}
/* ?mode=present: a projector at the back of a room */
body.present footer {display: none !important;}
body.present .sample {font-size: 2.3rem; line-height: 1.5;}
body.present .sample .epoch {font-size: 1.1rem;}
body.present #status {font-size: 1.45rem;}
body.present #banner {font-size: 1.5rem;}
body.present #lessons button {font-size: 1.1rem;}
#history textarea, #written textarea {font-size: 1.05rem; line-height: 1.6;}
.next-bars {display: flex; flex-direction: column; gap: .25rem; max-width: 40rem;}
.next-bar {display: flex; align-items: center; gap: .6rem; padding: .15rem .4rem; border: 1px solid #e5e7eb;
           border-radius: 6px; background: white; cursor: pointer; font: inherit; text-align: left;}
.next-bar:hover {background: #eff6ff; border-color: #93c5fd;}
.next-bar .ch {width: 2.2rem; font-size: 1.5rem; text-align: center; font-family: 'Noto Sans CJK SC', sans-serif;}
.next-bar .ch.word {font-size: .85rem;}
.next-bar .track {flex: 1; height: 1.1rem; background: #f3f4f6; border-radius: 4px; overflow: hidden;}
.next-bar .fill {display: block; height: 100%; background: #1f77b4;}
.next-bar .p {width: 4rem; text-align: right; font-variant-numeric: tabular-nums;}
.next-empty {color: #888; font-style: italic;}
.unit-head {font-weight: 700; margin: .3rem 0;}
.unit-text {font-size: 1.3rem; line-height: 1.9; font-family: 'Noto Sans CJK SC', sans-serif;}
.unit-text span {padding: .05rem 0;}
body.present .next-bar .ch {font-size: 2.2rem;} body.present .unit-text {font-size: 2rem;}
"""


class Page(SimpleNamespace):
    """Every component a handler reads or writes, by name (``page.train``, ``page.settings["lr"]``...)."""

    @property
    def run_outputs(self) -> list[gr.components.Component]:
        """What a render of the session's runs fills (see ``renders.outputs``)."""
        return [self.status, self.ppl_plot, self.grad_plot, self.latest, self.history, self.progress]

    @property
    def write_inputs(self) -> list[gr.components.Component]:
        return [self.w_prefix, self.w_length, self.w_decoding, self.w_temperature, self.w_top_k, self.w_seed]

    def in_language(self, lang: str) -> dict[Any, Any]:
        """Updates that show every text of the page in ``lang`` (zh or en; "both" changes nothing)."""
        if lang == "both":
            return {}
        out: dict[Any, Any] = {component: gr.update(**{attr: in_language(text, lang)})
                               for component, attr, text in self.texts}
        for name, component in self.settings.items():
            s = form.BY_NAME[name]
            label, hint = s.text(lang)
            extra = {"choices": form.choice_labels(s, lang)} if s.kind == "choice" else {}
            out[component] = gr.update(label=label, **({} if s.kind == "file" else {"info": hint}), **extra)
        return out

    @property
    def teacher_only(self) -> list:
        """What a watcher's page hides: everything that trains, saves or shares."""
        return [self.sidebar, self.lessons_row, self.clear, self.class_box, self.checkpoints_box, self.gpu_box]


def setting_component(s: form.Setting) -> gr.components.Component:
    """The widget for one setting of the table."""
    label, hint = s.text("both")
    common: dict[str, Any] = dict(label=label, info=hint, elem_id=f"setting-{s.name}")
    if s.kind == "choice" and s.name == "corpus":
        return gr.Dropdown(list(s.choices), value=s.default, **common)
    if s.kind == "choice":
        return gr.Radio(list(s.choices), value=s.default, **common)
    if s.kind == "bool":
        return gr.Checkbox(s.default, **common)
    if s.kind == "text":
        return gr.Textbox(s.default, **common)
    if s.kind == "file":
        return gr.File(file_types=[".txt"], type="filepath", visible=False, label=s.label, elem_id=common["elem_id"])
    if s.kind == "slider":
        return gr.Slider(s.low, s.high, value=s.default, step=s.step, **common)
    # Numbers keep what was typed (no rounding), so 0.5 in a whole-number setting is refused, not rounded.
    return gr.Number(s.default, step=1 if s.kind == "int" else None, **common)


def settings_panel() -> dict[str, gr.components.Component]:
    out: dict[str, gr.components.Component] = {}
    for row in ROWS:
        if len(row) == 1:
            out[row[0]] = setting_component(form.BY_NAME[row[0]])
            continue
        with gr.Row():
            for name in row:
                out[name] = setting_component(form.BY_NAME[name])
    assert tuple(sorted(out)) == tuple(sorted(form.NAMES)), "every setting of the table is on the page"
    return {name: out[name] for name in form.NAMES}


def preset_values(name: str) -> list:
    """The settings of one of the chapter's setups, in the order of ``form.NAMES`` (others unchanged)."""
    values = form.preset_form(name)
    return [values.get(n, gr.skip()) for n in form.NAMES]


def build(header: str, gpu: bool = False) -> Page:
    """Lay out the page inside the current ``gr.Blocks``: settings and Train in a sidebar (folded away on a
    projector), the lessons, the charts and lyrics in the middle, then writing, sharing, checkpoints."""
    texts: list[tuple[Any, str, str]] = []  # (component, attribute, "中文 · English") for one-language pages

    def tr(component: Any, text: str, attr: str = "value") -> Any:
        texts.append((component, attr, text))
        return component

    gr.Markdown(header, elem_id="header")
    banner = gr.Markdown("", visible=False, elem_id="banner")  # a watcher's class, or what a link got wrong
    with tr(gr.Sidebar(label=(t := "设置 · Settings"), open=True, width=420, elem_id="settings-sidebar"),
            t, "label") as sidebar:
        tr(gr.Markdown(t := "**书中的三种设置 · The chapter's setups**"), t)
        presets = [(tr(gr.Button(text, size="sm", variant="secondary"), text), name) for text, name in PRESET_BUTTONS]
        with gr.Row():
            train = tr(gr.Button(t := "▶ 训练 · Train", variant="primary"), t)
            stop = tr(gr.Button(t := "■ 停止 · Stop", variant="stop"), t)
        train_note = gr.Markdown("", elem_id="train-note")
        restart = tr(gr.Button(t := "■▶ 停止并开始新的训练 · Stop it and train the new settings", visible=False,
                               variant="primary", size="sm"), t)
        clock = gr.Number(None, visible=False)
        settings = settings_panel()
        copy_link = tr(gr.Button(t := "🔗 复制链接 · Copy link", size="sm"), t)
        link = tr(gr.Textbox(label=(t := "带设置的链接 · a link with these settings"), visible=False, buttons=["copy"],
                             elem_id="link"), t, "label")
    with gr.Row(elem_id="lessons") as lessons_row:
        tr(gr.Markdown(t := "**课程 · Lessons**", elem_classes=["lessons-title"]), t)
        lessons = [(tr(gr.Button(lesson.button, size="sm"), lesson.button), key) for key, lesson in LESSONS.items()]
    status = gr.Markdown(render.status_line(None), elem_id="status")
    with gr.Row():
        # a gr.Plot's first value is a PlotData: render.chart's payload, as every update sends it
        empty = [PlotData(**render.chart(f)) for f in render.figures([])]
        ppl_plot = gr.Plot(empty[0], label="perplexity", show_label=False, elem_id="ppl-plot")
        grad_plot = gr.Plot(empty[1], label="gradient norm", show_label=False, elem_id="grad-plot")
    tr(gr.Markdown(t := "### 最新歌词 · Newest lyrics"), t)
    latest = gr.HTML(render.latest_samples(None), elem_id="latest")
    with tr(gr.Accordion(t := "历史 · Samples by epoch (the chapter's printout)", open=False), t, "label"):
        history = gr.Textbox(lines=10, max_lines=30, show_label=False, elem_id="history", buttons=["copy"])
    clear = tr(gr.Button(t := "清除历史 · Clear history", size="sm"), t)
    progress = gr.JSON(visible=False)
    with tr(gr.Accordion(t := "用模型写作 · Write with the model", open=True), t, "label"):
        with gr.Row():
            w_prefix = tr(gr.Textbox("分开", label=(t := "前缀 · prefix"), scale=2), t, "label")
            w_length = tr(gr.Number(100, precision=0, label=(t := "长度 · length"), scale=1), t, "label")
            w_decoding = gr.Radio([("贪心 · greedy", "greedy"), ("采样 · sample", "sample")],
                                  value="sample", label="解码 · decoding", scale=2)
        with gr.Row():
            w_temperature = tr(gr.Slider(0.05, 2.0, value=0.8, step=0.05, label=(t := "温度 · temperature")),
                               t, "label")
            w_top_k = gr.Number(0, precision=0, label="top-k (0 = all)")
            w_seed = tr(gr.Number(0, precision=0, label=(t := "种子 · seed (0 = random)")), t, "label")
        write = tr(gr.Button(t := "写 · Write", variant="primary"), t)
        written = tr(gr.Textbox(label=(t := "模型写的 · written"), lines=4, elem_id="written", interactive=False),
                     t, "label")
        write_note = gr.Markdown("")
    with tr(gr.Accordion(t := "🔬 模型内部 · Inside the model", open=False), t, "label") as inside_box:
        with gr.Tabs():
            with tr(gr.Tab(t := "下一个字 · Next character"), t, "label") as n_tab:
                with gr.Row():
                    n_prefix = tr(gr.Textbox("分开", label=(t := "前缀 · prefix (click a bar to write it)"), scale=3),
                                  t, "label")
                    n_temperature = tr(gr.Slider(0.0, 3.0, value=1.0, step=0.05, label=(t := "温度 · temperature"),
                                                 scale=2), t, "label")
                n_bars = gr.HTML(render.next_chars_html(None), js_on_load=NEXT_JS, elem_id="next-chars")
                n_note = gr.Markdown("")
            with tr(gr.Tab(t := "隐藏单元 · Hidden units"), t, "label") as h_tab:
                h_text = tr(gr.Textbox("", lines=3, label=(t := "一段文字（空：训练文本的开头）· a passage (empty: the "
                                                                "start of the training text)")), t, "label")
                with gr.Row():
                    h_unit = tr(gr.Number(-1, precision=0, label=(t := "单元 · unit (−1: the most active)")),
                                t, "label")
                    h_which = tr(gr.Radio([("隐状态 H · hidden state H", "hidden"),
                                           ("记忆细胞 C · memory cell C (LSTM)", "cell")], value="hidden",
                                          label=(t := "看什么 · show")), t, "label")
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
                g_timer = gr.Timer(2.0, active=False)  # while the tab is shown: the curve follows the run
    with tr(gr.Accordion(t := "全班一起看 · Share with the class", open=False), t, "label") as class_box:
        share = tr(gr.Button(t := "📣 分享给全班 · Share with the class", variant="primary"), t)
        class_panel = gr.HTML("", elem_id="class-panel")
    with tr(gr.Accordion(t := "检查点 · Checkpoints", open=False), t, "label") as checkpoints_box:
        with gr.Row():
            save = tr(gr.Button(t := "保存当前模型 · Save the current model"), t)
            saved_file = tr(gr.File(label=(t := "下载 · download"), interactive=False), t, "label")
        save_note = gr.Markdown("")
        ck_upload = tr(gr.File(label=(t := "上传检查点 · upload a .safetensors checkpoint (max 64 MB)"),
                               file_types=[".safetensors"], type="filepath"), t, "label")
        ck_note = gr.Markdown("")
    with tr(gr.Accordion(t := "GPU 试验 · Try the GPU", open=False, visible=gpu), t, "label") as gpu_box:
        gr.Markdown("Train the current settings for a few epochs on the GPU and on the CPU, and compare "
                    "the time per epoch (on ZeroGPU this uses your daily GPU minutes) · "
                    "在 GPU 和 CPU 上各训练几个周期，比较速度")
        gpu_run = tr(gr.Button(t := "在 GPU 上试一试 · Run on the GPU"), t)
        gpu_note = gr.Markdown("")
    named = {k: v for k, v in locals().items() if k not in ("header", "gpu", "empty", "t", "tr")}
    return Page(**named)
