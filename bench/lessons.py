"""What each lesson shows: its runs' perplexity every 10 epochs, trained as the page trains them.

Prints, for every lesson of ``demo/lessons.py``, the perplexity of its runs at epochs 10, 20, ... (the
decoding lesson: the same model's greedy and sampled lyrics; the gates lesson: how much of the last step's
gradient reaches step 1, 10 and 25 back, as the Gradients through time view shows it; a run with held-out text,
the overfitting lesson's: the held-out perplexity too, where it was lowest, and the held-out perplexity on the
characters the training text has and on those it never has, at that lowest epoch and at the end). The captions
and README's lesson table quote these numbers. Each lesson runs its own number of epochs (``--epochs`` for
those that use the page's default).

``--overfitting`` prints instead the measurement that picked the overfitting lesson's settings: the chapter's
model on short texts with a fifth held out, each candidate's training and held-out perplexity every 10 epochs,
its time per epoch, and whether it overfits as the lesson needs (training perplexity below 2 at the end; the
held-out perplexity lowest before the end, below half the vocabulary size there (the model learnt something that
holds beyond its text first), and at least 30% above that lowest at the end).

Usage: CHARRNN_DATA_DIR=../shared/data python bench/lessons.py [--epochs 100] [--only KEY ...] [--overfitting]
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent

from charrnn import heldout  # noqa: E402
from charrnn.config import PRESETS, TrainConfig  # noqa: E402
from charrnn.corpus import cached_corpus  # noqa: E402
from charrnn.inside import gradients_through_time, probe_batch  # noqa: E402
from charrnn.models import CharModel  # noqa: E402
from charrnn.train import EpochEnd, Sample, Trainer  # noqa: E402
from demo.lessons import EPOCHS, LESSONS  # noqa: E402

# The overfitting lesson's candidates: the chapter's model (lr 100, θ 0.01, 256 hidden units unless said) on the
# first N characters of the lyrics, the last fifth held out. The chapter's batch of 32 windows of 35 needs 1,121
# characters of training text for one minibatch (charrnn/batches.py min_length): smaller batches give a short
# text several minibatches an epoch.
CANDIDATE_EPOCHS = 200
CANDIDATES = [
    ("scratch-random", dict(max_chars=1500, batch_size=32)),
    ("scratch-random", dict(max_chars=1500, batch_size=8)),
    ("scratch-random", dict(max_chars=1500, batch_size=4)),
    ("scratch-random", dict(max_chars=1500, batch_size=4, seed=1)),
    ("scratch-random", dict(max_chars=1500, batch_size=4, seed=2)),
    ("scratch-consecutive", dict(max_chars=1500, batch_size=4)),
    ("scratch-random", dict(max_chars=1500, batch_size=4, num_hiddens=512)),
    ("scratch-random", dict(max_chars=2000, batch_size=4)),
    ("scratch-random", dict(max_chars=3000, batch_size=8)),
    ("scratch-consecutive", dict(max_chars=3000, batch_size=8)),
]
RISE = 1.3   # the held-out perplexity's end over its lowest that counts as "rises clearly"
FLOOR = 2.0  # the training perplexity at the end that counts as "falls toward 1"


def every_10(values: list[float]) -> str:
    return ", ".join(f"{values[i - 1]:.3g}" for i in range(10, len(values) + 1, 10)) or "-"


def shape(train: list[float], held: list[float], vocab: int) -> str:
    """Where the held-out perplexity was lowest, how far above that it ends, and whether that is overfitting."""
    low = min(range(len(held)), key=held.__getitem__)
    overfits = train[-1] < FLOOR and low < len(held) - 1 and held[low] < vocab / 2 and held[-1] >= RISE * held[low]
    last = held[-10:]  # an epoch's held-out perplexity is noisy: the last ten epochs' range and mean say more
    return (f"held-out lowest {held[low]:.3g} at epoch {low + 1}, {held[-1]:.3g} at the end "
            f"({held[-1] / held[low] - 1:+.0%}; the last {len(last)} epochs {min(last):.3g} to {max(last):.3g}, mean "
            f"{sum(last) / len(last):.3g}); training {train[low]:.3g} then, {train[-1]:.3g} at the end · "
            f"{'overfits' if overfits else 'does not overfit as the lesson needs'}")


@torch.no_grad()
def seen_and_unseen(model: CharModel, trainer: Trainer) -> str:
    """The held-out perplexity on the characters the training text has and on those it never has (a model
    gives less and less to a character it never sees: that part rises with no overfitting of its own), read as
    ``heldout.perplexity`` reads it."""
    c, held = trainer.config, trainer.held.cpu()
    rows = heldout.rows_for(len(held), c.num_steps, c.batch_size)
    X, Y = heldout.layout(held, rows)
    state, losses = model.begin_state(rows), []
    for start in range(0, X.shape[1], c.num_steps):
        logits, state = model(X[:, start:start + c.num_steps], state)
        losses.append(F.cross_entropy(logits, Y[:, start:start + c.num_steps].T.reshape(-1), reduction="none"))
    loss, target = torch.cat(losses), torch.cat([Y[:, s:s + c.num_steps].T.reshape(-1)
                                                 for s in range(0, X.shape[1], c.num_steps)])
    known = torch.isin(target, trainer.data.cpu().unique())
    return (f"seen in training ({known.float().mean():.0%} of them) {math.exp(loss[known].mean()):.3g}, "
            f"never seen {math.exp(loss[~known].mean()):.3g}")


def train(trainer: Trainer) -> tuple[list, list[float], list[float], float, CharModel | None]:
    """Its events, training and held-out perplexity per epoch, seconds per epoch, and (with held-out text) a copy
    of the model at the epoch its held-out perplexity was lowest."""
    events, lowest, best = [], math.inf, None
    start = time.perf_counter()
    for e in trainer.run():
        events.append(e)
        if isinstance(e, EpochEnd) and e.val_perplexity is not None and e.val_perplexity < lowest:
            lowest, best = e.val_perplexity, trainer.snapshot()
    seconds = time.perf_counter() - start
    ends = [e for e in events if isinstance(e, EpochEnd)]
    return (events, [e.perplexity for e in ends], [e.val_perplexity for e in ends if e.val_perplexity is not None],
            seconds / max(len(ends), 1), best)


def candidates() -> None:
    print(f"overfitting candidates, {CANDIDATE_EPOCHS} epochs, a fifth held out, {torch.get_num_threads()} "
          "torch thread(s)")
    for name, changes in CANDIDATES:
        config = TrainConfig(**{**PRESETS[name], **changes, "validation": 0.2, "epochs": CANDIDATE_EPOCHS,
                                "pred_period": CANDIDATE_EPOCHS, "prefixes": []})
        trainer = Trainer(config, cached_corpus(config.corpus, config.max_chars))
        _, ppl, held, per_epoch, _ = train(trainer)
        print(f"\n  {name} · {changes} · V {len(trainer.vocab)} · {trainer.batches_per_epoch} minibatches an epoch "
              f"· {per_epoch * 1000:.0f} ms an epoch")
        print(f"    training: {every_10(ppl)}")
        print(f"    held-out: {every_10(held)}")
        print(f"    {shape(ppl, held, len(trainer.vocab))}")


def lessons(epochs_asked: int, only: list[str] | None) -> None:
    print(f"{torch.get_num_threads()} torch thread(s)")
    for key, lesson in LESSONS.items():
        if only and key not in only:
            continue
        print(f"\n{key}: {lesson.button}")
        previous = None
        epochs = epochs_asked if lesson.epochs == EPOCHS else lesson.epochs
        for n, make in enumerate(lesson.steps(epochs, pred_period=epochs), start=1):
            trainer = make(previous)
            events, curve, held, per_epoch, best = train(trainer)
            end = events[-1]
            print(f"  run {n} ({trainer.config.label()}): {every_10(curve)} · {end.status} at epoch {end.epoch} "
                  f"· {per_epoch * 1000:.0f} ms an epoch")
            if held:
                print(f"    held-out: {every_10(held)}")
                print(f"    {shape(curve, held, len(trainer.vocab))}")
                print(f"    held-out at its lowest: {seen_and_unseen(best, trainer)}")
                print(f"    held-out at the end: {seen_and_unseen(trainer.snapshot(), trainer)}")
            for s in (e for e in events if isinstance(e, Sample)):
                print(f"    {s.text}")
            if key == "gates":
                X, Y = probe_batch(trainer.indices, trainer.config.batch_size, trainer.config.num_steps)
                norms = gradients_through_time(trainer.snapshot(), X, Y).norms
                print("    share of step {T}'s gradient reaching step 1 / 10 / 25: ".format(T=len(norms))
                      + " / ".join(f"{norms[t - 1] / norms[-1]:.2g}" for t in (1, 10, 25)))
            previous = SimpleNamespace(trainer=trainer)  # what the next step reads of the run before


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--only", nargs="+", choices=list(LESSONS), help="these lessons only")
    ap.add_argument("--overfitting", action="store_true", help="the overfitting lesson's candidate settings")
    args = ap.parse_args()
    if args.overfitting:
        candidates()
    else:
        lessons(args.epochs, args.only)


if __name__ == "__main__":
    main()
