"""The endpoints' answers to bad values: ``demo.rules``'s one rule for numbers and texts, as Gradio says it.

``read`` and ``read_text`` raise ``gr.Error`` (the API's functions: the client gets the message, the page a
notice), ``field`` gives an event's validator a ``gr.validate`` (the message next to the field on the page,
a ``ValidationError`` naming the parameter for a client). Every message names the parameter and says what
is allowed, 中文 · English.
"""
from __future__ import annotations

from typing import Any

import gradio as gr

from demo import rules
from demo.settings import BY_NAME

TITLE = "不允许 · Not allowed"


def read(name: str, value: Any, **rule: Any) -> int | float:
    """``rules.number``, refusing with gr.Error."""
    try:
        return rules.number(name, value, **rule)
    except rules.Refused as e:
        raise gr.Error(str(e), title=TITLE) from None


def read_text(name: str, value: Any, high: int, low: int = 1) -> str:
    """``rules.text``, refusing with gr.Error."""
    try:
        return rules.text(name, value, high, low)
    except rules.Refused as e:
        raise gr.Error(str(e), title=TITLE) from None


def field(name: str, value: Any, **rule: Any) -> Any:
    """A validator's answer for one field: ``rules.number``'s message when ``value`` breaks it."""
    message = rules.problem(rules.number, name, value, **rule)
    return gr.validate(message is None, message or "")


def lesson_epochs(epochs: Any = None) -> Any:
    """The lessons' validator: ``epochs`` as the sidebar's setting allows (None: the lesson's own). One input,
    so one answer, not a list of one (Gradio wraps a lone output in a list itself)."""
    s = BY_NAME["epochs"]
    return gr.validate(True, "") if epochs is None else field("epochs", epochs, whole=True, low=1, high=s.high)
