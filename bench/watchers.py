"""A class watching one run: what 50 watching screens cost the teacher's run, and how late they see it.

Starts ``python demo/app.py`` in its own process. The teacher (a page: ``page.Page``, plain HTTP as a browser)
shares its session, then trains the chapter's default run (scratch · random) alone, and ``--rounds`` times with
``--watchers`` screens following ``/watch`` (opened before, closed after), each followed by a run alone
again. Prints
- the teacher's throughput (characters of the run per wall second, from pressing Train to its end) with
  the watchers as a ratio of the runs alone just before and after (median; target >= 0.9);
- the delay from the teacher's page showing an epoch to each watcher showing it (p50/p99/max over every
  epoch the teacher saw and every watcher; target <= 1 s);
- the CPU seconds of the server, of this process, and of the server's event loop (the thread that serves
  every page: found as the one that works while the watchers wait and nothing trains), alone and watched,
  and what the loop spends per update sent to a watcher;
- how many times the server rendered the charts: once per change, whatever the number of watchers.

The teacher's page and the watchers run in this process, on the server's own cores, where a class's screens are
other machines; their CPU seconds are printed. ``--client-nice 19`` lowers this process's priority once the
server has started, so that the watchers' reading waits for cores the server leaves free. With it, four
invocations while the app changed gave medians of 0.76x-0.91x, within the machine's noise of those without,
and the delays grew (the watchers' own waiting counts in them, max up to 1.8 s), so the default leaves this
process at the server's priority.

Usage: CHARRNN_DATA_DIR=../shared/data python bench/watchers.py [--watchers 50] [--epochs 40] [--rounds 5]
"""
from __future__ import annotations

import argparse
import os
import queue
import re
import resource
import statistics
import threading
import time
from pathlib import Path

import requests

from bench_app import app_args, start_server  # noqa: E402
from classroom import pct, proc_stats, train_parameters  # noqa: E402
from page import Page, PageError  # noqa: E402


def teacher_run(teacher: Page, names: list[str], epochs: int) -> tuple[float, dict[int, float]]:
    """Train once from the teacher's page; (characters per wall second, {epoch: when the page first showed it})."""
    shown: dict[int, float] = {}
    values = app_args("scratch-random", epochs, 10)
    t0 = time.perf_counter()
    final = None
    for outputs in teacher.stream("/train", [values[n] for n in names]):
        progress = outputs[5]
        if isinstance(progress, dict) and "epoch" in progress:
            shown.setdefault(progress["epoch"], time.perf_counter())
            final = progress
    wall = time.perf_counter() - t0
    return final["mean_chars_per_sec"] * final["train_seconds"] / wall, shown


def watcher(url: str, code: str, seen: list[tuple[int, float]], pages: list[Page], ready: threading.Event) -> None:
    """One student's screen following the class: a page (plain HTTP, as a browser's; see ``page.Page``) whose
    ``/watch`` event streams the class's run, noting when each epoch first appears. Closing the page (in
    ``pages``) leaves the class."""
    page = Page(url)
    pages.append(page)
    try:
        for outputs in page.stream("/watch", [code]):
            ready.set()
            progress = outputs[5]
            if isinstance(progress, dict) and "epoch" in progress:
                seen.append((progress["epoch"], time.perf_counter()))
    except (PageError, queue.Empty, requests.RequestException, OSError):
        pass  # closed by the benchmark
    finally:
        ready.set()


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of each thread of a process, by thread id (from /proc)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended
            continue
        out[tid] = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return out


def event_loop_thread(pid: int, seconds: float = 2.0) -> str:
    """The server's event-loop thread: the one that works while the watchers' pages are open and nothing trains
    (the class's channel looks at the session, their pages' heartbeats come in; the training workers wait)."""
    before = thread_cpu(pid)
    time.sleep(seconds)
    after = thread_cpu(pid)
    return max(after, key=lambda t: after[t] - before.get(t, after[t]))


