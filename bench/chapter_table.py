"""Run the chapter's three setups for 250 epochs and print the README's results table; then the next sections'
four (6.7 GRU and 6.8 LSTM, from scratch and concise) for 160 epochs, and their table.

Usage: CHARRNN_DATA_DIR=../shared/data python bench/chapter_table.py [--next-only]
"""
from __future__ import annotations

import statistics
import sys


import charrnn  # noqa: E402

CHECK = (50, 100, 150, 200, 250)
# The book's figures (Dive into Deep Learning, Chinese edition, PyTorch port, 6.4 and 6.5): as published, and the
# book's code re-run on a 2-core CPU, with its seconds per epoch (docs/results.md's first table).
CHAPTER = {
    "scratch-random": ("65.8 / 9.79 / 2.77 / 1.60 / 1.32", "69.2 / 10.1 / 2.92 / 1.58 / 1.31", 0.24),
    "scratch-consecutive": ("60.3 / 7.14 / 2.09 / 1.31 / 1.23", "62.5 / 7.22 / 2.08 / 1.29 / 1.17", 0.23),
    "concise": ("9.41 / 1.26 / 1.06 / 1.03 / 1.05", "14.5 / 1.30 / 1.07 / 1.03 / 1.02", 0.19),
}


def fmt(x: float) -> str:
    return f"{x:.3g}" if x < 10 else f"{x:.1f}"


# The next sections (6.7 GRU, 6.8 LSTM; docs/results.md's second table): the book's printed perplexities at
# epochs 40 / 80 / 120 / 160 (nothing is seeded there, so they are one run each; the from-scratch GRU's is the
# notebook after its formula fix).
NEXT_CHECK = (40, 80, 120, 160)
NEXT = {
    "scratch-gru": "151 / 31.7 / 5.86 / 1.82 (older formula: 149 / 31.7 / 4.87 / 1.44)",
    "scratch-lstm": "211 / 67.1 / 15.6 / 4.27 (MXNet, GPU: 212 / – / – / 4.07)",
    "concise-gru": "1.02 / 1.03 / 1.01 / 1.18",
    "concise-lstm": "1.02 / 1.01 / 1.03 / 1.02",
}


def run(name: str, corpus: charrnn.Corpus, check: tuple[int, ...]) -> tuple[str, float]:
    """Train preset ``name`` in full: (its perplexity at the ``check`` epochs, median seconds per epoch); its
    greedy sample goes to stderr."""
    trainer = charrnn.Trainer(charrnn.preset(name, pred_period=10**6), corpus)
    events = [e for e in trainer.run() if isinstance(e, charrnn.EpochEnd)]
    ppl = {e.epoch: e.perplexity for e in events}
    print(f"  {name}: greedy sample after {trainer.epoch} epochs: "
          f"{charrnn.predict(trainer.model, trainer.vocab, '分开', 50)}", file=sys.stderr)
    return " / ".join(fmt(ppl[k]) for k in check), statistics.median(e.seconds for e in events)


def next_sections(corpus: charrnn.Corpus) -> None:
    print("\n| setup | the book (PyTorch port) | charrnn | s/epoch: charrnn |")
    print("|---|---|---|---|")
    for name, book in NEXT.items():
        ours, secs = run(name, corpus, NEXT_CHECK)
        print(f"| {name} | {book} | **{ours}** | {secs:.3f} |", flush=True)


def main() -> None:
    corpus = charrnn.load_corpus("jaychou")
    if "--next-only" in sys.argv:
        next_sections(corpus)
        return
    print("| setup | the chapter (published) | the book's code, 2-core CPU | charrnn | s/epoch: book's code "
          "| s/epoch: charrnn |")
    print("|---|---|---|---|---|---|")
    for name, (published, rerun, book_time) in CHAPTER.items():
        ours, secs = run(name, corpus, CHECK)
        print(f"| {name} | {published} | {rerun} | **{ours}** | {book_time:.2f} | {secs:.3f} |", flush=True)
    next_sections(corpus)


if __name__ == "__main__":
    main()
