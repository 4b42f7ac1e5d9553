"""Training: events, gradient clipping, stopping, divergence, reproducibility and snapshots.

Tests that take ``device`` run on the CPU and on a CUDA GPU (skipped without one; TF32 off there, see
conftest.py). Their references are computed on the same device as the trainer, so the float32 tolerances
below hold on either: they bound rounding whatever order a device sums in.
"""
from __future__ import annotations

import importlib
import math
import threading
import time

import pytest
import torch
import torch.nn.functional as F

from charrnn import (Diverged, End, EpochEnd, Finished, Sample, Stopped, Trainer, build_model, clip_gradients,
                     from_text, predict, train)
from charrnn.batches import min_length


EPS = torch.finfo(torch.float32).eps  # 1.19e-7: float32's relative rounding step


def numel(tensors) -> int:
    return sum(t.numel() for t in tensors)


def params_of(model) -> dict[str, torch.Tensor]:
    """A CPU copy of the weights (from a CUDA model too)."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def global_norm(tensors) -> float:
    return torch.cat([t.detach().double().flatten() for t in tensors]).norm().item()


def one_batch_corpus(cfg, text):
    """A corpus that holds exactly one minibatch of cfg's size."""
    return from_text(text[:min_length(cfg.batch_size, cfg.num_steps, cfg.sampling)])


# ---------------------------------------------------------------- events
@pytest.mark.parametrize("epochs, period, want", [(3, 50, [3]), (5, 2, [2, 4, 5]), (4, 2, [2, 4])])
def test_every_run_ends_with_samples(tiny_corpus, tiny_config, epochs, period, want):
    """Samples every ``period`` epochs, and at the end whatever the period (never twice for one epoch)."""
    t = Trainer(tiny_config(epochs=epochs, pred_period=period, prefixes=["the", "a"]), tiny_corpus)
    events = list(t.run())
    assert [s.epoch for s in events if isinstance(s, Sample)] == [e for e in want for _ in "ab"]
    assert isinstance(events[-1], Finished) and isinstance(events[-2], Sample) and events[-2].epoch == epochs


def test_a_stopped_run_ends_with_samples_of_its_last_epoch(tiny_corpus, tiny_config):
    stop = threading.Event()
    t = Trainer(tiny_config(epochs=50, pred_period=1000, prefixes=["the"]), tiny_corpus)
    events = []
    for ev in t.run(stop):
        events.append(ev)
        if isinstance(ev, EpochEnd) and ev.epoch == 2:
            stop.set()
    assert [type(e).__name__ for e in events] == ["EpochEnd", "EpochEnd", "Sample", "Stopped"]
    assert events[2].epoch == 2 and events[2].text == predict(t.model, t.vocab, "the", 10)