def cpu_seconds(server: int) -> tuple[float, float]:
    """CPU seconds used so far by the server and by this process (its watchers and the teacher's client)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    return proc_stats(server)["cpu_s"], me.ru_utime + me.ru_stime


def watched_run(url: str, server: int, code: str, teacher: Page, names: list[str], watchers: int,
                epochs: int) -> tuple:
    """Open ``watchers`` screens, train once, close them: (chars/s, delays behind the teacher, epochs missed,
    CPU seconds of the server and of the clients during the run, bytes the watchers received, the server's
    event-loop thread, its CPU seconds during the run, updates the watchers received)."""
    seen: list[list[tuple[int, float]]] = [[] for _ in range(watchers)]
    readies = [threading.Event() for _ in range(watchers)]
    pages: list[Page] = []
    for i in range(watchers):
        threading.Thread(target=watcher, args=(url, code, seen[i], pages, readies[i]), daemon=True).start()
    for r in readies:
        r.wait(120)
    time.sleep(1.0)  # every watcher's stream is open and has had its first update
    loop = event_loop_thread(server)
    cpu, loop_cpu, updates = cpu_seconds(server), thread_cpu(server)[loop], sum(len(s) for s in seen)
    rate, shown = teacher_run(teacher, names, epochs)
    cpu = [b - a for a, b in zip(cpu, cpu_seconds(server))]
    loop_cpu = thread_cpu(server)[loop] - loop_cpu
    time.sleep(2.0)  # the last updates reach the watchers
    updates = sum(len(s) for s in seen) - updates
    received = sum(p.received for p in pages)
    for page in pages:
        page.close()
    time.sleep(4.0)  # the server finds the streams closed at its next update (the clock: every 2 s)
    delays, missed = [], 0
    for s in seen:
        for epoch, t_teacher in shown.items():
            later = [t for e, t in s if e >= epoch and t >= t_teacher - 1.0]
            if later:
                delays.append(max(0.0, min(later) - t_teacher))
            else:
                missed += 1
    return rate, delays, missed, cpu, received, loop, loop_cpu, updates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--watchers", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=5, help="watched runs, each between two runs alone")
    ap.add_argument("--client-nice", type=int, default=0, help="this process's niceness once the server runs")
    args = ap.parse_args()
    proc, url = start_server()
    if args.client_nice:
        os.nice(args.client_nice)  # after the server started: it keeps the niceness it was started with
    try:
        names = train_parameters(url)
        teacher = Page(url)
        teacher_run(teacher, names, 2)  # warm up: the corpus is read, torch is loaded
        code = re.search(r"class-code'>([A-Z0-9-]+)<", teacher.call("/share", [])[0])[1]
        cpu = cpu_seconds(proc.pid)
        alone = [teacher_run(teacher, names, args.epochs)[0]]
        cpu_alone = [b - a for a, b in zip(cpu, cpu_seconds(proc.pid))]
        watched, delays, missed, ratios, cpus, sizes, loops, loops_alone = [], [], 0, [], [], [], [], []
        stats0 = teacher.call("/stats", [])[0]
        for _ in range(args.rounds):
            rate, d, m, c, size, loop, loop_cpu, updates = watched_run(url, proc.pid, code, teacher, names,
                                                                       args.watchers, args.epochs)
            watched.append(rate)
            cpus.append(c)
            sizes.append(size)
            loops.append((loop_cpu, updates))
            delays += d
            missed += m
            before = thread_cpu(proc.pid).get(loop, 0.0)
            alone.append(teacher_run(teacher, names, args.epochs)[0])
            loops_alone.append(thread_cpu(proc.pid).get(loop, 0.0) - before)
            ratios.append(rate / ((alone[-2] + alone[-1]) / 2))
        stats1 = teacher.call("/stats", [])[0]
        print(f"teacher's run ({args.epochs} epochs, scratch · random), chars/s: alone "
              f"{' · '.join(f'{a:,.0f}' for a in alone)}; with {args.watchers} watchers "
              f"{' · '.join(f'{w:,.0f}' for w in watched)}")
        print(f"  watched / alone (each watched run against the runs alone just before and after it): "
              f"{' · '.join(f'{r:.2f}' for r in ratios)}, median {statistics.median(ratios):.2f}x (target >= 0.9)")
        print(f"watchers' delay behind the teacher's page: p50 {pct(delays, 50):.2f} s · p99 {pct(delays, 99):.2f} s"
              f" · max {max(delays):.2f} s over {len(delays)} (epoch, watcher) pairs (target <= 1 s); "
              f"{missed} never seen")
        print(f"CPU seconds during a run: server {cpu_alone[0]:.1f} alone, "
              f"{statistics.median(c[0] for c in cpus):.1f} watched; this process (the teacher's client, and the "
              f"watchers' streams) {cpu_alone[1]:.1f} alone, {statistics.median(c[1] for c in cpus):.1f} watched; "
              f"{statistics.median(sizes) / args.watchers / 1e3:,.0f} kB received per watcher per run")
        extra = statistics.median(w - a for (w, _), a in zip(loops, loops_alone))
        per_update = statistics.median((w - a) / n for (w, n), a in zip(loops, loops_alone) if n)
        print(f"the server's event loop (the thread that serves every page): "
              f"{statistics.median(loops_alone):.2f} CPU-s per run alone, "
              f"{statistics.median(w for w, _ in loops):.2f} watched (+{extra:.2f} for "
              f"{statistics.median(n for _, n in loops):,.0f} updates to the watchers: {per_update * 1e3:.2f} ms each)")
        renders = stats1["renders"] - stats0["renders"]
        print(f"chart renders over the {args.rounds} watched and {args.rounds} lone runs: {renders} "
              f"({stats1['render_seconds'] - stats0['render_seconds']:.2f} s), for {args.watchers + 1} screens")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
