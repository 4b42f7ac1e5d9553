"""Every chart the page sends is a figure plotly accepts: the two training charts (no run, runs training, several
runs, runs that diverge or leave the chart, every screen's style and language), as gr.Plot's payloads, as the page
grows them, and the "inside the model" views of real trained models. plotly.py's ``graph_objects.Figure`` checks
each property against plotly.js's schema and raises ValueError on any it does not know or any value it refuses:
an independent reading of what the page hands to plotly.js, which itself ignores what it does not know."""
from __future__ import annotations

import dataclasses

import json
from types import SimpleNamespace

import plotly.graph_objects as go
import pytest

from charrnn import inside
from charrnn.config import TrainConfig
from charrnn.events import Change, EpochEnd
from charrnn.lab import Lab, Limits, RunView
from charrnn.train import Trainer
from demo import charts, growth, render, renders
from demo.inside import HEAT_UNITS, Inside

V = 1027  # the Jay Chou vocabulary
STYLES = {"normal": charts.NORMAL, "present": charts.PRESENT, "present-short": charts.PRESENT_SHORT,
          "phone": charts.PHONE, "watching": charts.watching(charts.NORMAL),
          "watching-phone": charts.watching(charts.PHONE)}
LANGS = ("both", "zh", "en")
FALLING = [900 / (1 + i) + 9 for i in range(20)]
# the clipping lesson's unclipped run as measured (tests/test_charts.py): past 10 V in epoch 4, infinite in 12
EXPLODING = [950, 2e3, 6e3, 4e4, 1e9, 1e30, 1e80, 1e150, 1e200, 1e250, 9.7e301]
EXPLODING_GRADS = [0.5, 0.8, 1.5, 3.0, 40.0, 1e12, 1e40, 1e70, 1e100, 1e120, 1e150]


def run(number: int, perplexities: list[float], grads: list[float] | None = None, status: str = "finished",
        vocab: int = V, continues: int | None = None, first: int = 1, **config) -> RunView:
    grads = grads or [1.0] * len(perplexities)
    history = [EpochEnd(epoch=first + i, epochs=100, perplexity=p, grad_norm=g, grad_norm_max=2 * g, clipped=0.5,
                        seconds=0.1, chars_per_sec=1e4) for i, (p, g) in enumerate(zip(perplexities, grads))]
    c = TrainConfig(**config)
    return RunView(number, c.label(), c, status, "", None, history, [], vocab, "cpu", 1.0, 1, continues=continues)


def played() -> RunView:
    """A run with a held-out text (its perplexity dashed), two settings changed at epoch 3.5 (a mark on both
    charts), paused."""
    view = run(2, FALLING[:8], status="running")
    history = [dataclasses.replace(e, val_perplexity=1.3 * e.perplexity + 5 * max(0, e.epoch - 4))
               for e in view.history]
    changes = (Change(3.5, 3, "lr", 100.0, 10.0), Change(3.5, 3, "clip_theta", 0.01, None))
    return dataclasses.replace(view, history=history, changes=changes, paused=True)


LONG = [2000 / (1 + i) + 5 for i in range(1000)]  # more epochs than a trace keeps (charts.MAX_POINTS)
RUNS = {
    "no run": [],
    "one run, first epoch": [run(1, [950.0], status="running")],
    "one run training": [run(1, FALLING[:7], status="running")],
    "several runs": [run(1, FALLING, clip_theta=0.1, lr=10.0), run(2, FALLING[::2], clip_theta=None, lr=1.0),
                     run(3, [x * 2 for x in FALLING], vocab=28, corpus="timemachine", status="stopped"),
                     run(4, FALLING[:5], continues=1, first=21, status="running")],
    "a diverged run": [run(1, FALLING, clip_theta=0.1, lr=10.0),
                       run(2, EXPLODING, EXPLODING_GRADS, status="diverged", clip_theta=None, lr=10.0)],
    "diverged at once, and on the chart": [run(1, [], status="diverged", lr=1e6, clip_theta=None),
                                           run(2, [1200.0, 1500.0], status="diverged")],
    "1e300 and inf": [run(1, [900.0, 1e300, float("inf")], [1.0, 1e300, float("inf")], status="diverged")],
    "finite above the chart": [run(1, [1.8e3, 5e3, 2e4, 8e3, 1e5, 3e6, 1e7], lr=300.0), run(2, FALLING)],
    "a long run": [run(1, LONG, [0.3 + (i % 7) / 10 for i in range(1000)])],
    "held out, with changes mid-run, paused": [played()],
}


