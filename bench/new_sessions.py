"""What a new browser session costs the server before its first event runs: Gradio's ``SessionState``, built
for every new session (a student's page opening, a watcher joining), with and without
``demo/gradio_costs.py``'s remembered ``__init__`` signatures, measured side by side in one process.

    CHARRNN_DATA_DIR=../shared/data python bench/new_sessions.py [--sessions 200]
"""
from __future__ import annotations

import argparse
import inspect
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=200, help="sessions made per measurement (default 200)")
    args = ap.parse_args()
    from demo import app, gradio_costs
    gradio_costs.cut()  # as app.launch() does
    import gradio.blocks
    from gradio.state_holder import SessionState

    demo = app.build_app()
    shim = gradio.blocks.inspect
    assert isinstance(shim, gradio_costs._Inspect), "app.py did not apply gradio_costs.cut()"

    def per_session(use_shim: bool) -> float:
        gradio.blocks.inspect = shim if use_shim else inspect
        SessionState(demo)
        start = time.perf_counter()
        for _ in range(args.sessions):
            SessionState(demo)
        return (time.perf_counter() - start) / args.sessions

    plain, cut = [], []
    for _ in range(3):  # alternated, so that both see the same machine
        plain.append(per_session(False))
        cut.append(per_session(True))
    gradio.blocks.inspect = inspect
    plain_configs = SessionState(demo).config_values
    gradio.blocks.inspect = shim
    same = SessionState(demo).config_values == plain_configs
    p, c = statistics.median(plain), statistics.median(cut)
    print(f"a new session's SessionState ({len(demo.blocks)} blocks), median of 3 x {args.sessions}: "
          f"{p * 1e3:.1f} ms as Gradio makes it, {c * 1e3:.1f} ms with gradio_costs: {p / c:.1f}x faster; "
          f"the same configs: {same}")


if __name__ == "__main__":
    main()
