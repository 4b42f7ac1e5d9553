"""charrnn.export: a session's runs as CSV, JSON and one standalone HTML file of the charts. Each file is read back
by an independent reader (the csv module, strict json, Chromium with the network refused) and compared with the
runs it was made from: runs built by hand and one real short training run."""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import re

import pytest
from test_browser import ARTIFACTS, _need_browser, browser  # noqa: F401  (fixtures)

from charrnn import export
from charrnn.config import TrainConfig
from charrnn.events import Change, EpochEnd, Sample
from charrnn.runs import RunView
from charrnn.train import Trainer
from demo import charts

V = 1027  # the Jay Chou vocabulary (the hand-made runs')
FLOATS = ("perplexity", "grad_norm", "grad_norm_max", "clipped", "chars_per_sec", "seconds")
COLUMNS = ["run", "label", "epoch", "perplexity", "val_perplexity", "grad_norm", "grad_norm_max", "clipped",
           "chars_per_sec", "seconds", "lr", "theta"]


def epoch_end(epoch: int, perplexity: float, **fields) -> EpochEnd:
    base = dict(epochs=10, grad_norm=1 / 3, grad_norm_max=0.1 + 0.2, clipped=0.25, seconds=0.1, chars_per_sec=1e4)
    return EpochEnd(epoch=epoch, perplexity=perplexity, **{**base, **fields})


def view(number: int, history: list[EpochEnd], status: str = "finished", samples=(), changes=(),
         **config) -> RunView:
    c = TrainConfig(**config)
    return RunView(number, c.label(), c, status, "", None, history, list(samples), V, "cpu", 1.0, 1,
                   changes=tuple(changes))


LR_CHANGE = Change(at=2.5, epoch=2, name="lr", old=100.0, new=10.0)
THETA_OFF = Change(at=2.75, epoch=2, name="clip_theta", old=0.01, new=None)
# a run that recorded its lr and θ, held out a share of the text, and had its lr and then its θ changed
RECORDED = view(2, [epoch_end(1, 900.0 / 7, val_perplexity=150.0 / 7, lr=100.0, theta=0.01),
                    epoch_end(2, 300.0 / 7, val_perplexity=80.0 / 7, lr=100.0, theta=0.01),
                    epoch_end(3, 100.0 / 7, val_perplexity=70.0 / 7, lr=10.0, theta=None)],
                changes=[LR_CHANGE, THETA_OFF], samples=[Sample(3, "分开", "分开 我不能再想")])
# clipping off, and a last epoch whose loss was finite but its perplexity overflowed (and a norm came out NaN)
OVERFLOWED = view(3, [epoch_end(1, 2e3, lr=1.0), epoch_end(2, 1e300, lr=1.0),
                      epoch_end(3, math.inf, grad_norm_max=math.nan, lr=1.0)],
                  status="diverged", clip_theta=None, lr=1.0)


@pytest.fixture(scope="module")
def trained() -> RunView:
    """A real run: 3 epochs of the scratch RNN on the offline corpus, a sample of "the" after each."""
    config = TrainConfig(corpus="offline", max_chars=3000, num_hiddens=16, batch_size=8, num_steps=10, epochs=3,
                         prefixes=["the"], pred_period=1, device="cpu")
    trainer = Trainer(config)
    events = list(trainer.run())
    history = [e for e in events if isinstance(e, EpochEnd)]
    samples = [e for e in events if isinstance(e, Sample)]
    assert len(history) == 3 and samples, events
    return RunView(1, config.label(), config, events[-1].status, events[-1].message, None, history, samples,
                   len(trainer.vocab), str(trainer.device), 1.0, 1)


def same(a: float, b: float) -> bool:
    """Exactly equal (NaN equal to NaN): repr writes the shortest text that reads back as the same float, so
    a float read back from the files is bit-for-bit the one measured, and no tolerance is due."""
    return a == b or (math.isnan(a) and math.isnan(b))


def test_the_csv_reads_back_as_every_runs_epochs_exactly(trained):
    views = [trained, RECORDED, OVERFLOWED]
    text = export.csv_text(views)
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    assert reader.fieldnames == COLUMNS
    epochs = [(v, e) for v in views for e in v.history]
    assert len(rows) == len(epochs) == 9
    for row, (v, e) in zip(rows, epochs):
        assert (int(row["run"]), row["label"], int(row["epoch"])) == (v.number, v.label, e.epoch)
        for k in FLOATS:
            assert same(float(row[k]), getattr(e, k)), (v.number, e.epoch, k, row[k])
        # a run without held-out text has no val_perplexity; an epoch without a recorded lr has the run's settings
        val = row["val_perplexity"]
        assert (val == "") if e.val_perplexity is None else (float(val) == e.val_perplexity)
        lr, theta = (v.config.lr, v.config.clip_theta) if e.lr is None else (e.lr, e.theta)
        assert float(row["lr"]) == lr and ((row["theta"] == "") if theta is None else (float(row["theta"]) == theta))
    # the real run recorded no lr or θ: its rows carry its configured ones; θ off after the change is empty
    assert {(r["lr"], r["theta"]) for r in rows[:3]} == {("100.0", "0.01")}
    assert rows[5]["theta"] == "" and rows[5]["lr"] == "10.0" and rows[3]["val_perplexity"] != ""
    assert rows[-1]["perplexity"] == "inf" and rows[-1]["grad_norm_max"] == "nan"
    # what the comparison catches: the real run's numbers do not survive six significant digits
    assert any(float(f"{e.perplexity:g}") != e.perplexity for e in trained.history)
    assert export.csv_text([]) == ",".join(COLUMNS) + "\n"


