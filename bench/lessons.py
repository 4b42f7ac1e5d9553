"""What each lesson shows: its two runs' perplexity every 10 epochs, trained as the page trains them.

Prints, for every lesson of ``demo/lessons.py``, the perplexity of both runs at epochs 10, 20, ... (the
decoding lesson: the same model's greedy and sampled lyrics). The captions and README's lesson table
quote these curves.

Usage: CHARRNN_DATA_DIR=../shared/data python bench/lessons.py [--epochs 100]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "demo")]

from charrnn.train import EpochEnd, Sample  # noqa: E402
from lessons import LESSONS  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=100)
    args = ap.parse_args()
    for key, lesson in LESSONS.items():
        print(f"\n{key}: {lesson.button}")
        previous = None
        for n, make in enumerate(lesson.steps(args.epochs, pred_period=args.epochs), start=1):
            trainer = make(previous)
            events = list(trainer.run())
            curve = [e.perplexity for e in events if isinstance(e, EpochEnd)]
            end = events[-1]
            shown = ", ".join(f"{curve[i - 1]:.3g}" for i in range(10, len(curve) + 1, 10))
            print(f"  run {n} ({trainer.config.label()}): {shown or '-'} · {end.status} at epoch {end.epoch}")
            for s in (e for e in events if isinstance(e, Sample)):
                print(f"    {s.text}")
            previous = SimpleNamespace(trainer=trainer)  # what the next step reads of the run before


if __name__ == "__main__":
    main()
