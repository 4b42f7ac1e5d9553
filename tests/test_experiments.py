"""charrnn.experiments: a class's experiment in the library: students join, train their own values of the free
settings, and appear in the class's table with their own numbers; what they may not change is refused."""
from __future__ import annotations

import math

import pytest

from charrnn import Trainer
from charrnn.events import EpochEnd
from charrnn.experiments import JOINS_PER_MINUTE, ExperimentError, Free
from charrnn.lab import Lab, Limits


@pytest.fixture
def lab():
    lab = Lab(max_runs=8, limits=Limits(busy_runs=100))
    yield lab
    lab.shutdown()


@pytest.fixture
def opened(lab, tiny_config):
    """A teacher's session with an experiment on the learning rate (0.1 to 100) of 3 epochs."""
    teacher = lab.session("teacher")
    experiment = lab.open_experiment(teacher, "which learning rate trains best?", [Free.of("lr", 0.1, 100)],
                                     tiny_config(epochs=5), epochs=3)
    return teacher, experiment


def student(lab, name: str, code: str):
    session = lab.session(f"page-{name}")
    lab.join(session, code, name)
    return session


def test_three_students_three_learning_rates_each_with_their_own_numbers(lab, opened, tiny_corpus, tiny_config):
    teacher, experiment = opened
    rates = {"ann": 0.5, "bo": 2.0, "cy": 8.0}
    runs = {}
    for name, lr in rates.items():
        s = student(lab, name, teacher.membership.code.lower().replace("-", ""))  # the code as typed
        runs[name] = s.start(Trainer(tiny_config(lr=lr, epochs=99), tiny_corpus))
    for run in runs.values():
        assert run.wait(60)
    table = {e["nickname"]: e for e in experiment.class_runs()}
    assert set(table) == set(rates)
    for name, lr in rates.items():
        alone = Trainer(tiny_config(lr=lr, epochs=3), tiny_corpus)  # the same run, trained alone in this thread
        expected = [e.perplexity for e in alone.run() if isinstance(e, EpochEnd)]
        entry = table[name]
        assert entry["settings"] == {"lr": lr} and entry["epoch"] == entry["epochs"] == 3  # the experiment's epochs
        assert entry["status"] == "finished" and entry["latest"]
        # the same computation in the same order: equal to float32 rounding (relative 1e-6 > 2**-23 ≈ 1.2e-7 per op)
        assert entry["perplexities"] == pytest.approx(expected, rel=1e-6)
        assert entry["perplexity"] == entry["perplexities"][-1]
    # three learning rates, three different curves
    assert len({round(table[n]["perplexity"], 6) for n in rates}) == 3


def test_a_student_cannot_change_a_fixed_setting_or_leave_the_range(lab, opened, tiny_corpus, tiny_config):
    teacher, experiment = opened
    s = student(lab, "ann", teacher.membership.code)
    with pytest.raises(ExperimentError, match=r"num_hiddens: the teacher fixed it at 16"):
        s.start(Trainer(tiny_config(num_hiddens=32), tiny_corpus))
    with pytest.raises(ExperimentError, match=r"lr: choose a value from 0.1 to 100"):
        s.start(Trainer(tiny_config(lr=1000.0), tiny_corpus))
    assert s.all_runs() == [] and experiment.class_runs() == []  # nothing started, nothing recorded
    run = s.start(Trainer(tiny_config(lr=1.0, temperature=0.5), tiny_corpus))  # how samples are written is free
    assert run.wait(60)
    with pytest.raises(RuntimeError, match="keeps its lr"):
        s.adjust(lr=5.0)
    with pytest.raises(RuntimeError, match="every run trains 3 epochs"):
        s.go_on(2)


def test_a_removed_student_stops_disappears_and_cannot_come_back(lab, opened, tiny_corpus, tiny_config):
    teacher, experiment = opened
    s = student(lab, "ann", teacher.membership.code)
    other = student(lab, "bo", teacher.membership.code)
    run = s.start(Trainer(tiny_config(lr=1.0, epochs=10_000), tiny_corpus))
    experiment.set_highlight("ANN")
    assert experiment.class_runs()[0]["highlight"]
    experiment.remove("ann")
    assert run.wait(30) and run.view().status == "stopped"
    assert [e["nickname"] for e in experiment.class_runs()] == [] and experiment.highlight is None
    assert [st.nickname for st in experiment.students()] == ["bo"]
    with pytest.raises(ExperimentError, match="removed you"):
        s.start(Trainer(tiny_config(lr=1.0), tiny_corpus))
    with pytest.raises(ExperimentError, match="removed you"):
        lab.join(s, teacher.membership.code, "ann2")
    assert other.membership.joined is experiment  # the others go on


