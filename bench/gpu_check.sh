#!/usr/bin/env bash
# bench/gpu_check.sh — the one-command GPU check for a machine with an NVIDIA GPU (H100/H200).
#
#   bench/gpu_check.sh                 configure a Release build for this card, build with every
#                                      core, run all of dynrnn_tests (GPU tests included; after a test
#                                      that hangs or crashes, the rest run on: watchdog.sh), run
#                                      compute-sanitizer memcheck/racecheck/initcheck/synccheck over
#                                      the fast GPU subset (GpuQuick.*), and write a markdown summary
#                                      to $OUT/gpu_check.md (or bench/results/gpu_check.md), logs beside it.
#   bench/gpu_check.sh --stage-deps    (on a machine that has GoogleTest installed) copy GoogleTest's
#                                      headers, static libraries and CMake package into build-deps/gtest,
#                                      for a GPU machine that has none: carry build-deps there.
#
# Needs only the repo, CMake, the CUDA toolkit (nvcc, cuBLAS, compute-sanitizer) and GoogleTest
# (installed, or staged in build-deps/gtest). Budget: GPU_CHECK_BUDGET_S seconds in all (default
# 420), so it ends well within 8 minutes; the sanitizers share what the build and tests leave.
# Always writes the summary: no `set -e`. Exit status: 0 when everything passed and the
# sanitizers found nothing, 1 otherwise.
set -u

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2

stage_deps() {
  local dst="$ROOT/build-deps/gtest" inc="" lib="" cmakedir=""
  for d in /usr/include /usr/local/include; do [ -d "$d/gtest" ] && { inc="$d"; break; }; done
  for f in /usr/lib/x86_64-linux-gnu/libgtest.a /usr/lib64/libgtest.a /usr/lib/libgtest.a /usr/local/lib/libgtest.a; do
    [ -f "$f" ] && { lib="$(dirname "$f")"; break; }
  done
  if [ -z "$inc" ] || [ -z "$lib" ]; then
    echo "gpu_check: no installed GoogleTest found to stage (headers: '${inc}', libgtest.a: '${lib}')" >&2
    return 1
  fi
  [ -d "$lib/cmake/GTest" ] && cmakedir="$lib/cmake/GTest"
  rm -rf "$dst"
  # Keep the layout relative to the prefix, so the CMake package files find everything from their own place.
  mkdir -p "$dst/include" "$dst/${lib#/usr/}" || return 1
  cp -r "$inc/gtest" "$dst/include/" || return 1
  [ -d "$inc/gmock" ] && cp -r "$inc/gmock" "$dst/include/"
  cp "$lib"/libgtest*.a "$dst/${lib#/usr/}/" || return 1
  cp "$lib"/libgmock*.a "$dst/${lib#/usr/}/" 2>/dev/null
  if [ -n "$cmakedir" ]; then
    mkdir -p "$dst/${lib#/usr/}/cmake" && cp -r "$cmakedir" "$dst/${lib#/usr/}/cmake/" || return 1
  fi
  echo "gpu_check: staged GoogleTest into ${dst#$ROOT/} ($(du -sh "$dst" | cut -f1)); carry 'build-deps' to the GPU machine"
}

if [ "${1:-}" = "--stage-deps" ]; then
  stage_deps
  exit $?
fi

BUDGET_S="${GPU_CHECK_BUDGET_S:-420}"
BUILD_DIR="$ROOT/build-gpu"
if [ -n "${OUT:-}" ]; then RESULTS="$OUT"; else RESULTS="$ROOT/bench/results"; fi
mkdir -p "$RESULTS"
SUMMARY="$RESULTS/gpu_check.md"
BUILD_LOG="$RESULTS/gpu_check_build.log"
TEST_LOG="$RESULTS/gpu_check_tests.log"
SAN_FILTER="${GPU_CHECK_SANITIZER_FILTER:-GpuQuick.*}"
SECONDS=0

left() { echo $((BUDGET_S - SECONDS)); }
log() { echo "[gpu_check ${SECONDS}s] $*"; }

