"""demo/gradio_costs.py: the cuts apply only on the Gradio release they were tested with, `CHARRNN_GRADIO_CUTS`
chooses them and `off` runs the app on Gradio as published (checked in fresh interpreters: once applied, a cut
stays for the life of a process), and each cut leaves what Gradio computes unchanged."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from conftest import REPO, subprocess_env, wait_for
from gradio_client import Client
from test_app import LAB_OPTIONS  # noqa: F401  (test_app's server, launched again for this module's tests)

UNKNOWN_VERSION = """
import json, gradio
gradio.__version__ = "6.99.0"
from demo import app, gradio_costs
from charrnn.lab import Lab
demo = app.build_app(Lab(max_runs=1))
app.launch(demo, prevent_thread_lock=True, quiet=True, server_port=None)
applied = [gradio_costs.enabled("pages"), gradio_costs.enabled("queue"), gradio_costs.enabled("imports")]
import sys
blocked = "matplotlib" in sys.modules and sys.modules["matplotlib"] is None
queue = type(demo._queue.sleep_when_free).__name__
demo.close(); demo.lab.shutdown()
print(json.dumps({"applied": applied, "queue": queue, "blocked": blocked}))
"""

CUTS_OFF = """
import json
from gradio_client import Client
from demo import app, gradio_costs
from charrnn.lab import Lab
demo = app.build_app(Lab(max_runs=1))
_, url, _ = app.launch(demo, prevent_thread_lock=True, quiet=True, server_port=None)
settings = dict(corpus="offline", corpus_file=None, max_chars=3000, model="scratch", sampling="random",
                optimizer="sgd", lr=100, clip=True, theta=0.01, epochs=6, num_hiddens=32, batch_size=8,
                num_steps=10, seed=0, prefixes="the, of", pred_len=20, pred_period=2, decoding="greedy",
                temperature=1.0, top_k=0, resume=False)
progress = [out[5] for out in Client(url, verbose=False).submit(**settings, api_name="/train")]
applied = [gradio_costs.enabled("pages"), gradio_costs.enabled("queue"), gradio_costs.enabled("imports")]
import sys
blocked = "matplotlib" in sys.modules and sys.modules["matplotlib"] is None
queue = type(demo._queue.sleep_when_free).__name__
demo.close(); demo.lab.shutdown()
print(json.dumps({"applied": applied, "queue": queue, "final": progress[-1], "blocked": blocked}))
"""


def run_child(code: str, **env: str) -> tuple[dict, str]:
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=subprocess_env(**env), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@pytest.mark.slow  # a fresh interpreter imports torch, Gradio and the app (about 10 s)
def test_importing_and_building_the_app_changes_nothing_in_gradio():
    """Only ``launch()`` applies a cut: importing demo.app and building the page leave Gradio as published."""
    out, _ = run_child("""
import asyncio, json
import gradio.queueing
from demo import app
from charrnn.lab import Lab
demo = app.build_app(Lab(max_runs=1))
demo.queue()
print(json.dumps({"asyncio": gradio.queueing.asyncio is asyncio, "wait": type(demo._queue.sleep_when_free).__name__}))
demo.lab.shutdown()
""")
    assert out == {"asyncio": True, "wait": "float"}


@pytest.mark.slow  # a fresh interpreter builds and serves the app (10 s)
def test_an_unknown_gradio_release_starts_without_cuts_and_warns_once():
    out, log = run_child(UNKNOWN_VERSION)
    assert out["applied"] == [False, False, False] and not out["blocked"]
    assert out["queue"] == "float", "the queue keeps Gradio's own wait"
    assert log.count("is not 6.31.0") == 1, log[-2000:]


@pytest.mark.slow  # a fresh interpreter serves the app and trains through it (15 s)
def test_the_app_trains_through_its_api_with_the_cuts_switched_off():
    out, log = run_child(CUTS_OFF, CHARRNN_GRADIO_CUTS="off")
    assert out["applied"] == [False, False, False] and not out["blocked"]
    assert out["queue"] == "float"
    final = out["final"]
    assert final["status"] == "finished" and final["epoch"] == 6
    # lr 100 with theta 0.01 on the offline text: perplexity falls from about the vocabulary's size; any fall
    # of more than 10% is learning, far above run-to-run float32 differences (they are ulps of values near 10)
    assert final["perplexities"][-1] < 0.9 * final["perplexities"][0]
    assert "is not 6.31.0" not in log


def test_the_cuts_apply_on_the_tested_release(server):
    from demo import gradio_costs
    assert gradio_costs.enabled("pages") and gradio_costs.enabled("queue")
    assert isinstance(server.demo._queue.sleep_when_free, gradio_costs._Idle)  # app.py's launch applied it


def test_the_imports_cut_makes_an_absent_module_fail_at_once(server):
    """Where matplotlib is not installed, the app's launch marks it absent: Gradio's import of it around every
    event's call fails at once, and that wrapper runs as it does on Gradio as published without matplotlib."""
    from gradio.utils import MatplotlibBackendMananger
    from demo import gradio_costs
    assert gradio_costs.enabled("imports")
    if sys.modules.get("matplotlib", None) is not None:
        pytest.skip("matplotlib is installed here: the cut leaves it alone")
    assert "matplotlib" in sys.modules and sys.modules["matplotlib"] is None
    with pytest.raises(ImportError):
        import matplotlib  # noqa: F401
    with MatplotlibBackendMananger():
        pass
    assert gradio_costs.block_absent_imports() == []  # idempotent: already marked


