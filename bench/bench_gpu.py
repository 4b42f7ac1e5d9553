"""GPU benchmark: the chapter's setups (PRESETS: its three and the next sections' four) on the GPU and on the CPU,
side by side in one run.

1. Seconds per epoch (the median over ``--epochs`` epochs after ``--warmup`` warm-up epochs; jaychou, first
   10,000 characters, the chapter's sizes) of each preset, trained by ``charrnn.Trainer`` on the GPU (default
   path), on the GPU with the opt-in ``fast=True`` (one CUDA graph per training step), and on the CPU; and the
   chapter's own formulation (bench_train.py's ``Reference``, imported: one-hot matmuls, a ``.item()`` per
   minibatch) on the same GPU, for the two scratch presets it covers. Ratios, and each column's perplexity
   after the same number of epochs (the GPU's default path lands where the CPU does; ``fast`` may differ in
   the last digits).
2. Writing while training: seconds per epoch of scratch-random on the GPU while another thread takes a
   snapshot and writes 20 characters with it, again and again (what the app's Write does mid-run).
3. The app's throughput through its library layer (``charrnn.lab.Lab``, the scheduler the server uses):
   aggregate characters per second with 1 and with 4 sessions training scratch-random at once, on the GPU
   (default path, and with ``fast=True``) and, for comparison, on the CPU.
4. The class row (``class_row.py``): 1, 8, 30 and 100 scratch-random runs trained at once through a Lab, grouped
   (one computation per minibatch for the whole group) and separate: aggregate characters per second, seconds per
   epoch per run, wall time relative to one run alone, GPU memory per run (``--device`` picks where; ``--only-class``
   runs nothing else, ``--skip-class`` leaves it out).

An epoch's time is the wall time between two of the trainer's EpochEnd events: each carries numbers read
back from the GPU, so the GPU's work of that epoch is done when it arrives.

Without CUDA it prints the CPU columns and says that the GPU ones need a GPU (exit code 0), so it can be
smoke-tested anywhere:

    CHARRNN_DATA_DIR=../shared/data python bench/bench_gpu.py                 # default: about a minute on a GPU
    CHARRNN_DATA_DIR=../shared/data python bench/bench_gpu.py --epochs 3 --warmup 1 --app-epochs 3
    CHARRNN_DATA_DIR=../shared/data python bench/bench_gpu.py --only-class --class-runs 1,8,30,100 --class-epochs 3
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from bench_train import Reference  # the chapter's formulation, written once there
from class_row import PRED_PERIOD, class_row, train_class  # the page's sample period, and the class row

import charrnn
from charrnn import EpochEnd, Trainer, predict
from charrnn.config import PRESETS, preset
from charrnn.train import pick_device

ROOT = Path(__file__).resolve().parent.parent

NEEDS_GPU = "needs a GPU"


@dataclass
class Measured:
    seconds: float        # median seconds per epoch after the warm-up
    perplexity: float     # after the last epoch
    note: str = ""


def library(config: charrnn.TrainConfig, corpus: charrnn.Corpus, warmup: int, epochs: int) -> Measured:
    trainer = Trainer(config.replace(epochs=warmup + epochs, pred_period=10**6), corpus)
    times, ppl = [], float("nan")
    last = time.perf_counter()
    for ev in trainer.run():
        if isinstance(ev, EpochEnd):
            now = time.perf_counter()
            times.append(now - last)
            last, ppl = now, ev.perplexity
    note = ""
    if config.fast and trainer.device.type == "cuda":
        note = "graph" if trainer.graphed else f"no graph ({trainer.graph_error or 'fewer steps than the warm-up'})"
    return Measured(statistics.median(times[warmup:]), ppl, note)


def reference(name: str, corpus: charrnn.Corpus, device: str, warmup: int, epochs: int) -> Measured:
    c = preset(name)
    ref = Reference(corpus.indices.to(device), len(corpus.vocab), c.num_hiddens, c.batch_size, c.num_steps, c.lr,
                    c.clip_theta, c.sampling, c.seed)
    runs = [ref.run_epoch() for _ in range(warmup + epochs)]  # (seconds, perplexity); .item() syncs every step
    return Measured(statistics.median(s for s, _ in runs[warmup:]), runs[-1][1])


def while_writing(corpus: charrnn.Corpus, warmup: int, epochs: int) -> tuple[float, int]:
    """scratch-random on the GPU while this thread snapshots it and writes 20 characters, over and over:
    (median seconds per epoch, writes made)."""
    trainer = Trainer(preset("scratch-random", epochs=warmup + epochs, pred_period=10**6, device="cuda"), corpus)
    times: list[float] = []

    def train() -> None:
        last = time.perf_counter()
        for ev in trainer.run():
            if isinstance(ev, EpochEnd):
                now = time.perf_counter()
                times.append(now - last)
                last = now

    worker = threading.Thread(target=train)
    worker.start()
    writes = 0
    while worker.is_alive():
        predict(trainer.snapshot(), trainer.vocab, "分开", 20)
        writes += 1
    worker.join()
    return statistics.median(times[warmup:]), writes


def app_throughput(corpus: charrnn.Corpus, device: str, sessions: int, epochs: int,
                   fast: bool = False) -> tuple[float, float]:
    """(aggregate characters per second, wall seconds) of ``sessions`` sessions of a Lab each training
    scratch-random (with ``TrainConfig.fast`` if asked) for ``epochs`` epochs at once, from the first Train to
    the last run's end; the Lab groups runs where the server would (``charrnn.grouped.grouping``)."""
    r = train_class(corpus, device, sessions, epochs, grouped=None, fast=fast)
    return r.rate, r.wall


