#!/usr/bin/env bash
# Builds the libFuzzer target (clang, ASan + UBSan) and fuzzes the public API for N seconds.
#   tests/fuzz/run_fuzz.sh [SECONDS=60] [extra libFuzzer flags...]
# Environment: DYNRNN_FUZZ_BUILD (build dir, default build/fuzz), CXX_FUZZ (default clang++),
# DYNRNN_FUZZ_JOBS (parallel fuzzing workers, default 1).
# Exits non-zero when the fuzzer finds a crash, a leak, a timeout or an oracle failure; the input
# is left in $DYNRNN_FUZZ_BUILD/artifacts/ (reproduce: build/fuzz/fuzz_api FILE).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-60}
[ $# -gt 0 ] && shift
build=${DYNRNN_FUZZ_BUILD:-$root/build/fuzz}
cxx=${CXX_FUZZ:-clang++}
jobs=${DYNRNN_FUZZ_JOBS:-1}

if ! command -v "$cxx" >/dev/null; then
  echo "run_fuzz.sh: $cxx not found (Debian/Ubuntu: apt-get install clang libclang-rt-dev)" >&2
  exit 2
fi
cmake -S "$root/tests/fuzz" -B "$build" -DCMAKE_CXX_COMPILER="$cxx" >/dev/null
cmake --build "$build" -j "$(nproc)"

corpus=$build/corpus
mkdir -p "$corpus" "$build/artifacts"
bash "$root/tests/fuzz/seed_corpus.sh" "$corpus"
# Inputs that once failed stay in the corpus: a regression fails at once.
if compgen -G "$root/tests/fuzz/crashes/*" >/dev/null; then cp "$root"/tests/fuzz/crashes/* "$corpus"/; fi

args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=512 -print_final_stats=1
      -artifact_prefix="$build/artifacts/")
if [ "$jobs" -gt 1 ]; then args+=(-fork="$jobs"); fi
echo "run_fuzz.sh: fuzzing for ${seconds}s (corpus $corpus)"
"$build/fuzz_api" "${args[@]}" "$@" "$corpus"
