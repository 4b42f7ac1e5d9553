"""Generation: the chapter's greedy predict, temperature and top-k sampling, streaming, prefix checks.

Tests that take ``device`` generate with the model on the CPU and on a CUDA GPU (skipped without one; TF32
off there, see conftest.py); their float64 references run on the CPU.
"""
from __future__ import annotations

import copy
import math
from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from charrnn import PrefixError, ScratchRNN, Trainer, Vocab, build_model, predict, stream
from charrnn.generate import MAX_PREFIX


@pytest.fixture(scope="module")
def trained(tiny_corpus):
    """A scratch and a concise model trained a little on the tiny corpus (so argmax is not trivial)."""
    from charrnn import TrainConfig
    out = {}
    for kind, opt, lr in (("scratch", "sgd", 1.0), ("concise", "adam", 0.01)):
        cfg = TrainConfig(corpus="tiny", max_chars=None, model=kind, num_hiddens=24, batch_size=4, num_steps=8,
                          optimizer=opt, lr=lr, clip_theta=1.0, epochs=4, device="cpu", pred_period=1000)
        t = Trainer(cfg, tiny_corpus)
        list(t.run())
        out[kind] = t.model.eval()
    return out


EPS = torch.finfo(torch.float32).eps  # 1.19e-7: float32's relative rounding step


def on(device, model):
    """A copy of ``model`` on ``device`` (the module-scoped fixture's models stay on the CPU)."""
    return copy.deepcopy(model).to(device)


def chapter_predict(prefix, num_chars, step, begin_state, vocab, margins=None):
    """The chapter's predict_rnn: feed the prefix one character at a time from a zero state, then argmax.

    ``margins`` (a list) receives, for each character chosen, the gap between the two largest logits."""
    state = begin_state()
    output = [vocab.stoi[prefix[0]]]
    for t in range(num_chars + len(prefix) - 1):
        Y, state = step(torch.tensor([[output[-1]]]), state)
        if t < len(prefix) - 1:
            output.append(vocab.stoi[prefix[t + 1]])
        else:
            if margins is not None:
                top2 = Y[0].topk(2).values
                margins.append(float(top2[0] - top2[1]))
            output.append(int(Y.argmax(dim=1).item()))
    return "".join(vocab.itos[i] for i in output)


def logit_rounding(model, steps: int) -> float:
    """How far float32 logits may sit from exact ones after ``steps`` characters.

    Every sum in a step has at most K = H + 3 terms (a one-hot row, H recurrent or output terms, two
    biases), each at most w = max|weight| in size (inputs are 0/1, |h| <= 1): rounding costs <= K * eps *
    K * w per step, and the state carries each step's error on (tanh' <= 1), so they add up over the steps.
    Trained models here (H = 24, w ~ 1.7): 53 steps x 27 x 27 x 1.7 x 1.2e-7 ~ 8e-3; measured 2e-6.
    """
    K = model.num_hiddens + 3
    w = max(p.detach().abs().max().item() for p in model.parameters())
    return steps * K * EPS * K * w


def scratch_step(model):
    """One step of the chapter's rnn() with the model's weights, written out (no call into the model)."""
    def step(X, state):
        (H,) = state
        x = F.one_hot(X[:, 0], model.vocab_size).to(model.W_xh.dtype)
        H = torch.tanh(x @ model.W_xh + H @ model.W_hh + model.b_h)
        return H @ model.W_hq + model.b_q, (H,)
    return step


@pytest.mark.parametrize("prefix", ["the", "t", "machine said "])
def test_greedy_equals_chapter_predict_scratch(trained, tiny_corpus, prefix, device):
    model = trained["scratch"]
    model64, margins = copy.deepcopy(model).double(), []  # the reference runs in float64
    with torch.no_grad():
        want = chapter_predict(prefix, 40, scratch_step(model64),
                               lambda: (torch.zeros(1, model.num_hiddens, dtype=torch.float64),),
                               tiny_corpus.vocab, margins)
    # Exact equality of the texts is well-posed only if no argmax is a near-tie: each choice must win by
    # more than the float32 rounding of two logits (measured gaps: 0.037 and more).
    assert min(margins) > 2 * logit_rounding(model, len(prefix) + 40), "a near-tie: argmax decided by rounding"
    got = predict(on(device, model), tiny_corpus.vocab, prefix, 40)
    assert got == want and len(got) == len(prefix) + 40
    assert len(set(got[len(prefix):])) > 2  # a trained model writes something, not one repeated character


