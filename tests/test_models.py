"""The two models, each against an explicit computation written the chapter's way with the same weights.

The formula tests run on every device of the ``device`` fixture (CPU, and CUDA where there is a GPU): the
model in float32 on the device, the reference in float64 on the CPU. The tolerances are bounds on float32
rounding whatever the order of the sums, so they hold for the GPU's kernels as for the CPU's (TF32 is off
in the CUDA cases: see conftest.py).
"""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from charrnn import CharModel, ConciseRNN, ScratchRNN, build_model
from charrnn.models import detach_state

V, H, BATCH, STEPS = 23, 12, 3, 5

# Float32 against a float64 reference. Rounding a sum of k terms costs at most about k * eps * (the sum of
# their sizes) (eps = 1.19e-7). Every sum in these models has at most K terms (the one row of the input
# weights a one-hot input picks, H recurrent or output terms, two biases), each at most w = max|weight| in
# size (inputs are 0/1, |h| <= 1 after tanh): K * eps * K * w per sum, STEPS such sums in a chain (tanh'
# <= 1 passes an error on without growing it; the recurrent weights here do not blow it up in 5 steps).
EPS = torch.finfo(torch.float32).eps
K = H + 3


def output_tolerance(model) -> float:
    """Bound on |float32 - float64| for outputs and hidden states: STEPS * K * eps * K * w.

    N(0, 0.5) weights (w ~ 1.7): 5 x 15 x 1.2e-7 x 15 x 1.7 ~ 2.3e-4, measured 2e-6 (outputs ~ 3.6);
    nn.RNN's init (w = 0.29): 3.9e-5. A wrong formula (a bias dropped, W_hh transposed) moves them > 1e-2.
    """
    w = max(p.detach().abs().max().item() for p in model.parameters())
    return STEPS * K * EPS * K * w


def gradient_tolerance(model, grads) -> float:
    """Bound on |float32 - float64| for gradients of the mean loss over the N = STEPS * BATCH rows.

    Backpropagation runs the same sums in reverse (same K, same w, same STEPS), so the relative error is
    the outputs' one, plus N * eps for the sum over the rows; scaled by the largest gradient entry:
    (5 x 15 x 15 x 1.7 + 15) x 1.2e-7 x 0.28 ~ 6e-5, measured 8e-8. Cutting the graph through time or
    dropping a term moves gradients by > 1e-3.
    """
    g = max(x.abs().max().item() for x in grads)
    return (output_tolerance(model) + STEPS * BATCH * EPS) * g


def float64_copy(model):
    return copy.deepcopy(model).double()


def widen(model):
    """N(0, 0.5) weights instead of the initial ones: tanh is not linear and a mistake moves outputs by O(1)."""
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5, generator=torch.Generator().manual_seed(p.numel()))
    return model


def chapter_scratch(model: ScratchRNN, X: torch.Tensor, state):
    """The chapter's rnn(): per step one_hot(X_t) @ W_xh + H @ W_hh + b_h, tanh, O_t = H W_hq + b_q."""
    (Hs,) = state
    outputs = []
    for t in range(X.shape[1]):
        x = F.one_hot(X[:, t], model.vocab_size).to(model.W_xh.dtype)  # (batch, V)
        Hs = torch.tanh(torch.matmul(x, model.W_xh) + torch.matmul(Hs, model.W_hh) + model.b_h)
        outputs.append(torch.matmul(Hs, model.W_hq) + model.b_q)
    return torch.cat(outputs, dim=0), (Hs,)


def chapter_concise(model: ConciseRNN, X: torch.Tensor, state):
    """nn.RNN's equations with its own weights: h_t = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh); dense per step."""
    rnn = model.rnn
    dtype = rnn.weight_ih_l0.dtype
    h = state[0][0] if state is not None else torch.zeros(X.shape[0], model.num_hiddens, dtype=dtype)
    outputs = []
    for t in range(X.shape[1]):
        x = F.one_hot(X[:, t], model.vocab_size).to(dtype)
        h = torch.tanh(x @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + h @ rnn.weight_hh_l0.T + rnn.bias_hh_l0)
        outputs.append(h @ model.dense.weight.T + model.dense.bias)
    return torch.cat(outputs, dim=0), (h[None],)


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, V, (BATCH, STEPS), generator=g), torch.randint(0, V, (BATCH, STEPS), generator=g)


def random_state(model, seed=1):
    (s,) = model.begin_state(BATCH)
    return (torch.randn(s.shape, generator=torch.Generator().manual_seed(seed)) * 0.5,)


