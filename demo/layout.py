"""The page's components, built from the settings table and returned by name (no event wiring here)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
from gradio.components.plot import PlotData

import form
import render

PRESET_BUTTONS = (("① 从零开始 · 随机采样  scratch · random", "scratch-random"),
                  ("② 从零开始 · 相邻采样  scratch · consecutive", "scratch-consecutive"),
                  ("③ nn.RNN · Adam  concise", "concise"))
# How the settings sit on the page: one tuple per row.
ROWS = (("corpus",), ("corpus_file",), ("max_chars",), ("model", "sampling"), ("optimizer",), ("lr", "epochs"),
        ("clip", "theta"), ("num_hiddens", "batch_size"), ("num_steps", "seed"), ("prefixes",),
        ("pred_len", "pred_period"), ("decoding",), ("temperature", "top_k"), ("resume",))
CSS = """
.sample {font-size: 1.3rem; line-height: 1.7; margin: .2rem 0 .6rem; font-family: 'Noto Sans CJK SC', sans-serif;}
.sample .prefix {color: #d62728; font-weight: 700; margin-right: .15rem;}
.sample .epoch {color: #999; font-size: .8rem; margin-left: .6rem;}
.sample-empty {color: #888; font-style: italic;}
#status {font-size: 1.05rem;}
#train-note {color: #b45309;}
#history textarea, #written textarea {font-size: 1.05rem; line-height: 1.6;}
"""


@dataclass
class Page:
    """Every component a handler reads or writes."""
    settings: dict[str, gr.components.Component]
    presets: list[tuple[gr.Button, str]]
    train: gr.Button
    stop: gr.Button
    restart: gr.Button          # "stop and start the new one", shown when Train meets a running run
    clock: gr.Number            # hidden: the browser's clock when Train or Stop was pressed
    train_note: gr.Markdown     # next to the buttons: what Stop or Train just did
    status: gr.Markdown
    ppl_plot: gr.Plot
    grad_plot: gr.Plot
    latest: gr.HTML
    history: gr.Textbox
    clear: gr.Button
    progress: gr.JSON
    w_prefix: gr.Textbox
    w_length: gr.Number
    w_decoding: gr.Radio
    w_temperature: gr.Slider
    w_top_k: gr.Number
    w_seed: gr.Number
    write: gr.Button
    written: gr.Textbox
    write_note: gr.Markdown
    save: gr.Button
    saved_file: gr.File
    save_note: gr.Markdown
    ck_upload: gr.File
    ck_note: gr.Markdown
    gpu_run: gr.Button
    gpu_note: gr.Markdown

    @property
    def run_outputs(self) -> list[gr.components.Component]:
        """What a render of the session's runs fills (see ``render.session_outputs``)."""
        return [self.status, self.ppl_plot, self.grad_plot, self.latest, self.history, self.progress]

    @property
    def write_inputs(self) -> list[gr.components.Component]:
        return [self.w_prefix, self.w_length, self.w_decoding, self.w_temperature, self.w_top_k, self.w_seed]


def plot(figure_json: str) -> PlotData:
    """A chart for ``gr.Plot`` from plotly JSON (Gradio sends it as it is, with no plotly objects built)."""
    return PlotData(type="plotly", plot=figure_json)


def setting_component(s: form.Setting) -> gr.components.Component:
    """The widget for one setting of the table."""
    common: dict[str, Any] = dict(label=s.label, info=s.hint, elem_id=f"setting-{s.name}")
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
    """Lay out the page inside the current ``gr.Blocks``."""
    gr.Markdown(header)
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=330):
            gr.Markdown("**The chapter's setups · 书中的三种设置**")
            presets = [(gr.Button(text, size="sm", variant="secondary"), name) for text, name in PRESET_BUTTONS]
            with gr.Row():
                train = gr.Button("▶ 训练 · Train", variant="primary")
                stop = gr.Button("■ 停止 · Stop", variant="stop")
            train_note = gr.Markdown("", elem_id="train-note")
            restart = gr.Button("■▶ 停止并开始新的训练 · Stop it and train the new settings", visible=False,
                                variant="primary", size="sm")
            clock = gr.Number(None, visible=False)
            with gr.Accordion("设置 · Settings", open=True):
                settings = settings_panel()
        with gr.Column(scale=5):
            status = gr.Markdown(render.status_line(None), elem_id="status")
            with gr.Row():
                empty = [plot(f) for f in render.figures([])]
                ppl_plot = gr.Plot(empty[0], label="perplexity", show_label=False, elem_id="ppl-plot")
                grad_plot = gr.Plot(empty[1], label="gradient norm", show_label=False, elem_id="grad-plot")
            gr.Markdown("### 最新歌词 · Newest lyrics")
            latest = gr.HTML(render.latest_samples(None))
            with gr.Accordion("历史 · Samples by epoch (the chapter's printout)", open=False):
                history = gr.Textbox(lines=10, max_lines=30, show_label=False, elem_id="history", buttons=["copy"])
            clear = gr.Button("清除历史 · Clear history", size="sm")
            progress = gr.JSON(visible=False)
            with gr.Accordion("用模型写作 · Write with the model", open=True):
                with gr.Row():
                    w_prefix = gr.Textbox("分开", label="前缀 · prefix", scale=2)
                    w_length = gr.Number(100, precision=0, label="长度 · length", scale=1)
                    w_decoding = gr.Radio([("贪心 · greedy", "greedy"), ("采样 · sample", "sample")],
                                          value="sample", label="解码 · decoding", scale=2)
                with gr.Row():
                    w_temperature = gr.Slider(0.05, 2.0, value=0.8, step=0.05, label="温度 · temperature")
                    w_top_k = gr.Number(0, precision=0, label="top-k (0 = all)")
                    w_seed = gr.Number(0, precision=0, label="种子 · seed (0 = random)")
                write = gr.Button("写 · Write", variant="primary")
                written = gr.Textbox(label="模型写的 · written", lines=4, elem_id="written", interactive=False)
                write_note = gr.Markdown("")
            with gr.Accordion("检查点 · Checkpoints", open=False):
                with gr.Row():
                    save = gr.Button("保存当前模型 · Save the current model")
                    saved_file = gr.File(label="下载 · download", interactive=False)
                save_note = gr.Markdown("")
                ck_upload = gr.File(label="上传检查点 · upload a .safetensors checkpoint (max 64 MB)",
                                    file_types=[".safetensors"], type="filepath")
                ck_note = gr.Markdown("")
            with gr.Accordion("GPU 试验 · Try the GPU", open=False, visible=gpu):
                gr.Markdown("Train the current settings for a few epochs on the GPU and on the CPU, and compare "
                            "the time per epoch (on ZeroGPU this uses your daily GPU minutes) · "
                            "在 GPU 和 CPU 上各训练几个周期，比较速度")
                gpu_run = gr.Button("在 GPU 上试一试 · Run on the GPU")
                gpu_note = gr.Markdown("")
    return Page(settings=settings, presets=presets, train=train, stop=stop, restart=restart, clock=clock, train_note=train_note,
                status=status, ppl_plot=ppl_plot, grad_plot=grad_plot, latest=latest, history=history, clear=clear,
                progress=progress, w_prefix=w_prefix, w_length=w_length, w_decoding=w_decoding,
                w_temperature=w_temperature, w_top_k=w_top_k, w_seed=w_seed, write=write, written=written,
                write_note=write_note, save=save, saved_file=saved_file, save_note=save_note, ck_upload=ck_upload,
                ck_note=ck_note, gpu_run=gpu_run, gpu_note=gpu_note)