def test_event_sequence(tiny_corpus, tiny_config, device):
    cfg = tiny_config(epochs=4, pred_period=2, prefixes=["the", "a", "分开"], pred_len=7, device=device)
    t = Trainer(cfg, tiny_corpus)
    events, snapshots = [], {}
    for ev in t.run():
        events.append(ev)
        if isinstance(ev, Sample) and ev.prefix == "the":
            snapshots[ev.epoch] = predict(t.model, t.vocab, "the", 7)  # what the model writes right now
    kinds = [(type(e).__name__, getattr(e, "epoch", None)) for e in events]
    assert kinds == [("EpochEnd", 1), ("EpochEnd", 2), ("Sample", 2), ("Sample", 2), ("Sample", 2),
                     ("EpochEnd", 3), ("EpochEnd", 4), ("Sample", 4), ("Sample", 4), ("Sample", 4),
                     ("Finished", 4)]
    ends = [e for e in events if isinstance(e, End)]
    assert len(ends) == 1 and type(ends[0]) is Finished and ends[0].status == "finished"
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    V = len(tiny_corpus.vocab)
    nb = t.batches_per_epoch
    for e in epochs:
        assert e.epochs == 4
        values = (e.perplexity, e.grad_norm, e.grad_norm_max, e.clipped, e.seconds, e.chars_per_sec)
        assert all(math.isfinite(x) for x in values)
        assert 1.0 < e.perplexity < 1.5 * V  # exp(cross-entropy) >= 1; a fresh model scores ~V, training lowers it
        assert 0 < e.grad_norm <= e.grad_norm_max
        assert e.clipped in {k / nb for k in range(nb + 1)}
        assert e.seconds > 0
        # the same float64 division of the same exact integer by the same seconds: equal (1e-12 only allows
        # another order of operations, ~1e-16 each)
        assert e.chars_per_sec == pytest.approx(nb * cfg.batch_size * cfg.num_steps / e.seconds, rel=1e-12)
    assert epochs[-1].perplexity < epochs[0].perplexity
    assert t.history == epochs and t.epoch == 4
    samples = [e for e in events if isinstance(e, Sample)]
    assert [s.prefix for s in samples] == ["the", "a", "分开"] * 2
    for s in samples:
        if s.prefix == "分开":  # not in this corpus: reported in the sample, training goes on
            assert s.text.startswith("分开 ✗") and "分" in s.text[3:]
        else:
            assert s.text.startswith(s.prefix) and len(s.text) == len(s.prefix) + 7
            assert set(s.text) <= set(tiny_corpus.vocab.itos)
    assert {s.epoch: s.text for s in samples if s.prefix == "the"} == snapshots
    assert t.samples == samples


def test_train_function_yields_the_same_events(tiny_corpus, tiny_config):
    cfg = tiny_config(epochs=2)
    a = [e.perplexity for e in train(cfg, tiny_corpus) if isinstance(e, EpochEnd)]
    b = [e.perplexity for e in Trainer(cfg, tiny_corpus).run() if isinstance(e, EpochEnd)]
    assert a == b and len(a) == 2


@pytest.mark.parametrize("kind", ["scratch", "concise"])
def test_first_epoch_numbers_are_the_models_own(tiny_text, tiny_config, kind, device):
    """One minibatch per epoch: epoch 1's perplexity and gradient norm are those of the initial model."""
    cfg = tiny_config(model=kind, sampling="consecutive", clip_theta=0.05, epochs=1, device=device)
    corpus = one_batch_corpus(cfg, tiny_text)
    t = Trainer(cfg, corpus)
    assert t.batches_per_epoch == 1
    model = build_model(kind, len(corpus.vocab), cfg.num_hiddens, cfg.seed).to(device)  # the same device's kernels
    rows = corpus.indices[:cfg.batch_size * (cfg.num_steps + 1)].view(cfg.batch_size, -1).to(device)
    X, Y = rows[:, :cfg.num_steps], rows[:, 1:]
    logits, _ = model(X, model.begin_state(cfg.batch_size, device))
    loss = F.cross_entropy(logits, Y.T.reshape(-1))
    loss.backward()
    norm = global_norm(p.grad for p in model.parameters())  # float64 sum of squares of the float32 gradients
    (ev, end) = list(t.run())
    # Both losses are float32 means of B*S cross-entropies of size ~log V, each a logsumexp over V terms:
    # rounding <= (B*S + V) * eps * log V ~ (32 + 13) x 1.2e-7 x 2.6 ~ 1.4e-5 in the loss, i.e. relative in
    # exp(loss) (measured: equal). The loss after the step, or of another minibatch, is off by > 1e-2.
    V = len(corpus.vocab)
    assert ev.perplexity == pytest.approx(math.exp(loss.item()),
                                          rel=(cfg.batch_size * cfg.num_steps + V) * EPS * math.log(V))
    # The trainer's norm is summed in float32: a sum of n squares is off by <= n * eps relative, its square
    # root by half that (n ~ 700 here: 4e-5; measured 0.6 eps). The norm after clipping is 0.05, 3x smaller.
    assert ev.grad_norm == pytest.approx(norm, rel=numel(model.parameters()) * EPS / 2)
    assert ev.grad_norm_max == ev.grad_norm
    assert ev.clipped == (1.0 if norm > 0.05 else 0.0)
    assert isinstance(end, Finished)


