"""A classroom on one machine: many students press Train at the same moment, through the public API.

Starts ``python demo/app.py`` in its own process, then:
1. one CLI run of the same setup (``python -m charrnn train``), for the machine's rate alone;
2. wave 1: ``--students`` pages open (each runs the page's load event, as a browser does), then all press
   Train together (the chapter's default run: scratch · random, ``--epochs`` epochs), while another thread
   fetches the page (GET /) every half second. Prints the time from pressing Train to each student's first
   epoch (p50/p90/max; target max <= 10 s) and to its stream's first update (the run started), the time
   until the last run ends, the aggregate characters per second as a ratio of the CLI run (target >= 0.85),
   the page's latency (p50/p99; target p99 <= 0.5 s), the share of the server's CPU time spent building
   figures, and the garbage collector's full pauses;
3. waves 2..``--waves``: the same students with ``--soak-epochs`` epochs each (sessions closed between
   waves), printing the server's memory (RSS) and thread count after every wave (targets: memory after
   the last wave within 10% of wave 1; threads back to where they were before wave 1, read
   ``SETTLE`` s after a wave: a thread the server started for a wave's requests ends after 10 s idle).

Usage: CHARRNN_DATA_DIR=../shared/data python bench/classroom.py [--students 30] [--epochs 60] [--waves 10]
"""
from __future__ import annotations

import argparse
import collections
import os
import threading
import time
from pathlib import Path

import requests

from bench_app import app_args, cli_rate, start_server  # noqa: E402
from page import Page  # noqa: E402


def proc_stats(pid: int) -> dict[str, float]:
    """RSS (MB), threads and CPU seconds of a process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return {"rss_mb": int(fields["VmRSS"].split()[0]) / 1024, "threads": int(fields["Threads"]),
            "cpu_s": (int(stat[11]) + int(stat[12])) / ticks}


SETTLE = 12  # seconds after a wave: AnyIO's worker threads end after 10 s idle


def settle(url: str) -> None:
    """Wait for a wave's traces to go: sessions closed by the clients' unload, memory trimmed by the reaper,
    idle threads ended (AnyIO ends its idle workers when it is next given work: a GET / gives it some)."""
    time.sleep(SETTLE)
    requests.get(url, timeout=30)


def train_parameters(url: str) -> list[str]:
    """The names of /train's inputs, in the order its HTTP API takes them."""
    info = requests.get(f"{url}gradio_api/info", timeout=30).json()
    return [p["parameter_name"] for p in info["named_endpoints"]["/train"]["parameters"]]


def student(url: str, names: list[str], epochs: int, out: list, ready: threading.Semaphore,
            go: threading.Event) -> None:
    """One student's page, in plain HTTP as a browser makes it (``page.Page``: a heartbeat stream keeps the
    session, one message stream carries its events): the page opens (its load event, which is when Gradio
    makes the session's state and the app attaches its session), then Train is pressed with the others and
    its stream followed to the end, then the tab closes (the heartbeat hangs up, which closes the session).
    Plain HTTP rather than ``gradio_client``: this process shares the machine's two cores with the server,
    and thirty client libraries would take a share a real class's laptops do not."""
    values = app_args("scratch-random", epochs, 10)
    page = Page(url)
    try:
        page.call("/on_load", ["", {"width": 1440, "height": 900}])  # the key it keeps, its window
        ready.release()
        go.wait()
        t0 = time.perf_counter()
        started, first, final = None, None, None
        for outputs in page.stream("/train", [values[n] for n in names]):
            if started is None:  # the run's first update: it has been started (on_train's first yield)
                started = time.perf_counter() - t0
            final = outputs[5]
            if first is None and isinstance(final, dict) and final.get("epoch", 0) >= 1:
                first = time.perf_counter() - t0
        end = time.perf_counter()
    finally:
        page.close()
    out.append({"started": started, "first": first, "end": end, "start": t0, "final": final})


