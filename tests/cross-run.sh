#!/bin/sh
# SPDX-License-Identifier: MIT
# LOG_COMPILER of a cross build's `make check` (tests/cross.sh sets it):
# runs one test program under qemu-user. A libtool wrapper is run through
# `libtool --mode=execute`, which points the guest's LD_LIBRARY_PATH at the
# uninstalled library. Shell tests are skipped (exit 77): they run host
# programs (/bin/ls, readelf, valgrind, mount namespaces) with the library
# preloaded, which an emulated library cannot be.
# Environment: RS_QEMU (qemu-aarch64, ...), QEMU_LD_PREFIX (the sysroot of
# the target's libc, /usr/aarch64-linux-gnu), top_builddir.
set -u
prog=$1
shift
case $prog in
*.sh)
  echo "skip: $prog is a shell test of host programs; not run under qemu-user"
  exit 77
  ;;
esac
: "${RS_QEMU:?RS_QEMU names the qemu-user binary}"
export QEMU_LD_PREFIX
# qemu-user has no rseq (glibc finds __rseq_size 0), so the caches run in
# the locked fallback. qemu 7.2 (Debian 12) on this project's Linux 6.18
# machines hangs in every forked child, a plain fork() test program
# included: Check runs its tests in-process (CK_FORK=no, so one crash ends
# the program), and each program gets RS_CROSS_TIMEOUT seconds (default
# 120) before it counts as failed.
CK_FORK=no
export CK_FORK
timeout -k 5 "${RS_CROSS_TIMEOUT:-120}" \
  "${top_builddir:-.}/libtool" --mode=execute "$RS_QEMU" "$prog" "$@"
rc=$?
[ $rc -eq 124 ] && echo "cross-run: $prog timed out under $RS_QEMU"
exit $rc
