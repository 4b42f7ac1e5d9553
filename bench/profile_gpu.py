"""Where a training epoch's time goes on a GPU: torch.profiler over one epoch of each setup.

For each setup (default: the chapter's scratch-random and concise, and 6.7's scratch-gru), on the GPU's default
path and with ``TrainConfig.fast`` (a CUDA graph per step), it trains ``--warmup`` epochs untimed, then profiles
one epoch and prints:

- wall seconds of that epoch, and the GPU's busy time (the sum of its kernels' durations): their ratio is how
  much of the epoch the GPU computes; the rest is the CPU launching work (Python, dispatch, launch overhead);
- kernels launched per training step, and CUDA API calls (launches, syncs, copies) per step;
- the operators that take the most CPU time (where dispatch goes).

The chapter's models are tiny (h = 256, batch 32): a step's 35 time steps are hundreds of small kernels of a few
microseconds each, so the CPU side sets the pace, and that is what this makes visible.

    CHARRNN_DATA_DIR=../shared/data python bench/profile_gpu.py            # on a GPU, about half a minute
    CHARRNN_DATA_DIR=../shared/data python bench/profile_gpu.py --setups scratch-lstm --top 15

Without CUDA it profiles the CPU path instead (so it can be smoke-tested anywhere) and says so.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

import charrnn
from charrnn import EpochEnd, Trainer
from charrnn.config import PRESETS, preset

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_SETUPS = "scratch-random,concise,scratch-gru"


def profile_epoch(config: charrnn.TrainConfig, corpus: charrnn.Corpus, warmup: int, top: int) -> None:
    cuda = config.device == "cuda"
    trainer = Trainer(config.replace(epochs=warmup + 1, pred_period=10**6), corpus)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    prof = profile(activities=activities)
    seen = 0
    for ev in trainer.run():
        if isinstance(ev, EpochEnd):
            seen += 1
            if seen == warmup:
                prof.start()
            elif seen == warmup + 1:
                prof.stop()
                wall = ev.seconds
    steps = trainer.batches_per_epoch
    events = prof.events()
    kernels = [e for e in events if getattr(e, "device_type", None) == torch.autograd.DeviceType.CUDA]
    busy = sum(getattr(e, "device_time", None) or getattr(e, "cuda_time", 0) for e in kernels) / 1e6  # µs -> s
    api = [e for e in events if e.name.startswith("cuda") and e.device_type == torch.autograd.DeviceType.CPU]
    syncs = sum(1 for e in api if "Synchronize" in e.name or e.name == "cudaStreamSynchronize")
    mode = "fast (CUDA graph)" if config.fast else "default"
    if config.fast and cuda:
        mode += "" if trainer.graphed else f": no graph ({trainer.graph_error})"
    print(f"\n== {config.model} / {config.sampling} on {config.device}, {mode}: one epoch of {steps} steps")
    if cuda:
        print(f"   wall {wall:.4f} s, GPU busy {busy:.4f} s ({100 * busy / wall:.0f}% of the epoch); "
              f"{len(kernels) / steps:.0f} kernels and {len(api) / steps:.0f} CUDA API calls per step, "
              f"{syncs} synchronisations in the epoch")
    else:
        print(f"   wall {wall:.4f} s (CPU path: no GPU here)")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top, max_name_column_width=40))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--setups", default=DEFAULT_SETUPS, help=f"comma-separated presets (default {DEFAULT_SETUPS}; "
                    f"any of {', '.join(PRESETS)})")
    ap.add_argument("--warmup", type=int, default=2, help="epochs trained before the profiled one (default 2)")
    ap.add_argument("--top", type=int, default=8, help="operators listed per profile (default 8)")
    args = ap.parse_args(argv)
    names = [s.strip() for s in args.setups.split(",") if s.strip()]
    unknown = [n for n in names if n not in PRESETS]
    if unknown or not names:
        ap.error(f"unknown setup(s) {unknown}: choose from {', '.join(PRESETS)}")
    if args.warmup < 1:
        ap.error("--warmup must be at least 1 (the first epoch includes start-up work)")
    cuda = torch.cuda.is_available()
    corpus = charrnn.load_corpus("jaychou", 10_000, progress=False)
    print(f"profile_gpu: torch {torch.__version__}, "
          f"{torch.cuda.get_device_name() if cuda else 'no GPU: profiling the CPU path instead'}")
    for name in names:
        if cuda:
            for fast in (False, True):
                profile_epoch(preset(name, device="cuda", fast=fast), corpus, args.warmup, args.top)
        else:
            profile_epoch(preset(name, device="cpu"), corpus, args.warmup, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