# ---------------------------------------------------------------- clipping
def fresh_grads(kind, seed=0, scale=1.0, device="cpu"):
    V, H = 17, 9
    model = build_model(kind, V, H, seed=seed).to(device)
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(0, V, (3, 6), generator=g).to(device)
    logits, _ = model(X, model.begin_state(3, device))
    (F.cross_entropy(logits, torch.randint(0, V, (18,), generator=g).to(device)) * scale).backward()
    return model


def reference_clip(grads, theta):
    """The chapter's clipping, in float64: g * (theta / ||g||) when ||g|| > theta."""
    grads = [x.double().cpu() for x in grads]
    norm = torch.cat([x.flatten() for x in grads]).norm()
    if theta is not None and norm > theta:
        return [x * (theta / norm) for x in grads], norm
    return [x.clone() for x in grads], norm


def clip_tolerance(grads) -> float:
    """Relative error of float32 clipping: the norm, a float32 sum of n squares, is off by <= n * eps / 2
    (sqrt halves the sum's n * eps), and each entry times theta / norm rounds once more (eps / 2):
    (n + 1) * eps / 2, n ~ 420 here: 2.5e-5 (measured: under 1 eps). Clipping to the wrong norm (a tensor
    left out, L1 instead of L2) or by the wrong factor is off by more than 1e-2."""
    return (numel(grads) + 1) * EPS / 2


@pytest.mark.parametrize("kind", ["scratch", "concise"])
@pytest.mark.parametrize("as_generator", [True, False])
def test_clip_gradients_matches_chapter(kind, as_generator, device):
    model = fresh_grads(kind, device=device)  # on CUDA, the _foreach kernels
    before = [p.grad.clone() for p in model.parameters()]
    norm0 = global_norm(before)
    theta = norm0 / 4  # clipping must happen
    want, want_norm = reference_clip(before, theta)
    params = model.parameters() if as_generator else list(model.parameters())
    got_norm = clip_gradients(params, theta)
    tol = clip_tolerance(before)
    assert float(got_norm) == pytest.approx(want_norm.item(), rel=tol)
    after = [p.grad.cpu() for p in model.parameters()]
    before = [x.cpu() for x in before]
    for a, b in zip(after, want):
        assert torch.allclose(a.double(), b, rtol=tol, atol=0)  # relative per entry; zeros stay exactly zero
    assert global_norm(after) == pytest.approx(theta, rel=tol)
    # directions are kept: every entry is scaled by the same factor, so the ratios after / before agree up
    # to the rounding of each product (eps / 2 either way per rounding; 2 eps allows a factor applied in two
    # multiplications; measured 0.5 eps). Clipping each tensor by its own norm spreads them by > 10%.
    ratios = torch.cat([(a.double() / b.double())[b != 0] for a, b in zip(after, before)])
    assert (ratios.max() - ratios.min()) <= 2 * EPS * ratios.mean()
    assert ratios.mean().item() == pytest.approx(theta / norm0, rel=tol)


@pytest.mark.parametrize("kind", ["scratch", "concise"])
@pytest.mark.parametrize("theta", ["above", None])
def test_clip_gradients_leaves_small_gradients_alone(kind, theta, device):
    model = fresh_grads(kind, device=device)
    before = [p.grad.clone() for p in model.parameters()]
    norm0 = global_norm(before)
    got = clip_gradients(model.parameters(), None if theta is None else norm0 * 1.5)
    assert float(got) == pytest.approx(norm0, rel=clip_tolerance(before))  # float32 norm vs float64 norm0
    for a, b in zip(model.parameters(), before):
        assert torch.equal(a.grad, b)


