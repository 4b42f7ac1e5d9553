"""The class chart of an experiment: colours fixed by the teacher's range, nicknames escaped everywhere, the
table ranked best first with the diverged last, the CSV exact, and a chart that grows while the class trains."""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

import plotly.graph_objects as go
import pytest
from plotly.colors import sample_colorscale

from demo import charts, class_chart, class_export, growth
from demo.render import compact_json

V = 1027
NASTY = "<img src=x onerror=alert(1)>"
STYLES = (charts.NORMAL, charts.PRESENT, charts.PRESENT_SHORT, charts.PHONE)


@dataclass(frozen=True)
class Free:
    """charrnn.experiments.Free as the chart sees it."""
    name: str
    low: float | None = None
    high: float | None = None
    choices: tuple = ()

    @property
    def scale(self) -> str:
        return "log" if self.name in ("lr", "clip") else "linear" if self.name == "num_hiddens" else "choice"


LR = Free("lr", 0.1, 100.0)
FREES = (LR, Free("clip", 0.01, 10.0), Free("model", choices=("scratch-rnn", "scratch-gru", "nn.LSTM")),
         Free("num_hiddens", 32, 512), Free("sampling", choices=("random", "sequential")))


def entry(id: int, ppl: list[float], status: str = "training", run: int = 1, latest: bool = True,
          highlight: bool = False, epochs: int = 60, nickname: str | None = None, **settings) -> dict:
    return {"id": id, "nickname": nickname if nickname is not None else f"student {id}",
            "settings": settings or {"lr": 1.0}, "epoch": len(ppl), "epochs": epochs,
            "perplexity": ppl[-1] if ppl else None, "perplexities": list(ppl), "status": status, "run": run,
            "latest": latest, "highlight": highlight, "vocab_size": V}


def falling(n: int, start: float = 900.0) -> list[float]:
    return [start / (1 + i) + 9 for i in range(n)]


EXPLODING = [950.0, 2e3, 6e3, 4e4, 1e9, 1e30, 1e300]


def runs(figure: dict) -> dict[str, dict]:
    """The figure's student traces (lines and ✕) by uid."""
    return {t["uid"]: t for t in figure["data"] if t["uid"][0] in "sx" and t["uid"][1].isdigit()}


def test_colours_follow_the_teachers_range_on_a_log_scale():
    entries = [entry(1, falling(3), lr=0.1), entry(2, falling(3), lr=100.0), entry(3, falling(3), lr=10.0)]
    figure = class_chart.class_figure(entries, [LR], "which lr?")
    t = runs(figure)
    low, high = class_chart.SCALE[0][1], class_chart.SCALE[-1][1]
    assert t["s1r1"]["line"]["color"] == low and t["s2r1"]["line"]["color"] == high
    middle = t["s3r1"]["line"]["color"]
    assert middle == sample_colorscale(class_chart.SCALE, [2 / 3])[0] and middle not in (low, high)
    # lr 1 sits a third of the way: log10, not the values themselves (1 would be next to 0.1 on a linear scale)
    assert class_chart.color_of(entry(4, [], lr=1.0), LR) == sample_colorscale(class_chart.SCALE, [1 / 3])[0]
    # the colour bar spans the teacher's range, its ticks the real values
    bar = next(t for t in figure["data"] if t["uid"] == "key")["marker"]
    assert (bar["cmin"], bar["cmax"]) == pytest.approx((-1.0, 2.0)) and bar["showscale"] is True
    assert bar["colorbar"]["ticktext"] == ["0.1", "1", "10", "100"]
    assert bar["colorbar"]["tickvals"] == pytest.approx([-1, 0, 1, 2])
    # a new student with a value nobody had does not change anyone's colour
    more = class_chart.class_figure([*entries, entry(5, falling(2), lr=0.5)], [LR], "which lr?")
    assert all(runs(more)[u]["line"]["color"] == t[u]["line"]["color"] for u in ("s1r1", "s2r1", "s3r1"))
    # outside the range: clamped to its ends
    assert class_chart.color_of(entry(6, [], lr=1e4), LR) == high