@pytest.mark.parametrize("prefix", ["the", "a time"])
def test_greedy_equals_chapter_predict_concise(trained, tiny_corpus, prefix, device):
    model, margins = on(device, trained["concise"]), []  # on CUDA: cuDNN's RNN, one call vs one per character
    with torch.no_grad():  # nn.RNN fed one character at a time (the model itself, float32) vs all at once
        want = chapter_predict(prefix, 40, lambda X, s: model(X.to(device), s), lambda: model.begin_state(1, device),
                               tiny_corpus.vocab, margins)
    # both sides float32: each logit off by up to logit_rounding on either side (measured gaps: 0.07 and more)
    assert min(margins) > 4 * logit_rounding(model, len(prefix) + 40), "a near-tie: argmax decided by rounding"
    assert predict(model, tiny_corpus.vocab, prefix, 40) == want


def test_predict_is_prefix_plus_stream(trained, tiny_corpus):
    m, v = trained["scratch"], tiny_corpus.vocab
    assert predict(m, v, "the", 25) == "the" + "".join(stream(m, v, "the", 25))
    assert predict(m, v, "the", 0) == "the"
    assert list(stream(m, v, "the", 0)) == []


def test_temperature_sampling_is_reproducible(trained, tiny_corpus, device):
    m, v = on(device, trained["concise"]), tiny_corpus.vocab
    a = predict(m, v, "the", 80, temperature=1.0, seed=5)
    b = predict(m, v, "the", 80, temperature=1.0, seed=5)
    c = predict(m, v, "the", 80, temperature=1.0, seed=6)
    hot = predict(m, v, "the", 80, temperature=5.0, seed=5)
    assert a == b and a != c and hot != a
    assert predict(m, v, "the", 80, temperature=0.0, seed=5) == predict(m, v, "the", 80)


@pytest.mark.parametrize("temperature, seed", [(1.0, 0), (3.0, 1), (50.0, 2)])
def test_top_k_1_is_greedy(trained, tiny_corpus, temperature, seed, device):
    for m in (on(device, m) for m in trained.values()):
        greedy = predict(m, tiny_corpus.vocab, "the", 60)
        assert predict(m, tiny_corpus.vocab, "the", 60, temperature=temperature, top_k=1, seed=seed) == greedy


def constant_model(logits):
    """A scratch model whose next-character distribution is softmax(logits) whatever it has read."""
    V = len(logits)
    model = ScratchRNN(V, 4)
    with torch.no_grad():
        model.W_hq.zero_()
        model.b_q.copy_(torch.tensor(logits))
    return model.eval()


def test_sampling_follows_softmax_over_temperature(device):
    vocab = Vocab("abcdef")
    logits = [2.0, 1.0, 0.5, 0.0, -1.0, -3.0]
    model = constant_model(logits).to(device)
    n = 3_000
    for T in (1.0, 0.5):
        text = predict(model, vocab, "a", n, temperature=T, seed=11)[1:]
        counts = Counter(text)
        p = torch.softmax(torch.tensor(logits) / T, 0).tolist()
        for ch, pi in zip("abcdef", p):
            # a count is Binomial(n, p): standard deviation sqrt(n p (1 - p)); 5 of them (two-sided: a miss
            # once in ~2 million seeds) + 1 for the counts being whole numbers. Sampling at T = 1 instead of
            # 0.5 moves the likeliest character's count by ~800, 39 sd.
            sd = math.sqrt(n * pi * (1 - pi))
            assert abs(counts.get(ch, 0) - n * pi) < 5 * sd + 1, (T, ch, counts)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_top_k_samples_only_the_k_likeliest(k):
    vocab = Vocab("abcdefgh")
    logits = [0.3, 1.1, -0.5, 0.9, 1.0, -2.0, 0.2, 0.0]  # likeliest first: b, e, d, a, g, h, c, f
    ranked = "bedaghcf"
    model = constant_model(logits)
    n = 1_500
    text = predict(model, vocab, "a", n, temperature=1.0, top_k=k, seed=3)[1:]
    counts = Counter(text)
    assert set(counts) == set(ranked[:k])
    # the kept characters keep their relative probabilities
    kept = torch.tensor([logits[vocab.stoi[c]] for c in ranked[:k]])
    p = torch.softmax(kept, 0).tolist()
    for ch, pi in zip(ranked[:k], p):
        sd = math.sqrt(n * pi * (1 - pi))  # Binomial(n, p) counts: 5 standard deviations + 1, as above
        assert abs(counts[ch] - n * pi) < 5 * sd + 1, (k, ch, counts)


