"""The app's speed, measured side by side in one run.

1. Throughput: the same config trained by the CLI (``python -m charrnn train``) and through the app
   (a ``gradio_client`` call to ``/train`` against ``python demo/app.py`` in its own process),
   alternating. Ratio app/CLI of characters per second; target >= 0.85.
2. First chart point: seconds from submitting ``/train`` to the first streamed update that holds an
   epoch, for each of the chapter's three setups; target <= 2 s.
3. Four users at once: aggregate characters per second of 4 clients training together, divided by
   one client alone; target >= 0.8.

Usage: CHARRNN_DATA_DIR=../shared/data python bench/bench_app.py [--epochs 40] [--rounds 2]
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from charrnn.checkpoint import load_checkpoint  # noqa: E402
from charrnn.config import PRESETS  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(max_runs: int | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    if max_runs:
        env["CHARRNN_MAX_RUNS"] = str(max_runs)
    return serving([sys.executable, str(ROOT / "demo" / "app.py")], env, port, 60)


def serving(command: list[str], env: dict[str, str], port: int, wait: float) -> tuple[subprocess.Popen, str]:
    """Start ``command`` (a server) and wait until it listens on ``port``: (its process, its address)."""
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"the app did not start within {wait:g} s")


def app_args(preset: str, epochs: int, pred_period: int) -> dict:
    c = PRESETS[preset]
    return dict(corpus="jaychou", corpus_file=None, max_chars=10000, model=c["model"], sampling=c["sampling"],
                optimizer=c["optimizer"], lr=c["lr"], clip=True, theta=c["clip_theta"], epochs=epochs,
                num_hiddens=256, num_layers=1, batch_size=32, num_steps=35, seed=0, prefixes="分开, 不分开",
                pred_len=50, pred_period=pred_period, decoding="greedy", temperature=1.0, top_k=0, resume=False,
                validation=0.0)


def cli_rate(preset: str, epochs: int, pred_period: int) -> tuple[float, float]:
    """(chars/s over the epochs, wall seconds) of one CLI run, read from the checkpoint it saves."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "cli.safetensors"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "charrnn", "train", "--preset", preset, "--epochs", str(epochs),
                        "--pred-period", str(pred_period), "--no-progress", "--save", str(path)],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        metrics = load_checkpoint(path).metrics
    seconds = sum(m["seconds"] for m in metrics)
    return sum(m["chars_per_sec"] * m["seconds"] for m in metrics) / seconds, wall


def app_run(url: str, preset: str, epochs: int, pred_period: int) -> dict:
    """Train once through /train; returns the final progress plus the time to the first epoch."""
    from gradio_client import Client
    client = Client(url, verbose=False)
    t0 = time.perf_counter()
    first = None
    final = None
    for out in client.submit(**app_args(preset, epochs, pred_period), api_name="/train"):
        p = out[5]
        if first is None and p.get("epoch", 0) >= 1:
            first = time.perf_counter() - t0
        final = p
    final["first_point"] = first
    final["wall"] = time.perf_counter() - t0
    client.close()
    return final


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=40, help="epochs per throughput run (default 40)")
    ap.add_argument("--rounds", type=int, default=2, help="CLI/app alternations (default 2)")
    ap.add_argument("--users", type=int, default=4, help="clients training at once in part 3 (default 4)")
    args = ap.parse_args()
    import torch
    print(f"torch {torch.__version__} · {torch.get_num_threads()} threads · {os.cpu_count()} cores")

    proc, url = start_server()
    try:
        app_run(url, "scratch-random", 2, 1000)  # warm the server: corpus cache, first import costs
        # 1. throughput, alternating
        cli, app = [], []
        for r in range(args.rounds):
            rate, wall = cli_rate("scratch-random", args.epochs, 10)
            cli.append(rate)
            res = app_run(url, "scratch-random", args.epochs, 10)
            app.append(res["mean_chars_per_sec"])
            print(f"round {r + 1}: CLI {rate:,.0f} chars/s · app {app[-1]:,.0f} chars/s")
        c, a = statistics.median(cli), statistics.median(app)
        print(f"\n[1] throughput, scratch-random, {args.epochs} epochs, samples every 10: "
              f"CLI {c:,.0f} chars/s · app {a:,.0f} chars/s · ratio app/CLI {a / c:.2f} (target >= 0.85)")

        # 2. first chart point
        firsts = {}
        for preset in PRESETS:
            firsts[preset] = app_run(url, preset, 3, 1000)["first_point"]
        print("[2] first chart point after pressing Train: " +
              " · ".join(f"{k} {v:.2f} s" for k, v in firsts.items()) +
              f" · worst {max(firsts.values()):.2f} s (target <= 2 s)")
    finally:
        proc.terminate()
        proc.wait(10)

    # 3. many users at once, on a fresh server with the default limits
    proc, url = start_server()
    try:
        app_run(url, "scratch-random", 2, 1000)
        epochs = max(10, args.epochs // 2)
        alone = app_run(url, "scratch-random", epochs, 1000)
        chars = alone["mean_chars_per_sec"] * alone["train_seconds"]
        rate_alone = chars / alone["wall"]
        results: list[dict] = []
        t0 = time.perf_counter()
        threads = [threading.Thread(target=lambda: results.append(app_run(url, "scratch-random", epochs, 1000)))
                   for _ in range(args.users)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        rate_all = sum(r["mean_chars_per_sec"] * r["train_seconds"] for r in results) / wall
        print(f"[3] {args.users} users at once, {epochs} epochs each: alone {rate_alone:,.0f} chars/s (wall) · "
              f"together {rate_all:,.0f} chars/s (wall) · ratio {rate_all / rate_alone:.2f} (target >= 0.8)")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