@pytest.mark.parametrize("kind", ["scratch", "concise"])
def test_clipping_applied_inside_training(tiny_text, tiny_config, kind, device):
    """One SGD step with lr 10: the weights move by exactly lr * theta when the gradient is clipped."""
    lr, theta = 10.0, 1e-3
    cfg = tiny_config(model=kind, sampling="consecutive", optimizer="sgd", lr=lr, clip_theta=theta, epochs=1,
                      device=device)
    corpus = one_batch_corpus(cfg, tiny_text)
    t = Trainer(cfg, corpus)
    before = params_of(t.model)
    (ev, _) = list(t.run())
    after = params_of(t.model)
    assert ev.grad_norm > 10 * theta and ev.clipped == 1.0
    moved = global_norm(after[k] - before[k] for k in before)
    # float32: the clipped gradient is off by clip_tolerance (relative), lr * g rounds (eps / 2), and each new
    # weight is rounded to float32, an error of eps / 2 * |p| per entry, eps / 2 * ||p|| in all, which is
    # relative to the step lr * theta: eps / 2 * ||p|| / (lr * theta). Concise: 4e-5 + 2e-5 (n = 717,
    # ||p|| = 3.9, lr * theta = 1e-2); measured 7e-7. An unclipped step is more than 10x longer.
    n, p_norm = numel(before.values()), global_norm(before.values())
    tol = clip_tolerance(before.values()) + EPS / 2 * (1 + p_norm / (lr * theta))
    assert moved == pytest.approx(lr * theta, rel=tol)
    # without clipping the same step moves lr * ||g||
    t2 = Trainer(cfg.replace(clip_theta=None), corpus)
    (ev2, _) = list(t2.run())
    moved2 = global_norm(v - before[k] for k, v in params_of(t2.model).items())
    # the same float32 norm of the same gradients (clipping comes after it): equal in practice; n * eps / 2
    # would allow another summation order. The norm after clipping (theta) is 10x smaller.
    assert ev2.clipped == 0.0 and ev2.grad_norm == pytest.approx(ev.grad_norm, rel=n * EPS / 2)
    # as above, with the step lr * ||g|| and the reported (float32) norm as the reference
    tol2 = clip_tolerance(before.values()) + EPS / 2 * (1 + p_norm / (lr * ev2.grad_norm))
    assert moved2 == pytest.approx(lr * ev2.grad_norm, rel=tol2)


def test_clip_off_reports_zero_clipped(tiny_corpus, tiny_config):
    cfg = tiny_config(clip_theta=None, epochs=2, lr=0.5)
    evs = [e for e in Trainer(cfg, tiny_corpus).run() if isinstance(e, EpochEnd)]
    assert [e.clipped for e in evs] == [0.0, 0.0]
    assert all(e.grad_norm > 0 for e in evs)
    # and a tiny theta clips every minibatch
    evs = [e for e in Trainer(cfg.replace(clip_theta=1e-6), tiny_corpus).run() if isinstance(e, EpochEnd)]
    assert [e.clipped for e in evs] == [1.0, 1.0]


# ---------------------------------------------------------------- stopping
def count_forwards(trainer, monkeypatch, on_call=None):
    calls = {"n": 0}
    orig = trainer.model.forward

    def forward(X, state):
        calls["n"] += 1
        if on_call is not None:
            on_call(calls["n"])
        return orig(X, state)

    monkeypatch.setattr(trainer.model, "forward", forward)
    return calls


