#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs tests/valgrind/defects under memcheck with rsmalloc's own code in
# charge (--soname-synonyms=somalloc=nouserintercepts): each deliberate
# defect, on small, large, mapped and aligned blocks and with the C++
# operators, must be reported with a stack into the program, and the clean
# run (every allocation function, all served by rsmalloc) must give zero
# errors. Also runs the clean program with memcheck's own
# malloc (no soname option): rsmalloc's entry points that memcheck does not
# replace must cope with memcheck's pointers. Skips without valgrind.
set -u
command -v valgrind >/dev/null 2>&1 || { echo "valgrind not installed"; exit 77; }
builddir=${top_builddir:-.}
prog="$builddir/tests/valgrind/defects"
run="$builddir/libtool --mode=execute valgrind --error-exitcode=42 --leak-check=full --num-callers=30"
own="--soname-synonyms=somalloc=nouserintercepts"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { echo "PASS: $1"; pass=$((pass + 1)); }
ko() { echo "FAIL: $1"; fail=$((fail + 1)); sed 's/^/    /' "$2" | tail -30; }

# expect MODE "PATTERN" [SECOND-PATTERN]: the run must fail with memcheck's
# error code and its log must show the pattern (grep's basic regular
# expressions) and a frame in main; "cxx-*" modes also one in cxx_defect.
expect() {
  mode=$1
  log="$tmp/$mode.log"
  frame="main (defects.c"
  case $mode in cxx-*) frame="cxx_defect (defects_cxx.cc" ;; esac
  $run $own "$prog" "$mode" >"$log" 2>&1
  rc=$?
  if [ "$rc" -eq 42 ] && grep -q "$2" "$log" && grep -q "main (defects.c" "$log" &&
    grep -q "$frame" "$log" && { [ -z "${3:-}" ] || grep -q "$3" "$log"; }; then
    ok "$mode: memcheck reports \"$2\"${3:+ and \"$3\"} with a stack into the program"
  else
    ko "$mode: expected \"$2\"${3:+ and \"$3\"} (exit $rc)" "$log"
  fi
}

log="$tmp/clean.log"
if $run $own "$prog" clean >"$log" 2>&1 &&
  grep -q "ERROR SUMMARY: 0 errors" "$log"; then
  ok "clean program on rsmalloc: 0 errors"
else
  ko "clean program on rsmalloc should give 0 errors" "$log"
fi
# The clean run must have been served by rsmalloc (its self-check passes
# only if rsmalloc_owns() recognises malloc's result) in fallback mode.
log="$tmp/mode.log"
RSMALLOC_VERBOSE=1 $run $own "$prog" clean >"$log" 2>&1
if grep -q "rsmalloc: cache mode fallback" "$log"; then
  ok "under valgrind rsmalloc runs its locked fallback"
else
  ko "RSMALLOC_VERBOSE=1 under valgrind should report the fallback" "$log"
fi

# Small blocks (77 bytes or less).
expect leak "77 bytes in 1 blocks are definitely lost"
expect use-after-free "Invalid read of size 1"
expect reuse-after-free "Invalid read of size 1" "inside a block of size 40 free'd"
expect overrun "Invalid write of size 1" "0 bytes after a.*block of size 24"
expect uninitialised "Conditional jump or move depends on uninitialised value"
expect double-free "Invalid free()"

# The same defects on a large block (300 KiB, a span of its own), a mapped
# one (80 MiB and 100 bytes, its own mapping) and an aligned one
# (memalign(4096, 5000)): each path marks its blocks for memcheck.
for kind_size in large:307,200 mapped:83,886,180 aligned:5,000; do
  kind=${kind_size%%:*}
  size=${kind_size#*:}
  # Which freed block memcheck names for the stale read is its choice (the
  # oldest freed block that holds the address): the aligned block's
  # address was an older freed block's too (clean's pvalloc), and the
  # large block reuses the resident pages of clean's freed 5 MiB block.
  freed="inside a block of size $size free'd"
  [ "$kind" = aligned ] || [ "$kind" = large ] && freed="free'd"
  # Memcheck's leak scan takes any word that falls inside a block for an
  # interior pointer, and words in memory (numbers, not pointers) can land
  # inside hundreds of KiB of valgrind's low address space: the block is
  # then "possibly lost", still an error with a stack.
  lost="\(definitely\|possibly\) lost"
  expect "leak:$kind" "$size bytes in 1 blocks are $lost"
  expect "use-after-free:$kind" "Invalid read of size 1" "$freed"
  expect "overrun:$kind" "Invalid write of size 1" \
    "0 bytes after a.*block of size $size"
  expect "uninitialised:$kind" \
    "Conditional jump or move depends on uninitialised value"
  expect "double-free:$kind" "Invalid free()"
done

# The C++ operators: new[] leaked, aligned delete then a read, an overrun
# of a mapped new[], delete[] twice. The aligned block of 5000 bytes is
# one of the 8 KiB class, whose objects clean() used twice (its
# posix_memalign and its pvalloc): memcheck names the oldest freed block
# at the address, which of the two depends on the order the CPU cache
# hands them back in.
expect cxx-leak "307,200 bytes in 1 blocks are \(definitely\|possibly\) lost"
expect cxx-use-after-delete "Invalid read of size 1" \
  "inside a block of size \(5,000\|8,192\) free'd"
expect cxx-overrun "Invalid write of size 1" \
  "0 bytes after a block of size 41,943,140"
expect cxx-double-delete "Invalid free() / delete / delete\[\]"

# memcheck's own allocator in charge: free_sized, reallocarray and the
# rsmalloc_* functions receive memcheck's pointers. The program's
# self-check fails (rsmalloc_owns is 0, as it should be), so only look at
# memcheck's verdict.
log="$tmp/replaced.log"
$run "$prog" clean >"$log" 2>&1
if grep -q "ERROR SUMMARY: 0 errors" "$log" && ! grep -q "rsmalloc: " "$log"; then
  ok "with memcheck's malloc, rsmalloc's other entry points cope: 0 errors"
else
  ko "with memcheck's malloc the clean program should give 0 errors" "$log"
fi

echo "memcheck: $pass passed, $fail failed"
{ echo "memcheck: $pass passed, $fail failed" >&9; } 2>/dev/null || true
[ "$fail" -eq 0 ]
