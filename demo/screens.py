"""What the size of the browser's window decides: a phone's page opens with the settings folded, and a projector's
charts are as tall as its screen leaves room for, so that both charts and the newest lyrics fit on it.

The page sends its window's size (``SIZE_JS``) with its load event and with a press of the sidebar's Train;
these rules are pure, and tested without a browser.
"""
from __future__ import annotations

from typing import Any

import gradio as gr

from demo import charts

# Gradio's own breakpoint: at most this wide, an open sidebar covers the whole page (its CSS, ``width<=768px``)
NARROW = 768
# The browser's window, as a JSON input ({"width": ..., "height": ...}): a load event's ``js`` returns it.
SIZE = "({width: window.innerWidth, height: window.innerHeight})"
SIZE_JS = f"() => {SIZE}"
# On a narrow screen a press of Train shows what it started: the page scrolls to Train and Stop, the status
# line and the perplexity chart below them (and the sidebar folds: ``fold_if_started``).
SHOW_RUN_JS = (f"if (window.innerWidth <= {NARROW}) document.getElementById('run-bar')"
               "?.scrollIntoView({block: 'start', behavior: 'instant'});")


def size_of(screen: Any) -> tuple[int, int]:
    """(width, height) of what the page sent; (0, 0) for what it did not (an API client): then the rules keep the
    page as it was before it knew its size."""
    if not isinstance(screen, dict):
        return 0, 0
    try:
        return max(0, int(screen.get("width") or 0)), max(0, int(screen.get("height") or 0))
    except (TypeError, ValueError):
        return 0, 0


def is_narrow(screen: Any) -> bool:
    width = size_of(screen)[0]
    return 0 < width <= NARROW


def sidebar_open(present: bool, screen: Any) -> bool:
    """The settings are open on a laptop, folded on a projector (the charts take the screen) and on a phone
    (the open sidebar would cover the page)."""
    return not present and not is_narrow(screen)


def chart_style(present: bool, screen: Any) -> charts.Style:
    """The charts' style: a projector's by the height of its window (few sizes, so that a class of screens
    shares few renders), a phone's (titles on two lines), else the laptop's."""
    if not present:
        return charts.PHONE if is_narrow(screen) else charts.NORMAL
    height = size_of(screen)[1]
    return charts.PRESENT if height == 0 or height >= charts.PRESENT_TALL else charts.PRESENT_SHORT


def fold_if_started(screen: Any, note: str) -> Any:
    """After a press of the sidebar's Train on a phone, where the open sidebar covers the page: fold it when the
    press has nothing to say beside the button (its run starts), so that the run shows; what is wrong with a
    setting keeps it open."""
    return gr.update(open=False) if is_narrow(screen) and not (note or "").strip() else gr.skip()


def open_if_said(screen: Any, note: str) -> Any:
    """After that press's stream, on a phone: open the sidebar again when its last word is beside the button
    (a run was training already: stop it first, or the button that stops it and trains the new settings)."""
    return gr.update(open=True) if is_narrow(screen) and (note or "").strip() else gr.skip()
