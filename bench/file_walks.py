"""What Gradio's per-update work on a stream's outputs costs the server, with and without ``demo/gradio_costs.py``
(its cuts 3 and 4), side by side in one process:
- the two walks for file objects over every output of every update (``async_move_files_to_cache`` and
  ``add_root_url``), per page;
- the difference between an update and the one before (``gradio.utils.diff``), for ``--pages`` pages showing
  the same stream (a class's watchers).
The outputs are the app's own for a session that trained the chapter's default run: its update after
``--epochs - 1`` epochs and after ``--epochs``.

    CHARRNN_DATA_DIR=../shared/data python bench/file_walks.py [--epochs 40] [--repeat 2000] [--pages 50]
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=2000, help="updates walked per measurement")
    ap.add_argument("--pages", type=int, default=50, help="pages sent each update")
    args = ap.parse_args()
    from demo import app, gradio_costs
    gradio_costs.cut()  # as app.launch() does
    import gradio as gr
    import gradio.processing_utils as pu
    import gradio.utils
    import charrnn
    from charrnn.corpus import cached_corpus
    from charrnn.lab import Lab

    walks, shared = pu.add_root_url.__self__, gradio.utils.diff
    assert isinstance(walks, gradio_costs._FileWalks) and isinstance(shared, gradio_costs._SharedDiffs), \
        "app.py did not apply gradio_costs.cut()"
    lab = Lab()
    try:
        session = lab.session("bench")
        corpus = cached_corpus("jaychou", 10_000)
        before = session.start(charrnn.Trainer(charrnn.preset("scratch-random", epochs=args.epochs - 1), corpus))
        while before.alive:
            time.sleep(0.2)
        older = list(app.renders.outputs(session))
        session.clear()
        run = session.start(charrnn.Trainer(charrnn.preset("scratch-random", epochs=args.epochs), corpus))
        while run.alive:
            time.sleep(0.2)
        outputs = list(app.renders.outputs(session))
    finally:
        lab.shutdown()
    block, loop = gr.JSON(render=False), asyncio.new_event_loop()

    def update(move, add_root) -> float:
        async def walk() -> None:
            for _ in range(args.repeat):
                moved = [await move(o, block, postprocess=True) for o in outputs]
                add_root(moved, "http://127.0.0.1:7860", None)
        start = time.perf_counter()
        loop.run_until_complete(walk())
        return (time.perf_counter() - start) / args.repeat

    def diffs(diff, walk) -> float:
        """Seconds per update to diff each output for every page (each page's copy of both updates, made
        beforehand by ``walk`` as Gradio's walks would make it: its own copy per page, or the sealed outputs)."""
        pages = [([walk(o) for o in older], [walk(o) for o in outputs]) for _ in range(args.pages)]
        rounds = max(1, args.repeat // args.pages)
        start = time.perf_counter()
        for _ in range(rounds):
            shared._pairs.clear()  # a new update: nothing remembered from the last
            for old, new in pages:
                for a, b in zip(old, new):
                    diff(a, b)
        return (time.perf_counter() - start) / rounds

    def own_copy(o):
        return walks.add_root(o, "", None)

    real, cut, real_diff, cut_diff = [], [], [], []
    for _ in range(3):  # alternated, so that both see the same machine
        real.append(update(walks.move, walks.add_root))
        cut.append(update(pu.async_move_files_to_cache, pu.add_root_url))
        real_diff.append(diffs(shared.diff, own_copy))
        cut_diff.append(diffs(shared, pu.add_root_url))
    same = (walks.add_root(outputs, "http://h", None) == pu.add_root_url(outputs, "http://h", None)
            and all(shared.diff(a, b) == shared(a, b) for a, b in zip(older, outputs)))
    r, c, rd, cd = (statistics.median(x) for x in (real, cut, real_diff, cut_diff))
    print(f"one update's six outputs ({sum(len(str(o)) for o in outputs):,} characters, {args.epochs} epochs), "
          f"both walks, per page, median of 3 x {args.repeat}: {r * 1e3:.3f} ms as Gradio walks, {c * 1e3:.3f} ms "
          f"with gradio_costs ({r / c:.1f}x)")
    print(f"the difference from the update before, for {args.pages} pages: {rd * 1e3:.2f} ms per update as Gradio "
          f"diffs, {cd * 1e3:.2f} ms with gradio_costs ({rd / cd:.1f}x); "
          f"the same results: {same}")


if __name__ == "__main__":
    main()
