#!/bin/sh
# SPDX-License-Identifier: MIT
# make check-rseq-repeat: runs the rseq conservation, signal, injection, fork
# and drain tests RSEQ_REPEAT (20) times in a row, with rseq and with
# RSMALLOC_RSEQ=0, and reports pass counts and the injected abort counts.
# Logs of failed runs are kept in a fresh directory under $TMPDIR (or
# RSEQ_REPEAT_LOGS); it is removed when every run passed.
set -u

: "${top_builddir:=.}"
: "${RSEQ_REPEAT:=20}"

programs="test_conservation test_signals test_inject test_fork test_drain"
for p in $programs; do
  if [ ! -x "$top_builddir/tests/rseq/$p" ]; then
    echo "repeat.sh: tests/rseq/$p is not built (make check TESTS= first)"
    exit 77
  fi
done
if [ -n "${RSEQ_REPEAT_LOGS:-}" ]; then
  mkdir -p "$RSEQ_REPEAT_LOGS" || exit 99
else
  RSEQ_REPEAT_LOGS=$(mktemp -d "${TMPDIR:-/tmp}/rsmalloc-rseq-repeat.XXXXXX") ||
    exit 99
fi
out="$RSEQ_REPEAT_LOGS/current.out"

total_failed=0
summary=""
for mode in rseq fallback; do
  for p in $programs; do
    passed=0
    aborts_min=""
    aborts_max=""
    i=1
    while [ "$i" -le "$RSEQ_REPEAT" ]; do
      if [ "$mode" = fallback ]; then
        RSMALLOC_RSEQ=0 "$top_builddir/tests/rseq/$p" >"$out" 2>&1
      else
        env -u RSMALLOC_RSEQ "$top_builddir/tests/rseq/$p" >"$out" 2>&1
      fi
      rc=$?
      if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
      else
        cp "$out" "$RSEQ_REPEAT_LOGS/$p.$mode.$i.log"
        echo "FAIL $p ($mode) run $i: exit $rc;" \
          "log in $RSEQ_REPEAT_LOGS/$p.$mode.$i.log"
      fi
      # Injected aborts in this run: the sum over the test's runs.
      a=$(sed -n 's/.*: \([0-9][0-9]*\) rseq aborts in .*/\1/p' "$out" |
        awk '{ s += $1 } END { if (NR) print s }')
      if [ -n "$a" ]; then
        if [ -z "$aborts_min" ] || [ "$a" -lt "$aborts_min" ]; then
          aborts_min=$a
        fi
        if [ -z "$aborts_max" ] || [ "$a" -gt "$aborts_max" ]; then
          aborts_max=$a
        fi
      fi
      i=$((i + 1))
    done
    line="$p ($mode): $passed/$RSEQ_REPEAT passed"
    if [ -n "$aborts_min" ]; then
      line="$line; rseq aborts per run: min $aborts_min, max $aborts_max"
    fi
    echo "$line"
    summary="$summary$line
"
    total_failed=$((total_failed + RSEQ_REPEAT - passed))
  done
done
rm -f "$out"
echo
echo "rseq repeat summary ($RSEQ_REPEAT runs each):"
printf '%s' "$summary"
runs=$((2 * 5 * RSEQ_REPEAT))
echo "$((runs - total_failed)) passed, $total_failed failed"
if [ "$total_failed" -ne 0 ]; then
  echo "logs of the failed runs: $RSEQ_REPEAT_LOGS"
  exit 1
fi
rmdir "$RSEQ_REPEAT_LOGS" 2>/dev/null || true
exit 0
