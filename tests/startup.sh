#!/bin/sh
# SPDX-License-Identifier: MIT
# The start-up cost rsmalloc puts on every process it is preloaded into,
# counted in system calls under strace (a count, not a timing: the machine
# may be busy). The first malloc makes six: getrandom (the secrets), the
# mappings of the heap chunk and the page-map leaf (plus munmaps where the
# kernel does not align the chunk), two mprotects that make the first
# pieces of each writable (both are reserved read-only, so that strict
# overcommit does not charge 6 MiB for them: tests/commit-charge.sh),
# and uname: both mappings refuse huge
# pages (a small heap under RSMALLOC_THP=auto, and any page-map leaf: where
# the system's policy is "always", 4 MiB of huge pages a process
# otherwise), which MAP_STACK says from Linux 6.7 on and a madvise of each
# before (uname tells which); none is a per-CPU cache's (the
# sysfs read of the possible CPUs, membarrier, the regions' mapping):
# the caches start at the 16th slow path, which the next calls reach. The first span descriptors need no mapping. In both cache modes.
# Skipped without strace, or where it cannot trace (no ptrace).
#
# Also the page faults of the first malloc and free in data (getrusage in
# the process, every read-only page of every loaded object read first but
# rsmalloc's constants, which the first malloc must not read: the
# size-class table is in the segment the loader reads, lib/early.ld; and
# not the vDSO's data page, which a clock read would fault in: the clock
# is held until the caches start, lib/os.h; on x86-64 Linux only): 5 here, in rsmalloc's .bss (the page-map root, the
# page heap, the class's central list), the page-map leaf (span and class,
# one 16-byte entry a page: a chunk's entries fill one system page) and
# the block's page (docs/benchmarks.md). 11 before the
# start-up variables moved to .data, the central lists lost their init
# loop (which alone makes it 10) and carving before the caches start
# stopped marking slots ahead (which alone makes it 9); 8 until free
# stopped reading the check arrays before any check is on (their two
# zero pages); 6 while the leaf kept spans and classes in two arrays. With
# the table in .rodata again it is 6 (one page of .rodata), and 6 with the
# clock read from the first malloc (the vDSO's data page). The least of 3
# runs.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

prog=$top_builddir/tests/startup_prog
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rs-startup.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if [ "$(uname -s)-$(uname -m)" = Linux-x86_64 ]; then
  least=
  for i in 1 2 3; do
    n=$(LD_PRELOAD=$RSMALLOC_LIB "$prog" faults) || n=
    case $n in '' | *[!0-9]*) n=999 ;; esac # failed: fails the check
    if [ -z "$least" ] || [ "$n" -lt "$least" ]; then least=$n; fi
  done
  # A linker that refused lib/early.ld (configure says so) leaves the
  # size-class table in .rodata: its page is one fault more.
  most=5
  [ -z "${RS_EARLY_LDFLAGS-x}" ] && most=6
  check "the first malloc and free take $least page faults (at most $most)" \
    [ "$least" -le "$most" ]
else
  skip "page faults counted on x86-64 Linux only"
fi

if ! command -v strace >/dev/null 2>&1; then
  skip "strace is not installed"
  finish
fi
if ! strace -f -o /dev/null true 2>/dev/null; then
  skip "strace cannot trace here (ptrace refused)"
  finish
fi

# between FILE A B: the system calls between the markers close(A) and
# close(B), one name a line.
between() {
  sed -n "/^[0-9]* *close($2)/,/^[0-9]* *close($3)/p" "$1" |
    sed -e '1d;$d' -e 's/^[0-9]* *//' -e 's/(.*//' |
    grep -v -e '^+++' -e '^---' -e '^<' || true
}

for rseq in auto 0; do
  out=$tmp/trace-$rseq
  if ! RSMALLOC_RSEQ=$rseq LD_PRELOAD=$RSMALLOC_LIB \
    strace -f -o "$out" "$prog" 2>"$tmp/err"; then
    not_ok "RSMALLOC_RSEQ=$rseq: startup_prog failed under strace"
    show "$tmp/err"
    continue
  fi
  between "$out" -101 -102 >"$tmp/first"
  check "RSMALLOC_RSEQ=$rseq: the first malloc calls only getrandom, mmap, munmap, mprotect, uname, madvise" \
    sh -c "! grep -q -v -x -e getrandom -e mmap -e munmap -e mprotect -e uname -e madvise '$tmp/first'" ||
    show "$tmp/first"
  protects=$(grep -c -x mprotect "$tmp/first")
  check "RSMALLOC_RSEQ=$rseq: the first malloc protects $protects times (at most twice: the first pieces of the chunk and the leaf)" \
    [ "$protects" -le 2 ] || show "$tmp/first"
  maps=$(grep -c -x mmap "$tmp/first")
  advice=$(grep -c -x madvise "$tmp/first")
  check "RSMALLOC_RSEQ=$rseq: the first malloc advises $advice times (at most once a mapping, $maps)" \
    [ "$advice" -le "$maps" ] || show "$tmp/first"
  most=2 # the heap chunk and the page-map leaf
  # A kernel that does not align a 2 MiB mapping: one more, and munmaps.
  grep -q -x munmap "$tmp/first" && most=3
  check "RSMALLOC_RSEQ=$rseq: the first malloc maps $maps times (at most $most)" \
    [ "$maps" -le "$most" ] || show "$tmp/first"
  between "$out" -102 -103 >"$tmp/next"
  check "RSMALLOC_RSEQ=$rseq: calls 2 to 13 start no cache" \
    sh -c "! grep -q -e openat -e membarrier -e madvise '$tmp/next'" ||
    show "$tmp/next"
  between "$out" -103 -104 >"$tmp/later"
  check "RSMALLOC_RSEQ=$rseq: the caches start by the 16th call (the sysfs read of the CPUs)" \
    grep -q openat "$tmp/later" || show "$tmp/later"
done
finish