def refuse(constant: str):
    raise ValueError(f"{constant}: not JSON (a browser's JSON.parse refuses it)")


def valid(figure: dict, where: str) -> None:
    """plotly accepts ``figure`` whole; the failure names the property it refuses."""
    try:
        go.Figure(figure)
    except ValueError as e:
        pytest.fail(f"{where}: plotly refuses the figure: {e}")


def sent(payload: dict, where: str) -> dict:
    """gr.Plot's payload (render.chart's): strict JSON of a figure plotly accepts."""
    assert payload["type"] == "plotly", where
    figure = json.loads(payload["plot"], parse_constant=refuse)
    valid(figure, where)
    return figure


def test_the_validation_refuses_what_plotly_does_not_know():
    """What makes the other tests able to fail: a misspelled property, or a value plotly.js has no meaning for."""
    ppl, _ = charts.figures(RUNS["several runs"])
    valid(ppl, "the perplexity chart")
    bad = [{**ppl, "data": [{**ppl["data"][0], "mode": "line"}, *ppl["data"][1:]]},  # plotly's word is "lines"
           {**ppl, "layout": {**ppl["layout"], "legend": {**ppl["layout"]["legend"], "orientation": "vertical"}}},
           {**ppl, "layout": {**ppl["layout"], "yaxis": {**ppl["layout"]["yaxis"], "tickvalues": [1, 10]}}}]
    for figure in bad:
        with pytest.raises(ValueError):
            go.Figure(figure)


@pytest.mark.parametrize("name", RUNS)
def test_the_training_charts_are_valid_in_every_style_and_language(name):
    for style_name, style in STYLES.items():
        for lang in LANGS:
            for figure in charts.figures(RUNS[name], style, lang):
                where = f"{name}, {style_name}, {lang}: {figure['layout']['title']['text']!r}"
                drawn = renders.Drawn.of(figure)  # what gr.Plot is sent: the figure and its digest in layout.meta
                got = sent(drawn.payload, where)
                assert got == {**figure, "layout": {**figure["layout"], "meta": {"base": drawn.base}}}, where
                assert sent(render.chart(figure), where) == figure, where


def test_a_chart_as_the_page_grows_it_and_hides_a_run_is_valid():
    """The page's script adds the new points to the graph it has (growth.grown does the same in Python) and a
    legend click sets a run's traces to visible "legendonly" (plotly.restyle)."""
    for lang in LANGS:
        before = charts.figures([run(1, FALLING[:12], status="running"), run(2, EXPLODING[:9], EXPLODING_GRADS[:9],
                                                                             status="running")], lang=lang)
        after = charts.figures([run(1, FALLING, status="running"), run(2, EXPLODING, EXPLODING_GRADS,
                                                                       status="running")], lang=lang)
        for base, figure in zip(before, after):
            points = growth.growth(base, figure)
            assert points is not None and points["traces"], "the chart grows rather than being drawn afresh"
            page = growth.grown(base, points)
            valid(page, f"grown, {lang}")
            hidden = {**page, "data": [{**t, "visible": "legendonly"} if t["legendgroup"] == "run2" else t
                                       for t in page["data"]]}
            valid(hidden, f"grown, run 2 hidden, {lang}")


