"""Benchmark: the chapter's scratch RNN as the book formulates it vs. charrnn's library trainer.

Both train the same setup (jaychou, first 10,000 characters, V=1027, h=256, batch 32, steps 35, lr 100,
theta 0.01, plain SGD, 250 epochs) from the same initial weights and the same minibatch order.

* reference -- the chapter's formulation (Dive into Deep Learning, Chinese edition, PyTorch port, 6.4 RNN from
  scratch), written here after the book: a Python list of one-hot (batch, V) matrices, ``X_t @ W_xh`` as a
  real matrix product, one output projection per step, ``torch.cat`` of the outputs, the book's clipping loop
  (a Python float norm via ``.item()``) and ``p.data -= lr * p.grad``; perplexity from ``loss.item()`` per
  minibatch.
* library   -- ``charrnn.Trainer(charrnn.preset('scratch-<sampling>', ...), corpus).run()``; its
  ``EpochEnd.seconds`` (training only) and ``EpochEnd.perplexity``.

One full run of each is made, interleaved in blocks of epochs (ref block, lib block, lib block, ref
block, ...: the order alternates every round so drifts in the machine's load hit both alike); each model
keeps its state between blocks, so the last epoch's perplexity is that of an ordinary full run. A round's
s/epoch is the mean over its block; each side's figure is the median over rounds. The speed-up is the
median over rounds of (ref s/epoch / lib s/epoch) within the round: the two blocks of a round run back to
back, so pairing them cancels load from other processes that comes and goes. The ratio of the two medians
and that of the fastest epochs are printed too (on a quiet machine all three agree). Timing covers
training only (minibatch sampling included, as in the library's EpochEnd.seconds); nothing is printed
while a block runs.

    CHARRNN_DATA_DIR=/work/shared/data python bench/bench_train.py            # full: 250 epochs
    CHARRNN_DATA_DIR=/work/shared/data python bench/bench_train.py --quick    # smoke test: 20 epochs
    CHARRNN_DATA_DIR=/work/shared/data python bench/bench_train.py --sampling consecutive
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time


import torch
import torch.nn.functional as F

import charrnn
from charrnn.batches import epoch_batches

TARGET_RATIO = 1.8      # reference s/epoch / library s/epoch must be at least this
TARGET_PPL_REL = 0.10   # final perplexities within 10% of each other


# ---------------------------------------------------------------- the reference (the chapter's way)
class Reference:
    """The chapter's scratch RNN and training loop, kept deliberately in the book's formulation."""

    def __init__(self, data: torch.Tensor, V: int, h: int, batch: int, steps: int, lr: float, theta: float,
                 sampling: str, seed: int):
        self.data, self.V, self.h = data, V, h
        self.batch, self.steps, self.lr, self.theta, self.sampling = batch, steps, lr, theta, sampling
        # Same draws, same order as the library's ScratchRNN: W_xh, W_hh, W_hq from one seeded generator.
        g = torch.Generator().manual_seed(seed)

        def normal(*shape: int) -> torch.Tensor:
            return (torch.randn(*shape, generator=g) * 0.01).requires_grad_()

        def zeros(*shape: int) -> torch.Tensor:
            return torch.zeros(*shape, requires_grad=True)

        self.W_xh = normal(V, h)
        self.W_hh = normal(h, h)
        self.b_h = zeros(h)
        self.W_hq = normal(h, V)
        self.b_q = zeros(V)
        if data.device.type != "cpu":  # bench_gpu.py: the same draws, on the device that holds the data
            self.W_xh, self.W_hh, self.b_h, self.W_hq, self.b_q = (
                p.detach().to(data.device).requires_grad_()
                for p in (self.W_xh, self.W_hh, self.b_h, self.W_hq, self.b_q))
        self.params = [self.W_xh, self.W_hh, self.b_h, self.W_hq, self.b_q]
        self.shuffle = torch.Generator().manual_seed(seed)  # the library's shuffle generator, same seed
        self.epoch = 0

    def rnn(self, inputs: list[torch.Tensor], H: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        outputs = []
        for X_t in inputs:
            H = torch.tanh(X_t @ self.W_xh + H @ self.W_hh + self.b_h)
            outputs.append(H @ self.W_hq + self.b_q)
        return outputs, H

    def clip(self) -> None:
        norm = torch.tensor([0.0], device=self.data.device)
        for p in self.params:
            norm += (p.grad.data ** 2).sum()
        norm = norm.sqrt().item()
        if norm > self.theta:
            for p in self.params:
                p.grad.data *= self.theta / norm

    def run_epoch(self) -> tuple[float, float]:
        """One epoch; returns (seconds, perplexity)."""
        start = time.perf_counter()
        l_sum, n = 0.0, 0
        H = None
        for X, Y in epoch_batches(self.data, self.batch, self.steps, self.sampling, self.shuffle):
            if self.sampling == "random" or H is None:
                H = torch.zeros(self.batch, self.h, device=self.data.device)  # unrelated windows: fresh state
            else:
                H = H.detach()                      # carried over, graph cut
            inputs = [F.one_hot(X[:, t], self.V).float() for t in range(self.steps)]
            outputs, H = self.rnn(inputs, H)
            outputs = torch.cat(outputs, dim=0)      # (steps * batch, V), time-major
            y = Y.T.reshape(-1)
            loss = F.cross_entropy(outputs, y)
            for p in self.params:
                if p.grad is not None:
                    p.grad.data.zero_()
            loss.backward()
            self.clip()
            for p in self.params:
                p.data -= self.lr * p.grad
            l_sum += loss.item() * y.shape[0]
            n += y.shape[0]
        seconds = time.perf_counter() - start
        self.epoch += 1
        try:
            ppl = math.exp(l_sum / n)
        except OverflowError:
            ppl = math.inf
        return seconds, ppl


# ---------------------------------------------------------------- the library
class Library:
    def __init__(self, corpus: charrnn.Corpus, sampling: str, epochs: int, seed: int):
        cfg = charrnn.preset(f"scratch-{sampling}", epochs=epochs, pred_period=10**6, device="cpu", seed=seed)
        self.trainer = charrnn.Trainer(cfg, corpus)
        self.events = self.trainer.run()

    def run_epochs(self, k: int) -> tuple[list[float], list[float], float]:
        """Pull k epochs from the trainer's generator: (EpochEnd.seconds, perplexities, wall seconds)."""
        secs, ppls = [], []
        start = time.perf_counter()
        while len(secs) < k:
            ev = next(self.events)
            if isinstance(ev, charrnn.EpochEnd):
                secs.append(ev.seconds)
                ppls.append(ev.perplexity)
            elif isinstance(ev, charrnn.End):
                raise RuntimeError(f"library run ended early: {ev.message}")
        return secs, ppls, time.perf_counter() - start


