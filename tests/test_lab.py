"""charrnn.lab: one run per session even when two starts race; runs tell the thread policy how many train."""
from __future__ import annotations

import threading
import time

import charrnn.lab as lab
from charrnn import Trainer
from charrnn.lab import Lab, Session, Slots


def wait_until(cond, timeout=30.0):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def test_two_starts_at_once_start_one_run(tiny_corpus, tiny_config, monkeypatch):
    """Both callers pass a barrier together. Reading ``Session.active`` and building a Run are slowed, so a
    start that checked for an active run outside the lock it starts under would let both callers in."""
    real_active, real_init = Session.active, lab.Run.__init__

    def slow_active(self):
        found = real_active.fget(self)
        time.sleep(0.3)
        return found

    def slow_init(self, *args, **kwargs):
        time.sleep(0.3)
        real_init(self, *args, **kwargs)
    monkeypatch.setattr(Session, "active", property(slow_active))
    monkeypatch.setattr(lab.Run, "__init__", slow_init)

    session = Session(Slots(1))
    trainers = [Trainer(tiny_config(epochs=100_000), tiny_corpus) for _ in range(2)]
    barrier = threading.Barrier(2)
    started, refused = [], []

    def click(trainer):
        barrier.wait()
        try:
            started.append(session.start(trainer))
        except RuntimeError as e:
            refused.append(str(e))

    clickers = [threading.Thread(target=click, args=(t,)) for t in trainers]
    for t in clickers:
        t.start()
    for t in clickers:
        t.join(30)
    try:
        assert len(started) == 1 and len(session.runs) == 1 and session.runs[0] is started[0]
        assert refused == ["a run is already training in this session: stop it first"]
        assert session.active is started[0]
    finally:
        session.close()
        for r in started:
            assert r.stop(timeout=30)


def test_a_session_has_no_key():
    s = Session(Slots(1))
    assert not hasattr(s, "key")
    assert Lab(max_jobs=1).session("abc") is not None


def test_runs_pass_the_number_training_now(tiny_corpus, tiny_config, monkeypatch):
    calls = []
    monkeypatch.setattr(lab, "tune_threads", lambda running: calls.append(running) or 1)
    session = Session(Slots(2))
    run = session.start(Trainer(tiny_config(epochs=3), tiny_corpus))
    wait_until(lambda: not run.alive)
    assert run.view().status == "finished"
    assert calls == [1, 1, 1, 1]  # once at the start, then after each of the 3 epochs: it trained alone
    assert all(type(n) is int for n in calls)