def test_top_k_larger_than_vocab_is_plain_sampling():
    vocab = Vocab("abcd")
    model = constant_model([0.0, 0.1, 0.2, 0.3])
    assert predict(model, vocab, "a", 200, temperature=1.0, top_k=10, seed=4) == \
        predict(model, vocab, "a", 200, temperature=1.0, seed=4)


def test_stream_yields_one_character_at_a_time(trained, tiny_corpus, monkeypatch):
    model, vocab = trained["scratch"], tiny_corpus.vocab
    calls = []
    orig = model.forward
    monkeypatch.setattr(model, "forward", lambda X, s: (calls.append(tuple(X.shape)), orig(X, s))[1])
    it = stream(model, vocab, "the", 5)
    assert calls == []  # nothing runs until the first character is asked for
    first = next(it)
    assert isinstance(first, str) and len(first) == 1 and calls == [(1, 3)]  # the prefix, in one call
    rest = list(it)
    assert len(rest) == 4 and all(isinstance(c, str) and len(c) == 1 for c in rest)
    assert calls[1:] == [(1, 1)] * 5
    assert "the" + first + "".join(rest) == predict(model, vocab, "the", 5)


@pytest.mark.parametrize("fn", [stream, predict])
def test_prefix_errors_at_call_time(trained, tiny_corpus, monkeypatch, fn):
    model, vocab = trained["scratch"], tiny_corpus.vocab
    calls = []
    orig = model.forward
    monkeypatch.setattr(model, "forward", lambda X, s: (calls.append(1), orig(X, s))[1])
    with pytest.raises(PrefixError, match="empty"):
        fn(model, vocab, "", 10)
    with pytest.raises(PrefixError) as e:
        fn(model, vocab, "the QUIZ", 10)
    msg = str(e.value)
    for ch in "QUIZ":
        assert repr(ch) in msg
    assert repr("t") not in msg and "4 character(s)" in msg
    with pytest.raises(PrefixError, match="分开"):
        fn(model, vocab, "分开", 10)
    with pytest.raises(PrefixError, match=f"at most {MAX_PREFIX:,}"):
        fn(model, vocab, "a" * (MAX_PREFIX + 1), 10)
    with pytest.raises(ValueError, match="length"):
        fn(model, vocab, "the", -1)
    with pytest.raises(ValueError, match="temperature"):
        fn(model, vocab, "the", 5, temperature=-1.0)
    with pytest.raises(ValueError, match="top_k"):
        fn(model, vocab, "the", 5, temperature=1.0, top_k=0)
    assert calls == []  # every error came before the model ran


def test_generation_does_not_track_gradients(trained, tiny_corpus, device):
    model = on(device, trained["concise"])
    seen = []
    h = model.register_forward_hook(lambda m, i, o: seen.append(o[0].requires_grad))
    try:
        predict(model, tiny_corpus.vocab, "the", 5)
    finally:
        h.remove()
    assert seen and not any(seen)


def test_generation_on_the_chapters_vocab(jaychou_10k):
    """The chapter's prefixes are in its vocabulary; an untrained model still answers with 50 characters."""
    model = build_model("scratch", len(jaychou_10k.vocab), 32, seed=0)
    for prefix in ("分开", "不分开"):
        out = predict(model, jaychou_10k.vocab, prefix, 50)
        assert out.startswith(prefix) and len(out) == len(prefix) + 50
    with pytest.raises(PrefixError, match="'Q'"):
        predict(model, jaychou_10k.vocab, "分开Q", 5)
