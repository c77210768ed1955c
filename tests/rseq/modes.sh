#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs the rseq allocation suites (test_signals, test_drain, test_fork) and
# tests/test_stress (cross_thread and threads cases) under each cache mode:
# default (rseq expected, checked with RSMALLOC_VERBOSE), RSMALLOC_RSEQ=0 and
# GLIBC_TUNABLES=glibc.pthread.rseq=0 (fallback expected), and pinned with
# taskset -c 0. The four modes run side by side (RSEQ_MODES_SERIAL=1: one
# after another).
set -u

: "${top_builddir:=.}"
: "${RSMALLOC_LIB:=$top_builddir/lib/.libs/librsmalloc.so}"
# The rseq suites' timed phases run shorter here.
: "${RSEQ_TEST_MS:=500}"
export RSEQ_TEST_MS

say() {
  echo "$@"
  { echo "$@" >&9; } 2>/dev/null || true
}

# Items are PROGRAM or PROGRAM:TCASE (run with CK_RUN_CASE=TCASE).
programs=""
for p in tests/rseq/test_signals tests/rseq/test_drain tests/rseq/test_fork; do
  if [ -x "$top_builddir/$p" ]; then
    programs="$programs $p"
  else
    echo "modes.sh: $p is not built; left out"
  fi
done
# test_stress: its fork_trim case takes most of a minute once four modes
# share two CPUs, and test_fork and test_drain cover forks and drains in
# every mode; RSEQ_MODES_STRESS_FULL=1 runs it whole.
if [ -x "$top_builddir/tests/test_stress" ]; then
  if [ "${RSEQ_MODES_STRESS_FULL:-0}" = 1 ]; then
    programs="$programs tests/test_stress"
  else
    programs="$programs tests/test_stress:cross_thread tests/test_stress:threads"
  fi
else
  echo "modes.sh: tests/test_stress is not built; left out"
fi
if [ -z "$programs" ]; then
  say "modes.sh: nothing to run"
  exit 77
fi
if [ ! -r "$RSMALLOC_LIB" ]; then
  say "modes.sh: $RSMALLOC_LIB not built"
  exit 77
fi

# The mode rsmalloc must pick by default on this machine, worked out
# without the library (tests/expected_mode; RSMALLOC_TEST_ALLOW_FALLBACK=1
# accepts a fallback instead of rseq).
. "$(dirname "$0")/../lib.sh"
default_mode=$(rs_expected_mode)
if [ -z "$default_mode" ]; then
  say "modes.sh: tests/expected_mode is not built"
  exit 99
fi
echo "modes.sh: expected default mode: $default_mode"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rs-modes.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT

# run_mode NAME EXPECTED-MODE [env assignments...] -- [wrapper...]
# (EXPECTED-MODE as rs_mode_ok takes it: exact, or "fallback" for any).
# Runs every program; writes NAME.result ("passed failed") and NAME.log.
run_mode() {
  name=$1
  expect=$2
  shift 2
  envs=""
  while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
    envs="$envs $1"
    shift
  done
  [ "$#" -gt 0 ] && shift
  passed=0
  failed=0
  log="$tmp/$name.log"
  : >"$log"
  for item in $programs; do
    p=${item%%:*}
    case_env=""
    case $item in
      *:*) case_env="CK_RUN_CASE=${item#*:}" ;;
    esac
    out="$tmp/$name.$(basename "$item").out"
    t0=$(date +%s)
    # shellcheck disable=SC2086
    env $envs $case_env RSMALLOC_VERBOSE=1 "$@" "$top_builddir/$p" \
      >"$out" 2>&1 9>&-
    rc=$?
    secs=$(($(date +%s) - t0))
    mode=$(sed -n 's/^rsmalloc: cache mode //p' "$out" | head -n 1)
    summary=$(grep -E '^[0-9]+%: Checks' "$out" | tail -n 1)
    mode_ok=0
    rs_mode_ok "$mode" "$expect" && mode_ok=1
    if [ "$rc" -eq 0 ] && [ "$mode_ok" -eq 1 ]; then
      passed=$((passed + 1))
      echo "PASS $name: $item (mode $mode, ${secs}s) $summary" >>"$log"
    else
      failed=$((failed + 1))
      {
        echo "FAIL $name: $item: exit $rc after ${secs}s, mode '$mode'" \
          "(expected '$expect...')"
        sed 's/^/    /' "$out"
      } >>"$log"
    fi
  done
  echo "$passed $failed" >"$tmp/$name.result"
}

pinned="--"
if command -v taskset >/dev/null 2>&1 && taskset -c 0 /bin/true 2>/dev/null
then
  pinned="-- taskset -c 0"
fi

modes="default rseq0 tunable pinned"
start_mode() {
  case $1 in
    default) run_mode default "$default_mode" -- ;;
    rseq0) run_mode rseq0 "$(rs_expected_mode RSMALLOC_RSEQ=0)" RSMALLOC_RSEQ=0 -- ;;
    tunable)
      run_mode tunable \
        "$(rs_expected_mode GLIBC_TUNABLES=glibc.pthread.rseq=0)" \
        GLIBC_TUNABLES=glibc.pthread.rseq=0 --
      ;;
    pinned)
      if [ "$pinned" = "--" ]; then
        echo "0 0" >"$tmp/pinned.result"
        echo "SKIP pinned: taskset -c 0 does not work here" >"$tmp/pinned.log"
      else
        # shellcheck disable=SC2086
        run_mode pinned "$default_mode" $pinned
      fi
      ;;
  esac
}

if [ "${RSEQ_MODES_SERIAL:-0}" = 1 ]; then
  for m in $modes; do
    start_mode "$m"
  done
else
  for m in $modes; do
    start_mode "$m" &
  done
  wait
fi

total_passed=0
total_failed=0
for m in $modes; do
  cat "$tmp/$m.log"
  if [ ! -r "$tmp/$m.result" ]; then
    echo "FAIL $m: no result"
    total_failed=$((total_failed + 1))
    continue
  fi
  read -r p f <"$tmp/$m.result"
  total_passed=$((total_passed + p))
  total_failed=$((total_failed + f))
done
say "rseq/modes.sh: $total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ] || exit 1
exit 0
