"""What looking inside the model costs the run being looked at.

Starts ``python demo/app.py`` in its own process. A student trains the chapter's default run (scratch · random,
``--epochs`` epochs) through ``/train``, alone, and ``--rounds`` times while its page looks inside the run
as the page does at most: the gradients through time every 2 s (the tab's timer), the
next-character bars twice a second (someone dragging the temperature slider), and the hidden units of a
60-character passage every 5 s. Each looked-at run is compared with the runs alone just before and after it.
Prints the run's throughput ratio (median; target: at least 0.95, i.e. slowed by at most 5%) and how long
each view took to answer.

Usage: CHARRNN_DATA_DIR=../shared/data python bench/inside.py [--epochs 40] [--rounds 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_app import start_server  # noqa: E402
from classroom import pct  # noqa: E402
from watchers import teacher_run  # noqa: E402

VIEWS = (("/gradients_through_time", (), 2.0), ("/next_chars", ("分开", 0.8), 0.5),
         ("/hidden_units", ("分开 不分开 我不能再想 我不要再想 我不 我不 我不要再想你 不知不觉 你已经离开我", 32), 5.0))


def looker(client, stop: threading.Event, times: dict[str, list[float]]) -> None:
    """The student's page looking inside its run (the student's own client, so the same session): each view
    at its own pace until ``stop``. The client library runs in this process, on the same cores as the server
    (a real page runs on the student's machine): its cost is counted against the run here."""
    due = {name: 0.0 for name, _, _ in VIEWS}
    while not stop.is_set():
        now = time.monotonic()
        for name, args, every in VIEWS:
            if now >= due[name]:
                t0 = time.perf_counter()
                try:
                    client.predict(*args, api_name=name)
                except Exception:  # noqa: BLE001 (no model yet, before the first epoch)
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
        from gradio_client import Client
        student = Client(url, verbose=False)
        teacher_run(student, 2)  # warm up
        alone = [teacher_run(student, args.epochs)[0]]
        looked, ratios = [], []
        times: dict[str, list[float]] = {name: [] for name, _, _ in VIEWS}
        for _ in range(args.rounds):
            stop = threading.Event()
            t = threading.Thread(target=looker, args=(student, stop, times))
            t.start()
            looked.append(teacher_run(student, args.epochs)[0])
            stop.set()
            t.join()
            alone.append(teacher_run(student, args.epochs)[0])
            ratios.append(looked[-1] / ((alone[-2] + alone[-1]) / 2))
        print(f"the run ({args.epochs} epochs, scratch · random), chars/s: alone "
              f"{' · '.join(f'{a:,.0f}' for a in alone)}; looked inside {' · '.join(f'{w:,.0f}' for w in looked)}")
        print(f"  looked-at / alone (each against the runs alone just before and after it): "
              f"{' · '.join(f'{r:.3f}' for r in ratios)}, median {statistics.median(ratios):.3f}x (target >= 0.95)")
        for name, _, every in VIEWS:
            ts = times[name]
            print(f"{name} (every {every:g} s): {len(ts)} calls, answer p50 {pct(ts, 50) * 1e3:.0f} ms · "
                  f"p99 {pct(ts, 99) * 1e3:.0f} ms")
        student.close()
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
