# bench/gtest_watchdog.sh — run_gtest_watched, sourced by gpu_check.sh: runs a GoogleTest binary so
# that a test that never returns (a kernel that never finishes, a deadlock) costs STALL_S seconds of
# a lent GPU machine's time, not the rest of the run.
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

# The names of the tests a GoogleTest log reports as finished (OK, FAILED or SKIPPED), one a line.
gtest_finished() {
  sed -nE 's/^\[ *(OK|FAILED|SKIPPED) *\] ([^ ,]+)(, where .*)? \([0-9]+ ms\)$/\2/p' "$1"
}

run_gtest_watched() {
  local bin="$1" log="$2" limit="$3" stall="$4" filter="${5:-*}"
  local deadline=$((SECONDS + limit)) exclude="" seg pid size last still killed rc=0 culprit
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
    pid=$!
    last=-1 still=0 killed=""
    while kill -0 "$pid" 2>/dev/null; do
      sleep 1
      size=$(stat -c %s "$seg" 2>/dev/null || echo 0)
      if [ "$size" = "$last" ]; then still=$((still + 1)); else still=0 last=$size; fi
      if [ "$SECONDS" -ge "$deadline" ]; then killed=limit; elif [ "$still" -ge "$stall" ]; then killed=stall; fi
      if [ -n "$killed" ]; then
        kill -9 "$pid" 2>/dev/null
        break
      fi
    done
    wait "$pid" 2>/dev/null
    rc=$?
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