@pytest.fixture(scope="module")
def lab_session(tiny_corpus):
    """A session of a lab that trained two real runs (a plain RNN, then an LSTM), 3 epochs each; the
    hidden-unit view of the plain RNN is taken (through the page's handler) before the LSTM's run frees it."""
    lab = Lab(max_runs=2, limits=Limits(busy_runs=100))
    page = SimpleNamespace(session_hash="figures")  # what the handlers read of gr.Request
    session, panel = lab.session(page.session_hash), Inside(lab)
    heat = {}
    for model in ("scratch", "scratch-lstm"):
        config = TrainConfig(corpus="tiny", max_chars=None, model=model, num_hiddens=16, batch_size=4, num_steps=8,
                             lr=1.0, clip_theta=1.0, epochs=3, device="cpu", prefixes=["the"], pred_period=1,
                             sampling="consecutive")
        r = session.start(Trainer(config, tiny_corpus))
        assert r.wait(60) and r.view().status == "finished", r.view().message
        for which in ("hidden", "cell"):
            heat[model, which] = panel.on_hidden("", None, which, page)  # the start of the training text
        heat[model, "one character"] = panel.on_hidden("t", None, "hidden", page)
    heat["unreadable"] = panel.on_hidden("然后", None, "hidden", page)  # no such characters: the empty chart
    yield SimpleNamespace(lab=lab, session=session, panel=panel, page=page, heat=heat)
    lab.shutdown()


def test_the_pages_charts_of_real_runs_are_valid(lab_session):
    s = lab_session.session
    assert len(s.views()) == 2 and all(len(v.history) == 3 for v in s.views())
    for style_name, style in STYLES.items():
        for lang in LANGS:
            _, ppl, grad, *_ = renders.outputs(s, style=style, lang=lang)  # as Gradio sends them
            for payload in (ppl, grad):
                figure = sent(payload, f"real runs, {style_name}, {lang}")
                assert [t["uid"] for t in figure["data"]] == ["run1", "run2"]


def test_the_hidden_unit_heatmaps_are_valid(lab_session):
    heat = lab_session.heat
    for key, (text, payload, unit_html, note) in heat.items():
        figure = sent(payload, f"hidden units {key}: {note}")
        if key == "unreadable":
            assert note.startswith("✗") and figure["data"][0]["z"] == [], note
            continue
        (trace,) = figure["data"]
        # a row per unit shown (all 16 of these models', at most HEAT_UNITS), a column per character read
        assert len(trace["z"]) == min(16, HEAT_UNITS) and {len(row) for row in trace["z"]} == {len(text)}, key
        assert text and unit_html, key
    # the LSTM's memory cell is its own heatmap (unbounded: its colours span its largest value); the RNN has none
    lstm_h, lstm_c = heat["scratch-lstm", "hidden"][1], heat["scratch-lstm", "cell"][1]
    assert lstm_h != lstm_c and "memory cell" in lstm_c["plot"]
    assert "only an LSTM has a memory cell" in heat["scratch", "cell"][3]


def test_the_hidden_unit_heatmap_is_valid_in_every_style(lab_session):
    """render.hidden_units_figure takes a style too (the page passes none): every one gives a valid figure."""
    model, vocab, _ = lab_session.session.model()
    view = inside.hidden_units(model, vocab, "the time machine said.").as_dict()
    for style_name, style in STYLES.items():
        for cell in (False, True):
            valid(render.hidden_units_figure(view, view["top_units"][:5], cell, style), f"heatmap, {style_name}")


def test_the_gradients_through_time_charts_are_valid(lab_session):
    panel, page = lab_session.panel, lab_session.page
    payload, note = panel.on_gradients(page)  # both runs' curves, at their last epoch
    figure = sent(payload, f"gradients: {note}")
    assert len(figure["data"]) == 2 and all(len(t["y"]) == 8 for t in figure["data"]), note
    curves = [(c["run"], c["label"], c["epoch"], c["norms"]) for c in panel.gradients(page)]
    for style_name, style in STYLES.items():
        valid(render.gradients_figure(curves, style), f"gradients, {style_name}")
        valid(render.gradients_figure([], style), f"gradients before any run, {style_name}")
    # a plain RNN's gradient vanishing to nothing 35 steps back: a zero on the log axis is still a valid figure
    valid(render.gradients_figure([(1, "scratch", 3, [0.0, 1e-30, 1e-10, 0.5])]), "gradients vanishing to 0")
