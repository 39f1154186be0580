# bench/watchdog.sh — sourced by gpu_check.sh and gpu_session.sh: runs the test binary and the
# benchmark so that one test or shape that never finishes (a kernel that never returns, a deadlock)
# costs a stall's seconds of a lent GPU machine's time, not the rest of the run.
#
# run_gtest_watched BIN LOG LIMIT_S STALL_S [FILTER]
#   Runs BIN --gtest_filter=FILTER (default '*'), its output appended to LOG. Whenever its output
#   stops growing for STALL_S seconds, kills it, records the test it was in as hung, and starts BIN
#   again on the tests that have not run yet — leaving out the hung test's other parameters too
#   (Prefix/Suite.Test/* for a parameterized test: they would most likely hang the same way, and each
#   would cost STALL_S). When BIN dies inside a test (a crash, an abort), records that test as crashed
#   and likewise starts again. At LIMIT_S seconds it kills BIN and stops. Sets WATCH_PASSED,
#   WATCH_FAILED, WATCH_SKIPPED, WATCH_HUNG, WATCH_CRASHED (test counts over every run),
#   WATCH_HUNG_TESTS, WATCH_CRASHED_TESTS (their names), WATCH_RUNS and WATCH_RC: 0 when every test
#   ran to its end and none failed, hung or crashed, 124 when the limit cut the run short, else the
#   last run's status or 1.
#
# run_bench_watched BIN OUT LIMIT_S STALL_S SHAPES [ARGS...]
#   Runs BIN --shapes SHAPES ARGS --csv OUT.runK.csv --json OUT.runK.json, its table appended to
#   OUT.txt and its progress lines to OUT.progress. Whenever neither grows for STALL_S seconds, or BIN
#   dies, kills it, records the shape of its last progress line ("[i/n] SHAPE ...") as hung (or
#   crashed), and starts BIN again on the shapes after it, without --calibrate (after a calibration
#   that hangs or crashes, on all of them). At LIMIT_S seconds it
#   kills BIN and stops. Merges the runs' rows into OUT.csv, and with python3 the JSON of the runs
#   that finished (a killed run writes none) into OUT.json. Sets
#   BENCH_RUNS, BENCH_HUNG_SHAPES, BENCH_CRASHED_SHAPES and BENCH_RC: 0, 124 when the limit cut the run
#   short, 1 after a hang or crash, else the last run's status.

# watch_pid PID DEADLINE STALL_S FILE... — waits for PID, killing it (-9) when the FILEs' total size
# has not grown for STALL_S seconds or at SECONDS = DEADLINE. Sets WATCHED_KILLED ("", stall or
# limit) and WATCHED_RC (PID's exit status).
watch_pid() {
  local pid="$1" deadline="$2" stall="$3" size last=-1 still=0
  shift 3
  WATCHED_KILLED=""
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    size=$(cat "$@" 2>/dev/null | wc -c)
    if [ "$size" = "$last" ]; then still=$((still + 1)); else still=0 last=$size; fi
    if [ "$SECONDS" -ge "$deadline" ]; then WATCHED_KILLED=limit; elif [ "$still" -ge "$stall" ]; then WATCHED_KILLED=stall; fi
    if [ -n "$WATCHED_KILLED" ]; then
      kill -9 "$pid" 2>/dev/null
      break
    fi
  done
  wait "$pid" 2>/dev/null
  WATCHED_RC=$?
}

# The names of the tests a GoogleTest log reports as finished (OK, FAILED or SKIPPED), one a line.
gtest_finished() {
  sed -nE 's/^\[ *(OK|FAILED|SKIPPED) *\] ([^ ,]+)(, where .*)? \([0-9]+ ms\)$/\2/p' "$1"
}

