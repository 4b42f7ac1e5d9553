"""The training charts survive a divergence: a run that leaves the chart is cut and marked where it leaves, the
axes follow the runs that stay on them, log ticks say their values, and hidden runs are left out."""
from __future__ import annotations

import json
import math

import pytest

from demo import charts, compare, growth, renders, scales
from demo.render import compact_json

from charrnn.config import TrainConfig
from charrnn.lab import RunView
from charrnn.train import EpochEnd

V = 1027  # the Jay Chou vocabulary


def run(number: int, perplexities: list[float], grads: list[float] | None = None, status: str = "finished",
        continues: int | None = None, first: int = 1, **config) -> RunView:
    grads = grads or [1.0] * len(perplexities)
    history = [EpochEnd(epoch=first + i, epochs=100, perplexity=p, grad_norm=g, grad_norm_max=2 * g, clipped=0.5,
                        seconds=0.1, chars_per_sec=1e4) for i, (p, g) in enumerate(zip(perplexities, grads))]
    c = TrainConfig(**config)
    return RunView(number, c.label(), c, status, "", None, history, [], V, "cpu", 1.0, 1, continues=continues)


FALLING = [900 / (1 + i) + 9 for i in range(20)]  # the run the lesson is about: 909 down to 54
# the clipping lesson's unclipped run, as measured: it climbs through 10 V = 10,270 in epoch 4, to 9.7e301 in
# epoch 11, and its loss is infinite in epoch 12 (the run ends "diverged", epoch 11's weights kept)
EXPLODING = [950, 2e3, 6e3, 4e4, 1e9, 1e30, 1e80, 1e150, 1e200, 1e250, 9.7e301]
EXPLODING_GRADS = [0.5, 0.8, 1.5, 3.0, 40.0, 1e12, 1e40, 1e70, 1e100, 1e120, 1e150]


def traces(figure: dict) -> dict[str, dict]:
    return {t["uid"]: t for t in figure["data"]}


def test_a_diverged_run_is_cut_where_it_leaves_and_the_axis_follows_the_others():
    views = [run(1, FALLING, clip_theta=0.1, lr=10.0),
             run(2, EXPLODING, EXPLODING_GRADS, status="diverged", clip_theta=None, lr=10.0)]
    ppl, grad = charts.figures(views, lang="en")
    low, high = ppl["layout"]["yaxis"]["range"]
    # the top: above the vocabulary-size line, at most a decade above it (not 302 decades)
    assert math.log10(V) < high <= math.log10(V) + 1, (low, high)
    assert low <= math.log10(min(FALLING)), "the run that stays on the chart is wholly inside it"
    t = traces(ppl)
    assert t["run1"]["x"] == list(range(1, 21))
    # drawn up to its first point above 10 V (epoch 4: 4e4), the line through the top edge; nothing after
    assert t["run2"]["x"] == [1, 2, 3, 4] and t["run2"]["y"][-1] == 4e4
    mark = t["exit2"]
    # its loss was infinite in epoch 12, as its status says; it left the chart in epoch 4 (its hover says so)
    assert mark["text"] == ["diverged at epoch 12"] and mark["marker"]["symbol"] == "x"
    assert "diverged at epoch 12<br>off the chart from epoch 4" in mark["hovertemplate"]
    assert 3 < mark["x"][0] < 4 and mark["y"][0] == pytest.approx(10 ** high, rel=3e-3) and mark["y"][0] <= 10 ** high
    # where the drawn line meets the top edge: log-interpolated between epoch 3 (6e3) and epoch 4 (4e4)
    share = (high - math.log10(6e3)) / (math.log10(4e4) - math.log10(6e3))
    assert mark["x"][0] == pytest.approx(3 + share, abs=1e-3)
    # the gradient norm: cut at the same epoch, its axis spanning what the charts keep (and θ), not 1e150
    g = traces(grad)
    glow, ghigh = grad["layout"]["yaxis"]["range"]
    assert g["run2"]["x"] == [1, 2, 3, 4] and glow <= math.log10(0.1) and math.log10(1.5) < ghigh < math.log10(3.0)
    assert g["exit2"]["text"] == mark["text"] and 3 < g["exit2"]["x"][0] < 4  # its 3.0 is above the top
    assert g["exit2"]["y"][0] == pytest.approx(10 ** ghigh, rel=3e-3)
    for figure in (ppl, grad):
        assert "NaN" not in compact_json(figure) and "Infinity" not in compact_json(figure)
    # where the other run's norms reach higher, the epoch it left at is inside the range: the ✕ is on its point
    views[0] = run(1, FALLING, [5.0] * 20, clip_theta=0.1, lr=10.0)
    mark = traces(charts.grad_norm_figure(views, lang="en"))["exit2"]
    assert mark["x"] == [4] and mark["y"] == [3.0]