def refuse(constant: str):
    raise ValueError(f"{constant} is not JSON")


def test_the_json_is_strict_and_holds_settings_history_samples_and_changes(trained):
    views = [trained, RECORDED, OVERFLOWED]
    text = export.json_text(views)
    data = json.loads(text, parse_constant=refuse)  # NaN, Infinity and -Infinity would raise
    assert (data["format"], data["version"], len(data["runs"])) == ("charrnn-runs", 1, 3)
    for run, v in zip(data["runs"], views):
        assert (run["number"], run["label"], run["status"]) == (v.number, v.label, v.status)
        assert (run["vocab_size"], run["device"]) == (v.vocab_size, v.device)
        assert TrainConfig(**run["settings"]) == v.config  # the settings make the run's config again
        assert set(run["settings"]) == {f.name for f in dataclasses.fields(TrainConfig)}
        assert len(run["history"]) == len(v.history)
        for h, e in zip(run["history"], v.history):
            assert set(h) == {f.name for f in dataclasses.fields(EpochEnd)}
            for k, value in h.items():
                want = getattr(e, k)
                # a non-finite float is its documented string; float() reads it back
                assert value is None if want is None else same(float(value), want), (v.number, e.epoch, k)
        assert run["samples"] == [{"epoch": s.epoch, "prefix": s.prefix, "text": s.text} for s in v.samples]
    assert data["runs"][0]["status"] == "finished" and data["runs"][0]["device"] == "cpu"
    assert len(data["runs"][0]["samples"]) == 3 and all(s["text"].startswith("the") for s in data["runs"][0]["samples"])
    assert data["runs"][1]["changes"] == [{"at": 2.5, "epoch": 2, "name": "lr", "old": 100.0, "new": 10.0},
                                          {"at": 2.75, "epoch": 2, "name": "clip_theta", "old": 0.01, "new": None}]
    # as recorded: a real run records the learning rate and θ each epoch ended with
    assert data["runs"][0]["changes"] == [] and data["runs"][0]["history"][0]["lr"] == trained.config.lr
    last = data["runs"][2]["history"][-1]
    assert (last["perplexity"], last["grad_norm_max"]) == ("inf", "nan")
    assert data["runs"][2]["history"][1]["perplexity"] == 1e300  # large but finite: a number
    assert "θ" in text and "分开 我不能再想" in text  # UTF-8 as it is, not \u escapes
    assert json.loads(export.json_text([])) == {"format": "charrnn-runs", "version": 1, "runs": []}


def test_file_names_say_which_runs_and_are_safe():
    def runs(*numbers):
        return [dataclasses.replace(RECORDED, number=n) for n in numbers]
    assert export.filename(runs(3), "csv") == "charrnn-run3.csv"
    assert export.filename(runs(1, 2, 3), "json") == "charrnn-runs-1-2-3.json"
    assert export.filename(runs(), "html") == "charrnn-runs.html"
    assert export.filename(runs(*range(1, 13)), "csv") == "charrnn-12-runs.csv"
    for name in (export.filename(runs(*range(1, n + 1)), "csv") for n in range(12)):
        assert re.fullmatch(r"[a-z0-9-]+\.csv", name) and len(name) < 64, name
    with pytest.raises(ValueError, match="fmt"):
        export.filename(runs(1), "../x")


# where epoch ``x`` is, halfway up the first chart's plot, in the page's pixels
HOVER_AT = """(x) => { const g = document.querySelector('.js-plotly-plot'), fl = g._fullLayout,
    r = g.getBoundingClientRect();
    return [r.left + fl._size.l + fl.xaxis.l2p(x), r.top + fl._size.t + fl._size.h / 2]; }"""


@pytest.mark.browser
def test_the_html_export_opens_offline_with_both_charts(browser, trained, tmp_path):  # noqa: F811
    _need_browser()
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    figures = list(charts.figures([trained, RECORDED, OVERFLOWED], lang="en"))  # the page's two charts
    text = export.html_text(figures, "charrnn · runs 1, 2, 3")
    # plotly.js embedded once: its banner once, and the file one copy of it (4.6 MB) plus the charts' data
    assert text.count(f"plotly.js v{get_plotlyjs_version()}") == 1
    assert len(get_plotlyjs()) < len(text) < len(get_plotlyjs()) + 500_000
    path = tmp_path / "runs.html"
    path.write_text(text, encoding="utf-8")

    refused = []

    def local_only(route):
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.route("**/*", local_only)
    page = context.new_page()
    page.goto(path.as_uri())
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length === 2 && "
                           "[...document.querySelectorAll('.js-plotly-plot')].every(g => g._fullLayout)",
                           timeout=30_000)
    drawn = page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')].map(g => "
                          "({uids: g.data.map(t => t.uid), title: g.layout.title.text, "
                          "lines: g.querySelectorAll('.scatterlayer .trace').length}))")
    assert [d["uids"] for d in drawn] == [[t["uid"] for t in f["data"]] for f in figures]
    assert all(len(d["uids"]) > 0 and d["lines"] == len(d["uids"]) for d in drawn), drawn
    assert [d["title"] for d in drawn] == [f["layout"]["title"]["text"] for f in figures]
    assert page.title() == "charrnn · runs 1, 2, 3" and refused == []
    # interactive: the mouse over epoch 2 of the perplexity chart (plotly shows what is within 20 px of it)
    x, y = page.evaluate(HOVER_AT, 2)
    page.mouse.move(x, y, steps=5)
    page.wait_for_function("() => document.querySelector('.js-plotly-plot .hoverlayer').childElementCount > 0",
                           timeout=10_000)
    page.screenshot(path=str(ARTIFACTS / "export-html.png"), full_page=True)
    context.close()