def test_stop_within_one_minibatch(tiny_corpus, tiny_config, monkeypatch, device):
    cfg = tiny_config(epochs=5, device=device)
    t = Trainer(cfg, tiny_corpus)
    nb = t.batches_per_epoch
    stop = threading.Event()
    stop_at = nb + 3  # in the middle of epoch 2
    at_stop = {}

    def on_call(n):
        if n == stop_at:
            stop.set()
            at_stop["weights"] = params_of(t.model)

    calls = count_forwards(t, monkeypatch, on_call)
    events = list(t.run(stop))
    assert calls["n"] - stop_at <= 1
    assert [type(e) for e in events] == [EpochEnd, Stopped]
    assert events[-1].epoch == 1 and t.epoch == 1 and "1 of 5" in events[-1].message
    # the minibatch running when stop was set was finished and applied; the weights are usable
    now = params_of(t.model)
    assert any(not torch.equal(now[k], at_stop["weights"][k]) for k in now)
    assert all(torch.isfinite(v).all() for v in now.values())
    text = t.sample("the", 20)
    assert text.startswith("the") and len(text) == 23
    # and training can go on from there
    rest = list(t.run())
    assert isinstance(rest[-1], Finished) and t.epoch == 5
    assert [e.epoch for e in rest if isinstance(e, EpochEnd)] == [2, 3, 4, 5]


def test_stop_from_another_thread(tiny_corpus, tiny_config, monkeypatch):
    t = Trainer(tiny_config(epochs=1000), tiny_corpus)
    started = threading.Event()
    calls = count_forwards(t, monkeypatch, lambda n: started.set() if n == 20 else None)
    stop = threading.Event()
    events = []
    worker = threading.Thread(target=lambda: events.extend(t.run(stop)))
    worker.start()
    assert started.wait(60)
    stop.set()
    n_at_stop = calls["n"]
    worker.join(60)
    assert not worker.is_alive()
    assert calls["n"] - n_at_stop <= 1
    assert isinstance(events[-1], Stopped) and sum(isinstance(e, End) for e in events) == 1
    assert t.epoch < 1000 and events[-1].epoch == t.epoch


def test_stop_already_set_trains_nothing(tiny_corpus, tiny_config, monkeypatch):
    t = Trainer(tiny_config(epochs=3), tiny_corpus)
    calls = count_forwards(t, monkeypatch)
    before = params_of(t.model)
    stop = threading.Event()
    stop.set()
    events = list(t.run(stop))
    assert [type(e) for e in events] == [Stopped] and calls["n"] == 0
    assert all(torch.equal(before[k], v) for k, v in params_of(t.model).items())


# ---------------------------------------------------------------- divergence
def test_divergence_keeps_initial_weights(tiny_corpus, tiny_config, device):
    cfg = tiny_config(lr=1e6, clip_theta=None, epochs=5, num_hiddens=32, device=device)
    t = Trainer(cfg, tiny_corpus)
    initial = params_of(t.model)
    events = list(t.run())
    assert len(events) == 1 and type(events[0]) is Diverged
    d = events[0]
    assert d.epoch == 0 and t.epoch == 0 and t.history == [] and d.status == "diverged"
    assert "lr 1e+06" in d.message and "off" in d.message and "epoch 1" in d.message
    for k, v in params_of(t.model).items():
        assert torch.isfinite(v).all() and torch.equal(v, initial[k]), k


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_divergence_restores_last_good_epoch(tiny_corpus, tiny_config, optimizer, device):
    cfg = tiny_config(optimizer=optimizer, lr=0.5 if optimizer == "sgd" else 0.01, clip_theta=1.0, epochs=6,
                      device=device)
    t = Trainer(cfg, tiny_corpus)
    events, good, good_optim = [], None, None
    gen = t.run()
    for ev in gen:
        events.append(ev)
        if isinstance(ev, EpochEnd) and ev.epoch == 2:
            good = params_of(t.model)
            good_optim = {k: {n: (v.clone() if torch.is_tensor(v) else v) for n, v in s.items()}
                          for k, s in t.optimizer.state_dict()["state"].items()}
            for group in t.optimizer.param_groups:  # from now on, blow up
                group["lr"] = 1e12
            t.config.clip_theta = None
    assert [type(e) for e in events] == [EpochEnd, EpochEnd, Diverged]
    assert events[-1].epoch == 2 and t.epoch == 2 and len(t.history) == 2
    now = params_of(t.model)
    for k in now:
        assert torch.isfinite(now[k]).all() and torch.equal(now[k], good[k]), k
    restored = t.optimizer.state_dict()["state"]
    assert restored.keys() == good_optim.keys()
    for k, s in good_optim.items():
        for n, v in s.items():
            assert torch.equal(restored[k][n], v) if torch.is_tensor(v) else restored[k][n] == v


