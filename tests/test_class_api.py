"""A class trained through the page's API on a server that groups its runs: every student's run finishes.

Each student is a ``gradio_client`` of its own pressing Train (``/train``) at once, as a class does. On a CUDA
GPU this is issue 28's check: 30 students at the chapter's sizes (scratch · random on Jay Chou's lyrics), the
server grouping their runs as it does there by default; each run's time to its first epoch is printed
(``pytest -rP``), not asserted (a speed goal is a benchmark's: ``bench/bench_gpu.py``'s class row). On a CPU
the same path runs small (grouping forced on, 6 students, a tiny model), so the test's code and the server's
grouped path are exercised in every CI run.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import HAS_CUDA, serve_app

gr = pytest.importorskip("gradio")
from gradio_client import Client  # noqa: E402

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

pytestmark = [pytest.mark.cuda] if HAS_CUDA else []  # bench/gpu_check.sh (pytest -m cuda) runs it on a GPU

if HAS_CUDA:  # the chapter's run, as a student's page sends it (the page's defaults), 30 of them
    STUDENTS, SETTINGS = 30, dict(epochs=10)
else:  # the same path, small enough for two cores
    STUDENTS, SETTINGS = 6, dict(corpus="offline", max_chars=3000, num_hiddens=32, batch_size=8, num_steps=10,
                                 prefixes="the", pred_len=10, pred_period=2, epochs=4)


def student(url: str, seed: int) -> tuple[float | None, dict]:
    """One student's Train: (seconds from the press to the first epoch, the stream's last progress)."""
    c = Client(url, verbose=False)
    try:
        start, first, last = time.monotonic(), None, {}
        for out in c.submit(**SETTINGS, seed=seed, api_name="/train"):
            last = out[5]
            if first is None and last.get("epoch"):
                first = time.monotonic() - start
        return first, last
    finally:
        c.close()


def test_a_class_pressing_train_at_once_all_finish_in_groups():
    with serve_app(group=True, max_runs=max(STUDENTS, 8)) as (url, lab):
        assert lab.scheduler.group
        with ThreadPoolExecutor(STUDENTS) as pool:
            results = list(pool.map(lambda i: student(url, i), range(STUDENTS)))
        groups = lab.scheduler.groups()
    epochs = SETTINGS["epochs"]
    for first, last in results:
        assert last.get("status") == "finished", last
        assert last["epoch"] == epochs and len(last["perplexities"]) == epochs
        assert all(p == p and 1 <= p < float("inf") for p in last["perplexities"]), last["perplexities"]
    sizes = [n for g in groups.values() for n in g.sizes]
    assert len(groups) == 1 and max(sizes) > 1, "the class's runs never shared a step"
    firsts = sorted(f for f, _ in results if f is not None)
    print(f"\n{STUDENTS} students, {'CUDA' if HAS_CUDA else 'CPU'}: first epoch after "
          f"{firsts[0]:.2f}-{firsts[-1]:.2f} s (median {firsts[len(firsts) // 2]:.2f} s); "
          f"steps of {sum(sizes) / len(sizes):.1f} runs on average, at most {max(sizes)}")
