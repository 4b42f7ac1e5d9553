"""The views inside a model (charrnn.inside) against computations written independently here.

Models are float64 with weights scaled up (the book's N(0, 0.01) keeps every state near 0, where a wrong
step or a wrong gate would still pass): the two formulations then differ only by the order of float64
additions over a few hundred terms, ~1e-14 relative, so a tolerance of 1e-9 fails only on a real mistake.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from charrnn import KINDS, Trainer, TrainConfig, build_model, from_text
from charrnn.generate import PrefixError, predict
from charrnn.inside import MAX_PASSAGE, gradients_through_time, hidden_units, next_chars, probe_batch

TEXT = "分开 不分开 我不能再想 我不要再想 我不 我不 我不要再想你 " * 3
TOL = 1e-9  # float64: see the module docstring


@pytest.fixture(scope="module")
def corpus():
    return from_text(TEXT, name="lyrics")


def model_of(kind: str, V: int, seed: int = 0):
    layers = 1 if KINDS[kind].scratch else 2
    model = build_model(kind, V, 12, seed=seed, num_layers=layers).double()
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed)
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.6)
    return model.eval()


def logits_one_at_a_time(model, ids: list[int]) -> torch.Tensor:
    """The last logits after feeding ``ids`` one character per call (forward, not unroll)."""
    state = model.begin_state(1)
    for i in ids:
        logits, state = model(torch.tensor([[i]]), tuple(s.double() for s in state))
    return logits[-1]


@pytest.mark.parametrize("kind", list(KINDS))
def test_next_chars_are_the_softmax_of_the_models_next_logits(kind, corpus):
    vocab = corpus.vocab
    model = model_of(kind, len(vocab))
    prefix = "我不要再"
    ref = torch.softmax(logits_one_at_a_time(model, vocab.encode(prefix)) / 0.7, dim=-1)
    view = next_chars(model, vocab, prefix, temperature=0.7, top=len(vocab))
    assert [vocab.stoi[c] for c in view.chars] == torch.argsort(ref, descending=True).tolist()
    assert max(abs(p - ref[vocab.stoi[c]].item()) for c, p in zip(view.chars, view.probs)) < TOL
    assert abs(sum(view.probs) - 1) < TOL and view.probs == sorted(view.probs, reverse=True)
    # temperature 0 is greedy decoding: all the mass on the argmax, the character predict() writes next
    greedy = next_chars(model, vocab, prefix, temperature=0, top=3)
    assert greedy.chars[0] == vocab.itos[int(ref.argmax())] and greedy.probs == [1.0, 0.0, 0.0]
    assert greedy.chars[0] == predict(model.float(), vocab, prefix, 1)[-1]


def test_temperature_flattens_or_sharpens(corpus):
    model = model_of("scratch", len(corpus.vocab))
    entropy = []
    for t in (0.3, 1.0, 3.0):
        p = next_chars(model, corpus.vocab, "分开", t, top=len(corpus.vocab)).probs
        entropy.append(-sum(q * math.log(q) for q in p if q > 0))
    assert entropy[0] < entropy[1] < entropy[2] <= math.log(len(corpus.vocab)) + TOL


def test_next_chars_refuses_what_it_cannot_read(corpus):
    model = model_of("scratch", len(corpus.vocab))
    with pytest.raises(PrefixError, match="never seen"):
        next_chars(model, corpus.vocab, "分开xyz")
    with pytest.raises(ValueError, match="temperature=-1 is not allowed"):
        next_chars(model, corpus.vocab, "分开", -1)
    with pytest.raises(ValueError, match="top=0 is not allowed"):
        next_chars(model, corpus.vocab, "分开", 1.0, top=0)


@pytest.mark.parametrize("kind", list(KINDS))
def test_hidden_units_are_the_states_after_each_character(kind, corpus):
    vocab = corpus.vocab
    model = model_of(kind, len(vocab))
    text = "我不能再想 我不要"
    view = hidden_units(model, vocab, text)
    assert len(view.hidden) == len(text) and len(view.hidden[0]) == 12
    lstm = KINDS[kind].cell == "lstm"
    assert (view.cell is not None) == lstm
    state = tuple(s.double() for s in model.begin_state(1))
    with torch.no_grad():
        for t, i in enumerate(vocab.encode(text)):  # forward one character at a time: an independent path
            _, state = model(torch.tensor([[i]]), state)
            top = state[0][-1] if state[0].dim() == 3 else state[0]
            assert max(abs(a - b) for a, b in zip(view.hidden[t], top[0].tolist())) < TOL
            if lstm:
                cell = state[1][-1] if state[1].dim() == 3 else state[1]
                assert max(abs(a - b) for a, b in zip(view.cell[t], cell[0].tolist())) < TOL
    spread = torch.tensor(view.hidden).std(0, unbiased=False)
    assert sorted(view.top_units) == list(range(12))
    assert spread[view.top_units].tolist() == sorted(spread.tolist(), reverse=True)


def test_hidden_units_refuses_a_passage_too_long(corpus):
    model = model_of("scratch", len(corpus.vocab))
    with pytest.raises(ValueError, match=f"at most {MAX_PASSAGE:,}"):
        hidden_units(model, corpus.vocab, "分" * (MAX_PASSAGE + 1))


def rnn_gradients_by_hand(model, X: torch.Tensor, Y: torch.Tensor) -> list[float]:
    """The scratch RNN written out with a zero "probe" added to the state after each step: the gradient of
    the last step's loss with respect to that probe is its gradient with respect to the state (a leaf, not
    an intermediate tensor)."""
    B, T = X.shape
    probes = [torch.zeros(B, model.num_hiddens, dtype=torch.float64, requires_grad=True) for _ in range(T)]
    H = torch.zeros(B, model.num_hiddens, dtype=torch.float64)
    outputs = []
    for t in range(T):
        x = F.one_hot(X[:, t], model.vocab_size).double()
        H = torch.tanh(x @ model.W_xh + H @ model.W_hh + model.b_h) + probes[t]
        outputs.append(H @ model.W_hq + model.b_q)
    loss = F.cross_entropy(outputs[-1], Y[:, -1])
    return [g.norm().item() for g in torch.autograd.grad(loss, probes)]


def test_gradients_through_time_match_a_formulation_by_hand(corpus):
    model = model_of("scratch", len(corpus.vocab))
    X, Y = probe_batch(corpus.indices, 4, 9)
    view = gradients_through_time(model, X, Y)
    ref = rnn_gradients_by_hand(model, X, Y)
    assert len(view.norms) == 9 and max(abs(a - b) / b for a, b in zip(view.norms, ref)) < TOL
    assert all(p.grad is None for p in model.parameters())  # the model's own gradients are left alone


@pytest.mark.parametrize("kind", list(KINDS))
def test_gradients_through_time_for_every_kind(kind, corpus):
    model = model_of(kind, len(corpus.vocab))
    X, Y = probe_batch(corpus.indices, 4, 9)
    view = gradients_through_time(model, X, Y)
    assert len(view.norms) == 9 and all(math.isfinite(n) and n > 0 for n in view.norms)
    logits, _ = model(X, tuple(s.double() for s in model.begin_state(4)))
    assert abs(view.loss - F.cross_entropy(logits, Y.T.reshape(-1)).item()) < TOL


def test_the_probe_minibatch_is_text_and_its_next_characters(corpus):
    X, Y = probe_batch(corpus.indices, 3, 5)
    assert X.shape == Y.shape == (3, 5)
    itos = corpus.vocab.itos
    for row_x, row_y in zip(X.tolist(), Y.tolist()):
        assert row_x[1:] == row_y[:-1]  # Y is X shifted by one character
        assert "".join(itos[i] for i in row_x + row_y[-1:]) in corpus.text  # a window of the text itself


def test_the_books_plain_rnn_vanishes_where_the_gru_does_not():
    """Section 6.6's point, on untrained models with the book's N(0, 0.01) weights (measured: the plain RNN's
    gradient from step 35 is 0 in float32 by step 1, the GRU's 1e-10 of it): through a small W_hh the plain
    RNN's shrinks by more than 10x per step back, while the GRU's update gate (Z near 0.5) passes about half
    of it straight through each step (0.5^34 = 6e-11)."""
    V = 30
    X = torch.randint(0, V, (8, 35), generator=torch.Generator().manual_seed(0))
    Y = torch.roll(X, -1, 1)
    rnn = gradients_through_time(build_model("scratch", V, 64, seed=0), X, Y).norms
    gru = gradients_through_time(build_model("scratch-gru", V, 64, seed=0), X, Y).norms
    assert rnn[0] / rnn[-1] < 1e-15 and 1e-13 < gru[0] / gru[-1] < 1e-8
    assert gru[-10] / gru[-1] > 1e3 * rnn[-10] / rnn[-1]  # ten steps back: orders of magnitude apart


def test_a_run_keeps_its_gradients_view(corpus):
    config = TrainConfig(corpus="lyrics", max_chars=None, model="scratch-gru", num_hiddens=16, batch_size=4,
                         num_steps=6, epochs=2, lr=1.0, prefixes=[], sampling="consecutive")
    trainer = Trainer(config, corpus)
    list(trainer.run())
    X, Y = probe_batch(trainer.indices, 4, 6)
    assert len(gradients_through_time(trainer.snapshot(), X, Y).norms) == 6