def check_against(model, reference, state, device="cpu"):
    """The model (float32, on ``device``) against ``reference`` run in float64 on the CPU, on copies of the
    same weights and state."""
    X, Y = batch()
    model64 = float64_copy(model)
    model = model.to(device)
    logits, (h_out,) = model(X.to(device), tuple(s.to(device) for s in state))
    want, (h_want,) = reference(model64, X, tuple(s.double() for s in state))
    assert logits.shape == (STEPS * BATCH, V) and logits.dtype == torch.float32 and logits.device.type == device
    tol = output_tolerance(model)
    assert (logits.double().cpu() - want).abs().max() <= tol
    assert (h_out.double().cpu() - h_want).abs().max() <= tol
    # gradients of the chapter's loss (labels: Y transposed, flattened) agree too
    labels = Y.T.reshape(-1)
    grads = torch.autograd.grad(F.cross_entropy(logits, labels.to(device)), list(model.parameters()))
    grads_want = torch.autograd.grad(F.cross_entropy(want, labels), list(model64.parameters()))
    gtol = gradient_tolerance(model, grads_want)
    for (name, _), a, b in zip(model.named_parameters(), grads, grads_want):
        assert (a.double().cpu() - b).abs().max() <= gtol, name
        assert a.abs().sum() > 0, name  # every parameter really takes part


@pytest.mark.parametrize("state_kind", ["zeros", "random"])
def test_scratch_forward_and_grads_equal_chapter(state_kind, device):
    model = widen(build_model("scratch", V, H, seed=3))  # 0.01 weights would keep tanh linear, hiding mistakes
    state = model.begin_state(BATCH) if state_kind == "zeros" else random_state(model)
    check_against(model, chapter_scratch, state, device)


@pytest.mark.parametrize("state_kind", ["zeros", "random"])
def test_concise_forward_and_grads_equal_explicit(state_kind, device):
    model = build_model("concise", V, H, seed=3)  # on CUDA: cuDNN's RNN against the equations
    state = model.begin_state(BATCH) if state_kind == "zeros" else random_state(model)
    check_against(model, chapter_concise, state, device)


def test_concise_zero_state_equals_none_state(device):
    model = build_model("concise", V, H, seed=0).to(device)
    X = batch()[0].to(device)
    a, (ha,) = model(X, model.begin_state(BATCH, device))
    b, hb = model.rnn(F.one_hot(X.T, V).float(), None)  # the chapter: a state of None means zeros
    tol = 2 * output_tolerance(model)  # both sides float32, each within output_tolerance of the exact value
    assert (a - model.dense(b.reshape(-1, H))).abs().max() <= tol
    assert (ha - hb).abs().max() <= tol


@pytest.mark.parametrize("kind", ["scratch", "concise"])
def test_contract(kind, device):
    model = widen(build_model(kind, V, H, seed=0)).to(device)  # outputs of size ~1: a row in the wrong place shows
    assert isinstance(model, CharModel) and model.kind == kind
    assert (model.vocab_size, model.num_hiddens) == (V, H)
    state = model.begin_state(BATCH, device)
    assert isinstance(state, tuple) and len(state) == 1 and state[0].device.type == device
    assert torch.count_nonzero(state[0]) == 0 and state[0].shape[-1] == H and state[0].shape[-2] == BATCH
    X = batch()[0].to(device)
    logits, new_state = model(X, state)
    assert logits.shape == (STEPS * BATCH, V) and logits.dtype == torch.float32
    assert isinstance(new_state, tuple) and new_state[0].shape == state[0].shape
    # time-major: rows t*batch .. (t+1)*batch-1 belong to step t, so running step by step gives the same rows
    rows, s = [], state
    for t in range(STEPS):
        out, s = model(X[:, t:t + 1], s)
        rows.append(out)
    tol = 2 * output_tolerance(model)  # both sides float32, each within output_tolerance of the exact value
    assert (torch.cat(rows) - logits).abs().max() <= tol
    assert (s[0] - new_state[0]).abs().max() <= tol
    # detach_state cuts the graph but keeps the numbers
    d = detach_state(new_state)
    assert isinstance(d, tuple) and d[0].grad_fn is None and torch.equal(d[0], new_state[0])


def test_scratch_shapes_and_init_statistics():
    Vb, hb = 1027, 256
    model = build_model("scratch", Vb, hb, seed=0)
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    assert shapes == {"W_xh": (Vb, hb), "W_hh": (hb, hb), "b_h": (hb,), "W_hq": (hb, Vb), "b_q": (Vb,)}
    for name in ("W_xh", "W_hq", "W_hh"):
        w = getattr(model, name).detach().double()
        n = w.numel()
        # 5 standard errors (a two-sided miss once in ~2 million seeds): the mean of n draws of N(0, 0.01)
        # has standard error 0.01 / sqrt(n) (1.9e-5 to 3.9e-5 here; measured within 1.7 of them); the sample
        # standard deviation has relative standard error 1 / sqrt(2n) (0.0014 to 0.0028; measured within 0.2).
        # Weights of std 0.012 or 0.008 are 70+ standard errors off.
        assert abs(w.mean().item()) < 5 * 0.01 / math.sqrt(n), name
        assert w.std().item() == pytest.approx(0.01, rel=5 / math.sqrt(2 * n)), name
    assert torch.count_nonzero(model.b_h) == 0 and torch.count_nonzero(model.b_q) == 0
    # and a fresh model guesses uniformly: loss ~ log V
    X = torch.randint(0, Vb, (4, 10), generator=torch.Generator().manual_seed(0))
    logits, _ = model(X, model.begin_state(4))
    loss = F.cross_entropy(logits, X.T.reshape(-1)).item()
    # loss - log V = logsumexp(z) - log V - z_y lies within 2 max|z|; the logits z are sums of 256 products of
    # two ~0.01 numbers: std ~2e-3 (measured: loss - log V = -2e-4). 0.01 bounds that; weights of std 0.1
    # (10x the chapter's) give logits of std ~0.8 and a loss 0.35 above log V.
    assert loss == pytest.approx(math.log(Vb), abs=0.01)