# ---------------------------------------------------------------- reproducibility
@pytest.mark.parametrize("preset_fields", [
    dict(model="scratch", sampling="random", optimizer="sgd", lr=1.0),
    dict(model="concise", sampling="consecutive", optimizer="adam", lr=0.01),
])
def test_same_seed_same_run(tiny_corpus, tiny_config, preset_fields, device):
    cfg = tiny_config(epochs=3, pred_period=3, temperature=1.0, top_k=5, device=device, **preset_fields)

    def run(c):
        evs = list(Trainer(c, tiny_corpus).run())
        return [e.perplexity for e in evs if isinstance(e, EpochEnd)], [e.text for e in evs if isinstance(e, Sample)]

    a, b, c = run(cfg), run(cfg), run(cfg.replace(seed=1))
    assert a == b  # exact equality, samples included
    assert a[0] != c[0]


def test_random_sampling_order_follows_seed(tiny_corpus, tiny_config, monkeypatch):
    """Same initial weights, different shuffle seeds: only the minibatch order differs, and it shows."""
    cfg = tiny_config(sampling="random", epochs=1)
    firsts = []
    for seed in (0, 0, 1):
        t = Trainer(cfg, tiny_corpus)
        t.shuffle.manual_seed(seed)
        seen = []
        orig = t.model.forward
        monkeypatch.setattr(t.model, "forward",
                            lambda X, s, orig=orig, seen=seen: (seen.append(X.clone()), orig(X, s))[1])
        list(t.run())
        firsts.append(torch.stack(seen))
    assert torch.equal(firsts[0], firsts[1]) and not torch.equal(firsts[0], firsts[2])


# ---------------------------------------------------------------- snapshots
def test_snapshot_is_a_cpu_copy(tiny_corpus, tiny_config, device):
    t = Trainer(tiny_config(epochs=1, device=device), tiny_corpus)
    list(t.run())
    snap = t.snapshot()
    assert snap is not t.model and not snap.training and t.model.training
    for (k, a), b in zip(snap.state_dict().items(), t.model.state_dict().values()):
        assert a.device.type == "cpu" and torch.equal(a, b.cpu()) and a.data_ptr() != b.data_ptr(), k
    with torch.no_grad():
        snap.W_hh.add_(1.0)
    assert not torch.equal(snap.W_hh, t.model.W_hh.cpu())
    # the snapshot writes what the model writes (compared on the model's device: a CPU and a GPU may round a
    # near-tie of two logits apart)
    assert predict(t.snapshot().to(device), t.vocab, "the", 15) == t.sample("the", 15)


def test_snapshot_is_consistent_while_training(tiny_corpus, tiny_config, device):
    """On CUDA the updates are queued kernels on the run's stream: a copy not ordered after them (and before
    the next ones) would catch some parameters updated and others not, as the unlocked copy would on the CPU."""
    t = Trainer(tiny_config(epochs=6, device=device), tiny_corpus)
    states = [params_of(t.model)]
    lr = t.config.lr

    @torch.no_grad()
    def step(*a, **k):
        # plain SGD, one parameter at a time with a pause between: a copy taken without the trainer's
        # lock would catch some parameters updated and others not
        for p in t.model.parameters():
            p.add_(p.grad, alpha=-lr)
            time.sleep(0.0003)
        states.append(params_of(t.model))  # the weights after every update

    t.optimizer.step = step
    done = threading.Event()
    worker = threading.Thread(target=lambda: (list(t.run()), done.set()))
    worker.start()
    snaps = []
    while not done.is_set() and len(snaps) < 100:
        snaps.append({k: v.clone() for k, v in t.snapshot().state_dict().items()})
        time.sleep(0.002)  # spread the snapshots over the run
    worker.join(120)
    assert done.is_set() and len(snaps) >= 2
    keys = list(states[0])
    index = {tuple(s[k].sum().item() for k in keys): i for i, s in enumerate(states)}
    matched = []
    for snap in snaps:
        i = index.get(tuple(snap[k].sum().item() for k in keys))
        assert i is not None, "a snapshot matches no state the weights were ever in (torn copy)"
        assert all(torch.equal(snap[k], states[i][k]) for k in keys)
        matched.append(i)
    assert len(states) == 6 * t.batches_per_epoch + 1
    assert len(set(matched)) >= 2  # the snapshots really were taken while the weights changed


