"""Playing a run like an instrument (charrnn): pause, step and resume, go on after the end, change the learning
rate and clipping mid-run, the held-out perplexity. Each is checked against the same run trained otherwise:
uninterrupted, forked, or computed independently in float64."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import wait_for

from charrnn import Trainer, heldout
from charrnn.config import ConfigError
from charrnn.events import Change, EpochEnd
from charrnn.files import Caps, DiskQuota, SessionFiles
from charrnn.lab import Session
from charrnn.scheduler import Scheduler

NUMBERS = ("perplexity", "grad_norm", "grad_norm_max", "clipped")  # what an epoch computes (not its seconds)


def numbers(history: list[EpochEnd]) -> list[tuple]:
    return [(e.epoch, *(getattr(e, k) for k in NUMBERS)) for e in history]


@pytest.fixture
def session():
    scheduler = Scheduler(workers=1, max_runs=4)
    yield Session("k", scheduler, SessionFiles(Caps(10, 2**30, 2**30), DiskQuota(2**30)))
    scheduler.shutdown()


def trained(session: Session, trainer: Trainer) -> list[EpochEnd]:
    run = session.start(trainer)
    assert run.wait(60)
    return run.view().history


def test_a_paused_stepped_and_resumed_run_gives_the_numbers_of_the_run_uninterrupted(session, tiny_corpus,
                                                                                     tiny_config):
    # the same scheduler trains both (its one worker's thread count is the same for each lone run): exact equality
    config = tiny_config(epochs=6, sampling="consecutive", prefixes=["the"], pred_period=2)
    alone = session.start(Trainer(config, tiny_corpus))
    assert alone.wait(60)
    played = session.start(Trainer(config, tiny_corpus))
    played.pause()
    assert played.wait_paused()
    assert played.view().paused and played.alive
    for _ in range(3):  # three single minibatches: the pause comes inside the first epoch
        assert played.step(batches=1) and played.wait_paused()
    batches = played.trainer.batches_per_epoch
    assert played.trainer.batch == 3 % batches and played.trainer.epoch == 3 // batches
    assert played.step(epochs=1) and played.wait_paused()  # the rest of the epoch the pause came in
    assert played.trainer.epoch == 1 and played.trainer.batch == 0 and len(played.view().history) == 1
    assert played.step(epochs=2) and played.wait_paused()
    assert played.trainer.epoch == 3
    assert played.resume() and played.wait(60)
    assert numbers(played.view().history) == numbers(alone.view().history)
    assert [(s.epoch, s.text) for s in played.view().samples] == [(s.epoch, s.text) for s in alone.view().samples]
    assert not played.view().paused and played.view().status == "finished"


def test_pause_and_resume_at_any_moment_change_nothing(session, tiny_corpus, tiny_config):
    config = tiny_config(epochs=40, sampling="random")
    alone = trained(session, Trainer(config, tiny_corpus))
    run = session.start(Trainer(config, tiny_corpus))
    for _ in range(5):  # wherever the worker is when the pause arrives
        run.pause()
        assert run.wait_paused()
        run.resume()
    assert run.wait(60)
    assert numbers(run.view().history) == numbers(alone)


def test_a_run_that_goes_on_equals_one_that_asked_for_every_epoch_from_the_start(session, tiny_corpus, tiny_config):
    whole = trained(session, Trainer(tiny_config(epochs=7, sampling="consecutive"), tiny_corpus))
    run = session.start(Trainer(tiny_config(epochs=4, sampling="consecutive"), tiny_corpus))
    assert run.wait(60) and run.view().status == "finished"
    number = run.number
    assert session.go_on(3) is run and run.alive
    assert run.wait(60)
    view = run.view()
    assert view.number == number and view.status == "finished" and view.config.epochs == 7
    assert numbers(view.history) == numbers(whole)
    with pytest.raises(ConfigError, match="epochs=0 is not allowed"):
        session.go_on(0)


def test_a_learning_rate_changed_at_epoch_k_gives_the_numbers_of_a_run_forked_there(tiny_corpus, tiny_config):
    config, k = tiny_config(epochs=6, sampling="consecutive", lr=1.0), 3
    changed = Trainer(config, tiny_corpus)
    for events in changed.work():
        if events and isinstance(events[0], EpochEnd) and events[0].epoch == k:
            changed.adjust(lr=4.0, clip_theta=None)  # taken at the next minibatch: epoch k + 1's first
    base = Trainer(config.replace(epochs=k), tiny_corpus)
    list(base.run())
    fork = base.fork(lr=4.0, clip_theta=None, epochs=6)
    list(fork.run())
    assert numbers(changed.history) == numbers(fork.history)
    assert changed.changes == [Change(k, k, "lr", 1.0, 4.0), Change(k, k, "clip_theta", 1.0, None)]
    assert [e.lr for e in changed.history] == [1.0] * k + [4.0] * (6 - k)
    assert [e.theta for e in changed.history] == [1.0] * k + [None] * (6 - k)
    assert changed.changes[0].label == "lr 1 → 4" and changed.changes[1].label == "θ 1 → off"


def test_a_change_is_checked_as_the_form_checks_it_and_a_bad_one_changes_nothing(tiny_corpus, tiny_config):
    trainer = Trainer(tiny_config(), tiny_corpus)
    with pytest.raises(ConfigError, match=r"lr=-1 is not allowed: a number above 0"):
        trainer.adjust(lr=-1)
    with pytest.raises(ConfigError, match="num_hiddens cannot change while a run trains"):
        trainer.adjust(num_hiddens=8)
    assert trainer.adjust(lr=1.0) == trainer.config  # the same value: no change
    assert trainer.apply_pending() == [] and trainer.changes == []


def test_the_changes_and_the_latest_values_live_on_in_a_checkpoint(tiny_corpus, tiny_config, tmp_path):
    trainer = Trainer(tiny_config(epochs=2), tiny_corpus)
    list(trainer.run())
    trainer.adjust(lr=0.5, pred_period=7)
    trainer.apply_pending()
    resumed = Trainer.resume(trainer.save(str(tmp_path / "ck.safetensors")), tiny_corpus)
    assert resumed.changes == trainer.changes and len(resumed.changes) == 2
    assert resumed.config.lr == 0.5 and resumed.config.pred_period == 7
    assert resumed.optimizer.param_groups[0]["lr"] == 0.5


def reference_perplexity(model, held: torch.Tensor, rows: int) -> float:
    """The held-out perplexity in float64, one character at a time: each of ``rows`` consecutive pieces read from
    a zero state carried to its end (the windows of heldout.perplexity cut nothing: no gradients flow)."""
    model = model.double().eval()
    length = (len(held) - 1) // rows
    total, count = 0.0, 0
    with torch.no_grad():
        for r in range(rows):
            piece = held[r * length:(r + 1) * length + 1]
            state = tuple(s.double() for s in model.begin_state(1, "cpu")) \
                if isinstance(model.begin_state(1, "cpu"), tuple) else model.begin_state(1, "cpu").double()
            for t in range(length):
                logits, state = model(piece[t:t + 1].view(1, 1), state)
                logits = logits.view(-1)
                total -= float(logits[piece[t + 1]] - torch.logsumexp(logits, 0))
                count += 1
    return math.exp(total / count)


@pytest.mark.parametrize("model", ["scratch", "concise-lstm"])
def test_the_held_out_perplexity_equals_a_float64_computation(tiny_corpus, tiny_config, model):
    config = tiny_config(epochs=2, validation=0.2, model=model, optimizer="sgd", num_steps=5)
    trainer = Trainer(config, tiny_corpus)
    list(trainer.run())
    held = tiny_corpus.indices[len(tiny_corpus.indices) - round(len(tiny_corpus.indices) * 0.2):]
    assert torch.equal(trainer.held, held) and len(trainer.data) + len(held) == len(tiny_corpus.indices)
    rows = heldout.rows_for(len(held), config.num_steps, config.batch_size)
    assert rows > 1  # pieces read side by side, each over more than one window
    got = trainer.history[-1].val_perplexity
    want = reference_perplexity(trainer.snapshot(), held, rows)
    # float32 logits of size ~3 carry ~3e-7 of rounding each; the mean over a few hundred characters keeps that
    # order, so exp of it agrees to ~1e-6 relative: 1e-5 leaves room, and a wrong window or state is off by far more
    assert got == pytest.approx(want, rel=1e-5)
    assert all(e.val_perplexity is not None for e in trainer.history)


def test_nothing_held_out_means_no_held_out_perplexity(tiny_corpus, tiny_config):
    trainer = Trainer(tiny_config(epochs=1), tiny_corpus)
    list(trainer.run())
    assert trainer.held is None and trainer.history[0].val_perplexity is None
    assert F is not None


def test_both_runs_of_a_lesson_can_go_on_and_an_ordinary_run_frees_them(session, tiny_corpus, tiny_config):
    steps = [lambda _: Trainer(tiny_config(epochs=3), tiny_corpus),
             lambda _: Trainer(tiny_config(epochs=3, sampling="consecutive"), tiny_corpus)]
    first = session.start_plan(steps, caption="two runs · 两次训练")
    assert first.wait(60)
    # the lesson's next run starts just after the first ends (from the first's on_end), so wait for it
    second = wait_for(lambda: next((r for r in session.all_runs() if r is not first), None), timeout=30)
    assert second.wait(60) and not session.in_lesson
    assert session.go_on(2, number=first.number) is first and first.wait(60)
    assert first.view().epoch == 5 and first.view().status == "finished"
    assert session.go_on(2) is second and second.wait(60) and second.view().epoch == 5
    trained(session, Trainer(tiny_config(epochs=1), tiny_corpus))  # a new run: only its model is kept now
    with pytest.raises(RuntimeError, match="only the newest run and the latest lesson's runs can go on"):
        session.go_on(1, number=first.number)
    with pytest.raises(RuntimeError, match="there is no run #99"):
        session.go_on(1, number=99)