def test_nicknames_are_checked_and_unique_within_the_class(lab, opened):
    teacher, experiment = opened
    code = teacher.membership.code
    student(lab, "Ann", code)
    for bad, message in (("", "type a nickname"), ("   ", "type a nickname"), ("x" * 21, "at most 20"),
                         ("ann", "is taken"), ("a\x00b", "control characters")):
        with pytest.raises(ExperimentError, match=message):
            lab.join(lab.session(f"other-{bad!r}"), code, bad)
    markup = "<b>bold</b>&amp;"
    student(lab, markup, code)  # kept as typed: the page shows it escaped (demo.class_chart)
    assert [s.nickname for s in experiment.students()] == ["Ann", markup]
    with pytest.raises(ExperimentError, match="your own experiment"):
        lab.join(teacher, code, "teach")


def test_joining_an_unknown_code_is_refused_and_paced(lab, opened):
    page = lab.session("page")
    for _ in range(JOINS_PER_MINUTE):
        with pytest.raises(ExperimentError, match="unknown, has ended or runs no experiment"):
            lab.join(page, "ZZZZ-ZZZZ", "ann")
    with pytest.raises(ExperimentError, match="too many tries"):
        lab.join(page, opened[0].membership.code, "ann")  # even the right code, until a minute has passed
    assert page.membership.joined is None


def test_another_class_sees_none_of_it(lab, opened, tiny_corpus, tiny_config):
    teacher, experiment = opened
    other_teacher = lab.session("other-teacher")
    other = lab.open_experiment(other_teacher, "RNN or GRU?", [Free.of("model", choices=("scratch", "scratch-gru"))],
                                tiny_config(), epochs=2)
    s = student(lab, "ann", teacher.membership.code)
    assert s.start(Trainer(tiny_config(lr=1.0), tiny_corpus)).wait(60)
    assert other.class_runs() == [] and other.students() == []
    assert lab.experiment(other_teacher.membership.code) is other
    assert lab.experiment(teacher.membership.code) is experiment
    with pytest.raises(ExperimentError, match="join the experiment first"):  # a student of one class only
        other.admit(s.key, tiny_config())


def test_ending_keeps_the_results_and_closing_forgets_everything(lab, opened, tiny_corpus, tiny_config):
    teacher, experiment = opened
    s = student(lab, "ann", teacher.membership.code)
    run = s.start(Trainer(tiny_config(lr=1.0, epochs=10_000), tiny_corpus))
    experiment.end()
    assert run.wait(30) and run.view().status == "stopped"
    assert [e["nickname"] for e in experiment.class_runs()] == ["ann"]  # the teacher's page keeps the results
    with pytest.raises(ExperimentError, match="has ended"):
        s.start(Trainer(tiny_config(lr=1.0), tiny_corpus))
    with pytest.raises(ExperimentError, match="has ended"):
        lab.join(lab.session("late"), teacher.membership.code, "late")
    code = teacher.membership.code
    lab.close(teacher.key)
    assert lab.experiment(code) is None and lab.by_class(code) is None
    assert experiment.class_runs() == [] and experiment.students() == []


def test_the_teachers_ranges_are_checked(tiny_config):
    with pytest.raises(ExperimentError, match="within 0.0001 to 10000"):
        Free.of("lr", 0.0, 10)
    with pytest.raises(ExperimentError, match="at least two"):
        Free.of("model", choices=("scratch",))
    with pytest.raises(ExperimentError, match="cannot be given 'seed'"):
        Free.of("seed")
    assert Free.of("num_hiddens", 7.5, 64.9) == Free("num_hiddens", 8.0, 64.0)
    assert Free.of("clip", 0.001, 1).problem(None) == ""  # clipping off is a student's choice
    assert math.isclose(Free.of("lr").low, 1e-4)
