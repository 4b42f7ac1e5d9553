"""demo/gradio_costs.py: the cuts apply only on the Gradio release they were tested with, `CHARRNN_GRADIO_CUTS=off`
runs the app on Gradio as published (both checked in fresh interpreters: once applied, the cuts stay for the life
of a process), and each cut leaves what Gradio computes, and what every browser receives, unchanged."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import gradio as gr
import pytest
from conftest import REPO, subprocess_env, wait_for
from gradio_client import Client
from test_app import LAB_OPTIONS  # noqa: F401  (test_app's server, launched again for this module's tests)

from charrnn.lab import Lab
from demo import app

# What the cuts replace, read in the child: each is Gradio's own object while no cut is applied.
PATCHED = """
import inspect, json, sys
import gradio.blocks, gradio.processing_utils, gradio.utils
def patched():
    return {"signatures": gradio.blocks.inspect is not inspect,
            "walks": hasattr(gradio.processing_utils.add_root_url, "__self__"),
            "diffs": type(gradio.utils.diff).__name__ == "_SharedDiffs",
            "inline": type(gradio.blocks.anyio).__name__ == "_BlocksAnyio",
            "matplotlib": "matplotlib" in sys.modules and sys.modules["matplotlib"] is None}
"""

UNKNOWN_VERSION = PATCHED + """
import gradio
gradio.__version__ = "6.99.0"
from demo import app, gradio_costs
from charrnn.lab import Lab
demo = app.build_app(Lab(max_runs=1))
applied = [gradio_costs.cut(), gradio_costs.cut()]
app.launch(demo, prevent_thread_lock=True, quiet=True, server_port=None)
queue = type(demo._queue.sleep_when_free).__name__
demo.close(); demo.lab.shutdown()
print(json.dumps({"applied": applied, "patched": patched(), "queue": queue}))
"""

CUTS_OFF = PATCHED + """
from gradio_client import Client
from demo import app
from charrnn.lab import Lab
demo = app.build_app(Lab(max_runs=1))
_, url, _ = app.launch(demo, prevent_thread_lock=True, quiet=True, server_port=None)
settings = dict(corpus="offline", corpus_file=None, max_chars=3000, model="scratch", sampling="random",
                optimizer="sgd", lr=100, clip=True, theta=0.01, epochs=6, num_hiddens=32, batch_size=8,
                num_steps=10, seed=0, prefixes="the, of", pred_len=20, pred_period=2, decoding="greedy",
                temperature=1.0, top_k=0, resume=False)
progress = [out[5] for out in Client(url, verbose=False).submit(**settings, api_name="/train")]
queue = type(demo._queue.sleep_when_free).__name__
demo.close(); demo.lab.shutdown()
print(json.dumps({"patched": patched(), "queue": queue, "final": progress[-1]}))
"""


def run_child(code: str, **env: str) -> tuple[dict, str]:
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=subprocess_env(**env), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@pytest.mark.slow  # a fresh interpreter builds and serves the app (10 s)
def test_an_unknown_gradio_release_starts_without_cuts_and_warns_once():
    out, log = run_child(UNKNOWN_VERSION)
    assert out["applied"] == [False, False]
    assert not any(out["patched"].values()), out["patched"]
    assert out["queue"] == "float", "the queue keeps Gradio's own wait"
    assert log.count("is not 6.31.0") == 1, log[-2000:]


@pytest.mark.slow  # a fresh interpreter serves the app and trains through it (15 s)
def test_the_app_trains_through_its_api_with_the_cuts_switched_off():
    out, log = run_child(CUTS_OFF, CHARRNN_GRADIO_CUTS="off")
    assert not any(out["patched"].values()), out["patched"]
    assert out["queue"] == "float"
    final = out["final"]
    assert final["status"] == "finished" and final["epoch"] == 6
    # lr 100 with theta 0.01 on the offline text: perplexity falls from about the vocabulary's size; any fall
    # of more than 10% is learning, far above run-to-run float32 differences (they are ulps of values near 10)
    assert final["perplexities"][-1] < 0.9 * final["perplexities"][0]
    assert "is not 6.31.0" not in log


def test_the_cuts_apply_on_the_tested_release():
    out, _ = run_child(PATCHED + """
