"""The two models, each against an explicit computation written the chapter's way with the same weights."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from charrnn import CharModel, ConciseRNN, ScratchRNN, build_model
from charrnn.models import detach_state

V, H, BATCH, STEPS = 23, 12, 3, 5


def chapter_scratch(model: ScratchRNN, X: torch.Tensor, state):
    """The chapter's rnn(): per step one_hot(X_t) @ W_xh + H @ W_hh + b_h, tanh, O_t = H W_hq + b_q."""
    (Hs,) = state
    outputs = []
    for t in range(X.shape[1]):
        x = F.one_hot(X[:, t], model.vocab_size).float()  # (batch, V)
        Hs = torch.tanh(torch.matmul(x, model.W_xh) + torch.matmul(Hs, model.W_hh) + model.b_h)
        outputs.append(torch.matmul(Hs, model.W_hq) + model.b_q)
    return torch.cat(outputs, dim=0), (Hs,)


def chapter_concise(model: ConciseRNN, X: torch.Tensor, state):
    """nn.RNN's equations with its own weights: h_t = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh); dense per step."""
    rnn = model.rnn
    h = state[0][0] if state is not None else torch.zeros(X.shape[0], model.num_hiddens)
    outputs = []
    for t in range(X.shape[1]):
        x = F.one_hot(X[:, t], model.vocab_size).float()
        h = torch.tanh(x @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + h @ rnn.weight_hh_l0.T + rnn.bias_hh_l0)
        outputs.append(h @ model.dense.weight.T + model.dense.bias)
    return torch.cat(outputs, dim=0), (h[None],)


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, V, (BATCH, STEPS), generator=g), torch.randint(0, V, (BATCH, STEPS), generator=g)


def random_state(model, seed=1):
    (s,) = model.begin_state(BATCH)
    return (torch.randn(s.shape, generator=torch.Generator().manual_seed(seed)) * 0.5,)


def check_against(model, reference, state):
    X, Y = batch()
    logits, (h_out,) = model(X, state)
    want, (h_want,) = reference(model, X, state)
    assert logits.shape == (STEPS * BATCH, V)
    assert torch.allclose(logits, want, atol=1e-6, rtol=1e-5)
    assert torch.allclose(h_out, h_want, atol=1e-6, rtol=1e-5)
    # gradients of the chapter's loss (labels: Y transposed, flattened) agree too
    labels = Y.T.reshape(-1)
    grads = torch.autograd.grad(F.cross_entropy(logits, labels), list(model.parameters()))
    grads_want = torch.autograd.grad(F.cross_entropy(want, labels), list(model.parameters()))
    for (name, _), a, b in zip(model.named_parameters(), grads, grads_want):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-4), name
        assert a.abs().sum() > 0, name  # every parameter really takes part


@pytest.mark.parametrize("state_kind", ["zeros", "random"])
def test_scratch_forward_and_grads_equal_chapter(state_kind):
    model = build_model("scratch", V, H, seed=3)
    with torch.no_grad():  # larger weights than 0.01 so tanh is not linear and mistakes would show
        for p in model.parameters():
            p.normal_(0, 0.5, generator=torch.Generator().manual_seed(p.numel()))
    state = model.begin_state(BATCH) if state_kind == "zeros" else random_state(model)
    check_against(model, chapter_scratch, state)


@pytest.mark.parametrize("state_kind", ["zeros", "random"])
def test_concise_forward_and_grads_equal_explicit(state_kind):
    model = build_model("concise", V, H, seed=3)
    state = model.begin_state(BATCH) if state_kind == "zeros" else random_state(model)
    check_against(model, chapter_concise, state)


def test_concise_zero_state_equals_none_state():
    model = build_model("concise", V, H, seed=0)
    X, _ = batch()
    a, (ha,) = model(X, model.begin_state(BATCH))
    b, hb = model.rnn(F.one_hot(X.T, V).float(), None)  # the chapter: a state of None means zeros
    assert torch.allclose(a, model.dense(b.reshape(-1, H)), atol=1e-6)
    assert torch.allclose(ha, hb, atol=1e-6)


@pytest.mark.parametrize("kind", ["scratch", "concise"])
def test_contract(kind):
    model = build_model(kind, V, H, seed=0)
    assert isinstance(model, CharModel) and model.kind == kind
    assert (model.vocab_size, model.num_hiddens) == (V, H)
    state = model.begin_state(BATCH)
    assert isinstance(state, tuple) and len(state) == 1
    assert torch.count_nonzero(state[0]) == 0 and state[0].shape[-1] == H and state[0].shape[-2] == BATCH
    X, _ = batch()
    logits, new_state = model(X, state)
    assert logits.shape == (STEPS * BATCH, V) and logits.dtype == torch.float32
    assert isinstance(new_state, tuple) and new_state[0].shape == state[0].shape
    # time-major: rows t*batch .. (t+1)*batch-1 belong to step t, so running step by step gives the same rows
    rows, s = [], state
    for t in range(STEPS):
        out, s = model(X[:, t:t + 1], s)
        rows.append(out)
    assert torch.allclose(torch.cat(rows), logits, atol=1e-6)
    assert torch.allclose(s[0], new_state[0], atol=1e-6)
    # detach_state cuts the graph but keeps the numbers
    d = detach_state(new_state)
    assert isinstance(d, tuple) and d[0].grad_fn is None and torch.equal(d[0], new_state[0])


def test_scratch_shapes_and_init_statistics():
    Vb, hb = 1027, 256
    model = build_model("scratch", Vb, hb, seed=0)
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    assert shapes == {"W_xh": (Vb, hb), "W_hh": (hb, hb), "b_h": (hb,), "W_hq": (hb, Vb), "b_q": (Vb,)}
    for name in ("W_xh", "W_hq", "W_hh"):
        w = getattr(model, name).detach()
        assert abs(w.mean().item()) < 5e-4, name
        assert w.std().item() == pytest.approx(0.01, rel=0.03 if w.numel() > 100_000 else 0.05), name
    assert torch.count_nonzero(model.b_h) == 0 and torch.count_nonzero(model.b_q) == 0
    # and a fresh model guesses uniformly: loss ~ log V
    X = torch.randint(0, Vb, (4, 10), generator=torch.Generator().manual_seed(0))
    logits, _ = model(X, model.begin_state(4))
    loss = F.cross_entropy(logits, X.T.reshape(-1)).item()
    assert loss == pytest.approx(math.log(Vb), abs=0.01)


def test_concise_init_statistics():
    model = build_model("concise", 200, 64, seed=0)
    bound = 1 / math.sqrt(64)
    for name, p in model.named_parameters():
        p = p.detach()
        assert p.abs().max().item() <= bound, name
        if p.numel() > 1000:
            assert p.abs().max().item() > 0.95 * bound, name
            assert p.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.1), name  # Uniform(-b, b)


@pytest.mark.parametrize("kind", ["scratch", "concise"])
def test_same_seed_same_weights(kind):
    torch.manual_seed(123)
    a = build_model(kind, V, H, seed=7)
    torch.manual_seed(456)  # the global generator does not matter
    b = build_model(kind, V, H, seed=7)
    c = build_model(kind, V, H, seed=8)
    for (n, pa), pb, pc in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb), n
        if torch.count_nonzero(pa) > 0:
            assert not torch.equal(pa, pc), n


def test_unknown_model_kind():
    with pytest.raises(ValueError, match="scratch, concise"):
        build_model("lstm", V, H)
