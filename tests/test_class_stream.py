"""demo.class_stream: the class board rendered once per change and look for every page of the class, its chart
growing by the new points while runs train (what Gradio then sends each page is the points added)."""
from __future__ import annotations

import json

import pytest

from charrnn import Trainer
from charrnn.experiments import Free
from charrnn.lab import Lab, Limits
from demo import charts, growth
from demo.class_stream import CLASS_RENDERS, class_outputs
from demo.experiment_panel import CLASS_PLOT


@pytest.fixture
def lab():
    lab = Lab(max_runs=8, limits=Limits(busy_runs=100))
    yield lab
    lab.shutdown()


def test_the_board_is_rendered_once_per_change_and_grows_by_its_new_points(lab, tiny_corpus, tiny_config):
    teacher = lab.session("teacher")
    experiment = lab.open_experiment(teacher, "which lr?", [Free.of("lr", 0.1, 100)], tiny_config(), epochs=6)
    students = []
    for name, lr in (("ann", 0.5), ("bo", 4.0)):
        s = lab.session(name)
        lab.join(s, experiment.code, name)
        students.append(s)
    trainers = [Trainer(tiny_config(lr=lr, epochs=6), tiny_corpus) for lr in (0.5, 4.0)]
    runs = []
    for s, trainer in zip(students, trainers):
        runs.append(s.start(trainer))
        runs[-1].pause()  # held at its first minibatch: the board's numbers stay put while it is read
    for run in runs:
        run.wait_paused(30)
        run.step(epochs=2)  # two epochs: each student's curve is a line (a first point alone is a dot)
    for run in runs:
        run.wait_paused(30)
    first = class_outputs(teacher, charts.NORMAL, "both")
    renders = CLASS_RENDERS.of(teacher)
    before = type(renders).total_renders
    for _ in range(30):  # thirty pages of one look, nothing changed: the same outputs, no render
        assert class_outputs(teacher, charts.NORMAL, "both") is first
    assert type(renders).total_renders == before
    for run in runs:  # one more epoch each
        run.step(epochs=1)
    for run in runs:
        run.wait_paused(30)
    grown = class_outputs(teacher, charts.NORMAL, "both")
    assert type(renders).total_renders == before + 1
    points = grown[4][CLASS_PLOT]
    # grown: the chart is the one the pages drew, and the points carry only what is new (one epoch per student)
    assert grown[1] is first[1] and points["base"] == first[4][CLASS_PLOT]["base"]
    assert sorted(points["traces"]) == ["s1r1", "s2r1"]
    for trace in points["traces"].values():
        assert trace["keep"] == 2 and trace["x"] == [3]
    for run in runs:
        run.resume()
        assert run.wait(60)
    done = class_outputs(teacher, charts.NORMAL, "both")
    drawn = done[1]
    # nothing trains any more: one whole figure, with each student's six epochs
    assert done[4][CLASS_PLOT]["traces"] == {}
    figure = json.loads(drawn["plot"])
    curves = [t for t in figure["data"] if str(t.get("uid", "")).startswith("s")]
    assert sorted(len(t["x"]) for t in curves if t.get("x")) == [6, 6]
    assert growth.growth(figure, figure) == {"traces": {}, "yaxis": {k: v for k, v in figure["layout"]["yaxis"].items()
                                                                     if k in growth.FOLLOWING}}
