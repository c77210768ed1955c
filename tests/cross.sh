#!/bin/sh
# SPDX-License-Identifier: MIT
# Cross-builds rsmalloc for one Debian architecture in its own directory and
# runs its test programs under qemu-user (tests/cross-run.sh):
#   tests/cross.sh aarch64 [BUILDDIR]      (or: make check-cross ARCH=aarch64)
# ARCH is aarch64, armhf, i686, ppc64el, s390x or riscv64. Needs the cross
# compiler (g++-<triplet>), qemu-user, and Check for the target
# (dpkg --add-architecture arm64; apt-get install check:arm64).
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
for tool in "$triplet-g++" "$qemu"; do
  command -v "$tool" >/dev/null || {
    echo "cross.sh: $tool not found" >&2
    exit 2
  }
done
# The i686 toolchain's multiarch directory is i386-linux-gnu.
multiarch=$triplet
[ "$arch" = i686 ] || [ "$arch" = i386 ] && multiarch=i386-linux-gnu
sysroot=/usr/$triplet
mkdir -p "$build"
cd "$build"
if [ ! -f Makefile ]; then
  PKG_CONFIG_LIBDIR=/usr/lib/$multiarch/pkgconfig:/usr/share/pkgconfig \
    "$srcdir/configure" -q --host="$triplet" --enable-werror
fi
make -j"${RS_JOBS:-2}"
make -j"${RS_JOBS:-2}" check \
  LOG_COMPILER="$srcdir/tests/cross-run.sh" \
  SH_LOG_COMPILER="$srcdir/tests/cross-run.sh" \
  RS_QEMU="$qemu" QEMU_LD_PREFIX="$sysroot" "$@"
