"""Minibatch sampling, against the chapter's semantics re-written here with plain Python lists."""
from __future__ import annotations

import importlib
import math

import pytest
import torch

from charrnn import Trainer, epoch_batches, num_batches
from charrnn.batches import consecutive_batches, random_batches
from charrnn.models import detach_state

train_mod = importlib.import_module("charrnn.train")  # the module (charrnn.train is also a function's name)
EPS = torch.finfo(torch.float32).eps  # 1.19e-7: float32's relative rounding step


# ---------------------------------------------------------------- the chapter, with lists
def chapter_random(seq: list[int], batch: int, steps: int, order: list[int]) -> list[tuple[list, list]]:
    """Random sampling: windows start at 0, steps, 2*steps, ...; ``order`` is the shuffled window order."""
    n_windows = (len(seq) - 1) // steps
    assert sorted(order) == list(range(n_windows))
    starts = [k * steps for k in order]
    out = []
    for i in range(n_windows // batch):
        these = starts[i * batch:(i + 1) * batch]
        X = [seq[s:s + steps] for s in these]
        Y = [seq[s + 1:s + steps + 1] for s in these]
        out.append((X, Y))
    return out


def chapter_consecutive(seq: list[int], batch: int, steps: int) -> list[tuple[list, list]]:
    """Consecutive sampling: batch rows of len//batch characters each, read left to right."""
    row_len = len(seq) // batch
    rows = [seq[r * row_len:(r + 1) * row_len] for r in range(batch)]
    out = []
    for i in range((row_len - 1) // steps):
        j = i * steps
        out.append(([row[j:j + steps] for row in rows], [row[j + 1:j + steps + 1] for row in rows]))
    return out


def as_lists(batches) -> list[tuple[list, list]]:
    out = []
    for X, Y in batches:
        assert X.dtype == torch.long and Y.dtype == torch.long and X.shape == Y.shape
        out.append((X.tolist(), Y.tolist()))
    return out


def seq_of(length: int) -> list[int]:
    return [(7 * i + 3) % 101 for i in range(length)]  # distinct-looking values, no structure to exploit


SIZES = [(20, 2, 3), (100, 4, 5), (101, 4, 5), (137, 3, 7), (1000, 8, 35), (10_000, 32, 35), (36, 1, 35)]


@pytest.mark.parametrize("length, batch, steps", SIZES)
def test_random_matches_chapter(length, batch, steps):
    seq = seq_of(length)
    corpus = torch.tensor(seq)
    g = torch.Generator().manual_seed(123)
    got = as_lists(random_batches(corpus, batch, steps, g))
    # the same permutation the library drew (its generator, its first draw), applied to the chapter's windows
    order = torch.randperm((length - 1) // steps, generator=torch.Generator().manual_seed(123)).tolist()
    assert got == chapter_random(seq, batch, steps, order)
    assert len(got) == ((length - 1) // steps) // batch == num_batches(length, batch, steps, "random")


@pytest.mark.parametrize("length, batch, steps", SIZES)
def test_consecutive_matches_chapter(length, batch, steps):
    seq = seq_of(length)
    got = as_lists(consecutive_batches(torch.tensor(seq), batch, steps))
    want = chapter_consecutive(seq, batch, steps)
    assert got == want
    assert len(got) == max(((length // batch) - 1) // steps, 0) == num_batches(length, batch, steps, "consecutive")


@pytest.mark.parametrize("sampling", ["random", "consecutive"])
def test_y_is_x_shifted_by_one(sampling):
    seq = list(range(500))  # index == position, so a shift is visible as +1
    for X, Y in epoch_batches(torch.tensor(seq), 4, 6, sampling, torch.Generator().manual_seed(0)):
        assert torch.equal(Y, X + 1)
        # and every row is a contiguous run of the text
        assert torch.equal(X[:, 1:], X[:, :-1] + 1)


def test_random_windows_are_distinct_chapter_windows():
    length, batch, steps = 1_000, 5, 7
    seq = list(range(length))
    starts_seen = []
    for X, _ in random_batches(torch.tensor(seq), batch, steps, torch.Generator().manual_seed(5)):
        starts = X[:, 0].tolist()
        assert len(set(starts)) == batch
        assert all(s % steps == 0 for s in starts)            # a chapter window: starts at a multiple of steps
        assert all(s + steps < length for s in starts)        # ... and its Y fits in the text
        starts_seen += starts
    assert len(starts_seen) == len(set(starts_seen))          # no window twice in an epoch, so none overlap
    assert len(starts_seen) == (((length - 1) // steps) // batch) * batch
    assert starts_seen != sorted(starts_seen)                 # shuffled


def test_random_order_depends_on_seed_only():
    corpus = torch.arange(2_000)

    def run(seed):
        return [X[:, 0].tolist() for X, _ in random_batches(corpus, 4, 10, torch.Generator().manual_seed(seed))]

    assert run(1) == run(1)
    assert run(1) != run(2)
    # each epoch draws a new order from the same generator
    g = torch.Generator().manual_seed(1)
    first = [X[:, 0].tolist() for X, _ in random_batches(corpus, 4, 10, g)]
    second = [X[:, 0].tolist() for X, _ in random_batches(corpus, 4, 10, g)]
    assert first == run(1) and second != first


def test_consecutive_rows_continue():
    corpus = torch.arange(1_000)
    batches = list(consecutive_batches(corpus, 4, 9))
    for (X0, _), (X1, _) in zip(batches, batches[1:]):
        assert torch.equal(X1[:, 0], X0[:, -1] + 1)  # each row continues where it stopped


@pytest.mark.parametrize("length", [2, 10, 35, 36, 71, 1_121, 1_153, 1_154, 10_000, 63_282])
@pytest.mark.parametrize("batch, steps", [(1, 1), (2, 3), (32, 35)])
def test_num_batches_formulas(length, batch, steps):
    while length // (batch * steps) > 2_000:
        length = length // 10 + 1  # keep the enumeration cheap
    g = torch.Generator().manual_seed(0)
    corpus = torch.arange(length)
    r = len(list(random_batches(corpus, batch, steps, g)))
    c = len(list(consecutive_batches(corpus, batch, steps)))
    assert r == num_batches(length, batch, steps, "random") == ((length - 1) // steps) // batch
    assert c == num_batches(length, batch, steps, "consecutive") == max(((length // batch) - 1) // steps, 0)


def test_chapter_corpus_gives_8_minibatches():
    assert num_batches(10_000, 32, 35, "random") == 8
    assert num_batches(10_000, 32, 35, "consecutive") == 8


def test_chapter_corpus_gives_8_minibatches_real(jaychou_10k):
    for sampling in ("random", "consecutive"):
        got = list(epoch_batches(jaychou_10k.indices, 32, 35, sampling, torch.Generator().manual_seed(0)))
        assert len(got) == 8 and all(X.shape == (32, 35) for X, _ in got)


def test_unknown_sampling_is_refused():
    with pytest.raises(ValueError, match="random or consecutive"):
        num_batches(100, 2, 3, "adjacent")
    with pytest.raises(ValueError, match="random or consecutive"):
        epoch_batches(torch.arange(100), 2, 3, "adjacent", torch.Generator())


# ---------------------------------------------------------------- the state inside the Trainer
class Counting:
    def __init__(self):
        self.begin = 0
        self.detach = 0
        self.forward = 0
        self.states_in = []


def instrument(trainer: Trainer, monkeypatch) -> Counting:
    n = Counting()
    model = trainer.model
    orig_begin, orig_forward = model.begin_state, model.forward

    def begin_state(*a, **k):
        n.begin += 1
        return orig_begin(*a, **k)

    def forward(X, state):
        n.forward += 1
        n.states_in.append(state)
        return orig_forward(X, state)

    def detach(state):
        n.detach += 1
        return detach_state(state)

    monkeypatch.setattr(model, "begin_state", begin_state)
    monkeypatch.setattr(model, "forward", forward)
    monkeypatch.setattr(train_mod, "detach_state", detach)
    return n


def test_random_sampling_resets_state_every_minibatch(tiny_corpus, tiny_config, monkeypatch):
    t = Trainer(tiny_config(sampling="random", epochs=2), tiny_corpus)
    n = instrument(t, monkeypatch)
    list(t.run())
    nb = t.batches_per_epoch
    assert nb >= 5
    assert n.forward == 2 * nb and n.begin == 2 * nb and n.detach == 0
    for (H,) in n.states_in:
        assert not H.requires_grad and torch.count_nonzero(H) == 0  # a fresh zero state each time


def test_consecutive_sampling_carries_detached_state(tiny_corpus, tiny_config, monkeypatch):
    t = Trainer(tiny_config(sampling="consecutive", epochs=2), tiny_corpus)
    n = instrument(t, monkeypatch)
    list(t.run())
    nb = t.batches_per_epoch
    assert nb >= 5
    assert n.forward == 2 * nb and n.begin == 2 and n.detach == 2 * (nb - 1)
    for i, (H,) in enumerate(n.states_in):
        if i % nb == 0:
            assert torch.count_nonzero(H) == 0         # a new epoch starts from zeros
        else:
            assert torch.count_nonzero(H) > 0          # carried over ...
            assert not H.requires_grad and H.grad_fn is None  # ... and cut from the previous graph


def hand_written_training(corpus, cfg, epochs, dtype=torch.float64):
    """The chapter's train-and-predict loop, written out: SGD, clipping, state handling per sampling.

    It runs in float64 by default (the same initial weights, exactly), as the reference for the float32
    Trainer. Returns the model, the perplexity per epoch and the number of SGD steps taken."""
    from charrnn import build_model
    model = build_model(cfg.model, len(corpus.vocab), cfg.num_hiddens, cfg.seed).to(dtype)
    params = list(model.parameters())
    g = torch.Generator().manual_seed(cfg.seed)
    ppl, steps = [], 0
    for _ in range(epochs):
        if cfg.sampling == "consecutive":
            H = torch.zeros(cfg.batch_size, cfg.num_hiddens, dtype=dtype)
            batches = chapter_consecutive(corpus.indices.tolist(), cfg.batch_size, cfg.num_steps)
        else:
            order = torch.randperm((len(corpus) - 1) // cfg.num_steps, generator=g).tolist()
            batches = chapter_random(corpus.indices.tolist(), cfg.batch_size, cfg.num_steps, order)
        total, n = 0.0, 0
        for X, Y in batches:
            if cfg.sampling == "random":
                H = torch.zeros(cfg.batch_size, cfg.num_hiddens, dtype=dtype)
            else:
                H = H.detach()
            X, Y = torch.tensor(X), torch.tensor(Y)
            outputs = []
            for t in range(X.shape[1]):
                x = torch.nn.functional.one_hot(X[:, t], len(corpus.vocab)).to(dtype)
                H = torch.tanh(x @ model.W_xh + H @ model.W_hh + model.b_h)
                outputs.append(H @ model.W_hq + model.b_q)
            logits = torch.cat(outputs, dim=0)
            labels = Y.T.reshape(-1)
            loss = torch.nn.functional.cross_entropy(logits, labels)
            for p in params:
                p.grad = None
            loss.backward()
            norm = torch.sqrt(sum((p.grad ** 2).sum() for p in params))
            if norm > cfg.clip_theta:
                for p in params:
                    p.grad *= cfg.clip_theta / norm
            with torch.no_grad():
                for p in params:
                    p -= cfg.lr * p.grad
            total += loss.item()
            n += 1
        steps += n
        ppl.append(torch.exp(torch.tensor(total / n, dtype=torch.float64)).item())
    return model, ppl, steps


@pytest.mark.parametrize("sampling", ["consecutive", "random"])
def test_trainer_matches_hand_written_loop(tiny_corpus, tiny_config, sampling):
    cfg = tiny_config(sampling=sampling, epochs=3, lr=2.0, clip_theta=0.5)
    t = Trainer(cfg, tiny_corpus)
    events = [e for e in t.run() if hasattr(e, "perplexity")]
    model, ppl, steps = hand_written_training(tiny_corpus, cfg, 3)  # float64
    # The float32 Trainer drifts from the float64 loop by rounding only. Each of the `steps` (132) SGD steps
    # rounds every weight to float32 (eps / 2 * |p|, |p| <= ~2.5 here) and moves it by lr * (clipped g),
    # whose float32 error is ~eps relative to a step of norm <= lr * theta = 1 (several eps per sum, but
    # not all the same sign). Added up with no cancellation: steps * eps * (max|p| + lr * theta) =
    # 132 x 1.2e-7 x 3.5 ~ 5.5e-5 (measured: 2e-6). Not clipping, not carrying or not resetting the state,
    # or another batch order changes the weights by > 1e-2.
    max_p = max(p.detach().abs().max().item() for p in model.parameters())
    atol = steps * EPS * (max_p + cfg.lr * cfg.clip_theta)
    for (name, a), (_, b) in zip(t.model.named_parameters(), model.named_parameters()):
        assert (a.double() - b).abs().max() <= atol, name
    # Perplexity: exp(mean loss), so its relative error is the loss's absolute one. The loss rounds by
    # ~(B*S + V) * eps * log V (a mean of B*S terms, each a logsumexp over V) ~ 50 x 1.2e-7 x 3 ~ 2e-5, and
    # weights off by <= atol move each logit by roughly (H + 2) * atol (|h| <= 1), the loss by up to twice
    # that: 2 x 18 x 5.5e-5 ~ 2e-3 in all (measured: 2e-7). Those other runs differ in perplexity by > 5%.
    V, H, bs = len(tiny_corpus.vocab), cfg.num_hiddens, cfg.batch_size * cfg.num_steps
    rel = (bs + V) * EPS * math.log(V) + 2 * (H + 2) * atol
    assert [e.perplexity for e in events] == pytest.approx(ppl, rel=rel)
    assert ppl[-1] < ppl[0]
