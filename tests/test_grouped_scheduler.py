"""A scheduler that groups: a class's runs trained through the Lab step together and give each run's numbers alone.

With grouping on (forced here: on a CPU it is off by default), every from-scratch run steps in the group of its
shape while a worker trains it; a concise (torch ``nn.RNN``) run trains alone beside them. Each run's per-epoch
perplexities are compared with the same run trained alone (``Trainer.run`` in this thread).

Tolerance: ``test_grouped``'s, for the same reason: the grouped step computes each run's sums in batched kernels
whose rounding may differ from the run's own by about one float32 ulp per term of a dot product (h = 16 terms),
and over n minibatches these differences add up at most linearly, so n · 16 · 2**-23 relative after n steps.
The runs train gently (lr ≤ 1, clipped) except one made to diverge: an unclipped run at a large learning rate
is chaotic and its rounding grows without bound. A grouping that mixed runs up (another run's weights, inputs,
learning rate, a norm over all runs) is off by far more from its first step: the learning rates differ by 10×.
"""
from __future__ import annotations

import threading

import pytest
import torch
from conftest import HAS_CUDA, NO_CUDA
from test_grouped import tol, trio

from charrnn import Trainer
from charrnn.events import EpochEnd
from charrnn.grouped import GROUP_ENV, Group, group_step, grouping
from charrnn.lab import Lab, Limits
from charrnn.scheduler import Scheduler
from test_lab import wait_until



def needs_cuda(test):
    """The suite's CUDA marker (``pytest -m cuda``: bench/gpu_check.sh), skipped without a GPU."""
    return pytest.mark.cuda(pytest.mark.skipif(not HAS_CUDA, reason=NO_CUDA)(test))


def alone(trainer: Trainer) -> list[float]:
    return [e.perplexity for e in trainer.run() if isinstance(e, EpochEnd)]


def steps(trainer: Trainer) -> int:
    return trainer.batches_per_epoch * trainer.config.epochs


def assert_as_alone(found: list[float], expected: list[float], n: int) -> None:
    assert len(found) == len(expected)
    for g, a in zip(found, expected):
        assert g == pytest.approx(a, rel=tol(n))


@pytest.fixture
def class_lab():
    lab = Lab(max_runs=8, limits=Limits(busy_runs=100), group=True)
    lab.scheduler.group_window = 0.5  # generous: a loaded machine's workers still meet (a step waits only for
    yield lab                          # members, and a run is a member only while its worker trains it)
    lab.shutdown()


def configs(tiny_config, device: str = "cpu", epochs: int = 3) -> list:
    """A class: runs of one shape that differ in learning rate, seed, sampling, θ and optimizer."""
    return [tiny_config(lr=0.5, seed=0, sampling="random", clip_theta=1.0, epochs=epochs, device=device),
            tiny_config(lr=1.0, seed=1, sampling="consecutive", clip_theta=0.5, epochs=epochs, device=device),
            tiny_config(lr=0.05, seed=2, sampling="random", clip_theta=0.1, optimizer="adam", epochs=epochs,
                        device=device),
            tiny_config(lr=0.1, seed=3, sampling="consecutive", clip_theta=1.0, epochs=epochs, device=device)]


def start_all(lab: Lab, cfgs: list, corpus) -> list:
    return [lab.session(f"student-{i}").start(Trainer(c, corpus)) for i, c in enumerate(cfgs)]


# ---------------------------------------------------------------- when a scheduler groups
def test_grouping_is_on_only_on_cuda_unless_the_environment_says(monkeypatch):
    assert grouping(None, {}) is HAS_CUDA  # auto: the training device decides
    assert grouping(None, {GROUP_ENV: "auto"}) is HAS_CUDA
    assert grouping(None, {GROUP_ENV: "on"}) is True and grouping(None, {GROUP_ENV: " ON "}) is True
    assert grouping(None, {GROUP_ENV: "off"}) is False
    assert grouping(None, {"SPACES_ZERO_GPU": "true"}) is False  # ZeroGPU trains on the CPU
    assert grouping(False, {GROUP_ENV: "on"}) is False  # an explicit choice wins
    with pytest.raises(ValueError, match="CHARRNN_GROUP"):
        grouping(None, {GROUP_ENV: "yes"})
    monkeypatch.delenv(GROUP_ENV, raising=False)
    if not HAS_CUDA:  # this machine's default: grouping off, one worker per core, as before
        lab = Lab(max_runs=8)
        assert lab.scheduler.group is False and lab.scheduler.workers == lab.scheduler.cores
        lab.shutdown()
    monkeypatch.setenv(GROUP_ENV, "on")
    s = Scheduler(max_runs=6, cores=2)
    assert s.group is True and s.workers == 6  # a worker for every run it may admit
    assert s._threads_for(0) == 1  # each with one torch thread


