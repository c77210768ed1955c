#!/bin/sh
# SPDX-License-Identifier: MIT
# The aarch64 rseq sections on a real arm64 kernel (make check-system-aarch64).
# qemu-user has no rseq, so this boots Debian's arm64 kernel under
# qemu-system-aarch64 (-M virt -cpu max -smp 4, TCG) with an initramfs that
# holds the rseq tests (tests/rseq/: conservation, injection, signal storm,
# drain, fork), the cross libc and busybox. Its /init checks that
# RSMALLOC_VERBOSE=1 reports rseq/cpu_id or rseq/mm_cid, runs every test
# REPEAT times in rseq mode, prints "N passed, N failed" and powers off.
#   tests/system-aarch64.sh [WORKDIR]     (default /tmp/rsmalloc-system-aarch64)
# Environment: REPEAT (20), PROGRAMS (a subset of the five, by name),
# SMP (4), MEM (1G), RSEQ_TEST_MS (500: the timed phases of the signal and
# drain tests), QEMU_TIMEOUT (seconds for the whole boot, default 300 +
# 150 * REPEAT), RS_JOBS (2).
# Needs: g++-aarch64-linux-gnu, qemu-system-arm, cpio, check:arm64, and apt
# access for linux-image-arm64 and busybox-static:arm64; as root it installs
# what is missing (dpkg --add-architecture arm64 first). Without them and
# without root: exit 77 (skipped), saying what to install.
# What it can and cannot show: TCG runs every guest CPU on host threads, so
# preemption, migration, signals and membarrier really abort the sections
# (the injection test asserts aborts > 0); but an x86-64 host keeps the
# guest's loads in order, so arm64's weaker ordering is argued in
# docs/rseq.md ("AArch64"), not tested here.
set -eu
srcdir=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-${TMPDIR:-/tmp}/rsmalloc-system-aarch64}
REPEAT=${REPEAT:-20}
SMP=${SMP:-4}
MEM=${MEM:-1G}
RSEQ_TEST_MS=${RSEQ_TEST_MS:-500}
QEMU_TIMEOUT=${QEMU_TIMEOUT:-$((300 + 150 * REPEAT))}
triplet=aarch64-linux-gnu
start=$(date +%s)

say() { echo "system-aarch64: $*"; }

# --- 1. Tools and packages -------------------------------------------------
need=""
command -v "$triplet-g++" >/dev/null || need="$need g++-$triplet"
command -v qemu-system-aarch64 >/dev/null || need="$need qemu-system-arm"
command -v cpio >/dev/null || need="$need cpio"
[ -e /usr/lib/$triplet/pkgconfig/check.pc ] || need="$need check:arm64"
if [ -n "$need" ]; then
  if [ "$(id -u)" != 0 ]; then
    say "missing:$need (as root: dpkg --add-architecture arm64;" \
      "apt-get update; apt-get install$need); skipped"
    exit 77
  fi
  say "installing:$need"
  dpkg --print-foreign-architectures | grep -qx arm64 || {
    dpkg --add-architecture arm64
    apt-get update -q
  }
  # shellcheck disable=SC2086 # one word per package
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends $need
fi