def test_the_chinese_page_says_it_in_chinese():
    ppl, _ = charts.figures([run(1, EXPLODING, status="diverged")], lang="zh")
    mark = traces(ppl)["exit1"]
    assert mark["text"] == ["发散于第 12 个周期"] and "第 4 个周期起超出图表" in mark["hovertemplate"]
    assert ppl["layout"]["title"]["text"] == "困惑度（对数坐标）" and ppl["layout"]["xaxis"]["title"]["text"] == "周期"
    both, _ = charts.figures([run(1, EXPLODING, status="diverged")])
    assert traces(both)["exit1"]["text"] == ["发散于第 12 个周期 · diverged at epoch 12"]


def test_a_run_infinite_in_its_first_epoch_is_marked_at_epoch_1():
    ppl, grad = charts.figures([run(1, [], status="diverged", lr=1e6, clip_theta=None)], lang="en")
    low, high = ppl["layout"]["yaxis"]["range"]
    assert math.log10(V) < high <= math.log10(V) + 1
    mark = traces(ppl)["exit1"]
    assert mark["x"] == [1] and mark["text"] == ["diverged at epoch 1"] and "run1" not in traces(ppl)
    assert traces(grad)["exit1"]["x"] == [1]


def test_a_run_diverging_on_the_chart_is_marked_at_the_next_epoch():
    """Its loss became infinite from a perplexity still on the chart (lr 1e6: 1,200, then inf)."""
    ppl, _ = charts.figures([run(1, [1200.0, 1500.0], status="diverged")], lang="en")
    t = traces(ppl)
    assert t["run1"]["x"] == [1, 2] and t["exit1"]["x"] == [3] and t["exit1"]["text"] == ["diverged at epoch 3"]


def test_a_finite_run_that_ends_above_the_chart_is_off_the_chart_not_diverged():
    """The lr lesson's lr 300: finite, but at 1e5-1e7 (worse than guessing) for most of its epochs."""
    large = [1.8e3, 5e3, 2e4, 8e3, 1e5, 3e6, 1e7]
    ppl, _ = charts.figures([run(1, large, lr=300.0), run(2, FALLING)], lang="en")
    t = traces(ppl)
    assert t["run1"]["x"] == [1, 2, 3, 4, 5], "drawn through its excursion (epoch 3) up to where it leaves"
    assert t["exit1"]["text"] == ["off the chart from epoch 5"]
    assert ppl["layout"]["yaxis"]["range"][1] <= math.log10(V) + 1


def test_an_excursion_that_comes_back_is_no_cut():
    ppl, _ = charts.figures([run(1, [900, 3e4, 800, 500])], lang="en")
    t = traces(ppl)
    assert t["run1"]["x"] == [1, 2, 3, 4] and "exit1" not in t


def test_log_ticks_are_decades_with_their_values():
    values, text = scales.log_ticks(-0.2, 3.3)
    assert values == [1, 10, 100, 1000] and text == ["1", "10", "100", "1000"]
    assert scales.log_ticks(-2.5, 5.2)[1] == ["0.01", "0.1", "1", "10", "100", "1000", "10⁴", "10⁵"]
    # a narrow range (a gradient norm between 0.25 and 0.6): 1-2-5 ticks with their values, never a bare "6"
    low, high = scales.log_range([0.25, 0.4, 0.6])
    values, text = scales.log_ticks(low, high)
    assert len(values) >= 2 and all(10 ** low <= v <= 10 ** high for v in values) and text == ["0.2", "0.5"], text
    # many decades: every second one at most 8 ticks
    values, text = scales.log_ticks(-16.2, 0.3)
    assert len(values) <= scales.MAX_TICKS and text[0] == "10⁻¹⁵" and text[-1] == "1"
    assert scales.tick_label(2e-5) == "2×10⁻⁵" and scales.tick_label(0.001) == "0.001"


def test_every_log_range_shows_two_labelled_ticks():
    """``MIN_SPAN``: however flat a curve, its axis has two ticks with values inside it."""
    for centre in [x / 7 for x in range(-30, 30)]:
        low, high = scales.log_range([10 ** centre])
        assert len(scales.log_ticks(low, high)[0]) >= 2, (centre, low, high)


