"""The chapter's three training setups, run in full: 250 epochs on the first 10,000 characters of the lyrics.

Each takes about half a minute on a quiet 2-core CPU. Thresholds come from CHAPTER.md's reference table
(final perplexity 1.32 / 1.23 / 1.05 as published, 1.31 / 1.17 / 1.02 re-run), with some room for the
floating-point differences between machines. Set CHARRNN_TEST_THREADS to choose torch's thread count for
these runs (default: torch's own choice, or 1 when a quick probe finds one thread faster, as it is on a
2-core machine busy with other work).
"""
from __future__ import annotations

import math
import os
import time

import pytest
import torch
import torch.nn.functional as F

from charrnn import EpochEnd, Finished, Sample, Trainer, build_model, preset
from conftest import TORCH_THREADS

V = 1027
FINAL_BELOW = {"scratch-random": 1.6, "scratch-consecutive": 1.45, "concise": 1.15}


def _seconds_per_step(threads: int, reps: int = 3) -> float:
    """Time a few training steps of the chapter's scratch model (own weights, own data: no effect on runs)."""
    torch.set_num_threads(threads)
    model = build_model("scratch", V, 256, seed=1)
    X = torch.randint(0, V, (32, 35), generator=torch.Generator().manual_seed(0))
    best = math.inf
    for _ in range(reps):
        start = time.perf_counter()
        logits, _ = model(X, model.begin_state(32))
        F.cross_entropy(logits, X.T.reshape(-1)).backward()
        best = min(best, time.perf_counter() - start)
    return best


@pytest.fixture(scope="module")
def chapter_threads():
    """torch's own thread count, unless one thread is faster right now (a 2-core machine busy with other
    work makes two threads wait on each other, many times slower); CHARRNN_TEST_THREADS overrides."""
    before = torch.get_num_threads()
    if os.environ.get("CHARRNN_TEST_THREADS"):
        threads = int(os.environ["CHARRNN_TEST_THREADS"])
    elif TORCH_THREADS > 1 and _seconds_per_step(1) < 0.8 * _seconds_per_step(TORCH_THREADS):
        threads = 1
    else:
        threads = TORCH_THREADS
    torch.set_num_threads(threads)
    yield threads
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", list(FINAL_BELOW))
def test_chapter_setup(name, jaychou_10k, chapter_threads):
    corpus = jaychou_10k
    assert len(corpus) == 10_000 and len(corpus.vocab) == V
    config = preset(name, pred_period=250)
    assert (config.epochs, config.num_steps, config.batch_size, config.num_hiddens) == (250, 35, 32, 256)
    assert config.clip_theta == 0.01 and config.prefixes == ["分开", "不分开"]
    trainer = Trainer(config, corpus)
    assert trainer.batches_per_epoch == 8
    events = list(trainer.run())

    epochs = [e for e in events if isinstance(e, EpochEnd)]
    ppl = [e.perplexity for e in epochs]
    assert [e.epoch for e in epochs] == list(range(1, 251))
    assert isinstance(events[-1], Finished) and events[-1].epoch == 250
    assert all(math.isfinite(p) for p in ppl)
    print(f"\n{name}: perplexity at 1/50/100/150/200/250: "
          + " / ".join(f"{ppl[i - 1]:.4g}" for i in (1, 50, 100, 150, 200, 250))
          + f"; {sum(e.seconds for e in epochs) / 250:.3f} s per epoch, {chapter_threads} thread(s)")

    assert 0.5 * V < ppl[0] < 1.5 * V          # epoch 1: about the uniform guess
    assert ppl[49] < 0.2 * V                    # epoch 50: well below V (the book: 65.8 / 60.3 / 9.41)
    assert ppl[99] < ppl[49]                    # still improving
    assert ppl[-1] < FINAL_BELOW[name], ppl[-5:]
    # clipping really acts, in every setup (the book's concise run never clipped)
    assert sum(e.clipped for e in epochs) / 250 > 0.5

    samples = [e for e in events if isinstance(e, Sample)]
    assert [(s.epoch, s.prefix) for s in samples] == [(250, "分开"), (250, "不分开")]
    for s in samples:
        assert s.text.startswith(s.prefix) and len(s.text) == len(s.prefix) + 50
        assert set(s.text) <= set(corpus.vocab.itos)
