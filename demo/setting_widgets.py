"""The settings as widgets, built from the settings table (``demo.settings``): how they sit in rows (the
chapter's choices first, the rest folded under "more settings", the samples' decoding beside Write), the
chapter's setups as buttons, which widget each kind of setting gets, and which show for which model."""
from __future__ import annotations

from typing import Any

import gradio as gr

from charrnn.models import KINDS
from demo import form
from demo.rules import trains_on_cuda

PRESET_BUTTONS = (("① 从零开始，随机采样 · scratch · random", "scratch-random"),
                  ("② 从零开始，相邻采样 · scratch · consecutive", "scratch-consecutive"),
                  ("③ 简洁实现 nn.RNN + Adam · concise nn.RNN + Adam", "concise"),
                  ("④ 门控循环单元 GRU，从零开始 · GRU from scratch (6.7)", "scratch-gru"),
                  ("⑤ 长短期记忆 LSTM，从零开始 · LSTM from scratch (6.8)", "scratch-lstm"))
# How the settings sit on the page, one tuple per row: the chapter's choices first, then the rest in a fold.
FIRST = (("model",), ("sampling",), ("lr", "epochs"), ("clip", "theta"))
MORE = (("corpus",), ("corpus_file",), ("max_chars", "validation"), ("optimizer", "num_layers"),
        ("num_hiddens", "batch_size"), ("num_steps", "seed"), ("prefixes",), ("pred_len", "pred_period"), ("resume",),
        ("fast",))
# The samples' decoding: one set, in the Write panel (``render_decoding``), for the samples and for Write alike.
DECODING = ("decoding", "temperature", "top_k")
FOLDED = frozenset(name for row in MORE for name in row)
MORE_LABEL = "更多设置 · More settings"


def stacks_layers(model: str) -> bool:
    """Whether ``model`` stacks recurrent layers (torch's layers do; the from-scratch models have one)."""
    kind = KINDS.get(model)
    return kind is not None and not kind.scratch


def setting_component(s: form.Setting, render: bool = True) -> gr.components.Component:
    """The widget for one setting of the table (``render=False``: placed later, by its ``render()``)."""
    # no hint at first (``Page.hint_updates`` shows them); layers only for the models that stack them, fast
    # only where runs train on a CUDA GPU
    visible = {"num_layers": stacks_layers(form.DEFAULTS["model"]), "fast": trains_on_cuda()}.get(s.name, True)
    common: dict[str, Any] = dict(label=s.label, elem_id=f"setting-{s.name}", render=render, visible=visible)
    if s.kind == "choice" and s.name == "corpus":
        return gr.Dropdown(list(s.choices), value=s.default, **common)
    if s.kind == "choice":
        return gr.Radio(list(s.choices), value=s.default, **common)
    if s.kind == "bool":
        return gr.Checkbox(s.default, **common)
    if s.kind == "text":
        return gr.Textbox(s.default, **common)
    if s.kind == "file":
        return gr.File(file_types=[".txt"], type="filepath", visible=False, label=s.label, elem_id=common["elem_id"],
                       render=render)
    if s.kind == "slider":
        return gr.Slider(s.low, s.high, value=s.default, step=s.step, **common)
    # Numbers keep what was typed (no rounding), so 0.5 in a whole-number setting is refused, not rounded.
    return gr.Number(s.default, step=1 if s.kind == "int" else None, **common)


def place_rows(rows: tuple[tuple[str, ...], ...], out: dict[str, gr.components.Component]) -> None:
    for row in rows:
        if len(row) == 1:
            out[row[0]] = setting_component(form.BY_NAME[row[0]])
            continue
        with gr.Row():
            for name in row:
                out[name] = setting_component(form.BY_NAME[name])


def first_settings(out: dict[str, gr.components.Component]) -> None:
    """The chapter's choices, and the decoding's widgets made for ``render_decoding`` to place."""
    place_rows(FIRST, out)
    for name in DECODING:
        out[name] = setting_component(form.BY_NAME[name], render=False)


def more_settings(out: dict[str, gr.components.Component]) -> None:
    """The rest of the settings, inside the "more settings" fold; then ``out`` holds every setting."""
    place_rows(MORE, out)
    assert tuple(sorted(out)) == tuple(sorted(form.NAMES)), "every setting of the table is on the page"


def render_decoding(settings: dict[str, gr.components.Component]) -> None:
    """The samples' decoding settings, placed here (the Write panel), in one row."""
    with gr.Row():
        for name in DECODING:
            settings[name].render()


def in_fold(problems: dict[str, str]) -> bool:
    """Whether a refused setting sits in the "more settings" fold (which then opens to show it)."""
    return any(name in FOLDED for name in problems)


def preset_values(name: str) -> list:
    """The settings of one of the chapter's setups, in the order of ``form.NAMES`` (others unchanged)."""
    values = form.preset_form(name)
    return [values.get(n, gr.skip()) for n in form.NAMES]