# ---------------------------------------------------------------- the opt-in fast path
@pytest.mark.parametrize("preset_fields", [
    {"model": "scratch", "sampling": "random", "optimizer": "sgd", "lr": 1.0},
    {"model": "concise", "sampling": "consecutive", "optimizer": "adam", "lr": 0.01},
])
def test_fast_changes_nothing_on_the_cpu(tiny_corpus, tiny_config, preset_fields):
    """TrainConfig.fast is CUDA-only: on the CPU the run is exactly the default one (no graph, same numbers).
    Its agreement with the default path on a GPU is test_gpu.py's."""
    cfg = tiny_config(epochs=3, device="cpu", **preset_fields)
    plain, fast = Trainer(cfg, tiny_corpus), Trainer(cfg.replace(fast=True), tiny_corpus)
    a = [e.perplexity for e in plain.run() if isinstance(e, EpochEnd)]
    b = [e.perplexity for e in fast.run() if isinstance(e, EpochEnd)]
    assert a == b and not fast.graphed and fast.graph_error is None
    assert fast.optimizer.param_groups[0].get("capturable", False) is False
    for k, v in plain.model.state_dict().items():
        assert torch.equal(fast.model.state_dict()[k], v), k


@pytest.mark.parametrize("preset_fields", [
    {"model": "scratch", "sampling": "random", "optimizer": "sgd", "lr": 1.0},
    {"model": "scratch", "sampling": "consecutive", "optimizer": "sgd", "lr": 1.0},
    {"model": "concise", "sampling": "consecutive", "optimizer": "adam", "lr": 0.01},
])
def test_graph_replays_train_exactly_like_eager_steps(tiny_corpus, tiny_config, monkeypatch, preset_fields):
    """The fast path's bookkeeping, on the CPU: a stand-in for the CUDA graph whose capture records nothing
    and whose replay runs the captured step's Python body. Inputs copied into the static buffers, the state
    carried (consecutive) or fresh (random) and reset each epoch, the [loss, norm] read back, a run that ends
    and goes on: the run must equal the eager one exactly (the same operations on the same numbers). What the real
    graph adds (one launch per step) is test_gpu.py's."""
    train_mod = importlib.import_module("charrnn.train")  # (charrnn.train, the attribute, is the function)

    owners = []

    def capture(self, trainer):  # nothing runs at capture time, as with a real graph
        owners.append(train_mod._GATE._owner)  # captured alone: inside the gate's exclusive section
        self.stats = torch.zeros(2)
        self.graph = type("ReplayedEagerly", (),
                          {"replay": staticmethod(lambda: self.stats.copy_(self._body(trainer)))})

    monkeypatch.setattr(train_mod._GraphStep, "_capture", capture)
    cfg = tiny_config(epochs=4, **preset_fields)
    plain = Trainer(cfg, tiny_corpus)
    want = [(e.perplexity, e.grad_norm, e.grad_norm_max, e.clipped) for e in plain.run() if isinstance(e, EpochEnd)]
    graphed = Trainer(cfg.replace(fast=True, epochs=2), tiny_corpus)
    graphed.use_graphs = True  # what fast=True means on CUDA

    def numbers():
        return [(e.perplexity, e.grad_norm, e.grad_norm_max, e.clipped) for e in graphed.run()
                if isinstance(e, EpochEnd)]

    got = numbers()
    assert graphed.graphed and graphed.epoch == 2
    graphed.config = graphed.config.replace(epochs=4)  # and on: the same graph, its state reset for epoch 3
    got += numbers()
    assert got == want
    assert graphed._eager_steps == train_mod.WARMUP_STEPS  # then every step was a replay
    assert owners == [threading.get_ident()]  # one capture, in this thread, with the GPU to itself
    for k, v in plain.model.state_dict().items():
        assert torch.equal(graphed.model.state_dict()[k], v), k


