"""charrnn.grouped: runs of one shape stepped as one computation give the numbers of the same runs alone.

The independent formulation is each run's own ``Trainer._step`` (the model's unbatched formulas, its own
clipping and optimizer); the grouped step batches the same products over the runs with ``baddbmm``.

Tolerance: the two compute the same sums in different kernels (bmm blocks its dot products otherwise than
addmm), so a product may round differently: by about one float32 ulp (2**-23 ≈ 1.2e-7, relative) per term
of a dot product of h = 16 terms, 16 ulps at most per step. Over n minibatches such differences add up at
most linearly (the updates carry them on), so after n steps we allow n · 16 · 2**-23 relative: of the values
(losses, norms) and of the largest weight of each tensor (weights near zero have no relative scale of their
own). Measured: one ulp on a first loss, 5e-6 of a weight's scale after 132 Adam steps (the bound: 2.5e-4).
Training without effective clipping at a large learning rate is chaotic (its rounding grows without
bound: lr 2 without clipping, or lr 5 with θ 1, and an RNN run alone ends elsewhere on 1 thread and on 4), so
the long comparison trains gently (lr ≤ 1, clipped); the short one has a run at lr 5 without clipping.
A wrong grouping (another run's weights, inputs or learning rate, a norm over all runs) is off by far more
at its first step: the learning rates here differ by 10×.
"""
from __future__ import annotations

import threading

import pytest
import torch

from charrnn import Trainer
from charrnn.events import EpochEnd
from charrnn.grouped import GROUPED_KINDS, Group, group_step, shape_key

ULPS_PER_STEP = 16 * 2 ** -23


def tol(steps: int) -> float:
    return steps * ULPS_PER_STEP


def trio(tiny_config, tiny_corpus, kind: str, unclipped: bool = True) -> list[Trainer]:
    """Three runs of one shape that differ in everything else a run owns (the second: lr 5 without clipping, or,
    for long comparisons, lr 1 with θ 1: see the tolerance above)."""
    lr, theta = (5.0, None) if unclipped else (1.0, 1.0)
    return [Trainer(tiny_config(model=kind, lr=0.5, seed=0, sampling="random", clip_theta=1.0), tiny_corpus),
            Trainer(tiny_config(model=kind, lr=lr, seed=1, sampling="consecutive", clip_theta=theta), tiny_corpus),
            Trainer(tiny_config(model=kind, lr=0.05, seed=2, sampling="random", clip_theta=0.1, optimizer="adam"),
                    tiny_corpus)]


def assert_same(grouped: Trainer, alone: Trainer, steps: int) -> None:
    for (name, a), b in zip(grouped.model.named_parameters(), alone.model.parameters()):
        scale = b.detach().abs().max().item()
        assert (a - b).abs().max().item() <= tol(steps) * scale, name


@pytest.mark.parametrize("kind", GROUPED_KINDS)
def test_a_group_step_is_each_run_alone_with_runs_joining_and_leaving(kind, tiny_config, tiny_corpus):
    runs = trio(tiny_config, tiny_corpus, kind)
    twins = trio(tiny_config, tiny_corpus, kind)  # the same runs (the same seeds: weights, order), alone
    batches = [list(t._batches()) for t in runs]
    states: list = [None] * 3
    twin_states: list = [None] * 3
    # minibatches 0-2: runs 0 and 1; 3-5: run 2 joins; 6-7: run 0 has left (it steps alone)
    for step in range(8):
        members = [0, 1] if step < 3 else [0, 1, 2] if step < 6 else [1, 2]
        if step >= 6:  # run 0 alone, as it would outside the group
            states[0] = runs[0]._step(*batches[0][step], states[0])[2]
        out = group_step([runs[i] for i in members], [batches[i][step] for i in members], [states[i] for i in members])
        for i, (loss, norm, state) in zip(members, out):
            t_loss, t_norm, t_state = twins[i]._step(*batches[i][step], twin_states[i])
            assert loss.item() == pytest.approx(t_loss.item(), rel=tol(step + 1))
            assert norm.item() == pytest.approx(t_norm.item(), rel=tol(step + 1))
            for s, t in zip(state, t_state):  # hidden states lie in (-1, 1): their scale is 1
                assert (s - t).abs().max().item() <= tol(step + 1)
            states[i] = state
            twin_states[i] = t_state
        if step >= 6:
            twin_states[0] = twins[0]._step(*batches[0][step], twin_states[0])[2]
    for t, twin in zip(runs, twins):
        assert_same(t, twin, steps=8)
        assert t.optimizer.state_dict()["state"].keys() == twin.optimizer.state_dict()["state"].keys()
    # the runs learnt different things: a group that mixed them up would not pass the comparisons above
    assert not torch.allclose(runs[0].model.W_hq, runs[1].model.W_hq)


@pytest.mark.parametrize("kind", GROUPED_KINDS)
def test_runs_in_their_own_threads_meet_in_a_group_and_train_as_alone(kind, tiny_config, tiny_corpus):
    runs = trio(tiny_config, tiny_corpus, kind, unclipped=False)
    twins = trio(tiny_config, tiny_corpus, kind, unclipped=False)
    alone = [[e for e in t.run() if isinstance(e, EpochEnd)] for t in twins]
    group = Group(window=0.5)  # generous: a loaded machine's threads still meet
    for t in runs:
        group.join(t)
    found: dict[int, list] = {}

    def train(i: int, trainer: Trainer) -> None:
        found[i] = [e for e in trainer.run() if isinstance(e, EpochEnd)]
        group.leave(trainer)  # its last step done: the others go on without waiting for it
    threads = [threading.Thread(target=train, args=(i, t)) for i, t in enumerate(runs)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert max(group.sizes) == 3 and sum(group.sizes) == sum(t.batches_per_epoch * 3 for t in runs)
    for i in range(3):
        assert [e.epoch for e in found[i]] == [1, 2, 3]
        steps = runs[i].batches_per_epoch * 3
        for g, a in zip(found[i], alone[i]):
            assert g.perplexity == pytest.approx(a.perplexity, rel=tol(steps))
            assert g.grad_norm == pytest.approx(a.grad_norm, rel=tol(steps))
        assert_same(runs[i], twins[i], steps)


def test_only_runs_of_one_shape_group(tiny_config, tiny_corpus):
    group = Group()
    group.join(Trainer(tiny_config(), tiny_corpus))
    with pytest.raises(ValueError, match="cannot share the group's steps"):
        group.join(Trainer(tiny_config(num_hiddens=24), tiny_corpus))
    assert shape_key(Trainer(tiny_config(model="concise"), tiny_corpus)) is None  # torch's layer: alone
