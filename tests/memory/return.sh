#!/bin/sh
# SPDX-License-Identifier: MIT
# rsmalloc gives memory back: after malloc_trim(0) RSS is under 5% of the
# peak of a 1 GiB small-object heap; without a trim, with light activity,
# under 10% within twice RSMALLOC_DECAY_MS (a busy machine may take until
# a 20 s deadline); with one block in 8 kept alive (no span empties),
# under 25% either way; a burst of frees followed by no call at all leaves
# at most 25% of the peak, with rseq and in the locked fallback;
# rsmalloc_stats_json parses and
# its in-use figure matches what the program holds; calloc does not touch
# memory that is known to read as zeros.
set -u
builddir=${top_builddir:-.}
prog="$builddir/tests/memory/return"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
check() {
  name=$1
  shift
  if "$@" >"$tmp/out" 2>&1; then
    echo "PASS: $name: $(tail -1 "$tmp/out")"
    pass=$((pass + 1))
  else
    echo "FAIL: $name"
    sed 's/^/    /' "$tmp/out"
    fail=$((fail + 1))
  fi
}
check "malloc_trim(0) returns the heap" "$prog" trim
check "the decay time returns it without a trim" env RSMALLOC_DECAY_MS=500 "$prog" decay
check "a burst of frees, then idle: at most a quarter of the peak" "$prog" idle
check "the same in the locked fallback" \
  env GLIBC_TUNABLES=glibc.pthread.rseq=0 "$prog" idle
check "malloc_trim(0) returns free pages inside spans in use" "$prog" \
  scattered-trim
check "the decay time returns them without a trim" \
  env RSMALLOC_DECAY_MS=200 "$prog" scattered-decay
check "calloc skips zeroing memory returned to the OS" "$prog" calloc
check "in-use statistics match what is held" env RS_JSON_OUT="$tmp/stats.json" "$prog" stats
if command -v python3 >/dev/null 2>&1; then
  check "rsmalloc_stats_json output parses as JSON" python3 -m json.tool "$tmp/stats.json"
fi
check "RSMALLOC_STATS=json prints JSON that parses" sh -c \
  "RSMALLOC_STATS=json '$prog' stats 2>'$tmp/exit.json' >/dev/null &&
   tail -1 '$tmp/exit.json' | python3 -m json.tool >/dev/null"
echo "memory_return: $pass passed, $fail failed"
{ echo "memory_return: $pass passed, $fail failed" >&9; } 2>/dev/null || true
[ "$fail" -eq 0 ]
