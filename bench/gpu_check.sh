#!/usr/bin/env bash
# The GPU check, in one script: the test suite's CUDA cases, then the GPU benchmark, then one summary line.
#
# What it expects:
# - a CUDA GPU, and a Python whose torch is a CUDA build, with safetensors and pytest (requirements.txt and
#   requirements-dev.txt; the browser test is not needed, and without gradio the class's API test, 30 students
#   through the page's /train, skips). It uses $PYTHON if set, else the first
#   of .venv/bin/python, python3, python whose torch sees a GPU (else the first that has torch, which then
#   says it sees none); nothing is installed or downloaded.
# - the corpus jaychou_lyrics.txt.zip in $CHARRNN_DATA_DIR, else in ../shared/data beside the repository, else
#   in the repository's data/ folder (copy it there to take it to a machine without the shared folder).
# Each part is time-boxed: CUDA tests 270 s, benchmark 150 s, class row 100 s (1, 8, 30 and 100 runs at once,
# grouped and separate, 2 epochs each), profile 50 s: 570 s in all, under 10 minutes on one GPU.
# Exit status: 0 when the CUDA tests pass and the benchmark and class row ran, 1 when a test failed (or timed out),
# 2 when this machine cannot run the check (no CUDA in torch, a package missing), 3 when only a benchmark failed.
#
#     bash bench/gpu_check.sh                      # everything
#     bash bench/gpu_check.sh 2>&1 | tee gpu.log   # and keep the log
#     bash bench/gpu_check.sh --dry-run            # without a GPU: the same steps (the CUDA tests all skip, the
#                                                  # benchmark's CPU columns for 1 + 1 epochs, the class row on the
#                                                  # CPU with 1 and 2 runs of 1 epoch), to check this script
set -uo pipefail
cd "$(dirname "$0")/.."
START=$(date +%s)
DRY=0
BENCH_ARGS=(--epochs 8 --warmup 2 --skip-class)  # medians of 8 epochs: steady on a GPU; 7 setups x 4 columns fit
CLASS_ARGS=(--only-class --class-runs 1,8,30,100 --class-epochs 2)
PROFILE_ARGS=()
if [ "${1:-}" = "--dry-run" ]; then
  DRY=1; BENCH_ARGS=(--epochs 1 --warmup 1 --app-epochs 1 --threads 1 --skip-class)
  CLASS_ARGS=(--only-class --device cpu --class-runs 1,2 --class-epochs 1 --threads 1)
  PROFILE_ARGS=(--setups scratch-random --top 3)
fi
export GRADIO_ANALYTICS_ENABLED=False PYTHONUNBUFFERED=1

PY="${PYTHON:-}"
if [ -z "$PY" ]; then  # the first whose torch sees a GPU, else the first with torch (it will say so below)
  for candidate in .venv/bin/python python3 python; do
    command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c "import torch" >/dev/null 2>&1 || continue
    [ -z "$PY" ] && PY="$candidate"
    if "$candidate" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" >/dev/null 2>&1; then
      PY="$candidate"
      break
    fi
  done
fi
if [ -z "$PY" ]; then
  echo "gpu_check: no Python with torch found (tried \$PYTHON, .venv/bin/python, python3, python)"
  exit 2
fi

if [ -z "${CHARRNN_DATA_DIR:-}" ]; then
  if [ -f ../shared/data/jaychou_lyrics.txt.zip ]; then
    CHARRNN_DATA_DIR="$(cd ../shared/data && pwd)"
  else
    CHARRNN_DATA_DIR="$(pwd)/data"
  fi
