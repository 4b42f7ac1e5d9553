"""demo/gradio_costs.py's guards: the cuts apply only on the Gradio release they were tested with, and
``CHARRNN_GRADIO_CUTS=off`` runs the app on Gradio as published. Each check runs in a fresh interpreter, since
the cuts, once applied, stay for the life of a process."""
from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO, subprocess_env

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


def test_an_unknown_gradio_release_starts_without_cuts_and_warns_once():
    out, log = run_child(UNKNOWN_VERSION)
    assert out["applied"] == [False, False]
    assert not any(out["patched"].values()), out["patched"]
    assert out["queue"] == "float", "the queue keeps Gradio's own wait"
    assert log.count("is not 6.31.0") == 1, log[-2000:]


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
