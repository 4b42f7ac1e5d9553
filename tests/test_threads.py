"""The thread policy (charrnn.threads): runs share the cores, every other thread uses one torch thread."""
from __future__ import annotations

import os
import threading

import pytest
import torch

import charrnn.threads as threads_mod
from charrnn.threads import cpu_cores, one_thread, tune_threads


def in_new_thread(fn):
    """Run ``fn`` in a fresh thread (torch's thread count is per thread) and return its result."""
    out: list = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join(30)
    assert not t.is_alive() and len(out) == 1
    return out[0]


def test_cpu_cores_is_the_affinity_mask():
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert cpu_cores() == expected >= 1


@pytest.mark.parametrize("cores, running, expected", [
    (8, 1, 8), (8, 2, 4), (8, 3, 2), (8, 4, 2), (8, 8, 1), (8, 9, 1), (8, 100, 1),
    (2, 1, 2), (2, 2, 1), (2, 4, 1), (1, 1, 1), (3, 2, 1),
    (8, 0, 8), (8, -1, 8),  # fewer than one run counts as one
])
def test_tune_threads_gives_each_run_its_share(monkeypatch, cores, running, expected):
    monkeypatch.setattr(threads_mod, "cpu_cores", lambda: cores)

    def tune():
        torch.set_num_threads(5)  # some other count first: tune_threads must set it
        return tune_threads(running), torch.get_num_threads()
    assert in_new_thread(tune) == (expected, expected)


def test_tune_threads_follows_the_number_of_runs(monkeypatch):
    monkeypatch.setattr(threads_mod, "cpu_cores", lambda: 4)

    def steps():
        seen = []
        for running in (1, 2, 4, 2, 1):  # runs start and end around this one
            seen.append((tune_threads(running), torch.get_num_threads()))
        return seen
    assert in_new_thread(steps) == [(4, 4), (2, 2), (1, 1), (2, 2), (4, 4)]


def test_one_thread_sets_one():
    def check():
        torch.set_num_threads(3)
        before = torch.get_num_threads()
        one_thread()
        after = torch.get_num_threads()
        one_thread()  # already one: stays one
        return before, after, torch.get_num_threads()
    assert in_new_thread(check) == (3, 1, 1)