def test_the_charts_axes_carry_their_tick_values():
    ppl, grad = charts.figures([run(1, FALLING, [0.3, 0.5] * 10, clip_theta=None)], lang="en")
    for figure in (ppl, grad):
        axis = figure["layout"]["yaxis"]
        low, high = axis["range"]
        assert axis["tickmode"] == "array" and len(axis["tickvals"]) == len(axis["ticktext"]) >= 2
        assert all(10 ** low <= v <= 10 ** high for v in axis["tickvals"])
        assert all(t == scales.tick_label(v) for v, t in zip(axis["tickvals"], axis["ticktext"]))
    assert grad["layout"]["yaxis"]["ticktext"] == ["0.2", "0.5"]


def test_a_short_run_ticks_whole_epochs_and_a_long_one_leaves_its_ticks_to_plotly():
    # plotly's own ticks on an axis of 1 to 3 epochs fall between them (1.5, 2.5): every epoch is ticked instead
    for figure in charts.figures([run(1, FALLING[:3])]):
        assert figure["layout"]["xaxis"]["dtick"] == 1
    for figure in charts.figures([run(1, FALLING)]):  # 20 epochs: plotly's ticks are whole epochs there
        assert "dtick" not in figure["layout"]["xaxis"]
    assert "dtick" not in charts.figures([])[0]["layout"]["xaxis"]  # no run: the empty chart's own ticks


def test_a_run_going_on_with_anothers_model_draws_only_its_own_epochs():
    """The decoding lesson: its second run writes with the first's model and trains nothing: one curve."""
    first = run(1, FALLING)
    same = run(2, FALLING, continues=1, temperature=0.8)
    assert list(traces(charts.figures([first, same])[0])) == ["run1"]
    more = run(2, FALLING + [8.0, 7.5], continues=1)
    t = traces(charts.figures([first, more])[0])
    assert t["run2"]["x"] == [21, 22]
    # shown alone (its parent hidden), it draws its whole history
    assert traces(charts.figures([more])[0])["run2"]["x"] == list(range(1, 23))


def test_the_legend_lists_one_run_a_line_below_the_axis_title():
    style = charts.NORMAL
    one, _ = charts.figures([run(1, FALLING)])
    three, _ = charts.figures([run(n, FALLING) for n in (1, 2, 3)])
    extra = three["layout"]["height"] - one["layout"]["height"]
    assert extra == 2 * style.legend_line and three["layout"]["margin"]["b"] - one["layout"]["margin"]["b"] == extra
    assert one["layout"]["height"] == style.height + style.legend_height(1) > style.height
    legend = three["layout"]["legend"]
    assert legend["orientation"] == "v" and legend["yref"] == "container" and legend["y"] == 0
    assert legend["xref"] == "paper"  # a container's x would make plotly reserve the legend's width on the left


def test_the_figures_are_valid_plotly():
    go = pytest.importorskip("plotly.graph_objects")
    views = [run(1, FALLING, clip_theta=0.1), run(2, EXPLODING, EXPLODING_GRADS, status="diverged", clip_theta=None),
             run(3, [], status="diverged")]
    for figure in (*charts.figures(views), *charts.figures([])):
        go.Figure(figure)  # raises on a property plotly does not know


class FakeSession:
    """What Renders and compare read of a session."""
    closed = False

    def __init__(self, views: list[RunView]):
        self._views = views

    def views(self) -> list[RunView]:
        return list(self._views)

    def all_runs(self) -> list[RunView]:
        return list(self._views)

    def state_key(self) -> tuple:
        return tuple(v.number for v in self._views)


def test_hidden_runs_are_left_out_of_the_charts_and_a_lesson_hides_the_runs_before_it():
    session = FakeSession([run(1, FALLING), run(2, FALLING)])
    look = renders.renders_of(session)
    uids = lambda: [t["uid"] for t in __import__("json").loads(look.parts(session, charts.NORMAL)[0]["plot"])["data"]]  # noqa: E731
    assert uids() == ["run1", "run2"]
    assert compare.hide_all(session) == frozenset() and uids() == []
    session._views.append(run(3, FALLING))  # the lesson's run: shown
    assert uids() == ["run3"]
    look.hide({1})  # the compare list shows #2 again
    assert uids() == ["run2", "run3"]
    assert [n for _, n in compare.choices(session)] == [1, 2, 3]


def test_one_theta_line_names_every_run_that_clips_at_it():
    views = [run(1, FALLING), run(2, FALLING, sampling="consecutive"), run(3, FALLING, clip_theta=1.0)]
    _, grad = charts.figures(views)
    assert [a["text"] for a in grad["layout"]["annotations"]] == ["θ = 0.01 (#1, #2)", "θ = 1 (#3)"]
    assert len(grad["layout"]["shapes"]) == 2