def test_choices_get_distinct_colours_and_a_legend_entry_each():
    model = FREES[2]
    entries = [entry(i + 1, falling(3), model=m) for i, m in enumerate(model.choices)]
    figure = class_chart.class_figure(entries, [model], "which model?")
    colours = [runs(figure)[f"s{i + 1}r1"]["line"]["color"] for i in range(3)]
    assert len(set(colours)) == 3
    legend = [t for t in figure["data"] if t.get("showlegend")]
    assert [t["name"] for t in legend] == list(model.choices)
    for t, c in zip(legend, colours):
        assert t["line"]["color"] == c
    groups = {runs(figure)[f"s{i + 1}r1"]["legendgroup"] for i in range(3)}
    assert groups == {t["legendgroup"] for t in legend}
    result = class_chart.results_figure(entries, [model])
    assert result["data"][0]["marker"]["color"] == colours and result["layout"]["xaxis"]["type"] == "category"


def test_clipping_off_is_neutral_and_theta_is_coloured():
    clip = FREES[1]
    entries = [entry(1, falling(3), clip=True, theta=0.01), entry(2, falling(3), clip=False, theta=None),
               entry(3, falling(3), clip=True, theta=10.0)]
    t = runs(class_chart.class_figure(entries, [clip], "θ?"))
    assert t["s1r1"]["line"]["color"] == class_chart.SCALE[0][1] and t["s3r1"]["line"]["color"] == \
        class_chart.SCALE[-1][1]
    assert t["s2r1"]["line"]["color"] == class_chart.NEUTRAL
    table = class_chart.table_html(entries, [clip], "en")
    assert "θ 0.01" in table and ">off<" in table and ">关<" in class_chart.table_html(entries, [clip], "zh")


def test_nicknames_and_the_question_are_escaped_everywhere():
    entries = [entry(1, falling(4), nickname=NASTY, highlight=True),
               entry(2, EXPLODING, "diverged", nickname=NASTY + "%{y}"),
               entry(1, falling(2), run=0, latest=False, nickname=NASTY)]
    for free in ([LR], [FREES[2]], []):
        for figure in (class_chart.class_figure(entries, free, NASTY), class_chart.results_figure(entries, free)):
            text = compact_json(figure)
            assert NASTY not in text and "<img" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
            if free:  # a nickname is no hover template: its % is an entity
                assert "&gt;&#37;{y}" in text and "&gt;%{y}" not in text
        table = class_chart.table_html(entries, free)
        assert NASTY not in table and "<img" not in table and "&lt;img" in table
    page = class_export.html_text(entries, [LR], NASTY)
    assert NASTY not in page and "<img" not in page


def test_the_table_ranks_best_first_with_none_and_the_diverged_last():
    entries = [entry(1, [50.0, math.nan], "diverged"), entry(2, [80.0, 40.0]), entry(3, [], "queued"),
               entry(4, [30.0, math.inf]), entry(5, [90.0, 20.0], highlight=True), entry(6, [60.0, 55.0], "stopped"),
               entry(7, [10.0], latest=False, run=0)]
    table = class_chart.table_html(entries, [LR], "en")
    order = [int(x.split("</td>")[0].split("student ")[1]) for x in table.split("</span> ")[1:]]
    assert order == [5, 2, 6, 3, 1, 4, 7], order  # by perplexity; no epoch yet; nan, inf; the older run last
    assert "<tr class='highlight'><td class='num'>1</td>" in table
    assert ">20<" in table and ">40<" in table and ">—<" in table and ">∞<" in table and ">NaN<" in table
    assert table.count("class='older'") == 1 and "class-table" in table
    assert "训练中" in class_chart.table_html(entries, [LR], "zh") and "training" not in \
        class_chart.table_html(entries, [LR], "zh")
    hidden = class_chart.table_html(entries, [LR], "en", older="hidden")
    assert "class='older'" not in hidden and hidden.count("<tr") == 7  # the head and six latest runs
    assert class_chart.perplexity_text(1234.5) == "1,230" and class_chart.perplexity_text(8.345) == "8.35"
    assert class_chart.perplexity_text(2.5e7) == "2.5e+07"


def test_the_highlighted_run_is_thicker_and_on_top():
    entries = [entry(1, falling(3)), entry(2, falling(3), highlight=True), entry(3, falling(3))]
    for style in STYLES:
        figure = class_chart.class_figure(entries, [LR], "q", style)
        lines = [t for t in figure["data"] if t["uid"].startswith("s")]
        assert lines[-1]["uid"] == "s2r1"
        assert lines[-1]["line"]["width"] == pytest.approx(3 * style.line)
        assert all(t["line"]["width"] == style.line for t in lines[:-1])
    marks = class_chart.results_figure(entries, [LR])["data"][0]["marker"]["size"]
    assert marks[1] > marks[0] == marks[2]


