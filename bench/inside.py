"""What looking inside the model costs the run being looked at.

Starts ``python demo/app.py`` in its own process. A student's page (``page.Page``: plain HTTP, as a browser's)
trains the chapter's default run (scratch · random, ``--epochs`` epochs) through ``/train``, alone, and
``--rounds`` times while the same page looks inside the run as the page does at most: the gradients through time
every 2 s (the tab's timer), the next-character bars twice a second (someone dragging the temperature slider),
and the hidden units of a
60-character passage every 5 s. Each looked-at run is compared with the runs alone just before and after it.
Prints the run's throughput ratio (median; target: at least 0.95, i.e. slowed by at most 5%), the CPU seconds
the server and this process spent per run, and how long each view took to answer.

Usage: CHARRNN_DATA_DIR=../shared/data python bench/inside.py [--epochs 40] [--rounds 3]
"""
from __future__ import annotations

import argparse
import statistics
import threading
import time

from bench_app import start_server  # noqa: E402
from classroom import pct, train_parameters  # noqa: E402
from page import Page, PageError  # noqa: E402
from watchers import cpu_seconds, teacher_run  # noqa: E402

VIEWS = (("/gradients_through_time", [], 2.0), ("/next_chars", ["分开", 0.8], 0.5),
         ("/hidden_units", ["分开 不分开 我不能再想 我不要再想 我不 我不 我不要再想你 不知不觉 你已经离开我", 32], 5.0))


def looker(page: Page, stop: threading.Event, times: dict[str, list[float]]) -> None:
    """The student's page looking inside its run (the same page, so the same session): each view at its own
    pace until ``stop``, as the page's timer and slider make it ask."""
    due = {name: 0.0 for name, _, _ in VIEWS}
    while not stop.is_set():
        now = time.monotonic()
        for name, args, every in VIEWS:
            if now >= due[name]:
                t0 = time.perf_counter()
                try:
                    page.call(name, args)
                except PageError:  # no model yet, before the first epoch
                    pass
                times[name].append(time.perf_counter() - t0)
                due[name] = now + every
        stop.wait(0.05)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    proc, url = start_server()
    try:
        names = train_parameters(url)
        page = Page(url)
        teacher_run(page, names, 2)  # warm up
        times: dict[str, list[float]] = {name: [] for name, _, _ in VIEWS}

        def measured(look: bool) -> tuple[float, float, float]:
            """(chars/s, server CPU s, this process's CPU s) of one run, looked inside or not."""
            server0, mine0 = cpu_seconds(proc.pid)
            stop = threading.Event()
            t = threading.Thread(target=looker, args=(page, stop, times))
            if look:
                t.start()
            rate = teacher_run(page, names, args.epochs)[0]
            stop.set()
            if look:
                t.join()
            server1, mine1 = cpu_seconds(proc.pid)
            return rate, server1 - server0, mine1 - mine0

        alone = [measured(False)]
        looked, ratios = [], []
        for _ in range(args.rounds):
            looked.append(measured(True))
            alone.append(measured(False))
            ratios.append(looked[-1][0] / ((alone[-2][0] + alone[-1][0]) / 2))
        page.close()

        def cpu(runs: list, i: int) -> str:
            return f"{statistics.median(r[i] for r in runs):.1f}"
        print(f"the run ({args.epochs} epochs, scratch · random), chars/s: alone "
              f"{' · '.join(f'{a[0]:,.0f}' for a in alone)}; "
              f"looked inside {' · '.join(f'{w[0]:,.0f}' for w in looked)}")
        print(f"  looked-at / alone (each against the runs alone just before and after it): "
              f"{' · '.join(f'{r:.3f}' for r in ratios)}, median {statistics.median(ratios):.3f}x (target >= 0.95)")
        print(f"  CPU seconds per run (median), alone / looked inside: server {cpu(alone, 1)} / {cpu(looked, 1)}, "
              f"this process (the page's HTTP) {cpu(alone, 2)} / {cpu(looked, 2)}")
        for name, _, every in VIEWS:
            ts = times[name]
            print(f"{name} (every {every:g} s): {len(ts)} calls, answer p50 {pct(ts, 50) * 1e3:.0f} ms · "
                  f"p99 {pct(ts, 99) * 1e3:.0f} ms")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