def fmt(x: float | None, spec: str = ".4f") -> str:
    return NEEDS_GPU if x is None else format(x, spec)


def ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None else f"{a / b:.1f}x"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=20, help="epochs timed per column (default 20)")
    ap.add_argument("--warmup", type=int, default=3, help="epochs run first and not timed (default 3)")
    ap.add_argument("--app-epochs", type=int, default=20, help="epochs of each app run (default 20)")
    ap.add_argument("--sessions", default="1,4", help="sessions training at once in the app part (default 1,4)")
    ap.add_argument("--skip-app", action="store_true", help="leave out the app's throughput")
    ap.add_argument("--threads", type=int, default=None, help="torch threads on the CPU (default: torch's choice)")
    ap.add_argument("--class-runs", default=None,
                    help="runs trained at once in the class row (default 1,8,30,100 on a GPU, 1,2 on a CPU)")
    ap.add_argument("--class-epochs", type=int, default=3, help="epochs of each run of the class row (default 3)")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                    help="where the class row trains (default auto: the GPU if there is one)")
    ap.add_argument("--skip-class", action="store_true", help="leave out the class row")
    ap.add_argument("--only-class", action="store_true", help="run the class row only")
    args = ap.parse_args(argv)
    if args.epochs < 1 or args.warmup < 0 or args.app_epochs < 1 or args.class_epochs < 1:
        ap.error("--epochs, --app-epochs and --class-epochs must be at least 1, --warmup at least 0")
    if args.skip_class and args.only_class:
        ap.error("--skip-class and --only-class leave nothing to run")
    sessions = [int(s) for s in args.sessions.split(",") if s.strip()]
    if args.threads:
        torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    cuda = torch.cuda.is_available()
    corpus = charrnn.load_corpus("jaychou", 10_000, progress=False)
    gpu = torch.cuda.get_device_name() if cuda else None
    print(f"charrnn GPU benchmark: the chapter's setups (jaychou, 10,000 characters, V={len(corpus.vocab)}, h=256, "
          "batch 32, steps 35)")
    print(f"  torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN "
          f"{torch.backends.cudnn.version() if cuda else None}, python {platform.python_version()}")
    print(f"  GPU: {gpu or 'none: torch.cuda.is_available() is False, so the GPU columns need a GPU'}")
    if cuda:
        print(f"  TF32: matmul {torch.backends.cuda.matmul.allow_tf32}, cuDNN {torch.backends.cudnn.allow_tf32} "
              "(torch's defaults unless changed: cuDNN's nn.RNN may use TF32)")
    print(f"  CPU: {os.cpu_count()} cores, {torch.get_num_threads()} torch threads; "
          f"{args.warmup} warm-up + {args.epochs} timed epochs per column (median s/epoch)")
    print(flush=True)
    if not args.only_class:
        chapter_rows(args, corpus, sessions, cuda, t0)
    if not args.skip_class:
        device = str(pick_device(args.device))
        default = "1,8,30,100" if device == "cuda" else "1,2"
        class_row(corpus, device, [int(n) for n in (args.class_runs or default).split(",") if n.strip()],
                  args.class_epochs)
    print(f"\nbench_gpu: done in {time.perf_counter() - t0:.0f} s"
          + ("" if cuda else " (CPU columns only: no GPU here)"))
    return 0