def test_older_runs_are_grey_or_left_out():
    entries = [entry(1, falling(3), lr=10.0), entry(1, falling(5), run=0, latest=False, lr=0.1)]
    grey = class_chart.class_figure(entries, [LR], "q", older="grey")
    old = runs(grey)["s1r0"]
    assert old["line"]["color"] == class_chart.OLDER and old["line"]["width"] < runs(grey)["s1r1"]["line"]["width"]
    assert [t["uid"] for t in grey["data"]].index("s1r0") < [t["uid"] for t in grey["data"]].index("s1r1")
    hidden = class_chart.class_figure(entries, [LR], "q", older="hidden")
    assert "s1r0" not in runs(hidden) and "s1r1" in runs(hidden)
    assert not any(t["uid"] == "key-older" for t in hidden["data"])
    assert len(class_chart.results_figure(entries, [LR])["data"][0]["x"]) == 1  # the latest run only
    with pytest.raises(ValueError):
        class_chart.class_figure(entries, [LR], "q", older="gone")


def test_a_diverged_run_is_cut_with_a_cross_inside_the_range():
    entries = [entry(1, falling(10)), entry(2, EXPLODING, "diverged"), entry(3, [900.0, 800.0, math.inf])]
    figure = class_chart.class_figure(entries, [LR], "q", lang="en")
    low, high = figure["layout"]["yaxis"]["range"]
    assert math.log10(V) < high <= math.log10(V) + 1 and low <= math.log10(min(falling(10)))
    t = runs(figure)
    assert t["s2r1"]["x"] == [1, 2, 3, 4] and t["s2r1"]["y"][-1] == 4e4  # drawn to its first point above 10 V
    mark = t["x2r1"]
    assert mark["marker"]["symbol"] == "x" and 3 < mark["x"][0] < 4
    assert 10 ** low < mark["y"][0] <= 10 ** high and mark["y"][0] == pytest.approx(10 ** high, rel=3e-3)
    assert "diverged at epoch 8" in mark["hovertemplate"] and "off the chart from epoch 4" in mark["hovertemplate"]
    # an infinite perplexity: its line goes up through the top edge, the ✕ between its last two epochs
    assert t["s3r1"]["x"] == [1, 2, 3] and t["s3r1"]["y"][-1] > 10 ** high and 2 <= t["x3r1"]["x"][0] <= 3
    assert 10 ** low < t["x3r1"]["y"][0] <= 10 ** high
    assert "NaN" not in compact_json(figure) and "Infinity" not in compact_json(figure)
    results = class_chart.results_figure(entries, [LR], lang="en")
    cross = next(t for t in results["data"] if t["uid"] == "diverged")
    rlow, rhigh = results["layout"]["yaxis"]["range"]
    assert cross["marker"]["symbol"] == "x" and len(cross["x"]) == 2
    assert all(10 ** rlow < y <= 10 ** rhigh for y in cross["y"])
    assert "NaN" not in compact_json(results) and "Infinity" not in compact_json(results)


def test_every_figure_is_valid_plotly():
    entries = [entry(1, falling(12), highlight=True, lr=10.0, clip=True, theta=0.1, model="scratch-gru",
                     num_hiddens=256, sampling="random"),
               entry(2, EXPLODING, "diverged", lr=100.0, clip=False, theta=None, model="nn.LSTM", num_hiddens=32,
                     sampling="sequential"),
               entry(3, [], "queued", lr=0.1, clip=True, theta=10.0, model="scratch-rnn", num_hiddens=512,
                     sampling="random"),
               entry(1, [400.0], run=0, latest=False, lr=1.0, clip=True, theta=1.0, model="scratch-rnn",
                     num_hiddens=64, sampling="random")]
    for free in [[f, *(g for g in FREES if g is not f)] for f in FREES] + [[]]:
        for style in STYLES:
            for lang in ("both", "zh", "en"):
                for shown in (entries, [], entries[:1]):
                    go.Figure(class_chart.class_figure(shown, free, "which one trains best?", style, lang))
                    go.Figure(class_chart.results_figure(shown, free, style, lang))
                    go.Figure(class_chart.class_figure(shown, free, "q", style, lang, older="hidden"))
    empty = class_chart.class_figure([], [], "")
    assert "Waiting for the students' runs" in compact_json(empty) and "等待学生加入并训练" in compact_json(empty)
    zh = class_chart.class_figure([], [LR], "", lang="zh")
    assert "等待学生加入" in compact_json(zh) and "Waiting" not in compact_json(zh)
    assert class_chart.class_figure([], [], "", charts.PRESENT)["layout"]["height"] >= charts.PRESENT.height


