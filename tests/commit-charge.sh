#!/bin/sh
# SPDX-License-Identifier: MIT
# What a process with rsmalloc preloaded would be charged under strict
# overcommit (vm.overcommit_memory=2), where the kernel counts every
# writable private mapping against the commit limit when it is made,
# MAP_NORESERVE or not. A machine with rsmalloc in /etc/ld.so.preload pays
# it in every process: it must stay small and must not grow with the
# number of CPUs. Measured without changing the sysctl: the writable
# private anonymous mappings of `cat /proc/self/maps` (cat allocates its
# buffer, so rsmalloc starts), with the library preloaded and without.
# Before the first heap chunk, the page map's leaf and the CPU regions
# were reserved read-only and made writable a piece at a time, the
# difference was 7.6 MiB on two CPUs (256 KiB more per CPU); now about
# 1.2-1.5 MiB on x86-64.
set -u

. "$(dirname "$0")/lib.sh"

if [ ! -f "$RSMALLOC_LIB" ]; then
  echo "ERROR: $RSMALLOC_LIB not found"
  exit 99
fi

# writable_kib [VAR=VALUE...]: KiB of rw-p anonymous mappings (the stack
# left out) of a cat run under env with those settings.
writable_kib() {
  env "$@" cat /proc/self/maps | {
    total=0
    while read -r range perms offset dev inode name; do
      [ "$perms" = rw-p ] && [ "$inode" = 0 ] || continue
      [ "${name:-}" = "[stack]" ] && continue
      lo=${range%-*}
      hi=${range#*-}
      total=$((total + (0x$hi - 0x$lo) / 1024))
    done
    echo "$total"
  }
}

base=$(writable_kib)
[ "$base" -gt 0 ] || {
  echo "ERROR: could not read cat's mappings"
  exit 99
}
# 2.5 MiB: the page map's root (.bss: 512 KiB on x86-64, 1 MiB on other
# 64-bit targets), the first step of the heap chunk (256 KiB), the CPU
# states and one CPU region (256 KiB), a piece of the leaf (64 KiB), the
# metadata arena (64 KiB), the library's own data.
limit=2560
for mode in auto 0; do
  with=$(writable_kib LD_PRELOAD="$RSMALLOC_LIB" RSMALLOC_RSEQ=$mode)
  extra=$((with - base))
  if [ "$extra" -lt "$limit" ]; then
    ok "RSMALLOC_RSEQ=$mode: $extra KiB writable over glibc's $base KiB (under $limit)"
  else
    not_ok "RSMALLOC_RSEQ=$mode: $extra KiB writable over glibc's $base KiB (want under $limit)"
    env LD_PRELOAD="$RSMALLOC_LIB" RSMALLOC_RSEQ=$mode cat /proc/self/maps |
      grep ' rw-p .* 0 ' | head -20
  fi
done

finish
