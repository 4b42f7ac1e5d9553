"""The output layer's aligned rows (``charrnn.models.output_layer``) against a plain ``torch.addmm``, side by side.

With the Jay Chou vocabulary (V = 1027) a contiguous (N, V) result of H W + b starts most rows off a 64-byte
boundary; MKL's single-precision GEMM then writes it slower on this machine's AVX2 cores. ``output_layer``
writes the logits (and W's gradient) into rows 1040 floats apart. Three measurements, each alternating the two
codes round by round and timing the thread's own CPU time (``time.thread_time``: load from other processes
does not count):

0. the forward product alone, on the chapter's minibatch shape;
1. the output layer and the loss alone, forward and backward, on the chapter's minibatch shape
   (N = 35 steps x 32 = 1120 rows, h = 256, V = 1027);
2. epochs of the chapter's run (scratch · random, lr 100, theta 0.01, first 10,000 characters): two trainers
   with the same seed, one with ``output_layer`` replaced by ``torch.addmm``.

Prints each round's milliseconds, the medians and their ratio (aligned / plain: below 1 is faster).
``--threads`` sets torch's threads (1: as each worker of the app's fair scheduler trains).

    CHARRNN_DATA_DIR=../shared/data python bench/logits.py [--threads 1] [--rounds 15]
"""
from __future__ import annotations

import argparse
import statistics
import threading
import time


import torch
import torch.nn.functional as F

import charrnn
from charrnn import models
from charrnn.train import EpochEnd

ALIGNED = models.output_layer


def plain(H: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.addmm(b, H, W)


def layer_ms(layer, H, W, b, T, reps: int) -> float:
    """Milliseconds of thread CPU time per forward + backward of cross_entropy(layer(H, W, b), T)."""
    t = time.thread_time()
    for _ in range(reps):
        F.cross_entropy(layer(H, W, b), T).backward()
    return (time.thread_time() - t) / reps * 1e3


def epoch_ms(work) -> float:
    """Thread CPU milliseconds of the trainer's next epoch."""
    t = time.thread_time()
    for events in work:
        if any(isinstance(e, EpochEnd) for e in events):
            return (time.thread_time() - t) * 1e3
    raise RuntimeError("the run ended")


def side_by_side(title: str, rounds: int, measure) -> None:
    """``measure(layer) -> ms``, alternating which code goes first each round."""
    a, p = [], []
    for r in range(rounds):
        order = [(ALIGNED, a), (plain, p)] if r % 2 == 0 else [(plain, p), (ALIGNED, a)]
        for layer, out in order:
            out.append(measure(layer))
    ma, mp = statistics.median(a), statistics.median(p)
    print(f"{title}")
    print(f"  aligned rows: {' '.join(f'{x:.1f}' for x in a)} ms, median {ma:.1f}")
    print(f"  plain addmm:  {' '.join(f'{x:.1f}' for x in p)} ms, median {mp:.1f}")
    print(f"  aligned / plain: {ma / mp:.2f}x (median of rounds' ratios "
          f"{statistics.median(x / y for x, y in zip(a, p)):.2f}x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    corpus = charrnn.load_corpus("jaychou", 10_000, progress=False)
    cfg = charrnn.preset("scratch-random", epochs=100_000, pred_period=100_000, device="cpu", seed=0)
    V, h, N = len(corpus.vocab), cfg.num_hiddens, cfg.num_steps * cfg.batch_size
    print(f"torch {torch.__version__}, {args.threads} thread(s), V={V}, h={h}, N={N} rows, "
          f"rows padded to {-(-V // models.ROW_FLOATS) * models.ROW_FLOATS} floats")

    g = torch.Generator().manual_seed(0)
    H = torch.tanh(torch.randn(N, h, generator=g)).requires_grad_()
    W = (torch.randn(h, V, generator=g) * 0.01).requires_grad_()
    b = torch.zeros(V, requires_grad=True)
    T = torch.randint(0, V, (N,), generator=g)
    for layer in (ALIGNED, plain):
        layer_ms(layer, H, W, b, T, 3)  # warm both

    def product_ms(layer) -> float:
        """The forward product alone (no graph), 20 per round."""
        with torch.no_grad():
            t = time.thread_time()
            for _ in range(20):
                layer(H, W, b)
            return (time.thread_time() - t) / 20 * 1e3
    side_by_side("0. the forward product H W + b alone (20 per round)", args.rounds, product_ms)
    side_by_side("1. output layer + cross-entropy, forward and backward (20 per round)", args.rounds,
                 lambda layer: layer_ms(layer, H, W, b, T, 20))

    works = {}
    for layer in (ALIGNED, plain):
        models.output_layer = layer  # read by the model's project() at call time
        works[layer] = charrnn.Trainer(cfg, corpus).work(threading.Event())
        epoch_ms(works[layer])  # a first epoch each, not timed

    def one_epoch(layer) -> float:
        models.output_layer = layer
        try:
            return epoch_ms(works[layer])
        finally:
            models.output_layer = ALIGNED

    side_by_side("2. the chapter's epoch (8 minibatches of 32 x 35)", args.rounds, one_epoch)


if __name__ == "__main__":
    main()