# ---------------------------------------------------------------- a class through the Lab
def test_a_class_through_the_lab_trains_as_each_run_alone(class_lab, tiny_config, tiny_corpus):
    cfgs = configs(tiny_config)
    concise = tiny_config(model="concise", lr=0.01, optimizer="adam", seed=4)  # torch's nn.RNN: it stays alone
    diverging = tiny_config(lr=1e6, clip_theta=None, seed=5)  # its loss is its own: the others never see it
    runs = start_all(class_lab, [*cfgs, concise, diverging], tiny_corpus)
    for run in runs:
        assert run.wait(120)
    assert [r.status for r in runs] == ["finished"] * 5 + ["diverged"], [r.message for r in runs]
    for run, c in zip(runs, [*cfgs, concise]):
        twin = Trainer(c, tiny_corpus)
        assert_as_alone([e.perplexity for e in run.history], alone(twin), steps(twin))
    groups = class_lab.scheduler.groups()
    assert len(groups) == 1 and next(iter(groups))[0] == "scratch"  # the concise run joined none
    sizes = next(iter(groups.values())).sizes
    assert max(sizes) > 1, sizes  # the runs really shared steps
    wait_until(lambda: all(r.trainer.stepper is None for r in runs), 10)  # ended: no run is left in a group
    # (a worker leaves the group just after its slice, so a moment after the run's end)


def test_a_run_paused_stepped_adjusted_or_stopped_mid_way_and_the_others_go_on(class_lab, tiny_config, tiny_corpus):
    # SGD only: Adam's g/√v magnifies the rounding of a gradient near zero, so a long Adam run is chaotic (alone,
    # one ulp more in one weight tensor moves its 30-epoch perplexities by up to 2e-2): no rounding bound holds
    a_cfg, b_cfg, _, c_cfg = configs(tiny_config, epochs=30)
    a, b, c = start_all(class_lab, [a_cfg, b_cfg, c_cfg], tiny_corpus)
    wait_until(lambda: len(a.history) >= 2 and len(b.history) >= 2, 60)
    assert a.pause() and b.stop(timeout=30)
    assert a.wait_paused(30)
    wait_until(lambda: a.trainer.stepper is None, 10)  # no worker trains it: it is in no group, so nobody
    #                                                     waits for it (its worker leaves just after its slice)
    mark = (a.trainer.epoch, a.trainer.batch)
    a.adjust(lr=0.25, clip_theta=0.5)  # taken at once: no worker trains it
    assert c.wait(120) and c.status == "finished"  # the others went on without it
    before = len(a.history)
    assert a.step(epochs=1) and a.wait_paused(60)
    assert len(a.history) == before + 1
    assert a.resume() and a.wait(120) and a.status == "finished", a.message
    assert b.status == "stopped"

    c_twin = Trainer(c_cfg, tiny_corpus)
    assert_as_alone([e.perplexity for e in c.history], alone(c_twin), steps(c_twin))
    b_twin = Trainer(b_cfg, tiny_corpus)
    b_alone = alone(b_twin)[:len(b.history)]  # the epochs it trained before its stop are the run's alone
    assert_as_alone([e.perplexity for e in b.history], b_alone, steps(b_twin))
    a_twin = Trainer(a_cfg, tiny_corpus)  # alone, with the same change at the same minibatch
    expected, changed = [], False
    for events in a_twin.work():
        expected += [e.perplexity for e in events if isinstance(e, EpochEnd)]
        if not changed and (a_twin.epoch, a_twin.batch) == mark:
            a_twin.adjust(lr=0.25, clip_theta=0.5)
            changed = True
    assert changed and [ch.name for ch in a.trainer.changes] == ["lr", "clip_theta"]
    assert_as_alone([e.perplexity for e in a.history], expected, steps(a_twin))


