"""Run the chapter's three setups for 250 epochs and print the README's results table.

Usage: CHARRNN_DATA_DIR=../shared/data python bench/chapter_table.py
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import charrnn  # noqa: E402

CHECK = (50, 100, 150, 200, 250)
# CHAPTER.md, "Reference numbers": as published, and the book's code re-run on a 2-core CPU.
CHAPTER = {
    "scratch-random": ("65.8 / 9.79 / 2.77 / 1.60 / 1.32", "69.2 / 10.1 / 2.92 / 1.58 / 1.31", 0.24),
    "scratch-consecutive": ("60.3 / 7.14 / 2.09 / 1.31 / 1.23", "62.5 / 7.22 / 2.08 / 1.29 / 1.17", 0.23),
    "concise": ("9.41 / 1.26 / 1.06 / 1.03 / 1.05", "14.5 / 1.30 / 1.07 / 1.03 / 1.02", 0.19),
}


def fmt(x: float) -> str:
    return f"{x:.3g}" if x < 10 else f"{x:.1f}"


def main() -> None:
    corpus = charrnn.load_corpus("jaychou")
    print("| setup | the chapter (published) | the book's code, 2-core CPU | charrnn | s/epoch: book's code | s/epoch: charrnn |")
    print("|---|---|---|---|---|---|")
    for name, (published, rerun, book_time) in CHAPTER.items():
        trainer = charrnn.Trainer(charrnn.preset(name, pred_period=10**6), corpus)
        events = [e for e in trainer.run() if isinstance(e, charrnn.EpochEnd)]
        ppl = {e.epoch: e.perplexity for e in events}
        ours = " / ".join(fmt(ppl[k]) for k in CHECK)
        secs = statistics.median(e.seconds for e in events)
        print(f"| {name} | {published} | {rerun} | **{ours}** | {book_time:.2f} | {secs:.3f} |", flush=True)
        print(f"  {name}: greedy sample after 250 epochs: {charrnn.predict(trainer.model, trainer.vocab, '分开', 50)}",
              file=sys.stderr)


if __name__ == "__main__":
    main()
