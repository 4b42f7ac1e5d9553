"""bench_gpu.py's class row runs on a CPU (small counts): its table has a row per count and way, and its numbers
parse and are positive. What it measures on a GPU is bench/gpu_check.sh's (docs/performance.md)."""
from __future__ import annotations

import re
import subprocess
import sys

from conftest import REPO, subprocess_env

ROW = re.compile(r"^\s*(\d+)\s+(separate|grouped)\s+([\d,]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x\s+(\S+)\s+(\S+)\s*$")


def test_the_class_row_runs_on_a_cpu_and_prints_positive_numbers(jaychou_zip):
    out = subprocess.run([sys.executable, "bench/bench_gpu.py", "--device", "cpu", "--only-class",
                          "--class-runs", "1,2", "--class-epochs", "1", "--threads", "1"],
                         cwd=REPO, env=subprocess_env(CHARRNN_DATA_DIR=str(jaychou_zip.parent)), capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [m.groups() for line in out.stdout.splitlines() if (m := ROW.match(line))]
    assert [(int(n), way) for n, way, *_ in rows] == [(1, "separate"), (1, "grouped"), (2, "separate"),
                                                       (2, "grouped")], out.stdout
    for n, way, rate, per_epoch, wall, times, memory, size in rows:
        assert float(rate.replace(",", "")) > 0 and float(per_epoch) > 0 and float(wall) > 0 and float(times) > 0
        assert memory == "-"  # GPU memory: none on a CPU
        assert size == "-" if way == "separate" else 1 <= float(size) <= int(n)
    assert float(rows[0][5]) == 1.0  # one run alone is the baseline
