"""Which of ``demo/gradio_costs.py``'s cuts a user feels: the app with every cut against the app with one cut left
out, alternating, on the figures a class feels.

Each probe starts ``python demo/app.py`` with ``$CHARRNN_GRADIO_CUTS`` set (``on``, ``off``, or ``-name``: every
cut but that one), and measures, in plain HTTP as browsers make it (``page.Page``):
- idle CPU: the server's CPU time over ``--idle`` seconds while one page is open and nothing runs (% of a core);
- a class pressing Train: ``--students`` pages press Train together (scratch · random, ``--epochs`` epochs); the
  slowest student's time from pressing to the first epoch, and to the run's start (its stream's first update);
- memory over waves: the server's RSS growth per wave of the same students (``--waves`` more waves of one epoch,
  each page closed after its run);
- a watched run: the teacher trains ``--watch-epochs`` epochs alone, then with ``--watchers`` screens following
  it, then alone: the watched run's characters per second as a ratio of the two alone, and the watchers' delay
  (p99) behind the teacher's page.

The probes run in the order on, -a, -b, on, -c, -d, ... on (``--passes`` times, each pass in the reverse order
of the one before), and each left-out cut is compared with the mean of the all-on probes of its pass. A cut's
effect is its figure without it minus the figure with every cut (positive: worse without the cut).

Usage: CHARRNN_DATA_DIR=../shared/data python bench/gradio_cuts.py [--cuts pages,queue] [--passes 2]
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import time

import requests

from bench_app import start_server  # noqa: E402
from classroom import pct, proc_stats, train_parameters, wave  # noqa: E402
from page import Page  # noqa: E402
from watchers import teacher_run, watched_run  # noqa: E402

from demo.gradio_costs import CUTS, ENV  # noqa: E402

FIGURES = (("idle_cpu", "idle server CPU, % of a core"), ("first_max", "class: slowest first epoch, s"),
           ("started_max", "class: slowest run start, s"), ("mb_per_wave", "memory growth per wave, MB"),
           ("watched", "watched run / alone, throughput"), ("delay_p99", "watchers' delay p99, s"))
SETTLE = 6.0  # seconds after a wave: its pages' sessions close (CHARRNN_RECONNECT_SECONDS=3) and are reaped


def idle_cpu(proc, url, names, teacher, args) -> dict[str, float]:
    time.sleep(3.0)  # the warm-up's last updates are sent
    cpu0 = proc_stats(proc.pid)["cpu_s"]
    time.sleep(args.idle)
    return {"idle_cpu": (proc_stats(proc.pid)["cpu_s"] - cpu0) / args.idle * 100}


def a_class(proc, url, names, teacher, args) -> dict[str, float]:
    results = wave(url, names, args.students, args.epochs, pinger=False)["results"]
    return {"first_max": max(r["first"] if r["first"] is not None else float("inf") for r in results),
            "started_max": max(r["started"] if r["started"] is not None else float("inf") for r in results)}


def memory(proc, url, names, teacher, args) -> dict[str, float]:
    rss = []
    for _ in range(args.waves + 1):  # the first wave brings the server to its working size
        wave(url, names, args.students, 1, pinger=False)
        time.sleep(SETTLE)
        requests.get(url, timeout=30)
        rss.append(proc_stats(proc.pid)["rss_mb"])
    return {"mb_per_wave": (rss[-1] - rss[0]) / args.waves}


def watched(proc, url, names, teacher, args) -> dict[str, float]:
    code = re.search(r"class-code'>([A-Z0-9-]+)<", teacher.call("/share", [])[0])[1]
    before = teacher_run(teacher, names, args.watch_epochs)[0]
    rate, delays = watched_run(url, proc.pid, code, teacher, names, args.watchers, args.watch_epochs)[:2]
    after = teacher_run(teacher, names, args.watch_epochs)[0]
    return {"watched": rate / ((before + after) / 2), "delay_p99": pct(delays, 99) if delays else float("inf")}


PROBES = {"idle": idle_cpu, "class": a_class, "memory": memory, "watched": watched}


def probe(cuts: str, figures: list[str], args: argparse.Namespace) -> dict[str, float]:
    """One server with ``$CHARRNN_GRADIO_CUTS=cuts``: the ``figures`` asked for (see the module's docstring)."""
    os.environ[ENV] = cuts
    proc, url = start_server()
    out: dict[str, float] = {}
    try:
        names = train_parameters(url)
        teacher = Page(url)
        teacher_run(teacher, names, 2)  # warm up: the corpus is read, torch is loaded
        for name in figures:
            out.update(PROBES[name](proc, url, names, teacher, args))
        teacher.close()
    finally:
        proc.terminate()
        proc.wait(10)
    return out


def order(settings: list[str], per_group: int) -> list[str]:
    """on, -a, -b, on, -c, -d, ..., on: each setting next to an all-on probe."""
    out = ["on"]
    for i in range(0, len(settings), per_group):
        out += settings[i:i + per_group] + ["on"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cuts", default=",".join(CUTS), help="the cuts to leave out one at a time (default: all)")
    ap.add_argument("--figures", default=",".join(PROBES), help=f"what to measure (default: {','.join(PROBES)})")
    ap.add_argument("--off", action="store_true", help="also probe the app with every cut off")
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--per-group", type=int, default=2, help="left-out probes between two all-on probes")
    ap.add_argument("--idle", type=float, default=10.0)
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--waves", type=int, default=3)
    ap.add_argument("--watchers", type=int, default=50)
    ap.add_argument("--watch-epochs", type=int, default=20)
    args = ap.parse_args()
    cuts = [c.strip() for c in args.cuts.split(",") if c.strip()]
    assert all(c in CUTS for c in cuts), f"--cuts: the cuts are {', '.join(CUTS)}"
    figures = [f.strip() for f in args.figures.split(",") if f.strip()]
    assert all(f in PROBES for f in figures), f"--figures: {', '.join(PROBES)}"
    os.environ["CHARRNN_RECONNECT_SECONDS"] = "3"  # a closed page's session closes 3 s after it, not 60
    runs: dict[str, list[list[dict]]] = {}
    plan = order([f"-{c}" for c in cuts] + (["off"] if args.off else []), args.per_group)
    for p in range(args.passes):
        for setting in plan if p % 2 == 0 else plan[::-1]:
            t0 = time.perf_counter()
            got = probe(setting, figures, args)
            runs.setdefault(setting, [[] for _ in range(args.passes)])[p].append(got)
            print(f"pass {p + 1} {setting:12s} " + " · ".join(f"{k} {v:.2f}" for k, v in got.items())
                  + f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    print("\neffect of leaving one cut out (its figure minus the all-on mean of the same pass; pass 1 / pass 2 ...)")
    shown = [(key, label) for key, label in FIGURES if key in runs["on"][0][0]]
    print("| left out | " + " | ".join(label for _, label in shown) + " |")
    print("|---" * (len(shown) + 1) + "|")
    for setting, passes in runs.items():
        if setting == "on":
            continue
        cells = []
        for key, _ in shown:
            diffs = []
            for p, probes in enumerate(passes):
                base = statistics.mean(r[key] for r in runs["on"][p])
                diffs += [f"{r[key] - base:+.2f}" for r in probes]
            cells.append(" / ".join(diffs))
        print(f"| {setting} | " + " | ".join(cells) + " |")
    print("| all on (absolute) | " + " | ".join(
        " / ".join(f"{statistics.mean(r[key] for r in probes):.2f}" for probes in runs["on"])
        for key, _ in shown) + " |")


if __name__ == "__main__":
    main()
