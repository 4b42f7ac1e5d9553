"""The instrument through the API (gradio_client against the app in-process): /pause, /step, /resume, /adjust,
/continue and /export, each checked on the run's numbers; a bad value is refused with the form's message and the
run goes on untouched."""
from __future__ import annotations

import csv
import io
import json
import os

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
pytest.importorskip("gradio")
from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from conftest import wait_for  # noqa: E402

LAB_OPTIONS = dict(max_runs=2, idle_seconds=30)  # the module's server (conftest.py's ``server`` fixture)
# long enough to be paused mid-run (an epoch takes a few ms here: 400 of them, a few seconds), small to train
RUN = dict(corpus="offline", max_chars=3000, model="scratch", sampling="consecutive", lr=100, clip=True,
           theta=0.01, epochs=400, num_hiddens=32, batch_size=8, num_steps=10, prefixes="the", pred_period=50,
           validation=0.2)


def test_pause_step_adjust_resume_continue_and_export(server):
    url, lab = server
    c = Client(url, verbose=False)
    job = c.submit(**RUN, api_name="/train")
    wait_for(lambda: job.outputs() and job.outputs()[-1][5].get("epoch", 0) >= 1, timeout=60)
    paused = c.predict(api_name="/pause")
    assert paused["paused"] and paused["status"] == "running"
    at = paused["epoch"]
    stepped = c.predict(epochs=2, api_name="/step")  # the rest of the epoch the pause came in, and one more
    assert stepped["paused"] and stepped["epoch"] == at + 2
    assert stepped["val_perplexity"] == stepped["val_perplexities"][-1] and stepped["val_perplexity"] > 1
    with pytest.raises(AppError, match=r"lr=-1.0 is not allowed: a number above 0"):
        c.predict(lr=-1.0, api_name="/adjust")
    values = c.predict(lr=20.0, clip=False, pred_period=7, api_name="/adjust")
    assert values == {"run": 1, "lr": 20.0, "clip": False, "theta": None, "pred_period": 7, "decoding": "greedy",
                      "temperature": 0.0, "top_k": 0}
    assert c.predict(api_name="/resume")["paused"] is False
    final = [out for out in job][-1][5]
    assert final["status"] == "finished" and final["epoch"] == 400
    # the changes were taken while paused at epoch at + 2: marked there, and every epoch after trained with them
    changes = final["changes"]
    assert [(ch["name"], ch["old"], ch["new"], ch["at"]) for ch in changes] == [
        ("lr", 100.0, 20.0, at + 2), ("clip_theta", 0.01, None, at + 2), ("pred_period", 50, 7, at + 2)]
    assert final["config"]["lr"] == 20.0 and final["config"]["clip_theta"] is None
    assert max(final["sample_epochs"]) == 400 and any(e % 7 == 0 for e in final["sample_epochs"] if e > at + 2)
    more = c.predict(epochs=5, api_name="/continue")
    assert more["run"] == 1 and more["status"] == "running" and more["epochs"] == 405
    wait_for(lambda: lab.peek(c.session_hash).runs[-1].view().status == "finished", timeout=60)

    view = lab.peek(c.session_hash).runs[-1].view()
    rows = list(csv.DictReader(io.StringIO(open(c.predict(format="csv", api_name="/export"), encoding="utf-8").read())))
    assert len(rows) == 405 == len(view.history)
    assert [float(r["perplexity"]) for r in rows] == [e.perplexity for e in view.history]  # exact: repr floats
    assert [float(r["val_perplexity"]) for r in rows] == [e.val_perplexity for e in view.history]
    assert {float(r["lr"]) for r in rows[:at + 2]} == {100.0} and {float(r["lr"]) for r in rows[at + 2:]} == {20.0}
    data = json.loads(open(c.predict(format="json", api_name="/export"), encoding="utf-8").read())
    assert data["runs"][0]["changes"] == changes and len(data["runs"][0]["history"]) == 405
    page = open(c.predict(format="html", api_name="/export"), encoding="utf-8").read()
    assert page.count('class="plotly-graph-div"') == 2
    with pytest.raises(AppError, match="format='pdf' is not allowed"):
        c.predict(format="pdf", api_name="/export")


def test_the_instrument_says_what_to_do_when_there_is_nothing_to_play(server):
    url, _ = server
    c = Client(url, verbose=False)
    with pytest.raises(AppError, match="no run is training: press Train first"):
        c.predict(api_name="/pause")
    with pytest.raises(AppError, match="no run yet: press Train first"):
        c.predict(epochs=5, api_name="/continue")
    with pytest.raises(AppError, match="epochs=0 is not allowed"):
        c.predict(epochs=0, api_name="/continue")
    with pytest.raises(AppError, match="no run to export yet"):
        c.predict(format="csv", api_name="/export")


def test_the_playing_example_of_the_api_docs_runs_as_written(server):
    from test_readme import printed_by_api_example

    lines = printed_by_api_example('api_name="/pause"', server.url)
    assert len(lines) == 5, lines
    paused, values, ended, epochs, last = lines
    header, rows = last.rsplit(" ", 1)
    flag, at, stepped, held = paused.split()
    assert flag == "True" and int(stepped) == int(at) + 1 and float(held) > 1
    assert "'lr': 10.0" in values
    assert ended.startswith("300 [") and "'new': 10.0" in ended
    assert epochs == "320"
    assert header.startswith("run,label,epoch,perplexity,val_perplexity") and 300 <= int(rows) <= 320