from demo import gradio_costs
print(json.dumps({"applied": gradio_costs.cut(), "patched": patched()}))
""")
    assert out["applied"] is True
    assert all(out["patched"].values()), out["patched"]


def test_the_cuts_named_in_the_environment_are_the_ones_applied():
    out, _ = run_child(PATCHED + """
from demo import gradio_costs
print(json.dumps({"applied": gradio_costs.cut(), "patched": patched()}))
""", CHARRNN_GRADIO_CUTS="-walks,-matplotlib")
    assert out["applied"] is True
    assert out["patched"] == {"signatures": True, "walks": False, "diffs": True, "inline": True, "matplotlib": False}


def test_the_cuts_setting_is_read_as_documented():
    from demo.gradio_costs import CUTS, chosen
    assert chosen(None) == chosen("on") == chosen(" ON ") == frozenset(CUTS)
    assert chosen("off") == chosen("none") == chosen("0") == frozenset()
    assert chosen("walks, diffs") == {"walks", "diffs"}
    assert chosen("-queue,-pages") == frozenset(CUTS) - {"queue", "pages"}
    with pytest.raises(ValueError, match="no cut named walk"):
        chosen("walk")
    with pytest.raises(ValueError, match="not both"):
        chosen("walks,-queue")


# What each cut keeps of Gradio's answers, in this process (the cuts are applied once and stay).


@pytest.fixture(scope="module", autouse=True)
def cuts():
    from demo import gradio_costs
    assert gradio_costs.cut(), "the cuts did not apply on the tested release"

def test_gradio_costs_cut_keeps_what_gradio_computes():
    """demo/gradio_costs.py: a new session's configs are the same with the remembered ``__init__``
    signatures as without (importing app.py applies them), and only ``__init__`` signatures are remembered."""
    import inspect

    import gradio.blocks
    from demo import gradio_costs
    from gradio.state_holder import SessionState

    lab = Lab()
    try:
        demo = app.build_app(lab)
        shim = gradio.blocks.inspect
        assert isinstance(shim, gradio_costs._Inspect)  # applied by the module's fixture, as by launch()
        with_cut = SessionState(demo).config_values
        gradio.blocks.inspect = inspect
        try:
            plain = SessionState(demo).config_values
        finally:
            gradio.blocks.inspect = shim
        assert with_cut == plain and len(plain) == len(demo.blocks) > 100
    finally:
        lab.shutdown()

    class Widget:
        def __init__(self, a: int, b: str = "x") -> None:
            pass

    def helper(c, *d):
        return c

    assert shim.signature(Widget.__init__) is shim.signature(Widget.__init__)  # remembered
    assert shim.signature(Widget.__init__) == inspect.signature(Widget.__init__)
    assert shim.signature(helper) == inspect.signature(helper)
    assert shim.signature(helper) is not shim.signature(helper)  # any other function: asked afresh
    assert shim.Parameter is inspect.Parameter and shim.isclass is inspect.isclass
    gradio_costs.cut()  # idempotent
    assert gradio.blocks.inspect is shim


def test_gradio_costs_preprocess_the_forms_plain_inputs_in_the_loop_with_gradios_answers():
    """demo/gradio_costs.py's seventh cut: /train's 22 inputs are preprocessed to the same values (and a value
    outside a Radio's choices to the same error) with the cut as with Gradio's thread per input; the plain
    components' ``preprocess`` runs in the calling thread, anything else (a File's, the event's own function)
    still in a worker thread."""
    import asyncio
    import types

    import anyio
    import gradio as gr
    import gradio.blocks
    from demo import gradio_costs
    from gradio.exceptions import Error
    from gradio.state_holder import SessionState

    lab = Lab()
    try:
        demo = app.build_app(lab)
        shim = gradio.blocks.anyio
        assert isinstance(shim, gradio_costs._BlocksAnyio)  # applied by the module's fixture, as by launch()
        fn = next(f for f in demo.fns.values() if f.api_name == "train")
        assert len(fn.inputs) == 22 and fn.preprocess
        values = dict(zip(fn.input_parameter_names, (b.value for b in fn.inputs)))
        values.update(model="concise", epochs=7.0, lr=0.5, prefixes="分开\n不分开", corpus_file=None)
        inputs = [values[n] for n in fn.input_parameter_names]
        bad = [("nonsense" if isinstance(b, gr.Radio) else v) for b, v in zip(fn.inputs, inputs)]

        def prepare(data):
            async def go():
                try:
                    return await demo.preprocess_data(fn, list(data), SessionState(demo))
                except Error as e:
                    return f"Error: {e}"
            return asyncio.run(go())

        with_cut, bad_with_cut = prepare(inputs), prepare(bad)
        gradio.blocks.anyio = anyio
        try:
            plain, bad_plain = prepare(inputs), prepare(bad)
        finally:
            gradio.blocks.anyio = shim
        assert with_cut == plain and [type(v) for v in with_cut] == [type(v) for v in plain]
        assert with_cut[fn.input_parameter_names.index("epochs")] == 7 and "分开" in str(with_cut)
        assert bad_with_cut == bad_plain and bad_plain.startswith("Error: ")
        assert "not in the list of choices" in bad_plain
    finally:
        lab.shutdown()

    here = threading.get_ident()

    def preprocess(self, payload):  # a component's method, by name: it reports the thread it runs in
        return threading.get_ident()

    def run(func, *args):
        async def go():
            return await shim.to_thread.run_sync(func, *args)
        return asyncio.run(go())

    assert run(types.MethodType(preprocess, gr.Number()), 1.0) == here  # a plain component's preprocess: inline
    assert run(types.MethodType(preprocess, gr.File()), None) != here    # a file's: its own thread
    assert run(lambda: threading.get_ident()) != here                # any other function: its own thread
    assert run(gr.Radio(["a", "b"]).preprocess, "b") == "b"
    gradio_costs.cut()  # idempotent
    assert gradio.blocks.anyio is shim


def test_gradio_costs_file_walks_give_what_gradio_walks_give(tmp_path):
    """demo/gradio_costs.py's third cut: where the outputs hold no file object, the answer of Gradio's two walks
    (a copy, tuples as lists) comes from one orjson pass; anything that might hold a file, or is not plain JSON,
    still goes to Gradio's walk. Each case is compared with the walk itself (importing app.py applied the cut)."""
    import asyncio
    import math

    import gradio.processing_utils as pu
    from demo import gradio_costs
    from gradio.data_classes import FileData

    walks = pu.add_root_url.__self__
    assert isinstance(walks, gradio_costs._FileWalks)  # applied by the module's fixture, as by launch()
    real_root, real_move = walks.add_root, walks.move
    block = gr.JSON(render=False)

    def both(data):
        cut = (pu.add_root_url(data, "http://h:1", None), asyncio.run(pu.async_move_files_to_cache(data, block)))
        real = (real_root(data, "http://h:1", None), asyncio.run(real_move(data, block)))
        return cut, real

    plain = {"status": "running", "epoch": 3, "ppl": [9.5, 4.25, 2.125], "shape": (2, [3, (4, 5)]), "ok": True,
             "none": None, "text": "分开 · \"quoted\" \\ \n", "nested": [{"a": [], "b": {}}], "big": 2 ** 62}
    cut, real = both(plain)
    assert cut == real and cut[0]["shape"] == [2, [3, [4, 5]]]  # tuples became lists, as the walk makes them
    assert cut[0] is not plain and cut[0]["ppl"] is not plain["ppl"]  # a copy: changing it leaves the input as it was
    cut[0]["ppl"].append(1.0)
    assert plain["ppl"] == [9.5, 4.25, 2.125]
    assert both("a plain string") == (("a plain string",) * 2,) * 2 and both(7)[0] == (7, 7)

    # The app's real outputs for a session: status, two charts, samples, history, progress. Its dicts are sealed
    # (never changed once made): the walks take them as they are, and the list of them as a new list.
    lab = Lab()
    try:
        outputs = list(app.renders.outputs(lab.session("walks")))
    finally:
        lab.shutdown()
    cut, real = both(outputs)
    assert cut == real and [type(o) for o in real[0]] == [str, dict, dict, str, str, dict]
    assert cut[0] is not outputs and all(a is b for a, b in zip(cut[0], outputs))
    assert type(outputs[1]) is type(outputs[5]) is gradio_costs.Sealed

    # A file object (Gradio marks each with "gradio.FileData"): Gradio's walk answers, and its URL gets the root.
    f = tmp_path / "x.txt"
    f.write_text("x")
    with_file = {"files": [FileData(path=str(f), url="/gradio_api/file=x.txt").model_dump()], "n": 1}
    assert gradio_costs.file_free_copy(with_file) is None
    rooted = pu.add_root_url(with_file, "http://h:1", None)
    assert rooted == real_root(with_file, "http://h:1", None)
    assert rooted["files"][0]["url"] == "http://h:1/gradio_api/file=x.txt"

    # Not plain JSON: a model, a path, an int beyond 64 bits: Gradio's walk answers (the same objects come back).
    for odd in (FileData(path=str(f)), [tmp_path], {"n": 2 ** 70}, {1: "non-str key"}):
        assert gradio_costs.file_free_copy(odd) is None
        assert pu.add_root_url(odd, "http://h:1", None) == real_root(odd, "http://h:1", None)
    # NaN and infinities: null, as the browser receives them (the walk keeps the float, JSON then writes null).
    assert gradio_costs.file_free_copy({"x": [math.nan, math.inf, 1.5]}) == {"x": [None, None, 1.5]}
    gradio_costs.cut()  # idempotent
    assert pu.add_root_url.__self__ is walks


def test_gradio_costs_diff_of_sealed_outputs_is_computed_once():
    """demo/gradio_costs.py's fourth cut: the difference Gradio sends between two updates of a stream is the same
    as Gradio's own ``diff`` gives, and for two sealed outputs (what fifty watchers are sent) it is computed once:
    the second page gets the same edits. Other values are diffed afresh each time."""
    import gradio.utils
    from demo import gradio_costs

    shared = gradio.utils.diff
    assert isinstance(shared, gradio_costs._SharedDiffs)  # applied by the module's fixture, as by launch()
    real = shared.diff
    Sealed = gradio_costs.Sealed
    old = Sealed(epoch=3, perplexities=[9.5, 4.25, 2.125], config={"lr": 100}, status="running")
    new = Sealed(epoch=4, perplexities=[9.5, 4.25, 2.125, 1.5], config={"lr": 100}, status="finished")
    edits = shared(old, new)
    assert edits == real(old, new) == [["replace", ["epoch"], 4], ["add", ["perplexities", 3], 1.5],
                                       ["replace", ["status"], "finished"]]
    assert shared(old, new) is edits  # the next page's: computed once
    assert shared(new, old) == real(new, old) and shared(new, old) is not edits  # another pair
    plain_old, plain_new = dict(old), dict(new)
    assert shared(plain_old, plain_new) == edits and shared(plain_old, plain_new) is not shared(plain_old, plain_new)
    assert shared("abc", "abcd") == [["append", [], "d"]]
    # Remembered pairs keep their outputs: an id is never reused while its entry stands, and the oldest go first.
    for _ in range(shared.size + 5):
        shared(Sealed(a=1), Sealed(a=2))
    assert len(shared._pairs) == shared.size
    gradio_costs.cut()  # idempotent
    assert gradio.utils.diff is shared


def test_a_closed_pages_gradio_state_is_dropped(server):
    """Gradio keeps a page's SessionState (the config of every block) until 10,000 pages have come; the app's
    unload handler drops it when the page's heartbeat hangs up (gradio_costs cut 5)."""
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
    """demo/gradio_costs.py's sixth cut: Gradio's queue looks for an event to start when one joins or one ends
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
    """The sixth cut's wait holds an asyncio.Event, which serves one loop: an app launched again runs its queue
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