def chapter_rows(args: argparse.Namespace, corpus: charrnn.Corpus, sessions: list[int], cuda: bool,
                 t0: float) -> None:
    """Parts 1 to 3: the presets' seconds per epoch, writing while training, the app's throughput."""
    def s(m: Measured | None) -> float | None:
        return None if m is None else m.seconds

    print("seconds per epoch (median); each row is printed as soon as it is measured")
    print(f"{'setup':<20} {'GPU':>11} {'GPU fast':>11} {'CPU':>11} {'chapter':>11} | {'CPU/GPU':>8} "
          f"{'CPU/fast':>8} {'chapter/GPU':>11} {'GPU/fast':>8}", flush=True)
    rows = []
    for name in PRESETS:
        cfg = preset(name)
        cpu = library(cfg.replace(device="cpu"), corpus, args.warmup, args.epochs)
        g = library(cfg.replace(device="cuda"), corpus, args.warmup, args.epochs) if cuda else None
        f = library(cfg.replace(device="cuda", fast=True), corpus, args.warmup, args.epochs) if cuda else None
        ref = (reference(name, corpus, "cuda", args.warmup, args.epochs)
               if cuda and cfg.model == "scratch" else None)
        rows.append((name, g, f, cpu, ref))
        chapter = fmt(s(ref)) if cuda else NEEDS_GPU
        if cuda and ref is None:
            chapter = "n/a"  # bench_train.py's formulation is the chapter's scratch RNN
        print(f"{name:<20} {fmt(s(g)):>11} {fmt(s(f)):>11} {fmt(s(cpu)):>11} {chapter:>11} | "
              f"{ratio(s(cpu), s(g)):>8} {ratio(s(cpu), s(f)):>8} {ratio(s(ref), s(g)):>11} {ratio(s(g), s(f)):>8}"
              f"   ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"perplexity after {args.warmup + args.epochs} epochs")
    for name, g, f, cpu, ref in rows:
        def p(m: Measured | None) -> str:
            return (NEEDS_GPU if not cuda else "n/a") if m is None else f"{m.perplexity:.4f}"
        print(f"{name:<20} {p(g):>11} {p(f):>11} {p(cpu):>11} {p(ref):>11}" + (f"   fast: {f.note}" if f else ""))
    print("(chapter: bench_train.py's Reference, the book's formulation, on the same GPU; CPU/GPU: how many times "
          "faster the GPU's default path is than the CPU; chapter/GPU: than the book's formulation on the GPU; "
          "GPU/fast: what TrainConfig.fast adds)")
    print(flush=True)

    if cuda:
        alone = s(rows[0][1])
        busy, writes = while_writing(corpus, args.warmup, args.epochs)
        print(f"writing while training (scratch-random, GPU): {alone:.4f} s/epoch alone, {busy:.4f} s/epoch while "
              f"another thread snapshotted and wrote 20 characters {writes} times ({busy / alone:.2f}x)")
    else:
        print(f"writing while training: {NEEDS_GPU}")
    print(flush=True)

    if args.skip_app:
        print("app throughput: left out (--skip-app)")
    else:
        print(f"app throughput (charrnn.lab.Lab, scratch-random, {args.app_epochs} epochs per run, samples every "
              f"{PRED_PERIOD} epochs): aggregate characters per second")
        for device, fast in (("cuda", False), ("cuda", True), ("cpu", False)):
            label = "GPU fast" if fast else {"cuda": "GPU", "cpu": "CPU"}[device]
            if device == "cuda" and not cuda:
                print(f"  {label}: {NEEDS_GPU}")
                continue
            base = None
            for n in sessions:
                rate, wall = app_throughput(corpus, device, n, args.app_epochs, fast)
                base = base or rate
                print(f"  {label:<8} {n} session(s) at once: {rate:>10,.0f} chars/s  ({wall:.1f} s; "
                      f"{rate / base:.2f}x the first row)", flush=True)
    print(flush=True)


if __name__ == "__main__":
    sys.exit(main())
