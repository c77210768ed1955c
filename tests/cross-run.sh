#!/bin/sh
# SPDX-License-Identifier: MIT
# LOG_COMPILER of a cross build's `make check` (tests/cross.sh sets it):
# runs one test program under qemu-user, or natively (i386 on x86-64). A
# libtool wrapper is run through `libtool --mode=execute`, which points the
# program's LD_LIBRARY_PATH at the uninstalled library. Shell tests are
# skipped (exit 77): they run host programs (/bin/ls, readelf, valgrind,
# mount namespaces) with the library preloaded, which a library built for
# another architecture cannot be.
# Environment: RS_QEMU (qemu-aarch64, ..., or native: run the program
# itself), QEMU_LD_PREFIX (where qemu finds the target's loader and
# libraries: / for Debian's multiarch libc6:<arch>), top_builddir, RS_CROSS_SKIP
# (below).
set -u
prog=$1
shift
: "${RS_QEMU:?RS_QEMU names the qemu-user binary, or native}"
# RS_CROSS_SKIP: test programs (by file name) not to run here, for a CI
# that ran them natively and cannot spend the emulator's time on them again.
for skip in ${RS_CROSS_SKIP:-}; do
  if [ "$(basename "$prog")" = "$skip" ]; then
    echo "skip: $prog (RS_CROSS_SKIP)"
    exit 77
  fi
done
case $prog in
*.sh)
  echo "skip: $prog is a shell test of host programs, which cannot load" \
    "a library built for another architecture"
  exit 77
  ;;
esac
if [ "$RS_QEMU" = native ]; then
  exec timeout -k 5 "${RS_CROSS_TIMEOUT:-600}" \
    "${top_builddir:-.}/libtool" --mode=execute "$prog" "$@"
fi
export QEMU_LD_PREFIX
# qemu-user has no rseq (glibc finds __rseq_size 0), so the caches run in
# the locked fallback. Emulated code is several times slower: Check's
# per-test timeouts are stretched, and each program gets RS_CROSS_TIMEOUT
# seconds (default 600) before it counts as failed.
CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-4}
export CK_TIMEOUT_MULTIPLIER
# The rseq tests' liveness minimums (a drainer thread that ran at least N
# times in a second) assume a real CPU: under the emulator they wait for
# the helper threads and ask for less (tests/on_valgrind.h). A drainer that
# ran twice among 24 emulated workers failed the CI dry run once.
RS_TEST_EMULATED=${RS_TEST_EMULATED:-1}
export RS_TEST_EMULATED
timeout -k 5 "${RS_CROSS_TIMEOUT:-600}" \
  "${top_builddir:-.}/libtool" --mode=execute "$RS_QEMU" "$prog" "$@"
rc=$?
[ $rc -eq 124 ] && echo "cross-run: $prog timed out under $RS_QEMU"
exit $rc
