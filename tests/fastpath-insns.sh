#!/bin/sh
# SPDX-License-Identifier: MIT
# Counts the instructions of malloc and free on a cache hit in the built
# library (entry to the first ret: the hit path is laid out as straight-line
# code) and fails when a change makes either longer than its budget in
# tests/fastpath-insns.txt. Prints the counts so they can be quoted.
set -u
lib=${RSMALLOC_LIB:?}
budgets=${top_srcdir:-.}/tests/fastpath-insns.txt
# Budgets are per compiler: the library's .comment section names it.
compiler=gcc
readelf -p .comment "$lib" 2>/dev/null | grep -q clang && compiler=clang
command -v objdump >/dev/null 2>&1 || exit 77
[ "$(uname -m)" = x86_64 ] || exit 77
pass=0 fail=0
for fn in malloc free; do
  count=$(objdump -d --no-show-raw-insn "$lib" |
    awk -v fn="<$fn>:" '$2 == fn { on = 1; next }
      on && /\tret/ { n++; print n; exit }
      on && /^[[:space:]]+[0-9a-f]+:/ { n++ }')
  budget=$(awk -v c="$compiler" -v fn="$fn" '$1 == c && $2 == fn { print $3 }' "$budgets")
  # The hit path must also contain the committing rseq store (%fs access).
  fs=$(objdump -d --no-show-raw-insn "$lib" |
    awk -v fn="<$fn>:" '$2 == fn { on = 1; next } on && /\tret/ { exit }
      on && /%fs:/ { n++ } END { print n + 0 }')
  if [ -n "$count" ] && [ -n "$budget" ] && [ "$count" -le "$budget" ] &&
    [ "$fs" -ge 3 ]; then
    echo "PASS: $fn hit path ($compiler): $count instructions (budget $budget, $fs rseq accesses)"
    pass=$((pass + 1))
  else
    echo "FAIL: $fn hit path ($compiler): ${count:-?} instructions (budget ${budget:-?}, $fs rseq accesses)"
    fail=$((fail + 1))
  fi
done
echo "fastpath_insns: $pass passed, $fail failed"
{ echo "fastpath_insns: $pass passed, $fail failed" >&9; } 2>/dev/null || true
[ "$fail" -eq 0 ]