fi
export CHARRNN_DATA_DIR
[ -f "$CHARRNN_DATA_DIR/jaychou_lyrics.txt.zip" ] || \
  echo "gpu_check: warning: no jaychou_lyrics.txt.zip in $CHARRNN_DATA_DIR: the chapter runs will skip and the benchmark fails"

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "nvidia-smi: not found"
"$PY" - <<'EOF'
import sys
import torch
print(f"python {sys.version.split()[0]} ({sys.executable}), torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"cuDNN {torch.backends.cudnn.version() if torch.cuda.is_available() else None}")
print(f"GPU: {torch.cuda.get_device_name() if torch.cuda.is_available() else None}")
EOF
if [ "$DRY" -eq 0 ] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_check: this torch sees no CUDA GPU (a CPU build, or no GPU here): nothing to check. Run it on a GPU"
  echo "machine whose Python has a CUDA build of torch (pip install torch from PyPI on Linux is one)."
  exit 2
fi
if ! "$PY" -c "import safetensors, pytest" 2>/dev/null; then
  echo "gpu_check: safetensors or pytest is missing: pip install -r requirements.txt -r requirements-dev.txt"
  exit 2
fi

echo
echo "== tests: the CUDA cases (pytest -m cuda)"
timeout 270 "$PY" -m pytest -p no:cacheprovider -m cuda -rsfEP \
  tests/test_models.py tests/test_train.py tests/test_generate.py tests/test_checkpoint.py \
  tests/test_gpu.py tests/test_chapter_setups.py tests/test_next_sections.py tests/test_grouped_scheduler.py tests/test_class_api.py \
  2>&1 | tee /tmp/charrnn_gpu_tests.log
TESTS=${PIPESTATUS[0]}
TEST_LINE=$(grep -E "^(=+ )?[0-9]+ (passed|failed|skipped|error)|no tests ran" /tmp/charrnn_gpu_tests.log | tail -1 | tr -d '=')

echo
echo "== benchmark: bench/bench_gpu.py"
timeout 150 "$PY" bench/bench_gpu.py ${BENCH_ARGS[@]+"${BENCH_ARGS[@]}"}
BENCH=$?

echo
echo "== class row: bench/bench_gpu.py --only-class (a class's runs at once, grouped and separate)"
timeout 100 "$PY" bench/bench_gpu.py "${CLASS_ARGS[@]}"
CLASS=$?

echo
echo "== profile: bench/profile_gpu.py (where an epoch's time goes)"
timeout 50 "$PY" bench/profile_gpu.py ${PROFILE_ARGS[@]+"${PROFILE_ARGS[@]}"}
PROFILE=$?

ELAPSED=$(( $(date +%s) - START ))
echo
if [ "$TESTS" -eq 124 ]; then TEST_WORD="TIMED OUT after 270 s"; elif [ "$TESTS" -eq 0 ]; then TEST_WORD="PASS"; else TEST_WORD="FAIL"; fi
if [ "$BENCH" -eq 124 ]; then BENCH_WORD="TIMED OUT after 150 s"; elif [ "$BENCH" -eq 0 ]; then BENCH_WORD="ran"; else BENCH_WORD="FAILED (exit $BENCH)"; fi
if [ "$CLASS" -eq 124 ]; then CLASS_WORD="TIMED OUT after 100 s"; elif [ "$CLASS" -eq 0 ]; then CLASS_WORD="ran"; else CLASS_WORD="FAILED (exit $CLASS)"; fi
[ "$DRY" -eq 1 ] && BENCH_WORD="$BENCH_WORD (dry run: no GPU used)"
if [ "$DRY" -eq 0 ] && [[ "$TEST_LINE" == *skipped* ]]; then
  echo "gpu_check: warning: some CUDA cases were skipped on a GPU machine; the reasons are listed above (SKIPPED)"
fi
echo "gpu_check summary: CUDA tests $TEST_WORD (${TEST_LINE:-no summary line} ), benchmark $BENCH_WORD, class row $CLASS_WORD, profile exit $PROFILE, ${ELAPSED} s in all"
if [ "$TESTS" -ne 0 ]; then exit 1; fi
if [ "$BENCH" -ne 0 ] || [ "$CLASS" -ne 0 ]; then exit 3; fi
exit 0
