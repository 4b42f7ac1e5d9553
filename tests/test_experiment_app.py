"""A class experiment through the API (gradio_client against the app in-process): the teacher opens it, three
students join and train three learning rates, and ``/class_runs`` gives each their own numbers; what a student may
not change, a removed student, another class's code and a closed class are each refused with a message."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
pytest.importorskip("gradio")
from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError, ValidationError  # noqa: E402

from conftest import wait_for  # noqa: E402

LAB_OPTIONS = dict(max_runs=8, idle_seconds=60)  # the module's server (conftest.py's ``server`` fixture)
# the teacher's form: a small model on the offline corpus, a few epochs of a fraction of a second each
TEACHER = dict(corpus="offline", max_chars=3000, model="scratch", sampling="random", lr=1.0, clip=True, theta=1.0,
               num_hiddens=32, batch_size=8, num_steps=10, prefixes="the", pred_period=50)


def open_experiment(url: str, epochs: int = 4, **extra) -> tuple[Client, dict]:
    teacher = Client(url, verbose=False)
    opened = teacher.predict(question="Which lr <b>trains</b> best?", free=["lr"], epochs=epochs, settings=TEACHER,
                             ranges={"lr": [0.1, 100]}, api_name="/experiment", **extra)
    return teacher, opened


def joined(url: str, code: str, nickname: str) -> Client:
    client = Client(url, verbose=False)
    about = client.predict(code=code, nickname=nickname, api_name="/join")
    assert about["nickname"] == nickname and about["free"][0]["name"] == "lr"
    assert about["free"][0]["low"] == 0.1 and about["free"][0]["high"] == 100 and about["free"][0]["teacher"] == 1.0
    return client


def test_three_students_three_learning_rates_appear_with_their_own_numbers(server):
    url, lab = server
    teacher, opened = open_experiment(url)
    code = opened["code"]
    assert opened["epochs"] == 4 and opened["question"] == "Which lr <b>trains</b> best?"
    rates = {"ann": 0.5, "bo": 3.0, "cy": 12.0}
    jobs = {}
    for name, lr in rates.items():
        # a student sends only the free setting: every other is the form's default, which means the teacher's
        jobs[name] = joined(url, code, name).submit(lr=lr, api_name="/train")
    finals = {name: [out for out in job][-1][5] for name, job in jobs.items()}
    for name, final in finals.items():
        assert final["status"] == "finished" and final["epoch"] == 4  # the experiment's epochs, not the default 250
        assert final["config"]["num_hiddens"] == 32 and final["config"]["lr"] == rates[name]
    watcher = Client(url, verbose=False)  # anyone with the code reads the class's runs
    table = {e["nickname"]: e for e in watcher.predict(code=code, api_name="/class_runs")}
    assert set(table) == set(rates)
    for name, entry in table.items():
        assert entry["settings"] == {"lr": rates[name]} and entry["epoch"] == 4 and entry["status"] == "finished"
        # the numbers the student's own run reported, exactly: the same floats through JSON
        assert entry["perplexities"] == finals[name]["perplexities"]
        assert entry["perplexity"] == entry["perplexities"][-1]
    assert len({e["perplexity"] for e in table.values()}) == 3  # three learning rates, three outcomes


def test_a_student_cannot_change_a_fixed_setting_or_leave_the_range(server):
    url, lab = server
    _, opened = open_experiment(url)
    student = joined(url, opened["code"], "dee")
    # refused by the form's check, each next to its setting (a ValidationError names the setting)
    with pytest.raises(ValidationError, match=r"num_hiddens: .*the teacher fixed it at 32"):
        student.predict(lr=1.0, num_hiddens=64, api_name="/train")
    with pytest.raises(ValidationError, match=r"lr: .*choose a value from 0.1 to 100"):
        student.predict(lr=500.0, api_name="/train")
    session = lab.peek(student.session_hash)
    assert session.all_runs() == [] and session.membership.joined.class_runs() == []  # nothing started
    with pytest.raises(AppError, match="is taken in this class"):
        Client(url, verbose=False).predict(code=opened["code"], nickname="DEE", api_name="/join")


def test_a_removed_student_stops_disappears_and_cannot_come_back(server):
    url, lab = server
    teacher, opened = open_experiment(url, epochs=5000)
    code = opened["code"]
    student, other = joined(url, code, "eve"), joined(url, code, "fay")
    job = student.submit(lr=1.0, api_name="/train")
    wait_for(lambda: job.outputs() and job.outputs()[-1][5].get("epoch", 0) >= 1, timeout=60)
    assert teacher.predict(nickname="eve", api_name="/remove") == ["fay"]
    final = [out for out in job][-1][5]
    assert final["status"] == "stopped"
    assert [e["nickname"] for e in teacher.predict(api_name="/class_runs")] == []
    with pytest.raises(AppError, match="removed you"):  # the run starts nothing, and says why
        student.predict(lr=1.0, api_name="/train")
    with pytest.raises(AppError, match="removed you"):
        student.predict(code=code, nickname="eve2", api_name="/join")
    with pytest.raises(AppError, match="no student is called 'gus'"):
        teacher.predict(nickname="gus", api_name="/remove")
    with pytest.raises(AppError, match="open an experiment first"):
        other.predict(nickname="fay", api_name="/remove")  # a student is not the teacher


def test_another_class_sees_none_of_it_and_a_closed_class_is_gone(server):
    url, lab = server
    teacher, opened = open_experiment(url)
    other_teacher, other = open_experiment(url)
    student = joined(url, opened["code"], "<script>x</script>")
    assert [out for out in student.submit(lr=2.0, api_name="/train")][-1][5]["status"] == "finished"
    assert other_teacher.predict(api_name="/class_runs") == []
    assert other_teacher.predict(code=other["code"], api_name="/class_runs") == []
    assert [e["nickname"] for e in other_teacher.predict(code=opened["code"], api_name="/class_runs")] == [
        "<script>x</script>"]  # the code is the key to a class: whoever has it may watch
    from demo.class_stream import class_outputs
    from demo import charts
    shown = class_outputs(lab.peek(teacher.session_hash), charts.NORMAL, "both")
    assert "<script>" not in shown[3] and "&lt;script&gt;x" in shown[3]  # the table shows the nickname as text
    assert "<script>" not in shown[1]["plot"] and "<b>trains" not in shown[0]
    lab.close(lab.peek(teacher.session_hash).key)  # the teacher's session ends: the class and its experiment go
    with pytest.raises(AppError, match="unknown, has ended or runs no experiment"):
        other_teacher.predict(code=opened["code"], api_name="/class_runs")
    with pytest.raises(AppError, match="has ended"):
        student.predict(lr=2.0, api_name="/train")
    with pytest.raises(AppError, match="unknown, has ended or runs no experiment"):
        Client(url, verbose=False).predict(code=opened["code"], nickname="late", api_name="/join")


def test_the_teachers_form_is_checked(server):
    url, _ = server
    teacher = Client(url, verbose=False)
    with pytest.raises(AppError, match="type the question"):
        teacher.predict(question=" ", free=["lr"], api_name="/experiment")
    with pytest.raises(AppError, match="choose at least one setting"):
        teacher.predict(question="q?", free=[], api_name="/experiment")
    with pytest.raises(AppError, match="your own value \\(100.0\\) is outside"):
        teacher.predict(question="q?", free=["lr"], ranges={"lr": [0.1, 10]}, api_name="/experiment")
    with pytest.raises(AppError, match="epochs=9000 is not allowed"):  # the page's rule for every run's epochs
        teacher.predict(question="q?", free=["lr"], epochs=9000, api_name="/experiment")
    with pytest.raises(AppError, match="students cannot be given 'seed'"):
        teacher.predict(question="q?", free=["seed"], api_name="/experiment")


def test_the_experiment_example_of_the_api_docs_runs_as_written(server):
    from test_readme import printed_by_api_example

    lines = printed_by_api_example('api_name="/experiment"', server.url)
    assert len(lines) == 5, lines
    assert "'name': 'lr'" in lines[0] and "'low': 0.1" in lines[0] and "'teacher': 1.0" in lines[0]
    ann, bo = lines[2].split(), lines[3].split()
    assert ann[:4] == ["ann", "{'lr':", "0.5}", "5"] and ann[-1] == "finished" and float(ann[4]) > 1
    assert bo[:4] == ["bo", "{'lr':", "4.0}", "5"] and bo[-1] == "finished"
    assert lines[4] == "['ann', 'bo'] ['ann', 'bo']"
