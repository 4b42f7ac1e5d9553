"""What each lesson shows: its two runs' perplexity every 10 epochs, trained as the page trains them.

Prints, for every lesson of ``demo/lessons.py``, the perplexity of both runs at epochs 10, 20, ... (the
decoding lesson: the same model's greedy and sampled lyrics; the gates lesson: how much of the last step's
gradient reaches step 1, 10 and 25 back, as the Gradients through time view shows it). The captions and
README's lesson table quote these numbers. Each lesson runs its own number of epochs (``--epochs`` for
those that use the page's default).

Usage: CHARRNN_DATA_DIR=../shared/data python bench/lessons.py [--epochs 100]
"""
from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent

from charrnn.inside import gradients_through_time, probe_batch  # noqa: E402
from charrnn.train import EpochEnd, Sample  # noqa: E402
from demo.lessons import EPOCHS, LESSONS  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=100)
    args = ap.parse_args()
    for key, lesson in LESSONS.items():
        print(f"\n{key}: {lesson.button}")
        previous = None
        epochs = args.epochs if lesson.epochs == EPOCHS else lesson.epochs
        for n, make in enumerate(lesson.steps(epochs, pred_period=epochs), start=1):
            trainer = make(previous)
            events = list(trainer.run())
            curve = [e.perplexity for e in events if isinstance(e, EpochEnd)]
            end = events[-1]
            shown = ", ".join(f"{curve[i - 1]:.3g}" for i in range(10, len(curve) + 1, 10))
            print(f"  run {n} ({trainer.config.label()}): {shown or '-'} · {end.status} at epoch {end.epoch}")
            for s in (e for e in events if isinstance(e, Sample)):
                print(f"    {s.text}")
            if key == "gates":
                X, Y = probe_batch(trainer.indices, trainer.config.batch_size, trainer.config.num_steps)
                norms = gradients_through_time(trainer.snapshot(), X, Y).norms
                print("    share of step {T}'s gradient reaching step 1 / 10 / 25: ".format(T=len(norms))
                      + " / ".join(f"{norms[t - 1] / norms[-1]:.2g}" for t in (1, 10, 25)))
            previous = SimpleNamespace(trainer=trainer)  # what the next step reads of the run before


if __name__ == "__main__":
    main()
