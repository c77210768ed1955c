#!/bin/sh
# SPDX-License-Identifier: MIT
# Cross-builds rsmalloc for one Debian architecture in its own directory and
# runs its test programs under qemu-user (tests/cross-run.sh):
#   tests/cross.sh aarch64 [BUILDDIR]      (or: make check-cross ARCH=aarch64)
# ARCH is aarch64, armhf, i686, ppc64el, s390x or riscv64. i686 runs
# natively on an x86-64 kernel, without qemu. Needs the cross compiler
# (g++-<triplet>), qemu-user, and the target's own libraries from its
# Debian architecture, for building (check) and for running (libc6,
# libstdc++6):
#   dpkg --add-architecture arm64 && apt-get update
#   apt-get install g++-aarch64-linux-gnu check:arm64 libc6:arm64 \
#     libstdc++6:arm64
#   apt-get install -t bookworm-backports qemu-user
# The tests run on those libraries (QEMU_LD_PREFIX=/), not on the cross
# toolchain's copy in /usr/<triplet>: with that copy (libc6-arm64-cross
# 2.36-8cross1, also i386's) every forked child hangs in glibc's fork,
# walking its list of thread stacks forever, while bookworm's libc6:arm64
# (2.36-9+deb12u14) forks fine.
# qemu-user must be version 8 or later (see below); RS_QEMU names another
# binary than qemu-<arch> on PATH.
# Extra arguments after BUILDDIR go to make check (TESTS=..., -k).
set -eu
arch=${1:?usage: tests/cross.sh ARCH [BUILDDIR] [make arguments]}
case $arch in
aarch64 | arm64) triplet=aarch64-linux-gnu qemu=qemu-aarch64 ;;
armhf | arm) triplet=arm-linux-gnueabihf qemu=qemu-arm ;;
i686 | i386) triplet=i686-linux-gnu qemu=qemu-i386 ;;
ppc64el | powerpc64le) triplet=powerpc64le-linux-gnu qemu=qemu-ppc64le ;;
s390x) triplet=s390x-linux-gnu qemu=qemu-s390x ;;
riscv64) triplet=riscv64-linux-gnu qemu=qemu-riscv64 ;;
*)
  echo "cross.sh: unknown architecture $arch" >&2
  exit 2
  ;;
esac
srcdir=$(cd "$(dirname "$0")/.." && pwd)
build=${2:-${TMPDIR:-/tmp}/rsmalloc-cross-$arch}
[ $# -ge 2 ] && shift 2 || shift $#
# An x86-64 kernel runs i386 programs itself: no emulator, and the tests
# that fork run as they do natively. Not every one does: some VMs' kernels
# refuse 32-bit programs ("Exec format error"; IA32 emulation off), and
# there the tests run under qemu-i386 like the other architectures'.
if [ "$triplet" = i686-linux-gnu ] && [ "$(uname -m)" = x86_64 ] &&
  [ -z "${RS_QEMU:-}" ]; then
  probe=$(mktemp -d)
  echo 'int main(void) { return 0; }' >"$probe/p.c"
  if "$triplet-gcc" -o "$probe/p" "$probe/p.c" 2>/dev/null &&
    "$probe/p" 2>/dev/null; then
    qemu=native
  else
    echo "cross.sh: this kernel does not run i386 programs; using $qemu" >&2
  fi
  rm -rf "$probe"
fi
qemu=${RS_QEMU:-$qemu}
for tool in "$triplet-g++" "$qemu"; do
  [ "$tool" = native ] && continue
  command -v "$tool" >/dev/null || {
    echo "cross.sh: $tool not found" >&2
    exit 2
  }
done
# qemu-user 7.2 (Debian 12) aborts in the child when a program with
# threads forks and the child starts one (qemu_plugin_vcpu_init_hook:
# assertion failed; test_stress, rseq/test_fork): 8 or later is needed,
# e.g. bookworm-backports' qemu-user 1:10.0.2 (or RS_QEMU=/path/to/it).
# That one still leaves its fd-table lock held in a child forked while
# another thread is in read or write (QEMU issue 2846): test_fork_hang
# tells such a child from a real hang (tests/emulator_stuck.h).
if [ "$qemu" != native ]; then
  version=$("$qemu" --version | sed -n 's/.* version \([0-9]*\)\..*/\1/p')
  if [ "${version:-0}" -lt 8 ]; then
    echo "cross.sh: $qemu is version ${version:-unknown}; forking tests" \
      "need qemu-user 8 or later (apt-get install -t bookworm-backports" \
      "qemu-user, or RS_QEMU=/path/to/qemu-${qemu##*qemu-})" >&2
    exit 2
  fi
fi
# The i686 toolchain's multiarch directory is i386-linux-gnu.
multiarch=$triplet
[ "$arch" = i686 ] || [ "$arch" = i386 ] && multiarch=i386-linux-gnu
if [ ! -e "/lib/$multiarch/libc.so.6" ]; then
  echo "cross.sh: /lib/$multiarch/libc.so.6 missing: install libc6 and" \
    "libstdc++6 for the target's Debian architecture (see the top of $0)" >&2
  exit 2
fi
mkdir -p "$build"
# A tree configured in place (./configure; make) cannot also serve a VPATH
# build (make would take its test logs for the cross build's): then the
# build uses a copy of the sources (what git tracks or would track) in
# BUILDDIR/src, refreshed on every run. Only files whose content changed
# are copied (with a new time), so make rebuilds exactly what depends on
# them.
src=$srcdir
if [ -f "$srcdir/config.status" ]; then
  src=$build/src
  stage=$build/src.new
  rm -rf "$stage"
  mkdir -p "$stage" "$src"
  (cd "$srcdir" && git ls-files -z -co --exclude-standard |
    tar --null --ignore-failed-read -T - -cf -) | tar -C "$stage" -xf -
  (cd "$stage" && find . -type f) | while IFS= read -r f; do
    cmp -s "$stage/$f" "$src/$f" && continue
    mkdir -p "$(dirname "$src/$f")"
    cp "$stage/$f" "$src/$f"
  done
  rm -rf "$stage"
  [ -x "$src/configure" ] || (cd "$src" && autoreconf -fi)
fi
cd "$build"
# Configured for another source tree (the copy comes and goes with the
# in-place build): configure again.
if [ -f Makefile ] && ! grep -qx "srcdir = $src" Makefile; then
  rm -f Makefile
fi
if [ ! -f Makefile ]; then
  PKG_CONFIG_LIBDIR=/usr/lib/$multiarch/pkgconfig:/usr/share/pkgconfig \
    "$src/configure" -q --host="$triplet" --enable-werror
fi
make -j"${RS_JOBS:-2}"
make -j"${RS_JOBS:-2}" check \
  LOG_COMPILER="$srcdir/tests/cross-run.sh" \
  SH_LOG_COMPILER="$srcdir/tests/cross-run.sh" \
  RS_QEMU="$qemu" QEMU_LD_PREFIX=/ "$@"