# ---------------------------------------------------------------- main
def blocks(total: int, rounds: int) -> list[int]:
    """Split ``total`` epochs into ``rounds`` blocks as equal as possible."""
    rounds = max(1, min(rounds, total))
    base, extra = divmod(total, rounds)
    return [base + (i < extra) for i in range(rounds)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=250, help="epochs of each full run (default 250)")
    ap.add_argument("--sampling", choices=("random", "consecutive"), default="random")
    ap.add_argument("--repeats", type=int, default=50,
                    help="rounds: each run is split into this many blocks, alternated between the two "
                         "(default 50, i.e. blocks of 5 epochs: short blocks keep a burst of load from "
                         "another process from landing on one side only)")
    ap.add_argument("--quick", action="store_true", help="smoke test: 20 epochs in 4 rounds")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs, args.repeats = 20, 4
    if args.epochs < 1:
        ap.error("--epochs must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)

    corpus = charrnn.load_corpus("jaychou", 10_000, progress=False)
    lib = Library(corpus, args.sampling, args.epochs, args.seed)
    c = lib.trainer.config
    V = len(corpus.vocab)
    ref = Reference(corpus.indices, V, c.num_hiddens, c.batch_size, c.num_steps, c.lr, c.clip_theta,
                    args.sampling, c.seed)
    m = lib.trainer.model
    same_init = all(torch.equal(a.detach(), b.detach())
                    for a, b in zip(ref.params, [m.W_xh, m.W_hh, m.b_h, m.W_hq, m.b_q]))
    plan = blocks(args.epochs, args.repeats)

    print(f"charrnn bench: scratch RNN from the chapter, {args.sampling} sampling, {args.epochs} epochs per run, "
          f"{len(plan)} rounds of {plan[0]} epoch(s) per side")
    print(f"  corpus jaychou: {len(corpus):,} chars, V={V}, h={c.num_hiddens}, batch {c.batch_size}, "
          f"steps {c.num_steps}, lr {c.lr:g}, theta {c.clip_theta:g}, plain SGD, seed {c.seed}; "
          f"{lib.trainer.batches_per_epoch} minibatches/epoch")
    print(f"  torch {torch.__version__}, threads {torch.get_num_threads()} "
          f"(interop {torch.get_num_interop_threads()}), cpu count {os.cpu_count()}, "
          f"python {platform.python_version()}, {platform.machine()}")
    load0 = os.getloadavg()
    print(f"  load average before: {load0[0]:.2f} (1 min) on {os.cpu_count()} cores (the last line counts the rounds "
          f"that other processes slowed down)")
    print(f"  identical initial weights: {same_init}; identical minibatch order: yes (same shuffle seed)")
    sys.stdout.flush()

    ref_round, lib_round, lib_wall_round = [], [], []
    ref_ppl, lib_ppl = [], []
    ref_secs_all, lib_secs_all = [], []
    t0 = time.perf_counter()
    for i, k in enumerate(plan):
        for who in (("ref", "lib") if i % 2 == 0 else ("lib", "ref")):  # ABBA: neither always goes first
            if who == "ref":
                secs = []
                for _ in range(k):
                    s, p = ref.run_epoch()
                    secs.append(s)
                    ref_ppl.append(p)
                ref_secs_all += secs
                ref_round.append(sum(secs) / k)
            else:
                secs, ppls, wall = lib.run_epochs(k)
                lib_secs_all += secs
                lib_ppl += ppls
                lib_round.append(sum(secs) / k)
                lib_wall_round.append(wall / k)
        if (i + 1) % max(1, len(plan) // 10) == 0 or i + 1 == len(plan):  # between blocks: untimed
            print(f"  .. epoch {ref.epoch}/{args.epochs}: last round ref {ref_round[-1]:.4f} s/epoch, "
                  f"lib {lib_round[-1]:.4f} s/epoch", file=sys.stderr, flush=True)
    total = time.perf_counter() - t0
    tail = list(lib.events)  # the generator's Finished event (no more training happens)
    assert tail and isinstance(tail[-1], charrnn.Finished), tail
    load1 = os.getloadavg()

    med = statistics.median
    r_med, l_med, lw_med = med(ref_round), med(lib_round), med(lib_wall_round)
    ratio = r_med / l_med
    paired = med([r / lib for r, lib in zip(ref_round, lib_round)])
    rp, lp = ref_ppl[-1], lib_ppl[-1]
    rel = abs(lp - rp) / rp

    # rounds grouped into at most 10 rows of the table (median within each group)
    groups = max(1, math.ceil(len(plan) / 10))
    print()
    print(f"{'epochs':>9} {'ref s/epoch':>12} {'lib s/epoch':>12} {'ratio':>7} {'ref ppl':>9} {'lib ppl':>9}")
    e = 0
    for g in range(0, len(plan), groups):
        n = sum(plan[g:g + groups])
        rr, ll = med(ref_round[g:g + groups]), med(lib_round[g:g + groups])
        print(f"{e + 1:>4}-{e + n:<4} {rr:>12.4f} {ll:>12.4f} {rr / ll:>6.2f}x {ref_ppl[e + n - 1]:>9.4g} "
              f"{lib_ppl[e + n - 1]:>9.4g}")
        e += n
    if groups > 1:
        print(f"(each row: median over {groups} rounds of {plan[0]} epoch(s); ppl at the row's last epoch)")
    noisy = sum(1 for r, lib in zip(ref_round, lib_round) if r > 1.5 * r_med or lib > 1.5 * l_med)
    print()
    w = 38
    print(f"{'':{w}} {'reference':>10} {'library':>10}   target")
    print(f"{'s/epoch, median over rounds':{w}} {r_med:>10.4f} {l_med:>10.4f}")
    print(f"{'s/epoch, fastest single epoch':{w}} {min(ref_secs_all):>10.4f} {min(lib_secs_all):>10.4f}")
    print(f"{'s/epoch incl. Trainer.run() overhead':{w}} {'':>10} {lw_med:>10.4f}")
    print(f"{'final perplexity (epoch %d)' % args.epochs:{w}} {rp:>10.4f} {lp:>10.4f}")
    print(f"{'speed-up ref/lib, median paired round':{w}} {paired:>20.2f}x   >= {TARGET_RATIO:g}x   "
          f"{'PASS' if paired >= TARGET_RATIO else 'FAIL'}")
    print(f"{'speed-up ref/lib, ratio of the medians':{w}} {ratio:>20.2f}x")
    print(f"{'speed-up ref/lib, fastest epochs':{w}} {min(ref_secs_all) / min(lib_secs_all):>20.2f}x")
    print(f"{'final perplexity |lib - ref| / ref':{w}} {rel * 100:>19.2f}%   <= {TARGET_PPL_REL * 100:g}%   "
          f"{'PASS' if rel <= TARGET_PPL_REL else 'FAIL'}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; wall time {total:.1f} s "
          f"(training {sum(ref_secs_all):.1f} s ref + {sum(lib_secs_all):.1f} s lib); load average after "
          f"{load1[0]:.2f} (1 min), {load1[1]:.2f} (5 min); {noisy} of {len(plan)} rounds had a side "
          f"over 1.5x its median (load from other processes)")
    return 0 if (paired >= TARGET_RATIO and rel <= TARGET_PPL_REL) else 1


if __name__ == "__main__":
    sys.exit(main())