def training(number: int, epochs: int, **config) -> RunView:
    """A run that trains, after ``epochs`` epochs: a falling perplexity, a gradient norm that wanders."""
    return run(number, [900 / (1 + 0.3 * i) + 9 for i in range(epochs)],
               [0.5 + 0.4 * math.sin(i) for i in range(epochs)], status="running", **config)


def test_a_training_runs_new_points_grow_the_figure_it_was_drawn_with():
    for chart in (charts.perplexity_figure, charts.grad_norm_figure):
        # past charts.WHOLE_EPOCHS (where the epoch axis ticks every epoch, and a chart that crosses it is redrawn)
        base = chart([run(1, FALLING[:3]), training(2, 11)])
        now = chart([run(1, FALLING[:3]), training(2, 18)])
        grew = growth.growth(base, now)
        assert grew is not None and growth.grown(base, grew) == now
        # only the training run's trace grew: by its 7 new epochs, all 11 drawn ones kept
        assert list(grew["traces"]) == ["run2"]
        t = grew["traces"]["run2"]
        assert t["keep"] == 11 and t["x"] == list(range(12, 19))
        assert t["y"] == traces(now)["run2"]["y"][11:]
        assert ("customdata" in t) == (chart is charts.grad_norm_figure)
        # the y-axis follows the points: its range and ticks come with them (the perplexity's bottom fell)
        assert grew["yaxis"] == {k: now["layout"]["yaxis"][k] for k in ("range", "tickvals", "ticktext")}
        assert chart is charts.grad_norm_figure or grew["yaxis"]["range"] != base["layout"]["yaxis"]["range"]
        # nothing new: nothing to add
        assert growth.growth(now, now) == {"traces": {}, "yaxis": grew["yaxis"]}


def test_a_chart_that_changes_otherwise_is_drawn_afresh():
    base = [run(1, FALLING), training(2, 5)]
    for changed in ([run(1, FALLING), training(2, 6), training(3, 1)],         # a run added
                    [training(2, 6)],                                        # a run hidden
                    [run(1, FALLING), training(2, 6, lr=1.0)],              # a label changed
                    [run(1, FALLING), run(2, EXPLODING, status="diverged")]):  # a ✕
        for chart in (charts.perplexity_figure, charts.grad_norm_figure):
            assert growth.growth(chart(base), chart(changed)) is None
    # a run's first epoch is a dot; its second makes it a line
    assert growth.growth(charts.perplexity_figure([training(1, 1)]), charts.perplexity_figure([training(1, 2)])) is None
    assert growth.growth(charts.perplexity_figure([training(1, 2)]), charts.perplexity_figure([training(1, 3)]))
    # another language, another projector: another figure
    assert growth.growth(charts.perplexity_figure(base, lang="en"), charts.perplexity_figure(base, lang="zh")) is None
    assert growth.growth(charts.perplexity_figure(base), charts.perplexity_figure(base, charts.PRESENT)) is None


def test_a_long_run_is_thinned_to_at_most_max_points_and_still_grows():
    for n in (charts.MAX_POINTS, charts.MAX_POINTS + 1, 1000, 1001, 5000):
        kept = charts.thin(list(range(n)))
        assert len(kept) <= charts.MAX_POINTS and kept[0] == 0 and kept[-1] == n - 1
        steps = {b - a for a, b in zip(kept, kept[1:-1])}
        assert len(steps) <= 1, steps  # evenly spread: one stride, then the newest
        assert n <= charts.MAX_POINTS or len(kept) > charts.MAX_POINTS // 2  # not thinner than it must be
    base = charts.perplexity_figure([training(1, 1001)])
    assert len(traces(base)["run1"]["x"]) <= charts.MAX_POINTS
    for n in (1002, 1003, 1010):  # the newest point replaced, the stride's points added
        now = charts.perplexity_figure([training(1, n)])
        grew = growth.growth(base, now)
        assert grew is not None and growth.grown(base, grew) == now
        (t,) = grew["traces"].values()
        assert t["keep"] >= len(traces(base)["run1"]["x"]) - 1 and len(t["x"]) <= n - 1001 + 1


class TrainingSession(FakeSession):
    """A session whose runs change: its state key follows their epochs and status."""

    def state_key(self) -> tuple:
        return tuple((v.number, v.status, len(v.history)) for v in self._views)


