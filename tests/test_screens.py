"""What the window's size decides (demo.screens), without a browser: the sidebar folded on a phone and on a
projector, a projector's charts by its height, the sidebar's Train folding it on a phone only when a run
starts; and a watcher's empty chart, which does not ask them to press Train."""
from __future__ import annotations

import gradio as gr
import pytest

from demo import charts
from demo import screens

PHONE, LAPTOP = {"width": 390, "height": 844}, {"width": 1440, "height": 900}
PROJECTOR, TALL = {"width": 1280, "height": 720}, {"width": 1920, "height": 1080}


@pytest.mark.parametrize("screen, size", [(PHONE, (390, 844)), (None, (0, 0)), ({}, (0, 0)), ("wide", (0, 0)),
                                          ({"width": "x", "height": 3}, (0, 0)), ({"width": -5, "height": 700},
                                                                                  (0, 700))])
def test_the_size_the_page_sent_and_what_it_did_not(screen, size):
    assert screens.size_of(screen) == size


def test_the_sidebar_is_open_on_a_laptop_only():
    assert screens.sidebar_open(False, LAPTOP) and screens.sidebar_open(False, None)  # an API client: as before
    assert not screens.sidebar_open(False, PHONE) and not screens.sidebar_open(True, LAPTOP)
    # Gradio's own breakpoint: from 768 px down an open sidebar covers the whole page
    assert not screens.sidebar_open(False, {"width": 768, "height": 1024})
    assert screens.sidebar_open(False, {"width": 769, "height": 1024})


def test_a_projector_gets_charts_for_its_height():
    assert screens.chart_style(False, PROJECTOR) is charts.NORMAL
    assert screens.chart_style(True, PROJECTOR) is charts.PRESENT_SHORT
    assert screens.chart_style(True, TALL) is charts.PRESENT and screens.chart_style(True, None) is charts.PRESENT
    # the short charts leave a 720-line screen room for the header, the status and two lines of lyrics a run
    short = charts.PRESENT_SHORT
    assert short.height + short.legend_height(2) <= 720 / 2 and short.font >= 16


def test_a_phones_charts_put_their_titles_on_two_lines():
    # at 390 px the gradient chart's one-line title in both languages (about 45 characters) is wider than the chart
    assert screens.chart_style(False, PHONE) is charts.PHONE and screens.chart_style(False, LAPTOP) is charts.NORMAL
    ppl, grad = charts.figures([], charts.PHONE)
    assert grad["layout"]["title"]["text"] == "裁剪前的梯度范数<br>gradient norm before clipping"
    # the second line gets its room above the plot: the top margin grows by a title line
    assert ppl["layout"]["margin"]["t"] > charts.figures([])[0]["layout"]["margin"]["t"] + charts.PHONE.font
    # one language: one line, as on a laptop
    assert charts.figures([], charts.PHONE, "en")[1]["layout"]["title"]["text"] == "gradient norm before clipping"


def test_the_sidebars_train_folds_it_on_a_phone_when_a_run_starts():
    assert screens.fold_if_started(PHONE, "") == gr.update(open=False)
    for kept in (screens.fold_if_started(LAPTOP, ""), screens.fold_if_started(None, ""),
                 screens.fold_if_started(PHONE, "✗ 未开始 · Not started: lr=-1")):
        assert kept == gr.skip()
    # its stream's last word (a run was training) opens it again, to be read beside the button
    assert screens.open_if_said(PHONE, "A run is training · 正在训练: stop it first") == gr.update(open=True)
    assert screens.open_if_said(PHONE, " ") == gr.skip() and screens.open_if_said(LAPTOP, "busy") == gr.skip()


def test_a_watchers_empty_chart_waits_for_the_teacher():
    def says(style):
        return [a["text"] for a in charts.perplexity_figure([], style)["layout"]["annotations"]]

    assert says(charts.NORMAL) == ["点击“训练” · press Train"]
    for style in (charts.NORMAL, charts.PRESENT, charts.PRESENT_SHORT):
        watching = charts.watching(style)
        assert says(watching) == ["等待老师开始训练 · waiting for the teacher's run"]
        assert (watching.height, watching.font, watching.line) == (style.height, style.font, style.line)
    assert charts.perplexity_figure([], charts.watching(charts.NORMAL), "en")["layout"]["annotations"][0]["text"] \
        == "waiting for the teacher's run"