# ---------------------------------------------------------------- the gate a CUDA-graph capture passes
WAIT = 10  # seconds a test waits for something that should happen at once (a generous bound, never a timing)


def _in_thread(fn):
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    return t


def test_shared_sections_run_together():
    """Runs queue their CUDA work at once: two threads are inside shared sections at the same time."""
    from charrnn.train import CudaGate
    gate, both = CudaGate(), threading.Barrier(2)

    def worker():
        with gate.shared():
            both.wait(WAIT)  # breaks (an exception) unless the other thread is inside too

    threads = [_in_thread(worker) for _ in range(2)]
    for t in threads:
        t.join(WAIT)
    assert not both.broken and not any(t.is_alive() for t in threads)


def test_a_capture_waits_for_open_work_and_holds_new_work_back():
    """The order the H200 needs (CudaGate's docstring): a capture starts only after every open shared section
    has ended, and no shared section opens until it ends."""
    from charrnn.train import CudaGate
    gate, log = CudaGate(), []
    inside, release, capturing, finish = (threading.Event() for _ in range(4))

    def training():
        with gate.shared():
            inside.set()
            release.wait(WAIT)
            log.append("step ends")

    def capture():
        with gate.exclusive():
            log.append("capture starts")
            capturing.set()
            finish.wait(WAIT)
            log.append("capture ends")

    def snapshot():
        with gate.shared():
            log.append("snapshot")

    a = _in_thread(training)
    assert inside.wait(WAIT)
    c = _in_thread(capture)
    while gate._owner is None:  # the capture has claimed the gate and waits for the open step
        time.sleep(0.001)
    s = _in_thread(snapshot)     # arrives during the wait: must not slip in before the capture
    assert not capturing.wait(0.2)  # (a bounded look that it has not started: a step is still open)
    release.set()
    assert capturing.wait(WAIT)
    assert "snapshot" not in log  # held back while the capture runs
    finish.set()
    for t in (a, c, s):
        t.join(WAIT)
    assert log == ["step ends", "capture starts", "capture ends", "snapshot"]


def test_nested_shared_sections_do_not_wait_for_a_pending_capture():
    """Trainer.fork opens a section for its twin's stream and another to read the run it copies: the inner one
    must not queue behind a capture that is itself waiting for the outer one (that would never end)."""
    from charrnn.train import CudaGate
    gate, done = CudaGate(), []
    outer, captured = threading.Event(), threading.Event()

    def fork_like():
        with gate.shared():
            outer.set()
            while gate._owner is None:
                time.sleep(0.001)
            with gate.shared():  # the capture is pending now
                done.append("inner")

    def capture():
        with gate.exclusive():
            captured.set()

    f = _in_thread(fork_like)
    assert outer.wait(WAIT)
    c = _in_thread(capture)
    f.join(WAIT)
    c.join(WAIT)
    assert done == ["inner"] and captured.is_set() and not f.is_alive() and not c.is_alive()


def test_a_capture_inside_its_own_shared_section_is_refused():
    """It would wait for itself forever; the capturing thread may open shared sections while it captures."""
    from charrnn.train import CudaGate
    gate = CudaGate()
    with gate.shared():
        with pytest.raises(RuntimeError, match="would wait forever"):
            with gate.exclusive():
                pass
    with gate.exclusive():
        with gate.shared():  # e.g. the capture's own stream work
            pass
    assert gate._owner is None and gate._open == 0