def test_the_page_is_sent_one_figure_while_a_run_trains_and_its_new_points(monkeypatch):
    monkeypatch.setattr(renders, "REDRAW_AFTER", 12)
    session = TrainingSession([run(1, FALLING), training(2, 3)])
    look = renders.Renders()
    ppl, grad, points = look.parts(session, charts.NORMAL)
    drawn = json.loads(ppl["plot"])
    base = drawn["layout"].pop("meta")["base"]
    assert drawn == charts.perplexity_figure(session.views())
    assert points["ppl-plot"] == {"base": base, "traces": {}, "yaxis": {}} and points["grad-plot"]["traces"] == {}
    for epochs in range(4, 4 + renders.REDRAW_AFTER):
        session._views[1] = training(2, epochs)
        again, grad_again, points = look.parts(session, charts.NORMAL)
        # the same figure, the very payload (Gradio sends a page nothing of it), and the points since it was drawn
        assert again is ppl and grad_again is grad and points["ppl-plot"]["base"] == base
        for name, figure in zip(renders.CHARTS, charts.figures(session.views())):
            drawn = json.loads((ppl, grad)[renders.CHARTS.index(name)]["plot"])
            drawn["layout"].pop("meta")
            assert growth.grown(drawn, points[name]) == figure
    # grown by REDRAW_AFTER points: drawn afresh
    session._views[1] = training(2, 4 + renders.REDRAW_AFTER)
    fresh, _, points = look.parts(session, charts.NORMAL)
    assert fresh is not ppl and points["ppl-plot"]["traces"] == {} and points["ppl-plot"]["base"] != base
    # nothing trains any more: the chart is one figure again, as API clients read it
    session._views[1] = run(2, [900 / (1 + 0.3 * i) + 9 for i in range(5)])
    last, _, points = look.parts(session, charts.NORMAL)
    figure = json.loads(last["plot"])
    assert figure["layout"].pop("meta")["base"] == points["ppl-plot"]["base"]
    assert figure == charts.perplexity_figure(session.views()) and points["ppl-plot"]["traces"] == {}


def test_with_growth_off_every_change_draws_the_charts_afresh(monkeypatch):  # how bench/browser.py compares
    monkeypatch.setenv(renders.GROWTH, "off")
    session = TrainingSession([training(1, 3)])
    look = renders.Renders()
    first = look.parts(session, charts.NORMAL)[0]
    session._views[0] = training(1, 4)
    second, _, points = look.parts(session, charts.NORMAL)
    assert second != first and points["ppl-plot"]["traces"] == {}


def test_a_held_out_text_is_dashed_and_a_change_is_marked_on_both_charts():
    import dataclasses

    from charrnn.events import Change
    from demo import render

    view = run(2, FALLING[:8], status="running")
    held = [dataclasses.replace(e, val_perplexity=e.perplexity * 1.5) for e in view.history]
    view = dataclasses.replace(view, history=held, paused=True,
                               changes=(Change(3.5, 3, "lr", 100.0, 10.0), Change(3.5, 3, "clip_theta", 0.01, None)))
    ppl, grad = charts.figures([view], lang="en")
    dashed = traces(ppl)["held2"]
    assert dashed["line"]["dash"] == "dash" and dashed["y"] == [charts.rounded(e.val_perplexity) for e in held]
    assert dashed["legendgroup"] == traces(ppl)["run2"]["legendgroup"] and not dashed["showlegend"]
    assert ppl["layout"]["title"]["text"] == "perplexity (dashed: held out)"
    # the axis spans the held-out curve too (its top is above the training curve's)
    assert 10 ** ppl["layout"]["yaxis"]["range"][1] >= max(dashed["y"])
    for figure in (ppl, grad):  # one mark for the two changes made together, on both charts
        (mark,) = [s for s in figure["layout"]["shapes"] if s["xref"] == "x"]
        assert mark["x0"] == mark["x1"] == 3.5 and mark["line"]["dash"] == "dot"
        assert "lr 100 → 10, θ 0.01 → off" in [a["text"] for a in figure["layout"]["annotations"]]
    status = render.status_line(view, "en")
    assert status.startswith("⏸") and "**paused**" in status and "held-out perplexity" in status


def test_the_status_line_says_when_a_model_memorises_its_text():
    import dataclasses

    from demo import render

    train = [9.0, 5.0, 3.0, 1.9, 1.5, 1.3]
    held = [60.0, 50.0, 52.0, 58.0, 70.0, 90.0]  # lowest at epoch 2, then rising to 1.8 times it
    view = run(1, train, status="running")
    view = dataclasses.replace(view, history=[dataclasses.replace(e, val_perplexity=v)
                                              for e, v in zip(view.history, held)])
    assert render.memorising(view) == ("1.30", "50.000", 2, "90.000")
    assert "memorising the text" in render.status_line(view, "en")
    assert "模型在背诵文本" in render.status_line(view, "zh")
    steady = dataclasses.replace(view, history=view.history[:2])  # its held-out perplexity still falling
    assert render.memorising(steady) is None
