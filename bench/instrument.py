"""What the instrument costs, measured side by side in one run.

1. A paused run costs the others nothing: the characters per second of a run training alone, and of the same
   run with a paused run beside it (started, paused at once, left paused), alternating; ratio beside/alone
   (target: within the noise of 1).
2. The held-out perplexity's cost: for the chapter's run with a tenth of its text held out, the seconds of the
   held-out pass after each epoch against the epoch's own training seconds (target: at most 10%).

Usage: CHARRNN_DATA_DIR=../shared/data python bench/instrument.py [--seconds 8] [--rounds 2]
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from charrnn import heldout  # noqa: E402
from charrnn.config import PRESETS, TrainConfig  # noqa: E402
from charrnn.corpus import cached_corpus  # noqa: E402
from charrnn.files import Caps, DiskQuota, SessionFiles  # noqa: E402
from charrnn.lab import Session  # noqa: E402
from charrnn.scheduler import Scheduler  # noqa: E402
from charrnn.train import Trainer  # noqa: E402


def chapter(**changes) -> TrainConfig:
    return TrainConfig(**{**PRESETS["scratch-random"], "epochs": 100_000, "prefixes": [], **changes})


def session(scheduler: Scheduler, key: str) -> Session:
    return Session(key, scheduler, SessionFiles(Caps(10, 2**30, 2**30), DiskQuota(2**30)))


def rate_of(scheduler: Scheduler, seconds: float, beside_paused: bool) -> float:
    """Characters per second of one run over ``seconds`` (after its first epoch), with or without a paused run."""
    corpus = cached_corpus("jaychou", 10_000)
    paused = None
    if beside_paused:
        paused = session(scheduler, "paused").start(Trainer(chapter(), corpus))
        paused.pause()
        assert paused.wait_paused(30)
    run = session(scheduler, "alone").start(Trainer(chapter(), corpus))
    while len(run.view().history) < 2:  # past the warm-up
        time.sleep(0.05)
    start, epochs = time.monotonic(), len(run.view().history)
    time.sleep(seconds)
    history = run.view().history[epochs:]
    run.stop(10)
    if paused is not None:
        assert paused.view().paused and not paused.view().history, "the paused run trained"
        paused.stop(10)
    chars = sum(e.chars_per_sec * e.seconds for e in history)
    return chars / (time.monotonic() - start)


def paused_beside(seconds: float, rounds: int) -> None:
    scheduler = Scheduler(max_runs=8)
    try:
        ratios = []
        for r in range(rounds):  # in turn, each first every other round (the machine's drift cancels)
            if r % 2:
                beside = rate_of(scheduler, seconds, True)
                alone = rate_of(scheduler, seconds, False)
            else:
                alone = rate_of(scheduler, seconds, False)
                beside = rate_of(scheduler, seconds, True)
            ratios.append(beside / alone)
            print(f"  round {r + 1}: alone {alone:,.0f} chars/s · beside a paused run {beside:,.0f} chars/s · "
                  f"ratio {beside / alone:.3f}")
        print(f"1. a paused run beside: ratio beside/alone {statistics.mean(ratios):.3f} (rounds: "
              f"{', '.join(f'{x:.3f}' for x in ratios)})")
    finally:
        scheduler.shutdown()


def held_out_cost(epochs: int) -> None:
    corpus = cached_corpus("jaychou", 10_000)
    trainer = Trainer(chapter(epochs=epochs, validation=0.1), corpus)
    shares = []
    for events in trainer.work():
        if events and hasattr(events[0], "val_perplexity"):
            e, c = events[0], trainer.config
            start = time.perf_counter()
            heldout.perplexity(trainer.model, trainer.held, c.num_steps, c.batch_size)
            shares.append((time.perf_counter() - start) / e.seconds)
    rows = heldout.rows_for(len(trainer.held), trainer.config.num_steps, trainer.config.batch_size)
    print(f"2. held-out pass ({len(trainer.held):,} characters, {rows} rows side by side): "
          f"{statistics.median(shares[1:]):.1%} of an epoch's training time (median of {len(shares) - 1} epochs "
          f"after the first; max {max(shares[1:]):.1%})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=12)
    args = ap.parse_args()
    paused_beside(args.seconds, args.rounds)
    held_out_cost(args.epochs)


if __name__ == "__main__":
    main()