def wave(url: str, names: list[str], students: int, epochs: int, pinger: bool) -> dict:
    results: list[dict] = []
    go, ready = threading.Event(), threading.Semaphore(0)
    threads = [threading.Thread(target=student, args=(url, names, epochs, results, ready, go))
               for _ in range(students)]
    for t in threads:
        t.start()
    for _ in threads:
        ready.acquire()
    time.sleep(1.0)  # every page open and settled; then all press Train at once
    latencies: list[float] = []
    stop = threading.Event()

    def ping() -> None:
        while not stop.wait(0.5):
            t0 = time.perf_counter()
            requests.get(url, timeout=30)
            latencies.append(time.perf_counter() - t0)
    pinging = threading.Thread(target=ping)
    if pinger:
        pinging.start()
    t0 = time.perf_counter()
    go.set()
    for t in threads:
        t.join()
    stop.set()
    if pinger:
        pinging.join()
    return {"results": results, "t0": t0, "latencies": latencies}


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=60, help="epochs per run in wave 1 (default 60)")
    ap.add_argument("--waves", type=int, default=10)
    ap.add_argument("--soak-epochs", type=int, default=3, help="epochs per run in the later waves (default 3)")
    args = ap.parse_args()

    # A closed tab's session is closed after CHARRNN_RECONNECT_SECONDS (60 by default: a reload finds its runs
    # again); 3 here, so that each wave's sessions are gone when the memory is read SETTLE s after it.
    os.environ["CHARRNN_RECONNECT_SECONDS"] = "3"
    cli, _ = cli_rate("scratch-random", args.epochs, 10)
    print(f"CLI alone: {cli:,.0f} chars/s (scratch-random, {args.epochs} epochs)")
    proc, url = start_server()
    try:
        from gradio_client import Client
        warm = Client(url, verbose=False)
        list(warm.submit(**app_args("scratch-random", 1, 10), api_name="/train"))
        warm.close()
        settle(url)
        base = proc_stats(proc.pid)
        print(f"server idle: {base['rss_mb']:.0f} MB, {base['threads']} threads")
        before = proc_stats(proc.pid)
        stats0 = Client(url, verbose=False).predict(api_name="/stats")
        names = train_parameters(url)
        w = wave(url, names, args.students, args.epochs, pinger=True)
        after = proc_stats(proc.pid)
        stats = Client(url, verbose=False).predict(api_name="/stats")
        res = w["results"]
        firsts = [r["first"] for r in res if r["first"] is not None]
        end = max(r["end"] for r in res) - w["t0"]
        chars = sum(f["mean_chars_per_sec"] * f["train_seconds"] for f in (r["final"] for r in res))
        finished = sum(r["final"]["status"] == "finished" for r in res)
        ends = collections.Counter(f"{r['final']['status']} at epoch {r['final']['epoch']}" for r in res)
        cpu = after["cpu_s"] - before["cpu_s"]
        print(f"\nwave 1: {args.students} students, {args.epochs} epochs each, {finished} finished "
              f"({', '.join(f'{n}x {k}' for k, n in ends.items())})")
        print(f"  first epoch after pressing Train: p50 {pct(firsts, 50):.1f} s · p90 {pct(firsts, 90):.1f} s · "
              f"max {max(firsts):.1f} s (target max <= 10 s); {args.students - len(firsts)} never got one")
        started = [r["started"] for r in res if r["started"] is not None]
        print(f"  the run started (its stream's first update): p50 {pct(started, 50):.2f} s · "
              f"max {max(started):.2f} s after pressing Train")
        print(f"  last run ended after {end:.0f} s")
        print(f"  aggregate {chars / end:,.0f} chars/s = {chars / end / cli:.2f}x one CLI run (target >= 0.85)")
        lat = w["latencies"]
        print(f"  page GET / latency: p50 {pct(lat, 50):.3f} s · p99 {pct(lat, 99):.3f} s (target p99 <= 0.5 s), "
              f"{len(lat)} requests")
        busy = stats["trained_seconds"] / (stats["workers"] * end)
        epochs_s = sum(r["final"]["train_seconds"] for r in res)
        print(f"  training workers busy {busy:.0%} of the wave; epochs' own time {epochs_s:.0f} s of "
              f"{stats['trained_seconds']:.0f} s in slices")
        print(f"  figures: {stats['renders']} renders, {stats['render_seconds']:.1f} s = "
              f"{stats['render_seconds'] / cpu:.1%} of the server's {cpu:.0f} CPU seconds")
        full = stats["full_collections"] - stats0["full_collections"]
        print(f"  garbage collector: {full} full collections in the wave, "
              f"{stats['full_collection_seconds'] - stats0['full_collection_seconds']:.2f} s in all, the longest "
              f"since start-up {stats['full_collection_longest']:.2f} s ({stats['frozen_objects']:,} objects frozen "
              f"at start-up)")
        settle(url)
        after = proc_stats(proc.pid)
        rows = []
        for k in range(2, args.waves + 1):
            wave(url, names, args.students, args.soak_epochs, pinger=False)
            settle(url)
            rows.append((k, proc_stats(proc.pid)))
        print("\nwave  RSS MB  threads")
        print(f"   1  {after['rss_mb']:6.0f}  {after['threads']:7d}")
        for k, st in rows:
            print(f"{k:4d}  {st['rss_mb']:6.0f}  {st['threads']:7d}")
        last = rows[-1][1] if rows else after
        print(f"memory after wave {args.waves} vs wave 1: {last['rss_mb'] / after['rss_mb']:.2f}x (target within 10%); "
              f"threads {last['threads']} vs {base['threads']} before wave 1 (target: back there) and "
              f"{after['threads']} after it")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