def test_concise_init_statistics():
    model = build_model("concise", 200, 64, seed=0)
    bound = 1 / math.sqrt(64)
    for name, p in model.named_parameters():
        p = p.detach()
        assert p.abs().max().item() <= bound, name
        if p.numel() > 1000:
            # the largest |p| of n > 1000 draws from Uniform(-b, b) is below 0.95 b with probability 0.95^n < 1e-22
            assert p.abs().max().item() > 0.95 * bound, name
            # Uniform(-b, b) has std b / sqrt(3); the sample std's relative standard error is sqrt((kurtosis - 1)
            # / 4n) = sqrt(0.2 / n) (kurtosis 9/5): 0.004 to 0.007 here, measured within 1.5 of them; 5 of them
            # allowed. Normal(0, b) weights would be 0.7 relative off, and fail the max check above too.
            assert p.std().item() == pytest.approx(bound / math.sqrt(3), rel=5 * math.sqrt(0.2 / p.numel())), name


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
    with pytest.raises(ValueError, match="scratch, concise, scratch-gru, concise-gru, scratch-lstm, concise-lstm"):
        build_model("lstm", V, H)


# ---------------------------------------------------------------- the output layer's aligned rows
@pytest.mark.parametrize("vocab", [1027, 1024, 23])  # the Jay Chou one (rows of 1040), a multiple of 16, tiny
@pytest.mark.parametrize("layout", ["W", "weight.T"])  # the scratch models' W_hq, nn.Linear's weight seen as (h, V)
def test_output_layer_equals_the_product_in_float64(vocab, layout):
    """``output_layer`` against H W + b and its three gradients written out in float64 (dO = G for the loss
    sum(O * G)): dH = G W^T, dW = H^T G, db = sum of G's rows.

    Each entry is a sum of k products (k = h for O, V for dH, N for dW and db), so float32 is off by at most
    k * eps * (the sum of the products' sizes): that bound is computed entrywise from |H|, |W|, |G| in
    float64 (entries of size ~10-30, bounds ~1e-3). A transposed gradient, a lost bias or a row read with
    the wrong stride moves entries by O(1)."""
    from charrnn.models import ROW_FLOATS, output_layer
    g = torch.Generator().manual_seed(vocab)
    N, h = 70, 48
    H_ = torch.randn(N, h, generator=g, requires_grad=True)
    if layout == "W":
        W = torch.randn(h, vocab, generator=g).requires_grad_()
        W_hV = W
    else:
        W = torch.randn(vocab, h, generator=g).requires_grad_()  # like nn.Linear's weight (V, h)
        W_hV = W.T
    b = torch.randn(vocab, generator=g, requires_grad=True)
    G = torch.randn(N, vocab, generator=g)
    O = output_layer(H_, W_hV, b)  # noqa: E741  (the book's name for the output)
    assert O.shape == (N, vocab) and O.stride() == (-(-vocab // ROW_FLOATS) * ROW_FLOATS, 1)
    (O * G).sum().backward()

    H64, W64, b64, G64 = H_.detach().double(), W_hV.detach().double(), b.detach().double(), G.double()
    eps = torch.finfo(torch.float32).eps
    assert ((O.double() - (H64 @ W64 + b64)).abs() <= h * eps * (H64.abs() @ W64.abs() + b64.abs())).all()
    assert (H_.grad.double() - G64 @ W64.T).abs().le(vocab * eps * (G64.abs() @ W64.abs().T)).all()
    dW = H64.T @ G64 if layout == "W" else G64.T @ H64
    dW_bound = N * eps * (H64.abs().T @ G64.abs() if layout == "W" else G64.abs().T @ H64.abs())
    assert W.grad.shape == W.shape and W.grad.is_contiguous()  # the parameter's own layout, for the optimizer
    assert ((W.grad.double() - dW).abs() <= dW_bound).all()
    assert ((b.grad.double() - G64.sum(0)).abs() <= N * eps * G64.abs().sum(0)).all()


@pytest.mark.parametrize("layout", ["W", "weight.T"])
def test_output_layer_gradients_match_finite_differences(layout):
    """torch's gradcheck in float64 (central differences, its default tolerances) on an odd V, whose
    rows are padded."""
    from charrnn.models import output_layer
    g = torch.Generator().manual_seed(0)
    H_ = torch.randn(6, 4, dtype=torch.float64, generator=g, requires_grad=True)
    shape = (4, 7) if layout == "W" else (7, 4)
    W = torch.randn(*shape, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(7, dtype=torch.float64, generator=g, requires_grad=True)
    as_hV = (lambda w: w) if layout == "W" else (lambda w: w.T)
    assert torch.autograd.gradcheck(lambda x, w, c: output_layer(x, as_hV(w), c), (H_, W, b))