run_gtest_watched() {
  local bin="$1" log="$2" limit="$3" stall="$4" filter="${5:-*}"
  local deadline=$((SECONDS + limit)) exclude="" seg killed rc=0 culprit
  WATCH_PASSED=0 WATCH_FAILED=0 WATCH_SKIPPED=0 WATCH_HUNG=0 WATCH_HUNG_TESTS="" WATCH_CRASHED=0 WATCH_CRASHED_TESTS=""
  WATCH_RUNS=0 WATCH_RC=0
  : >"$log"
  while :; do
    WATCH_RUNS=$((WATCH_RUNS + 1))
    seg="$log.run$WATCH_RUNS"
    local f="$filter"
    if [ -n "$exclude" ]; then
      case "$filter" in *-*) f="$filter:$exclude" ;; *) f="$filter-$exclude" ;; esac
    fi
    "$bin" --gtest_color=no "--gtest_filter=$f" >"$seg" 2>&1 &
    watch_pid $! "$deadline" "$stall" "$seg"
    killed=$WATCHED_KILLED rc=$WATCHED_RC
    cat "$seg" >>"$log"
    WATCH_PASSED=$((WATCH_PASSED + $(grep -cE '^\[       OK \] ' "$seg")))
    WATCH_FAILED=$((WATCH_FAILED + $(grep -cE '^\[  FAILED  \] [^ ]+.* \([0-9]+ ms\)$' "$seg")))
    WATCH_SKIPPED=$((WATCH_SKIPPED + $(grep -cE '^\[  SKIPPED \] [^ ]+.* \([0-9]+ ms\)$' "$seg")))
    if [ "$killed" = limit ]; then
      echo "[watchdog] the limit of ${limit}s cut the run short" >>"$log"
      WATCH_RC=124
      break
    fi
    # The test that was running when the output stopped or the binary ended: a RUN line without a
    # result line after it.
    culprit="$(sed -nE 's/^\[ RUN      \] ([^ ,]+).*/\1/p' "$seg" | tail -n1)"
    if [ -n "$culprit" ] && gtest_finished "$seg" | grep -qxF "$culprit"; then culprit=""; fi
    local skip="$culprit"
    if [ "$killed" = stall ]; then
      if [ -z "$culprit" ]; then
        echo "[watchdog] no output for ${stall}s outside any test; stopping" >>"$log"
        WATCH_RC=1
        break
      fi
      echo "[watchdog] $culprit hung (no output for ${stall}s): killed; the tests not yet run start again" >>"$log"
      WATCH_HUNG=$((WATCH_HUNG + 1))
      WATCH_HUNG_TESTS="${WATCH_HUNG_TESTS:+$WATCH_HUNG_TESTS }$culprit"
      # A parameterized test (a '/' after the suite's '.'): all its parameters.
      case "${culprit#*.}" in */*) skip="${culprit%/*}/*" ;; esac
      [ "$skip" != "$culprit" ] && echo "[watchdog] leaving out $skip, the hung test's other parameters" >>"$log"
    elif [ "$rc" != 0 ] && [ -n "$culprit" ]; then
      # The binary died inside a test (a crash, an abort): that costs one restart, not the rest.
      echo "[watchdog] $culprit ended the test binary (status $rc); the tests not yet run start again" >>"$log"
      WATCH_CRASHED=$((WATCH_CRASHED + 1))
      WATCH_CRASHED_TESTS="${WATCH_CRASHED_TESTS:+$WATCH_CRASHED_TESTS }$culprit"
    else
      WATCH_RC=$rc
      break
    fi
    local done_now
    done_now="$( (gtest_finished "$seg"; echo "$skip") | paste -sd: -)"
    exclude="${exclude:+$exclude:}$done_now"
  done
  if [ "$WATCH_RC" = 0 ] && { [ "$WATCH_HUNG" != 0 ] || [ "$WATCH_CRASHED" != 0 ] || [ "$WATCH_FAILED" != 0 ]; }; then
    WATCH_RC=1
  fi
  rm -f "$log".run*
  return 0
}

run_bench_watched() {
  local bin="$1" out="$2" limit="$3" stall="$4" shapes="$5"
  shift 5
  local deadline=$((SECONDS + limit)) run shape args=("$@") a
  BENCH_RUNS=0 BENCH_HUNG_SHAPES="" BENCH_CRASHED_SHAPES="" BENCH_RC=0
  : >"$out.txt"
  : >"$out.progress"
  while [ -n "$shapes" ]; do
    BENCH_RUNS=$((BENCH_RUNS + 1))
    run="$out.run$BENCH_RUNS"
    "$bin" --shapes "$shapes" "${args[@]}" --csv "$run.csv" --json "$run.json" >>"$out.txt" 2>"$run.progress" &
    watch_pid $! "$deadline" "$stall" "$out.txt" "$run.progress"
    cat "$run.progress" >>"$out.progress"
    if [ "$WATCHED_KILLED" = limit ]; then
      echo "# [watchdog] the limit of ${limit}s cut the run short" >>"$out.txt"
      BENCH_RC=124
      break
    fi
    if [ -z "$WATCHED_KILLED" ] && [ "$WATCHED_RC" -lt 128 ]; then  # the run ended by itself
      [ "$BENCH_RC" = 0 ] && BENCH_RC=$WATCHED_RC
      break
    fi
    shape="$(sed -nE 's/^\[[0-9]+\/[0-9]+\] ([^ ]+) .*/\1/p' "$run.progress" | tail -n1)"
    local calibrating=""
    for a in "${args[@]}"; do [ "$a" = --calibrate ] && calibrating=1; done
    BENCH_RC=1
    if [ -z "$shape" ] && [ -n "$calibrating" ]; then
      # Stuck in the calibration: the shapes run without it.
      echo "# [watchdog] the calibration stopped (${WATCHED_KILLED:-status $WATCHED_RC}); the shapes start again without it" >>"$out.txt"
    elif [ -z "$shape" ]; then
      echo "# [watchdog] the benchmark stopped (${WATCHED_KILLED:-status $WATCHED_RC}) before its first shape" >>"$out.txt"
      break
    elif [ "$WATCHED_KILLED" = stall ]; then
      echo "# [watchdog] shape $shape hung (no output for ${stall}s): killed; the shapes after it start again" >>"$out.txt"
      BENCH_HUNG_SHAPES="${BENCH_HUNG_SHAPES:+$BENCH_HUNG_SHAPES }$shape"
    else
      echo "# [watchdog] shape $shape ended the benchmark (status $WATCHED_RC); the shapes after it start again" >>"$out.txt"
      BENCH_CRASHED_SHAPES="${BENCH_CRASHED_SHAPES:+$BENCH_CRASHED_SHAPES }$shape"
    fi
    if [ -n "$shape" ]; then  # the shapes after it
      local list=() next=() found=""
      IFS=, read -ra list <<<"$shapes"
      for a in "${list[@]}"; do
        [ -n "$found" ] && next+=("$a")
        [ "$a" = "$shape" ] && found=1
      done
      shapes="$(IFS=,; echo "${next[*]}")"
    fi
    # Calibration ran in the first run; the ceilings of later runs are the defaults.
    local kept=()
    for a in "${args[@]}"; do [ "$a" = --calibrate ] || kept+=("$a"); done
    args=("${kept[@]}")
  done
  # One CSV: the first run's header, every run's rows.
  local csvs=("$out".run*.csv)
  if [ -f "${csvs[0]}" ]; then
    head -n1 "${csvs[0]}" >"$out.csv"
    for a in "${csvs[@]}"; do tail -n +2 "$a" >>"$out.csv"; done
  fi
  if command -v python3 >/dev/null 2>&1 && compgen -G "$out.run*.json" >/dev/null; then
    python3 - "$out.json" "$out".run*.json <<'PY' || true
import json, sys
runs = [json.load(open(p)) for p in sys.argv[2:]]
merged = runs[0]
for r in runs[1:]:
    merged["rows"].extend(r["rows"])
json.dump(merged, open(sys.argv[1], "w"), indent=1)
PY
  fi
  return 0
}
