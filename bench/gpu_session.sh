#!/usr/bin/env bash
# bench/gpu_session.sh — everything a lent GPU machine should run, in one command that fits one
# device call (< 10 minutes on an H100): the GPU check (build for this card, every test, the four
# compute-sanitizer tools; bench/gpu_check.sh), then dynrnn-bench on the core shape set with the
# calibration, then a short bf16/fp16 pass (two core shapes), then the PyTorch comparison and the
# plots. Results go to $OUT (or bench/results/run), at most eight files: gpu_check.md, bench.txt
# (the 16-bit table appended), bench.csv, bench.json, pytorch.csv, the two plots and logs.tgz (which
# holds bench_16bit.csv/.json). Budget: GPU_SESSION_BUDGET_S seconds (default 540).
#
# Prepare here first (GoogleTest is not on the GPU image):  bench/gpu_check.sh --stage-deps
# Then run with the device tool, carrying build-deps:        bash bench/gpu_session.sh
#
# A second call for the shapes the first did not reach: GPU_SESSION_BENCH_ONLY=1 skips the check
# (building only the benchmark), and GPU_SESSION_SHAPES=ID,ID,... replaces the core order below.
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2
BUDGET_S="${GPU_SESSION_BUDGET_S:-540}"
R="${OUT:-$ROOT/bench/results/run}"
WORK="$(mktemp -d)"
mkdir -p "$R"
SECONDS=0
left() { echo $((BUDGET_S - SECONDS)); }
# shellcheck source=bench/watchdog.sh
. "$ROOT/bench/watchdog.sh"

# 1. Build, tests and sanitizers (leaves build-gpu configured for this card).
mkdir -p "$WORK/check"
if [ "${GPU_SESSION_BENCH_ONLY:-0}" = 1 ]; then
  CHECK_RC="skipped (GPU_SESSION_BENCH_ONLY)"
  if [ ! -f build-gpu/CMakeCache.txt ]; then
    CC="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n1 | tr -d ' .')"
    [[ "$CC" =~ ^[0-9]+$ ]] || CC=90
    cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$CC" -DDYNRNN_BUILD_TESTS=OFF \
      >"$WORK/check/configure.log" 2>&1
  fi
else
  GPU_CHECK_BUDGET_S=$(( BUDGET_S * 55 / 100 )) OUT="$WORK/check" bash bench/gpu_check.sh
  CHECK_RC=$?
  cp "$WORK/check/gpu_check.md" "$R/" 2>/dev/null
fi

# 2. The benchmark: core set, every implementation verified once before it is timed.
cmake --build build-gpu -j "$(nproc)" --target dynrnn-bench >"$WORK/check/bench_build.log" 2>&1
BENCH_RC="not run"
HALF_RC="not run"
HALF_RESERVE_S=60
if [ -x build-gpu/bench/dynrnn-bench ]; then
  # The core set first; HALF_RESERVE_S of its slice is kept for the 16-bit pass below. Its shapes in
  # the order the open questions need them, should the time run out: the latency-bound ones where
  # the persistent kernels and cuDNN's persistent algorithms compete, the ragged ones, the stacks,
  # DeepBench's batch sweep, the GRUs, the large ones, and M1 (swap) last.
  CORE_ORDER="${GPU_SESSION_SHAPES:-A1,D7,S1,S2,H1-B1,H1-B32,H1-B128,V2,V1,A2,A3,D1,D2,D3,D4,G2,G1,D5,D6,M1}"
  # A shape that hangs (no row or progress line for 60 s; a row of the core set's shapes before M1
  # takes seconds) or crashes costs that, not the shapes after it: bench/watchdog.sh starts the
  # benchmark again on them.
  limit=$(( $(left) - 90 - HALF_RESERVE_S )); [ $limit -lt 60 ] && limit=60
  run_bench_watched build-gpu/bench/dynrnn-bench "$WORK/check/bench" "$limit" 60 "$CORE_ORDER" \
    --calibrate --set core --mode inference,training
  cp "$WORK/check/bench.txt" "$R/bench.txt"
  cp "$WORK/check/bench.csv" "$R/bench.csv" 2>/dev/null
  cp "$WORK/check/bench.json" "$R/bench.json" 2>/dev/null
  [ -n "$BENCH_HUNG_SHAPES$BENCH_CRASHED_SHAPES" ] &&
    echo "gpu_session: benchmark shapes hung: ${BENCH_HUNG_SHAPES:-none}; crashed: ${BENCH_CRASHED_SHAPES:-none}"

  # 2b. bf16 and fp16 on two short core shapes (A1: I = H; H1-B32: I != H), every implementation,
  # verified against float64 of the same 16-bit-rounded data; a few seconds per shape and mode, so
  # the cap is generous. Skipped when the core run left too little time.
  limit=$(( $(left) - 90 )); [ $limit -gt $HALF_RESERVE_S ] && limit=$HALF_RESERVE_S
  if [ $limit -ge 30 ]; then
    { echo; echo "# 16-bit pass: --precision bf16,fp16 --shapes A1,H1-B32 (ceilings: defaults, not calibrated)"; } \
      >>"$R/bench.txt"
    timeout --kill-after=10 "$limit" build-gpu/bench/dynrnn-bench --set core --shapes A1,H1-B32 \
      --precision bf16,fp16 --mode inference,training --warmup 3 --iters 10 \
      --csv "$WORK/check/bench_16bit.csv" --json "$WORK/check/bench_16bit.json" \
      >>"$R/bench.txt" 2>"$WORK/check/bench_16bit_stderr.log"
    HALF_RC=$?
  fi
fi

# 3. PyTorch on the same shapes, and the plots (both optional).
if [ "$(left)" -gt 60 ]; then
  timeout --kill-after=5 $(( $(left) - 40 )) python3 bench/pytorch_compare.py --csv "$R/pytorch.csv" \
    >"$WORK/check/pytorch.log" 2>&1
fi
if [ -f "$R/bench.csv" ]; then
  csvs=("$R/bench.csv"); [ -f "$R/pytorch.csv" ] && csvs+=("$R/pytorch.csv")
  timeout 60 python3 bench/plot.py "${csvs[@]}" --out-dir "$WORK/check/plots" >"$WORK/check/plot.log" 2>&1
  # The training-step charts come back as files; all charts are in logs.tgz.
  cp "$WORK"/check/plots/speedup_*_fp32_training.png "$WORK"/check/plots/roofline_*_fp32_training.png "$R/" 2>/dev/null
fi

tar -C "$WORK/check" -czf "$R/logs.tgz" . 2>/dev/null
echo "gpu_session: check rc $CHECK_RC, bench rc $BENCH_RC, 16-bit bench rc $HALF_RC, ${SECONDS}s; files in $R:"
ls -la "$R"
tail -n 40 "$R/bench.txt" 2>/dev/null
{ [ "$CHECK_RC" = 0 ] || [ "${GPU_SESSION_BENCH_ONLY:-0}" = 1 ]; } && [ "$BENCH_RC" = 0 ] &&
  { [ "$HALF_RC" = 0 ] || [ "$HALF_RC" = "not run" ]; }
