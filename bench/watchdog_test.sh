#!/usr/bin/env bash
# Tests bench/watchdog.sh. run_gtest_watched: against a stand-in GoogleTest binary (its output format and
# --gtest_filter's patterns) in which a test and a parameterized test never return and another test
# crashes the binary: the watchdog must kill each hung one after the stall and report it as hung,
# leave out the hung parameterized test's other parameters, report the crash, run the remaining tests
# and count every result; and a limit below the stall must cut the run short with status 124.
# run_bench_watched: against a stand-in dynrnn-bench (progress lines on stderr, a table on stdout,
# --shapes, --csv, --json, --calibrate) in which one shape hangs and one crashes: the shapes after
# each run in a new process without --calibrate, and the runs' rows merge into one CSV and one JSON;
# and after a calibration that hangs, every shape runs without it.
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/watchdog.sh
. "$here/watchdog.sh"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/fake_gtest" <<'FAKE'
#!/usr/bin/env bash
set -f  # patterns, not file names
filter="*"
for a in "$@"; do case "$a" in --gtest_filter=*) filter="${a#--gtest_filter=}" ;; esac; done
pos="${filter%%-*}" neg=""
case "$filter" in *-*) neg="${filter#*-}" ;; esac
selected() {  # $1 matches a pattern of the colon-separated list $2
  local IFS=: p
  for p in $2; do
    # shellcheck disable=SC2254
    case "$1" in $p) return 0 ;; esac
  done
  return 1
}
for t in S.First S.Fail S.Hang S.Crash P/S.Param/0 P/S.Wait/0 P/S.Wait/1 S.Skip; do
  selected "$t" "$pos" || continue
  selected "$t" "$neg" && continue
  echo "[ RUN      ] $t"
  case "$t" in
    S.Hang | P/S.Wait/*) exec sleep 1000 ;;
    S.Crash) kill -SEGV $$ ;;
    S.Fail) echo "x.cpp:1: Failure"; echo "[  FAILED  ] $t (3 ms)" ;;
    P/S.Param/0) echo "x.cpp:2: Failure"; echo "[  FAILED  ] $t, where GetParam() = 4 (2 ms)" ;;
    S.Skip) echo "[  SKIPPED ] $t (0 ms)" ;;
    *) echo "[       OK ] $t (1 ms)" ;;
  esac
done
echo "[==========] done"
FAKE
chmod +x "$tmp/fake_gtest"
fail=0
expect() {  # expect WHAT GOT WANT
  if [ "$2" != "$3" ]; then
    echo "FAIL: $1 is '$2', expected '$3'"
    fail=1
  fi
}

start=$SECONDS
run_gtest_watched "$tmp/fake_gtest" "$tmp/log" 60 3
expect "passed" "$WATCH_PASSED" 1
expect "failed" "$WATCH_FAILED" 2
expect "skipped" "$WATCH_SKIPPED" 1
expect "hung" "$WATCH_HUNG" 2
expect "hung tests" "$WATCH_HUNG_TESTS" "S.Hang P/S.Wait/0"
expect "crashed" "$WATCH_CRASHED" 1
expect "crashed tests" "$WATCH_CRASHED_TESTS" "S.Crash"
expect "runs" "$WATCH_RUNS" 4
expect "a hung test's other parameters left out" "$(grep -c '^\[ RUN      \] P/S.Wait/1' "$tmp/log")" 0
expect "status" "$WATCH_RC" 1
expect "the tests after the hung one ran once" "$(grep -c '^\[ RUN      \] S.Skip' "$tmp/log")" 1
[ $((SECONDS - start)) -le 20 ] || { echo "FAIL: took $((SECONDS - start))s"; fail=1; }

run_gtest_watched "$tmp/fake_gtest" "$tmp/log2" 2 30
expect "status when the limit cuts the run" "$WATCH_RC" 124
expect "passed before the limit" "$WATCH_PASSED" 1

run_gtest_watched "$tmp/fake_gtest" "$tmp/log3" 60 3 "S.First:S.Skip"
expect "status without a hang or failure" "$WATCH_RC" 0
expect "runs without a hang" "$WATCH_RUNS" 1

cat >"$tmp/fake_bench" <<'FAKE'
#!/usr/bin/env bash
shapes="" csv="" json="" calibrate=0
while [ $# -gt 0 ]; do
  case "$1" in
    --shapes) shapes="$2"; shift ;;
    --csv) csv="$2"; shift ;;
    --json) json="$2"; shift ;;
    --calibrate) calibrate=1 ;;
  esac
  shift
done
if [ $calibrate = 1 ]; then
  echo "# calibration"
  [ -n "${HANG_IN_CALIBRATION:-}" ] && exec sleep 1000
fi
echo "shape,impl,median_ms" >"$csv"
IFS=, read -ra list <<<"$shapes"
rows=""
for s in "${list[@]}"; do
  echo "[1/2] $s fp32 inference dynrnn" >&2
  case "$s" in
    H2) exec sleep 1000 ;;
    C3) kill -SEGV $$ ;;
  esac
  echo "$s dynrnn 1.0"
  echo "$s,dynrnn,1.0" >>"$csv"
  rows="$rows${rows:+,}{\"shape\": \"$s\"}"
done
echo "{\"meta\": {\"calibrated\": $calibrate}, \"rows\": [$rows]}" >"$json"
FAKE
chmod +x "$tmp/fake_bench"
start=$SECONDS
run_bench_watched "$tmp/fake_bench" "$tmp/bench" 60 3 "A1,H2,B1,C3,H2X,D4" --calibrate --mode all
expect "bench runs" "$BENCH_RUNS" 3
expect "bench hung shapes" "$BENCH_HUNG_SHAPES" "H2"
expect "bench crashed shapes" "$BENCH_CRASHED_SHAPES" "C3"
expect "bench status" "$BENCH_RC" 1
expect "merged CSV" "$(tr '\n' ' ' <"$tmp/bench.csv")" "shape,impl,median_ms A1,dynrnn,1.0 B1,dynrnn,1.0 H2X,dynrnn,1.0 D4,dynrnn,1.0 "
expect "calibrated runs" "$(grep -c '^# calibration' "$tmp/bench.txt")" 1
if command -v python3 >/dev/null; then
  expect "merged JSON rows" "$(python3 -c 'import json,sys; print(" ".join(r["shape"] for r in json.load(open(sys.argv[1]))["rows"]))' "$tmp/bench.json")" "H2X D4"
fi
[ $((SECONDS - start)) -le 15 ] || { echo "FAIL: the bench watchdog took $((SECONDS - start))s"; fail=1; }
run_bench_watched "$tmp/fake_bench" "$tmp/bench2" 60 3 "A1,B1" --calibrate
expect "bench status without a hang" "$BENCH_RC" 0
expect "bench runs without a hang" "$BENCH_RUNS" 1
HANG_IN_CALIBRATION=1 run_bench_watched "$tmp/fake_bench" "$tmp/bench3" 60 3 "A1,B1" --calibrate
expect "bench runs after a hung calibration" "$BENCH_RUNS" 2
expect "rows after a hung calibration" "$(tail -n +2 "$tmp/bench3.csv" | tr '\n' ' ')" "A1,dynrnn,1.0 B1,dynrnn,1.0 "

[ $fail = 0 ] && echo "watchdog: all checks passed"
exit $fail