def test_a_run_whose_step_fails_ends_with_its_error_and_the_others_train_as_alone(class_lab, tiny_config,
                                                                                 tiny_corpus):
    cfgs = configs(tiny_config)
    trainers = [Trainer(c, tiny_corpus) for c in cfgs]
    real, calls = trainers[1].optimizer.step, [0]

    def failing(*args, **kwargs):
        calls[0] += 1
        if calls[0] > 5:
            raise RuntimeError("out of memory (a test's)")
        return real(*args, **kwargs)
    trainers[1].optimizer.step = failing
    runs = [class_lab.session(f"s{i}").start(t) for i, t in enumerate(trainers)]
    for run in runs:
        assert run.wait(120)
    assert runs[1].status == "error" and "out of memory (a test's)" in runs[1].message
    for i in (0, 2, 3):
        twin = Trainer(cfgs[i], tiny_corpus)
        assert runs[i].status == "finished"
        assert_as_alone([e.perplexity for e in runs[i].history], alone(twin), steps(twin))


def test_a_nan_in_one_runs_weights_leaves_the_others_numbers_as_alone(tiny_config, tiny_corpus):
    runs = trio(tiny_config, tiny_corpus, "scratch", unclipped=False)
    twins = trio(tiny_config, tiny_corpus, "scratch", unclipped=False)
    with torch.no_grad():
        runs[1].model.W_hh[0, 0] = float("nan")
    batches = [list(t._batches()) for t in runs]
    states: list = [None] * 3
    twin_states: list = [None, None, None]
    for step in range(6):
        out = group_step(runs, [b[step] for b in batches], states)
        assert torch.isnan(out[1][0])  # the broken run's loss is its own
        for i in (0, 2):
            loss, norm, states[i] = out[i]
            t_loss, t_norm, twin_states[i] = twins[i]._step(*batches[i][step], twin_states[i])
            assert loss.item() == pytest.approx(t_loss.item(), rel=tol(step + 1))
            assert norm.item() == pytest.approx(t_norm.item(), rel=tol(step + 1))
        states[1] = out[1][2]
    for i in (0, 2):
        for (name, p), q in zip(runs[i].model.named_parameters(), twins[i].model.parameters()):
            assert torch.isfinite(p).all(), name
            assert (p - q).abs().max().item() <= tol(6) * q.abs().max().item(), name


# ---------------------------------------------------------------- CUDA: members on streams of their own
@pytest.fixture
def float32_math():
    """TF32 off (see conftest.py's ``device`` fixture): the tolerances here are float32's."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@needs_cuda
@pytest.mark.parametrize("kind", ["scratch", "scratch-lstm"])
def test_on_cuda_runs_in_their_own_threads_and_streams_group_as_alone(kind, tiny_config, tiny_corpus, float32_math):
    """Each member's minibatches, weights and optimizer live on its own stream, the group computes on whichever
    member's thread asks last: a missing wait or a reused buffer shows as another run's numbers."""
    cfgs = [c.replace(model=kind) for c in configs(tiny_config, device="cuda")]
    trainers = [Trainer(c, tiny_corpus) for c in cfgs]
    assert len({id(t.stream) for t in trainers}) == len(trainers)
    group = Group(window=0.5)
    for t in trainers:
        group.join(t)
    found: dict[int, list[float]] = {}

    def train(i: int) -> None:
        found[i] = alone(trainers[i])
        group.leave(trainers[i])
    threads = [threading.Thread(target=train, args=(i,)) for i in range(len(trainers))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert max(group.sizes) > 1
    for i, c in enumerate(cfgs):
        twin = Trainer(c, tiny_corpus)
        assert_as_alone(found[i], alone(twin), steps(twin))


@needs_cuda
def test_on_cuda_a_class_through_the_lab_trains_as_alone(class_lab, tiny_config, tiny_corpus, float32_math):
    cfgs = configs(tiny_config, device="cuda")
    runs = start_all(class_lab, [*cfgs, tiny_config(model="concise", device="cuda", optimizer="adam", lr=0.01)],
                     tiny_corpus)
    for run in runs:
        assert run.wait(120) and run.status == "finished", run.message
    for run, c in zip(runs, cfgs):
        twin = Trainer(c, tiny_corpus)
        assert_as_alone([e.perplexity for e in run.history], alone(twin), steps(twin))
    assert max(next(iter(class_lab.scheduler.groups().values())).sizes) > 1