# --- the card --------------------------------------------------------------------------------------
CARD="unknown"; DRIVER="unknown"; CC=""; CUDA_DRIVER_VERSION="unknown"
if command -v nvidia-smi >/dev/null 2>&1; then
  CARD="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n1)"
  DRIVER="$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n1)"
  CC="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n1 | tr -d ' .')"
  CUDA_DRIVER_VERSION="$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p' | head -n1)"
fi
if ! [[ "$CC" =~ ^[0-9]+$ ]]; then
  log "could not read the compute capability from nvidia-smi; building for 90"
  CC=90
fi
NVCC="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)"
NVCC_VERSION="$("$NVCC" --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\), V\([0-9.]*\).*/\2/p')"
SANITIZER="$(command -v compute-sanitizer || true)"
for cand in "$(dirname "$NVCC")/compute-sanitizer" /usr/local/cuda/bin/compute-sanitizer \
  /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
  [ -z "$SANITIZER" ] && [ -x "$cand" ] && SANITIZER="$cand"
done
COMMIT="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo 'unknown (no git metadata)')"
DIRTY=""
if git -C "$ROOT" rev-parse HEAD >/dev/null 2>&1 && [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  DIRTY=" (+ uncommitted changes)"
fi
DATE="$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
JOBS="$(nproc 2>/dev/null || echo 4)"
log "card: $CARD (sm_$CC), driver $DRIVER, nvcc $NVCC_VERSION, $JOBS cores"

# --- build ----------------------------------------------------------------------------------------
CMAKE_EXTRA=()
if [ -d "$ROOT/build-deps/gtest" ]; then
  CMAKE_EXTRA+=("-DCMAKE_PREFIX_PATH=$ROOT/build-deps/gtest")
  gtest_cfg="$(find "$ROOT/build-deps/gtest" -name GTestConfig.cmake 2>/dev/null | head -n1)"
  [ -n "$gtest_cfg" ] && CMAKE_EXTRA+=("-DGTest_DIR=$(dirname "$gtest_cfg")")
  log "using the GoogleTest staged in build-deps/gtest"
fi
if [ -f "$BUILD_DIR/CMakeCache.txt" ] &&
  ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$ROOT" "$BUILD_DIR/CMakeCache.txt"; then
  log "build-gpu was configured for another source tree; starting it afresh"
  rm -rf "$BUILD_DIR"
fi
BUILD_OK=0
BUILD_START=$SECONDS
{
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$CC" \
    -DDYNRNN_BUILD_TESTS=ON "${CMAKE_EXTRA[@]}" &&
    cmake --build "$BUILD_DIR" -j "$JOBS" --target dynrnn_tests
} >"$BUILD_LOG" 2>&1 && BUILD_OK=1
BUILD_S=$((SECONDS - BUILD_START))
TEST_BIN="$BUILD_DIR/tests/dynrnn_tests"
[ -x "$TEST_BIN" ] || BUILD_OK=0
log "build $([ $BUILD_OK = 1 ] && echo ok || echo FAILED) in ${BUILD_S}s"

# --- tests ----------------------------------------------------------------------------------------
# shellcheck source=bench/watchdog.sh
. "$ROOT/bench/watchdog.sh"
# gtest_count LOG KIND -> the N of "[  KIND  ] N test(s)" in the final summary (0 when absent).
gtest_count() {
  local n
  n="$(grep -E "^\[  $2 *\] [0-9]+ tests?[,.]" "$1" 2>/dev/null | tail -n1 | sed -E 's/^\[[^]]*\] ([0-9]+).*/\1/')"
  echo "${n:-0}"
}

# A test that never returns (a kernel that never finishes) costs TEST_STALL_S seconds, and one that
# crashes the binary a restart, not the rest of the run: the watchdog runs the remaining tests
# (bench/watchdog.sh).
TEST_STALL_S="${GPU_CHECK_TEST_STALL_S:-90}"
TEST_RC="not run"; PASSED=0; FAILED=0; SKIPPED=0; HUNG=0; HUNG_TESTS=""; CRASHED=0; CRASHED_TESTS=""; TOTAL="?"
TEST_S=0
if [ $BUILD_OK = 1 ]; then
  T0=$SECONDS
  limit=$(( $(left) - 60 )); [ $limit -lt 60 ] && limit=60
  run_gtest_watched "$TEST_BIN" "$TEST_LOG" "$limit" "$TEST_STALL_S"
  TEST_RC=$WATCH_RC
  TEST_S=$((SECONDS - T0))
  PASSED=$WATCH_PASSED; FAILED=$WATCH_FAILED; SKIPPED=$WATCH_SKIPPED; HUNG=$WATCH_HUNG; HUNG_TESTS=$WATCH_HUNG_TESTS
  CRASHED=$WATCH_CRASHED; CRASHED_TESTS=$WATCH_CRASHED_TESTS
  TOTAL=$((PASSED + FAILED + SKIPPED + HUNG + CRASHED))
  [ "$TEST_RC" = 124 ] && TEST_RC="124 (timed out after ${limit}s)"
  log "tests: rc $TEST_RC, $PASSED passed, $FAILED failed, $SKIPPED skipped, $HUNG hung, $CRASHED crashed ($WATCH_RUNS runs) of $TOTAL in ${TEST_S}s"
fi

# --- sanitizers -----------------------------------------------------------------------------------
TOOLS=(memcheck racecheck initcheck synccheck)
declare -A SAN_RC SAN_ERR SAN_RESULT SAN_S
for tool in "${TOOLS[@]}"; do
  SAN_RC[$tool]="not run"; SAN_ERR[$tool]="-"; SAN_RESULT[$tool]="-"; SAN_S[$tool]=0
done
if [ $BUILD_OK = 1 ] && [ -n "$SANITIZER" ]; then
  n_left=${#TOOLS[@]}
  for tool in "${TOOLS[@]}"; do
    share=$(( ($(left) - 15) / n_left )); n_left=$((n_left - 1))
    [ $share -gt 150 ] && share=150
    if [ $share -lt 20 ]; then
      SAN_RC[$tool]="skipped (budget spent)"
      continue
    fi
    slog="$RESULTS/gpu_check_${tool}.log"
    T0=$SECONDS
    timeout --kill-after=10 "$share" "$SANITIZER" --tool "$tool" --print-limit 20 \
      "$TEST_BIN" --gtest_color=no --gtest_filter="$SAN_FILTER" >"$slog" 2>&1
    rc=$?
    SAN_S[$tool]=$((SECONDS - T0))
    SAN_RC[$tool]=$rc
    [ $rc = 124 ] || [ $rc = 137 ] && SAN_RC[$tool]="$rc (timed out after ${share}s)"
    errs="$(grep -E 'ERROR SUMMARY: [0-9]+' "$slog" | tail -n1 | sed -E 's/.*ERROR SUMMARY: ([0-9]+).*/\1/')"
    hazards="$(grep -E 'RACECHECK SUMMARY' "$slog" | tail -n1 | sed -E 's/.*RACECHECK SUMMARY: //')"
    SAN_ERR[$tool]="${errs:-?}${hazards:+ ($hazards)}"
    p="$(gtest_count "$slog" PASSED)"; f="$(gtest_count "$slog" FAILED)"; s="$(gtest_count "$slog" SKIPPED)"
    SAN_RESULT[$tool]="$p passed, $f failed, $s skipped"
    log "$tool: rc ${SAN_RC[$tool]}, errors ${SAN_ERR[$tool]}, tests ${SAN_RESULT[$tool]} in ${SAN_S[$tool]}s"
  done
elif [ -z "$SANITIZER" ]; then
  for tool in "${TOOLS[@]}"; do SAN_RC[$tool]="compute-sanitizer not found"; done
fi

# --- verdict and summary --------------------------------------------------------------------------
OK=1
[ $BUILD_OK = 1 ] || OK=0
[ "$TEST_RC" = 0 ] || OK=0
[ "$FAILED" = 0 ] || OK=0
[ "$HUNG" = 0 ] || OK=0
[ "$CRASHED" = 0 ] || OK=0
for tool in "${TOOLS[@]}"; do
  case "${SAN_RC[$tool]}" in 0) ;; *) OK=0 ;; esac
  case "${SAN_ERR[$tool]}" in 0|"0 "*) ;; *) OK=0 ;; esac
