"""What thirty Train presses at once cost the server in Gradio's preprocessing of /train's 22 inputs, with and
without ``demo/gradio_costs.py``'s seventh cut (the plain form components preprocessed in the event loop
instead of a worker thread each), measured side by side in one process, alternating.

Each round preprocesses the inputs of ``--presses`` presses concurrently on one event loop, twice each as the
server does (the validator's call, then the run's), each press with its own session, and reports the time
until the first press and the last press are through, and the event loop's CPU time.

    CHARRNN_DATA_DIR=../shared/data python bench/presses.py [--presses 30] [--rounds 9]
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
    ap.add_argument("--presses", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args()
    import anyio
    from demo import app, gradio_costs
    gradio_costs.cut()  # as app.launch() does
    import gradio.blocks
    from gradio.state_holder import SessionState

    demo = app.build_app()
    fn = next(f for f in demo.fns.values() if f.api_name == "train")
    inputs = [b.value for b in fn.inputs]  # the form as it opens: the chapter's run
    shim = gradio.blocks.anyio
    assert isinstance(shim, gradio_costs._BlocksAnyio)

    async def press(state: SessionState, t0: float) -> float:
        for _ in range(2):  # the validator's preprocessing, then the run's
            await demo.preprocess_data(fn, list(inputs), state)
        return time.perf_counter() - t0

    async def wave() -> tuple[float, float, float]:
        states = [SessionState(demo) for _ in range(args.presses)]
        c0, t0 = time.thread_time(), time.perf_counter()
        done = await asyncio.gather(*(press(s, t0) for s in states))
        return min(done) * 1e3, max(done) * 1e3, (time.thread_time() - c0) * 1e3

    results: dict[str, list[tuple[float, float, float]]] = {"cut": [], "gradio": []}
    for r in range(args.rounds + 1):
        for name in (("cut", "gradio") if r % 2 else ("gradio", "cut")):
            gradio.blocks.anyio = shim if name == "cut" else anyio
            try:
                out = asyncio.run(wave())
            finally:
                gradio.blocks.anyio = shim
            if r:  # round 0 warms both (threads started, caches filled)
                results[name].append(out)
    print(f"{args.presses} presses at once, /train's {len(fn.inputs)} inputs preprocessed twice each, "
          f"{args.rounds} rounds (medians):")
    med = {k: [statistics.median(x[i] for x in v) for i in range(3)] for k, v in results.items()}
    for name, label in (("gradio", "a thread per input (Gradio)"), ("cut", "plain inputs in the loop (cut 7)")):
        first, last, cpu = med[name]
        print(f"  {label:34s} first press through {first:6.1f} ms · last {last:6.1f} ms · "
              f"event loop CPU {cpu:6.1f} ms")
    print(f"  cut / Gradio: last press {med['cut'][1] / med['gradio'][1]:.2f}x, "
          f"event loop CPU {med['cut'][2] / med['gradio'][2]:.2f}x")


if __name__ == "__main__":
    main()