mkdir -p "$work/debs"
work=$(cd "$work" && pwd)
# The kernel: linux-image-arm64 depends on the versioned image package.
kernel=$(find "$work/debs" -path '*/boot/vmlinuz-*' 2>/dev/null | head -n 1)
if [ -z "$kernel" ]; then
  dpkg --print-foreign-architectures | grep -qx arm64 || {
    say "the arm64 architecture is not added to dpkg" \
      "(dpkg --add-architecture arm64; apt-get update); skipped"
    exit 77
  }
  image=$(apt-cache depends linux-image-arm64:arm64 |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
  [ -n "$image" ] || {
    say "apt knows no linux-image-arm64 dependency"
    exit 2
  }
  say "downloading $image and busybox-static:arm64"
  (cd "$work/debs" && apt-get download -q "$image" busybox-static:arm64)
  for deb in "$work"/debs/*.deb; do
    dpkg-deb -x "$deb" "$work/debs/root"
  done
  kernel=$(find "$work/debs" -path '*/boot/vmlinuz-*' | head -n 1)
fi
[ -n "$kernel" ] && [ -x "$work/debs/root/bin/busybox" ] || {
  say "no kernel or busybox in $work/debs"
  exit 2
}
# Debian's arm64 vmlinuz is the raw Image; qemu -kernel also takes a
# gzip'd one only as an ELF or uImage, so a gzip'd Image is unpacked.
if gzip -t "$kernel" 2>/dev/null; then
  gzip -dc "$kernel" >"$work/Image"
  kernel=$work/Image
fi

# --- 2. Cross build -------------------------------------------------------
# A tree configured in place (./configure in the source directory) cannot
# also serve a VPATH build: make would find its x86-64 objects. Then the
# build uses a copy of the sources (git's tracked and new files, mtimes
# kept so that make rebuilds only what changed), autoreconf'd once.
src=$srcdir
if [ -f "$srcdir/config.status" ]; then
  src=$work/src
  mkdir -p "$src"
  (cd "$srcdir" && git ls-files -co --exclude-standard -z |
    xargs -0 tar -cf - 2>/dev/null) | (cd "$src" && tar -xpf -)
  [ -x "$src/configure" ] || (cd "$src" && autoreconf -fi >/dev/null 2>&1)
fi
build=$work/build
if [ "$(cat "$work/build.src" 2>/dev/null)" != "$src" ]; then
  rm -rf "$build"
  echo "$src" >"$work/build.src"
fi
mkdir -p "$build"
(
  cd "$build"
  if [ ! -f Makefile ]; then
    PKG_CONFIG_LIBDIR=/usr/lib/$triplet/pkgconfig:/usr/share/pkgconfig \
      "$src/configure" -q --host="$triplet" --enable-werror
  fi
  make -j"${RS_JOBS:-2}" && make -j"${RS_JOBS:-2}" check TESTS=
) >"$work/build.log" 2>&1 || {
  tail -n 30 "$work/build.log"
  say "cross build failed; log: $work/build.log"
  exit 1
}

# The hit path's instruction budget of the aarch64 build (its own lines in
# tests/fastpath-insns.txt).
insns_rc=0
RSMALLOC_LIB=$build/lib/.libs/librsmalloc.so top_srcdir=$srcdir \
  sh "$srcdir/tests/fastpath-insns.sh" >"$work/insns.log" 2>&1 || insns_rc=$?
sed 's/^/system-aarch64: /' "$work/insns.log"

# --- 3. The initramfs -----------------------------------------------------
root=$work/initramfs
rm -rf "$root"
mkdir -p "$root/bin" "$root/lib" "$root/t" "$root/proc" "$root/sys" \
  "$root/dev" "$root/tmp"
cp "$work/debs/root/bin/busybox" "$root/bin/"
programs=${PROGRAMS:-test_conservation test_inject test_signals test_drain test_fork}
for p in $programs; do
  # Programs linked with the uninstalled library are libtool wrappers; the
  # real binary is in .libs.
  if [ -f "$build/tests/rseq/.libs/$p" ]; then
    cp "$build/tests/rseq/.libs/$p" "$root/t/"
  else
    cp "$build/tests/rseq/$p" "$root/t/"
  fi
done
cp -L "$build/lib/.libs/librsmalloc.so.0" "$root/lib/"
# Every shared library the programs need, from the cross libc and the
# arm64 packages (libcheck, libsubunit), found by NEEDED entries.
find_lib() {
  for d in /usr/$triplet/lib /usr/lib/$triplet /lib/$triplet; do
    [ -e "$d/$1" ] && {
      echo "$d/$1"
      return 0
    }
  done
  return 1
}
todo=$(for f in "$root"/t/* "$root/lib/librsmalloc.so.0"; do
  "$triplet-readelf" -d "$f" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'
done | sort -u)
while [ -n "$todo" ]; do
  next=""
  for lib in $todo; do
    [ -e "$root/lib/$lib" ] && continue
    path=$(find_lib "$lib") || {
      say "cannot find $lib for $triplet"
      exit 2
    }
    cp -L "$path" "$root/lib/"
    next="$next $("$triplet-readelf" -d "$path" |
      sed -n 's/.*Shared library: \[\(.*\)\]/\1/p')"
  done
  todo=$(echo "$next" | tr ' ' '\n' | sort -u | tr '\n' ' ' | sed 's/^ *//')
done
cat >"$root/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
# RS_TEST_EMULATED: the tests' liveness minimums (at_least) are divided by
# 20 under TCG (tests/on_valgrind.h); conservation checks are unchanged.
# CK_TIMEOUT_MULTIPLIER: Check's per-test timeouts, stretched 5 times (the
# children of the fork tests keep their own alarms).
export PATH=/bin LD_LIBRARY_PATH=/lib RSEQ_TEST_MS=$RSEQ_TEST_MS RS_TEST_EMULATED=1
export CK_TIMEOUT_MULTIPLIER=5
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs tmp /tmp
REPEAT=$REPEAT
programs="$programs"
EOF
cat >>"$root/init" <<'EOF'
echo "rsmalloc-aarch64: Linux $(uname -r), $(nproc) CPUs," \
  "$(free -m | awk '$1 == "Mem:" { print $2 }') MiB"
passed=0
failed=0
# The mode the real library chooses, from RSMALLOC_VERBOSE=1 (any program
# linked with it; CK_RUN_CASE selects a case that only reports the mode).
mode=$(RSMALLOC_VERBOSE=1 CK_RUN_CASE=none /t/test_signals 2>&1 |
  sed -n 's/^rsmalloc: cache mode //p' | head -n 1)
echo "rsmalloc-aarch64: RSMALLOC_VERBOSE=1 says: ${mode:-nothing}"
case $mode in
rseq/*) passed=$((passed + 1)) ;;
*) failed=$((failed + 1)) ;;
esac
i=1
while [ "$i" -le "$REPEAT" ]; do
  for p in $programs; do
    t0=$(date +%s)
    if /t/$p >/tmp/out 2>&1; then
      rc=0
    else
      rc=$?
    fi
    # The allocation suites name the mode they ran in; it must be rseq.
    case $p in
    test_signals | test_drain | test_fork)
      grep -q 'mode rseq/' /tmp/out || { [ "$rc" -ne 0 ] || rc=98; } ;;
    esac
    if [ "$rc" -eq 0 ]; then
      passed=$((passed + 1))
      aborts=$(sed -n 's/.*: \([0-9][0-9]*\) rseq aborts in .*/\1/p' /tmp/out |
        awk '{ s += $1 } END { if (NR) printf " (%d rseq aborts)", s }')
      echo "rsmalloc-aarch64: run $i $p: pass, $(($(date +%s) - t0)) s$aborts"
    else
      failed=$((failed + 1))
      echo "rsmalloc-aarch64: run $i $p: FAIL (exit $rc); its output:"
      tail -n 40 /tmp/out | sed 's/^/rsmalloc-aarch64:   /'
      dmesg | tail -n 12 | sed 's/^/rsmalloc-aarch64:   kernel: /'
    fi
  done
  i=$((i + 1))
done
echo "rsmalloc-aarch64: RESULT $passed passed, $failed failed"
sync
poweroff -f
EOF
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 >"$work/initramfs.gz"
say "initramfs: $(du -h "$work/initramfs.gz" | cut -f1); booting" \
  "$(basename "$kernel") with -smp $SMP, $REPEAT runs (timeout ${QEMU_TIMEOUT}s)"

# --- 4. Boot --------------------------------------------------------------
log=$work/console.log
set +e
timeout -k 10 "$QEMU_TIMEOUT" qemu-system-aarch64 -M virt -cpu max,pauth-impdef=on \
  -smp "$SMP" -m "$MEM" -nographic -no-reboot -nic none \
  -accel tcg,thread=multi \
  -kernel "$kernel" -initrd "$work/initramfs.gz" \
  -append "console=ttyAMA0 panic=-1 quiet loglevel=3 rdinit=/init" \
  </dev/null 2>&1 | tee "$log" | grep --line-buffered 'rsmalloc-aarch64:'
qrc=$?
set -e
elapsed=$(($(date +%s) - start))
result=$(sed -n 's/.*rsmalloc-aarch64: RESULT \([0-9]* passed, [0-9]* failed\).*/\1/p' "$log" | tr -d '\r')
if [ -z "$result" ]; then
  say "no result line (qemu exit $qrc; timeout ${QEMU_TIMEOUT}s?);" \
    "console log: $log"
  exit 1
fi
say "$result in ${elapsed}s wall time (REPEAT=$REPEAT, -smp $SMP)"
if [ "$insns_rc" -ne 0 ] && [ "$insns_rc" -ne 77 ]; then
  say "FAIL: the aarch64 hit path is over its budget (see above)"
  exit 1
fi
case $result in
*" 0 failed") exit 0 ;;
*) exit 1 ;;
esac