done

{
  echo "# dynrnn GPU check: $([ $OK = 1 ] && echo PASS || echo FAIL)"
  echo
  echo "| item | value |"
  echo "| --- | --- |"
  echo "| card | $CARD (compute capability ${CC:0:${#CC}-1}.${CC: -1}, built for sm_$CC) |"
  echo "| driver | $DRIVER (CUDA $CUDA_DRIVER_VERSION) |"
  echo "| CUDA toolkit | nvcc $NVCC_VERSION |"
  echo "| commit | \`$COMMIT\`$DIRTY |"
  echo "| date | $DATE |"
  echo "| build | $([ $BUILD_OK = 1 ] && echo ok || echo FAILED), ${BUILD_S}s, Release, $JOBS jobs |"
  echo "| total time | ${SECONDS}s (budget ${BUDGET_S}s) |"
  echo
  echo "## dynrnn_tests (all)"
  echo
  echo "| rc | total | passed | failed | skipped | hung | crashed | seconds |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
  echo "| $TEST_RC | $TOTAL | $PASSED | $FAILED | $SKIPPED | $HUNG | $CRASHED | $TEST_S |"
  [ -n "$HUNG_TESTS" ] && { echo; echo "Hung (killed after ${TEST_STALL_S}s without output): \`$HUNG_TESTS\`"; }
  [ -n "$CRASHED_TESTS" ] && { echo; echo "Ended the test binary (the rest ran in a new one): \`$CRASHED_TESTS\`"; }
  if [ -f "$TEST_LOG" ]; then
    echo
    echo "GPU suites: $(grep -cE '^\[       OK \] Gpu' "$TEST_LOG") passed, $(grep -cE '^\[  FAILED  \] Gpu[^ ]* \(' "$TEST_LOG") failed, $(grep -cE '^\[  SKIPPED \] Gpu[^ ]* \(' "$TEST_LOG") skipped."
  fi
  echo
  echo "## compute-sanitizer (\`--gtest_filter=$SAN_FILTER\`)"
  echo
  echo "| tool | rc | errors | tests | seconds |"
  echo "| --- | --- | --- | --- | --- |"
  for tool in "${TOOLS[@]}"; do
    echo "| $tool | ${SAN_RC[$tool]} | ${SAN_ERR[$tool]} | ${SAN_RESULT[$tool]} | ${SAN_S[$tool]} |"
  done
  if [ $BUILD_OK != 1 ]; then
    echo
    echo "## Build failure (tail of $(basename "$BUILD_LOG"))"
    echo
    echo '```'
    grep -E 'error|Error' "$BUILD_LOG" | head -n 20
    echo '...'
    tail -n 40 "$BUILD_LOG"
    echo '```'
  fi
  if [ -f "$TEST_LOG" ] && { [ "$TEST_RC" != 0 ] || [ "$FAILED" != 0 ] || [ "$HUNG" != 0 ] || [ "$CRASHED" != 0 ]; }; then
    echo
    echo "## Test failures (from $(basename "$TEST_LOG"))"
    echo
    echo '```'
    grep -E '^\[watchdog\]' "$TEST_LOG"
    grep -E '^\[  FAILED  \] [^ ]+ \(' "$TEST_LOG" | head -n 40
    echo '--- first failure messages ---'
    grep -E -A6 ': Failure$' "$TEST_LOG" | head -n 80
    echo '--- tail ---'
    tail -n 30 "$TEST_LOG"
    echo '```'
  fi
  for tool in "${TOOLS[@]}"; do
    slog="$RESULTS/gpu_check_${tool}.log"
    [ -f "$slog" ] || continue
    case "${SAN_RC[$tool]}|${SAN_ERR[$tool]}" in "0|0"|"0|0 "*) continue ;; esac
    echo
    echo "## $tool findings (from $(basename "$slog"))"
    echo
    echo '```'
    grep -E -m 40 -A4 '^========= (Invalid|Uninitialized|Race|Error|Barrier|Program hit|Warning|Potential)' "$slog" | head -n 80
    echo '--- tail ---'
    tail -n 15 "$slog"
    echo '```'
  done
} >"$SUMMARY"

log "summary: $SUMMARY ($([ $OK = 1 ] && echo PASS || echo FAIL))"
cat "$SUMMARY"
[ $OK = 1 ] && exit 0 || exit 1
