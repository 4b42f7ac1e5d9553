"""The models beyond the chapter (6.7 GRU, 6.8 LSTM, 6.9 stacked layers) against independent formulations.

Comparisons run in float64, where the two formulations differ only by the order of their additions: with
values of order 1 and sums of a few hundred terms, rounding stays below ~1e-13, so 1e-10 can only fail on
a real difference (a swapped gate, a missing bias, a wrong weight order), which shows at order 1e-3 or more.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from charrnn.models import KINDS, ScratchGRU, ScratchLSTM, build_model

V, H, B, T = 13, 8, 3, 6
TOL = 1e-10  # float64, see the module docstring


def batch(seed: int = 0) -> torch.Tensor:
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))


def big(model: torch.nn.Module) -> torch.nn.Module:
    """The book's N(0, 0.01) weights make every gate ~0.5 and every state ~0: scale them up so that a wrong
    formula shows (a test with near-zero states would pass whatever the gates did)."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel()), dtype=p.dtype) * 0.5)
    return model


def test_scratch_lstm_equals_nn_lstm_with_its_weights_outputs_and_gradients():
    ours = big(ScratchLSTM(V, H)).double()
    ref = torch.nn.LSTM(V, H).double()
    with torch.no_grad():  # torch stores the gates as i, f, g (= C~), o, each (4h, input), and two biases
        ref.weight_ih_l0.copy_(torch.cat([ours.W_xi, ours.W_xf, ours.W_xc, ours.W_xo], 1).T)
        ref.weight_hh_l0.copy_(torch.cat([ours.W_hi, ours.W_hf, ours.W_hc, ours.W_ho], 1).T)
        ref.bias_ih_l0.copy_(torch.cat([ours.b_i, ours.b_f, ours.b_c, ours.b_o]))
        ref.bias_hh_l0.zero_()
    X = batch()
    h0 = torch.randn(B, H, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    c0 = torch.randn(B, H, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    states, (h_T, c_T) = ours.unroll(X, (h0, c0))
    Y, (h_ref, c_ref) = ref(F.one_hot(X.T, V).double(), (h0[None], c0[None]))
    Hs = torch.stack([s[0] for s in states])
    assert torch.allclose(Hs, Y, atol=TOL, rtol=0) and Hs.abs().max() > 0.1  # states far from 0: a real test
    assert torch.allclose(h_T, h_ref[0], atol=TOL) and torch.allclose(c_T, c_ref[0], atol=TOL)
    # gradients of the same loss, mapped back through the weight layout
    w = torch.randn(T, B, H, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    (Hs * w).sum().add((c_T ** 2).sum()).backward()
    (Y * w).sum().add((c_ref[0] ** 2).sum()).backward()
    g_ih = torch.cat([ours.W_xi.grad, ours.W_xf.grad, ours.W_xc.grad, ours.W_xo.grad], 1).T
    g_hh = torch.cat([ours.W_hi.grad, ours.W_hf.grad, ours.W_hc.grad, ours.W_ho.grad], 1).T
    g_b = torch.cat([ours.b_i.grad, ours.b_f.grad, ours.b_c.grad, ours.b_o.grad])
    assert torch.allclose(g_ih, ref.weight_ih_l0.grad, atol=TOL)
    assert torch.allclose(g_hh, ref.weight_hh_l0.grad, atol=TOL)
    assert torch.allclose(g_b, ref.bias_ih_l0.grad, atol=TOL) and torch.allclose(g_b, ref.bias_hh_l0.grad, atol=TOL)


def gru_by_the_book(X: torch.Tensor, h: torch.Tensor, p: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """6.7's formulas as printed: one-hot X_t times each input weight, the reset gate before the matmul."""
    out = []
    for x in F.one_hot(X.T, V).double().unbind(0):
        r = torch.sigmoid(x @ p["W_xr"] + h @ p["W_hr"] + p["b_r"])
        z = torch.sigmoid(x @ p["W_xz"] + h @ p["W_hz"] + p["b_z"])
        h_tilde = torch.tanh(x @ p["W_xh"] + (r * h) @ p["W_hh"] + p["b_h"])
        h = z * h + (1 - z) * h_tilde
        out.append(h)
    return out


def test_scratch_gru_follows_the_books_formula_outputs_and_gradients():
    ours = big(ScratchGRU(V, H)).double()
    p = {k: v.detach().clone().requires_grad_() for k, v in ours.named_parameters()}
    X = batch(4)
    h0 = torch.randn(B, H, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    states, _ = ours.unroll(X, (h0,))
    Hs, ref = torch.stack([s[0] for s in states]), torch.stack(gru_by_the_book(X, h0, p))
    assert torch.allclose(Hs, ref, atol=TOL, rtol=0) and Hs.abs().max() > 0.1
    # nn.GRU (reset after the matmul) is a different function: the test would see it
    w = torch.randn(T, B, H, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    (Hs * w).sum().backward()
    (ref * w).sum().backward()
    for name, param in ours.named_parameters():
        if name in p and p[name].grad is not None:
            assert torch.allclose(param.grad, p[name].grad, atol=TOL), name
    assert all(p[n].grad is not None for n in ("W_xr", "W_hr", "b_r", "W_xz", "W_hz", "b_z", "W_xh", "W_hh", "b_h"))


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_forward_equals_its_unrolled_steps(kind):
    """``forward`` (one call over all steps; cuDNN-style layers for the concise kinds) and ``unroll`` (step by
    step, what the views read) compute the same function."""
    layers = 1 if KINDS[kind].scratch else 2
    model = big(build_model(kind, V, H, seed=0, num_layers=layers)).double()
    X = batch(7)
    state = tuple(s.double() for s in model.begin_state(B))
    logits, last = model(X, state)
    states, last_u = model.unroll(X, state)
    by_steps = model.project(torch.stack([model.top(s) for s in states]).reshape(-1, H))
    assert logits.shape == (T * B, V) and torch.allclose(logits, by_steps, atol=TOL)
    assert all(torch.allclose(a, b, atol=TOL) for a, b in zip(last, last_u))
    lstm = KINDS[kind].cell == "lstm"
    assert len(last) == (2 if lstm else 1)
    assert last[0].shape == ((B, H) if KINDS[kind].scratch else (layers, B, H))


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_seed_decides_the_weights_and_the_books_init(kind):
    a, b, c = (build_model(kind, V, H, seed=s) for s in (3, 3, 4))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), c.state_dict().values()))
    if KINDS[kind].scratch:  # weights N(0, 0.01), biases 0 (no forget-gate bias of 1)
        for name, p in a.named_parameters():
            if name.startswith("b_"):
                assert torch.count_nonzero(p) == 0, name
            else:  # the sample std of >= 104 draws of N(0, 0.01) is within 30% of 0.01 (p ~ 1e-4 for 104)
                assert abs(p.std().item() - 0.01) < 0.003, name


def test_stacked_layers_only_for_concise_models():
    with pytest.raises(ValueError, match="from-scratch models have one layer"):
        build_model("scratch-lstm", V, H, num_layers=2)
    deep = build_model("concise-lstm", V, H, num_layers=3)
    assert deep.rnn.num_layers == 3 and all(s.shape == (3, B, H) for s in deep.begin_state(B))


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_trains_saves_and_loads(kind, tiny_corpus, tiny_config, tmp_path):
    """A short run of each kind (two stacked layers for the concise ones) through the Trainer, saved and loaded
    back from the file alone: the same logits to the last bit (the same float32 weights, the same ops)."""
    from charrnn import Trainer, load_checkpoint

    layers = 1 if KINDS[kind].scratch else 2
    config = tiny_config(model=kind, num_layers=layers, epochs=2, sampling="consecutive")
    trainer = Trainer(config, tiny_corpus)
    ends = [e for e in trainer.run()][-1]
    assert ends.status == "finished" and len(trainer.history) == 2
    path = trainer.save(str(tmp_path / f"{kind}.safetensors"))
    ck = load_checkpoint(path)
    assert (ck.config.model, ck.config.num_layers, ck.model.kind) == (kind, layers, kind)
    X = torch.randint(0, len(tiny_corpus.vocab), (2, 5), generator=torch.Generator().manual_seed(0))
    model = trainer.snapshot()
    assert torch.equal(model(X, model.begin_state(2))[0], ck.model(X, ck.model.begin_state(2))[0])
    resumed = Trainer.resume(path, tiny_corpus, epochs=3)
    assert [e for e in resumed.run()][-1].status == "finished" and resumed.epoch == 3
