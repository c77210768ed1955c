#!/bin/sh
# SPDX-License-Identifier: MIT
# Counts the instructions of malloc and free on a cache hit in the built
# library (entry to the first ret: the hit path is laid out as straight-line
# code) and fails when a change makes either longer than its budget in
# tests/fastpath-insns.txt. Prints the counts so they can be quoted.
set -u
lib=${RSMALLOC_LIB:?}
budgets=${top_srcdir:-.}/tests/fastpath-insns.txt
# Budgets are per compiler (the library's .comment section names it) and
# per architecture: x86-64 lines are "gcc malloc N", aarch64 lines
# "gcc-aarch64 malloc N". An aarch64 library (a cross build, or
# tests/system-aarch64.sh) is read with aarch64-linux-gnu-objdump (OBJDUMP
# overrides); other architectures are skipped.
compiler=gcc
readelf -p .comment "$lib" 2>/dev/null | grep -q clang && compiler=clang
case $(readelf -h "$lib" 2>/dev/null | sed -n 's/^ *Machine: *//p') in
*X86-64*)
  key=$compiler
  : "${OBJDUMP:=objdump}"
  # The hit path must also contain the rseq accesses (%fs: arm, cpu_id,
  # mm_cid).
  marker='%fs:' markers=3
  ;;
*AArch64*)
  key=$compiler-aarch64
  : "${OBJDUMP:=aarch64-linux-gnu-objdump}"
  # The thread pointer read and the committing 16-bit store.
  marker='tpidr_el0|strh' markers=2
  ;;
*)
  echo "fastpath_insns: no budget for this architecture; skipped"
  exit 77
  ;;
esac
command -v "$OBJDUMP" >/dev/null 2>&1 || exit 77
grep -q "^$key malloc " "$budgets" || {
  echo "fastpath_insns: no $key budget in $budgets; skipped"
  exit 77
}
pass=0 fail=0
for fn in malloc free; do
  count=$("$OBJDUMP" -d --no-show-raw-insn "$lib" |
    awk -v fn="<$fn>:" '$2 == fn { on = 1; next }
      on && /\tret/ { n++; print n; exit }
      on && /^[[:space:]]+[0-9a-f]+:/ { n++ }')
  budget=$(awk -v c="$key" -v fn="$fn" '$1 == c && $2 == fn { print $3 }' "$budgets")
  fs=$("$OBJDUMP" -d --no-show-raw-insn "$lib" |
    awk -v fn="<$fn>:" -v m="$marker" '$2 == fn { on = 1; next }
      on && /\tret/ { exit }
      on && $0 ~ m { n++ } END { print n + 0 }')
  if [ -n "$count" ] && [ -n "$budget" ] && [ "$count" -le "$budget" ] &&
    [ "$fs" -ge "$markers" ]; then
    echo "PASS: $fn hit path ($key): $count instructions (budget $budget, $fs rseq accesses)"
    pass=$((pass + 1))
  else
    echo "FAIL: $fn hit path ($key): ${count:-?} instructions (budget ${budget:-?}, $fs rseq accesses)"
    fail=$((fail + 1))
  fi
done
echo "fastpath_insns: $pass passed, $fail failed"
{ echo "fastpath_insns: $pass passed, $fail failed" >&9; } 2>/dev/null || true
[ "$fail" -eq 0 ]
