"""The components that play a run (their events: ``demo.app.instrument_events``, handlers: ``demo.instrument``):
Pause, Resume and Step beside the status line; beside the charts, what changes while it trains (the learning
rate on a log scale, clipping and θ, how often samples are written) and Continue (+N epochs); the exports.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import math

import gradio as gr

from demo.settings import DEFAULTS, PAGE_PRED_PERIOD

LR_LOW, LR_HIGH = -4.0, 3.0  # the learning-rate slider's range, in log10: 0.0001 to 1000
# The slider moves in log10 of the learning rate; the number it means shows beside it, as it moves (no request).
LR_VALUE_JS = ("(x) => { const v = Math.pow(10, x), s = v >= 1 ? v.toPrecision(3).replace(/\\.?0+$/, '') : "
               "String(Number(v.toPrecision(3))); const e = document.querySelector('#lr-value .lr-number'); "
               "if (e) e.innerText = s; }")


def lr_of(exponent: float) -> float:
    """The learning rate of a slider position (log10), to three significant digits: 10^1.5 -> 31.6."""
    value = 10 ** exponent
    return float(f"{value:.3g}")


def exponent_of(lr: Any) -> float:
    """The slider position of a learning rate (clamped to the slider's range)."""
    try:
        return min(LR_HIGH, max(LR_LOW, round(math.log10(float(lr)), 2)))
    except (TypeError, ValueError):
        return 2.0


def lr_value_html(lr: float) -> str:
    return f"<span class='lr-label'>lr =</span> <span class='lr-number'>{lr:.3g}</span>"


@dataclass
class Play:
    """Pause, Resume, Step beside the status line (the run bar)."""
    pause: gr.Button
    resume: gr.Button
    step: gr.Button


@dataclass
class Live:
    """Beside the charts: the settings a run takes while it trains, and Continue."""
    box: gr.Accordion
    lr: gr.Slider            # log10 of the learning rate
    lr_value: gr.HTML        # the learning rate it means
    clip: gr.Checkbox
    theta: gr.Number
    period: gr.Number
    note: gr.Markdown        # what changed, or why nothing did
    more: gr.Number          # epochs to continue for
    go_on: gr.Button

    @property
    def inputs(self) -> list:
        return [self.lr, self.clip, self.theta, self.period]


@dataclass
class Exports:
    box: gr.Accordion
    format: gr.Radio
    button: gr.Button
    file: gr.File
    note: gr.Markdown


def play_buttons(tr: Callable[..., Any]) -> Play:
    """Inside the run bar's row."""
    kw = dict(variant="secondary", scale=0, size="sm", min_width=80, elem_classes=["play-button"])
    return Play(pause=tr(gr.Button(t := "⏸ 暂停 · Pause", elem_id="pause", **kw), t),
                resume=tr(gr.Button(t := "▶ 继续 · Resume", elem_id="resume", **kw), t),
                step=tr(gr.Button(t := "⏭ 单步 · Step", elem_id="step", **kw), t))


def live_panel(tr: Callable[..., Any]) -> Live:
    """Below the charts, open: what a teacher turns while the run trains."""
    lr = DEFAULTS["lr"]
    with tr(gr.Accordion(t := "🎛 边训练边调 · Change it while it trains", open=True, elem_id="live"),
            t, "label") as box:
        with gr.Row(equal_height=True):
            t = "学习率（对数刻度，10 的幂） · learning rate (log scale: a power of 10)"
            slider = tr(gr.Slider(LR_LOW, LR_HIGH, value=exponent_of(lr), step=0.05, elem_id="live-lr", scale=4,
                                  label=t), t, "label")
            value = gr.HTML(lr_value_html(lr), elem_id="lr-value", scale=1, min_width=110)
        with gr.Row(equal_height=True, elem_id="live-row"):
            clip = tr(gr.Checkbox(DEFAULTS["clip"], label=(t := "梯度裁剪 · clip"), elem_id="live-clip",
                                  min_width=120), t, "label")
            theta = tr(gr.Number(DEFAULTS["theta"], label=(t := "裁剪阈值 θ · θ"), elem_id="live-theta",
                                 min_width=120), t, "label")
            period = tr(gr.Number(PAGE_PRED_PERIOD, step=1, label=(t := "采样间隔 · samples every"),
                                  elem_id="live-period", min_width=120), t, "label")
            more = tr(gr.Number(50, step=1, label=(t := "再训练 · more epochs"), elem_id="live-more",
                                min_width=120), t, "label")
            go_on = tr(gr.Button(t := "⏩ 接着训练 · Continue", elem_id="continue", min_width=150), t)
        note = gr.Markdown("", elem_id="live-note")
    return Live(box, slider, value, clip, theta, period, note, more, go_on)


def exports_panel(tr: Callable[..., Any]) -> Exports:
    """What the charts show, as a file to take home (a watcher's too: the class's runs)."""
    with tr(gr.Accordion(t := "⬇ 导出结果 · Take the results home", open=False, elem_id="exports"),
            t, "label") as box:
        with gr.Row(equal_height=True):
            ways = [("CSV（每个周期一行） · CSV (a row per epoch)", "csv"),
                    ("JSON（设置、历史、样本、改动） · JSON (settings, history, samples, changes)", "json"),
                    ("HTML（两张图，可离线打开） · HTML (both charts, opens offline)", "html")]
            fmt = tr(tr(gr.Radio(ways, value="csv", label=(t := "格式 · format"), elem_id="export-format", scale=3),
                        t, "label"), ways, "choices")
            button = tr(gr.Button(t := "⬇ 导出 · Export", elem_id="export", scale=0, min_width=130), t)
        file = tr(gr.File(visible=False, interactive=False, elem_id="export-file",
                          label=(t := "导出的文件 · the exported file")), t, "label")
        note = gr.Markdown("", elem_id="export-note")
    return Exports(box, fmt, button, file, note)