def test_the_class_chart_grows_by_its_points_while_the_class_trains():
    def class_at(n: int, older: str = "grey") -> list[dict]:
        return [entry(1, falling(n), lr=0.1), entry(2, falling(n, 400.0), highlight=True, lr=10.0),
                entry(3, EXPLODING, "diverged", lr=100.0), entry(4, falling(n + 3, 2000.0), lr=1.0),
                entry(4, falling(7), "stopped", run=0, latest=False, lr=3.0)]
    for free in ([LR], [FREES[2]], [FREES[1], LR]):
        for older in ("grey", "hidden"):
            old = class_chart.class_figure(class_at(3), free, "which?", charts.PRESENT, "both", older)
            new = class_chart.class_figure(class_at(4), free, "which?", charts.PRESENT, "both", older)
            grew = growth.growth(old, new)
            assert grew is not None and growth.grown(old, grew) == new
            assert set(grew["traces"]) >= {"s1r1", "s2r1", "s4r1"}
    old = class_chart.class_figure(class_at(3), [LR], "which?")
    # a student joins: drawn afresh
    assert growth.growth(old, class_chart.class_figure([*class_at(4), entry(9, [500.0])], [LR], "which?")) is None
    changed = class_at(4)
    changed[0]["settings"] = {"lr": 1.0}  # a value changed (a new colour)
    assert growth.growth(old, class_chart.class_figure(changed, [LR], "which?")) is None


def test_the_csv_gives_back_exactly_the_numbers():
    tricky = 'Ann, "the best"\nsecond line'
    entries = [entry(1, [123.456789012345, 1 / 3, math.inf], "diverged", nickname=tricky, clip=True, theta=0.01,
                     lr=10.0),
               entry(2, [], "queued", clip=False, theta=None, lr=0.1),
               entry(1, [1e300, math.nan], run=0, latest=False, nickname=tricky, clip=True, theta=1.0, lr=100.0)]
    rows = list(csv.DictReader(io.StringIO(class_export.csv_text(entries, [FREES[1], LR]))))
    assert list(rows[0]) == ["nickname", "run", "latest", "clip", "theta", "lr", "epoch", "perplexity", "status"]
    assert len(rows) == 2 + 3 + 1
    by_run = [r for r in rows if r["nickname"] == tricky and r["run"] == "1"]
    assert [float(r["perplexity"]) for r in by_run] == [123.456789012345, 1 / 3, math.inf]
    assert [int(r["epoch"]) for r in by_run] == [1, 2, 3] and by_run[0]["latest"] == "True"
    assert float(by_run[0]["theta"]) == 0.01 and float(by_run[0]["lr"]) == 10.0
    older = [r for r in rows if r["run"] == "0"]
    assert float(older[0]["perplexity"]) == 1e300 and math.isnan(float(older[1]["perplexity"]))
    assert older[0]["latest"] == "False"
    waiting = [r for r in rows if r["nickname"] == "student 2"]
    assert len(waiting) == 1 and waiting[0]["epoch"] == "" and waiting[0]["perplexity"] == ""
    assert waiting[0]["clip"] == "False" and waiting[0]["theta"] == "" and waiting[0]["status"] == "queued"


def test_the_html_page_holds_both_charts():
    entries = [entry(1, falling(5), lr=1.0), entry(2, EXPLODING, "diverged", lr=100.0)]
    page = class_export.html_text(entries, [LR], "Which <lr> & why?", "en")
    assert page.count("<div class='chart'>") == 2 and page.count('class="plotly-graph-div"') == 2
    assert page.count('"uid":"key"') + page.count('"uid": "key"') == 1  # the class chart's colour bar
    assert "Which <lr>" not in page and "Which &lt;lr&gt; &amp; why?" in page