def test_the_cuts_named_in_the_environment_are_the_ones_applied(monkeypatch):
    import gradio as gr
    from demo import gradio_costs
    monkeypatch.setenv(gradio_costs.ENV, "-queue")
    assert gradio_costs.enabled("pages") and not gradio_costs.enabled("queue")
    with gr.Blocks() as demo:
        gr.Textbox()
    demo.queue()
    gradio_costs.quiet_queue(demo._queue)
    assert type(demo._queue.sleep_when_free) is float, "the queue cut applied though left out"


def test_the_cuts_setting_is_read_as_documented():
    from demo.gradio_costs import CUTS, chosen
    assert CUTS == ("pages", "queue", "imports")
    assert chosen(None) == chosen("on") == chosen(" ON ") == frozenset(CUTS)
    assert chosen("off") == chosen("none") == chosen("0") == frozenset()
    assert chosen("pages") == {"pages"}
    assert chosen("queue, pages, imports") == frozenset(CUTS)
    assert chosen("-queue") == {"pages", "imports"}
    with pytest.raises(ValueError, match="no cut named walks"):
        chosen("walks")
    with pytest.raises(ValueError, match="not both"):
        chosen("pages,-queue")


def test_a_closed_pages_gradio_state_is_dropped(server):
    """Gradio keeps a page's SessionState (the config of every block) until 10,000 pages have come; the app's
    unload handler drops it when the page's heartbeat hangs up (gradio_costs's pages cut)."""
    import requests
    url, lab = server
    holder = server.demo.state_holder
    page = "closedpage01"
    with requests.Session() as http:
        beat = http.get(f"{url}gradio_api/heartbeat/{page}", stream=True, timeout=30)
        r = http.post(f"{url}gradio_api/run/stats", json={"data": [], "session_hash": page}, timeout=30)
        assert r.status_code == 200, r.text[:300]
        assert page in holder.session_data  # the request made the page's state
        other = "openpage0002"
        beat2 = http.get(f"{url}gradio_api/heartbeat/{other}", stream=True, timeout=30)
        http.post(f"{url}gradio_api/run/stats", json={"data": [], "session_hash": other}, timeout=30)
        beat.close()
        wait_for(lambda: page not in holder.session_data, timeout=20)
        assert other in holder.session_data, "an open page's state was dropped"
        beat2.close()


def test_gradio_costs_queue_waits_for_work_instead_of_polling(server):
    """demo/gradio_costs.py's queue cut: Gradio's queue looks for an event to start when one joins or one ends
    (a concurrency slot frees), not every millisecond. The wait's timeout is set longer than this test may take,
    so that only the wakes can start the events."""
    import gradio as gr
    from demo import gradio_costs
    assert isinstance(server.demo._queue.sleep_when_free, gradio_costs._Idle)  # app.py's launch applied it
    with gr.Blocks() as demo:
        box = gr.Textbox()
        box.submit(lambda s: time.sleep(0.3) or s + "!", box, box, api_name="slow", concurrency_limit=1)
    demo.queue()
    gradio_costs.quiet_queue(demo._queue)
    push = demo._queue.push
    gradio_costs.quiet_queue(demo._queue)  # idempotent: the wakes are not wrapped twice
    assert demo._queue.push is push
    demo._queue.sleep_when_free = idle = gradio_costs._Idle(120.0)
    _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True)
    try:
        c = Client(url, verbose=False)
        jobs = [c.submit("a", api_name="/slow"), c.submit("b", api_name="/slow")]  # "b" waits for "a"'s slot
        assert [j.result(timeout=60) for j in jobs] == ["a!", "b!"]
        time.sleep(0.5)
        waits = idle.waits
        time.sleep(1.0)
        assert idle.waits == waits, "the queue woke with nothing to do"
    finally:
        demo.close()


def test_gradio_costs_queue_wait_serves_a_new_event_loop():
    """The queue cut's wait holds an asyncio.Event, which serves one loop: an app launched again runs its queue
    in a new loop, where the wait must still work (and a wake still end it)."""
    import asyncio
    from demo import gradio_costs
    idle = gradio_costs._Idle(0.01)
    asyncio.run(idle.wait())  # times out in the first loop
    asyncio.run(idle.wait())  # a second loop: an Event bound to the first would raise RuntimeError
    idle_long = gradio_costs._Idle(120.0)

    async def woken() -> None:
        asyncio.get_running_loop().call_later(0.05, idle_long.wake)
        await idle_long.wait()

    for _ in range(2):
        asyncio.run(asyncio.wait_for(woken(), 30))  # ended by the wake, not the 120 s timeout
    assert idle.waits == 2 and idle_long.waits == 2
