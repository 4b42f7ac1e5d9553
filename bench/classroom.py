"""A classroom on one machine: many students press Train at the same moment, through the public API.

Starts ``python demo/app.py`` in its own process, then:
1. one CLI run of the same setup (``python -m charrnn train``), for the machine's rate alone;
2. wave 1: ``--students`` clients submit the chapter's default run (scratch · random, ``--epochs`` epochs)
   together, while another thread fetches the page (GET /) every half second. Prints the time from
   pressing Train to each student's first epoch (p50/p90/max; target max <= 10 s), the time until the
   last run ends, the aggregate characters per second as a ratio of the CLI run (target >= 0.85), the
   page's latency (p50/p99; target p99 <= 0.5 s), and the share of the server's CPU time spent building
   figures;
3. waves 2..``--waves``: the same students with ``--soak-epochs`` epochs each (sessions closed between
   waves), printing the server's memory (RSS) and thread count after every wave (targets: memory after
   the last wave within 10% of wave 1; threads back to where they were after wave 1's runs began).

Usage: CHARRNN_DATA_DIR=../shared/data python bench/classroom.py [--students 30] [--epochs 60] [--waves 10]
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_app import app_args, cli_rate, start_server  # noqa: E402


def proc_stats(pid: int) -> dict[str, float]:
    """RSS (MB), threads and CPU seconds of a process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return {"rss_mb": int(fields["VmRSS"].split()[0]) / 1024, "threads": int(fields["Threads"]),
            "cpu_s": (int(stat[11]) + int(stat[12])) / ticks}


def student(url: str, epochs: int, out: list, go: threading.Event) -> None:
    """One student: press Train, follow the stream to the end, close the tab."""
    from gradio_client import Client
    client = Client(url, verbose=False)
    go.wait()
    t0 = time.perf_counter()
    first, final = None, None
    for update in client.submit(**app_args("scratch-random", epochs, 10), api_name="/train"):
        progress = update[5]
        if not isinstance(progress, dict):
            continue
        if first is None and progress.get("epoch", 0) >= 1:
            first = time.perf_counter() - t0
        final = progress
    out.append({"first": first, "end": time.perf_counter(), "start": t0, "final": final})
    client.close()


def wave(url: str, students: int, epochs: int, pinger: bool) -> dict:
    results: list[dict] = []
    go = threading.Event()
    threads = [threading.Thread(target=student, args=(url, epochs, results, go)) for _ in range(students)]
    for t in threads:
        t.start()
    time.sleep(2.0)  # every client connected; then all press Train at once
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

    cli, _ = cli_rate("scratch-random", args.epochs, 10)
    print(f"CLI alone: {cli:,.0f} chars/s (scratch-random, {args.epochs} epochs)")
    proc, url = start_server()
    try:
        from gradio_client import Client
        warm = Client(url, verbose=False)
        list(warm.submit(**app_args("scratch-random", 1, 10), api_name="/train"))
        warm.close()
        time.sleep(3)
        base = proc_stats(proc.pid)
        print(f"server idle: {base['rss_mb']:.0f} MB, {base['threads']} threads")
        before = proc_stats(proc.pid)
        w = wave(url, args.students, args.epochs, pinger=True)
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
        time.sleep(4)  # sessions closed by the clients' unload; the reaper trims memory
        after = proc_stats(proc.pid)
        rows = []
        for k in range(2, args.waves + 1):
            wave(url, args.students, args.soak_epochs, pinger=False)
            time.sleep(4)  # sessions closed by the clients' unload; the reaper trims memory
            rows.append((k, proc_stats(proc.pid)))
        print("\nwave  RSS MB  threads")
        print(f"   1  {after['rss_mb']:6.0f}  {after['threads']:7d}")
        for k, st in rows:
            print(f"{k:4d}  {st['rss_mb']:6.0f}  {st['threads']:7d}")
        last = rows[-1][1] if rows else after
        print(f"memory after wave {args.waves} vs wave 1: {last['rss_mb'] / after['rss_mb']:.2f}x (target within 10%); "
              f"threads {last['threads']} vs {after['threads']} after wave 1 and {base['threads']} before it")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
