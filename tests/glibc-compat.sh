#!/bin/sh
# SPDX-License-Identifier: MIT
# glibc's behaviours (tests/test_glibc_compat): in rseq mode, with
# RSMALLOC_RSEQ=0, and with RSMALLOC_DISABLE=1, where glibc itself answers,
# so the expectations are shown to be glibc's. MALLOC_PERTURB_ fills new
# memory with the complement of its byte, a bad value is ignored, and a
# setuid program ignores it: that last check runs the probe setuid under
# /etc/ld.so.preload in a private mount namespace (root only; a skip
# unless RSMALLOC_TEST_REQUIRE_SYSTEM=1, which makes it a failure).
. "$(dirname "$0")/lib.sh"

prog=$top_builddir/tests/test_glibc_compat
probe=$top_builddir/tests/perturb_probe
[ -x "$prog" ] && [ -x "$probe" ] || skip_all "test programs not built"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

run() { # NAME ENV...: the Check program with the environment given
  name=$1
  shift
  check "test_glibc_compat, $name" env "$@" "$prog" >"$out/$name" 2>&1 ||
    show "$out/$name" 30
}
run default RSMALLOC_X=1
run rseq0 RSMALLOC_RSEQ=0
run glibc RSMALLOC_DISABLE=1
run perturb-env MALLOC_PERTURB_=0x33 RS_EXPECT_FILL=0xcc
run perturb-env-decimal MALLOC_PERTURB_=200 RS_EXPECT_FILL=55
run perturb-env-bad MALLOC_PERTURB_=300 RS_EXPECT_FILL=none
run perturb-env-bad2 MALLOC_PERTURB_=0x1z RS_EXPECT_FILL=none

# MALLOC_PERTURB_ alone in the environment (rsmalloc looks its settings up
# only when a MALLOC_ or RSMALLOC_ variable is there: this one must count).
env -i MALLOC_PERTURB_=0x33 LD_PRELOAD="$RSMALLOC_LIB" "$probe" >"$out/alone" 2>&1
check "MALLOC_PERTURB_ alone in the environment is honoured" \
  grep -q "fill=0xcc" "$out/alone" || show "$out/alone"

# A bad MALLOC_PERTURB_ is ignored without a word, as glibc does.
MALLOC_PERTURB_=junk LD_PRELOAD=$RSMALLOC_LIB /bin/true 2>"$out/junk"
check "a bad MALLOC_PERTURB_ prints nothing" test ! -s "$out/junk" ||
  show "$out/junk"

# ---- setuid ----------------------------------------------------------------
no_system() {
  if [ "${RSMALLOC_TEST_REQUIRE_SYSTEM:-0}" = 1 ]; then
    not_ok "setuid MALLOC_PERTURB_ check: $*"
  else
    skip "setuid MALLOC_PERTURB_ check: $*"
  fi
}
if [ "$(id -u)" != 0 ]; then
  no_system "needs root"
elif ! command -v setpriv >/dev/null 2>&1; then
  no_system "setpriv not installed"
elif ! unshare --mount --propagation private true 2>/dev/null; then
  no_system "unshare --mount is not permitted here"
else
  stage=$(mktemp -d /tmp/rsmalloc-perturb.XXXXXX)
  chmod 755 "$stage"
  mkdir "$stage/up" "$stage/work"
  cp "$RSMALLOC_LIB" "$stage/librsmalloc.so.0"
  chmod 644 "$stage/librsmalloc.so.0"
  echo "$stage/librsmalloc.so.0" >"$stage/up/ld.so.preload"
  # The probe is a plain program (no libtool wrapper): copy the binary.
  real=$probe
  [ -x "$top_builddir/tests/.libs/perturb_probe" ] &&
    real=$top_builddir/tests/.libs/perturb_probe
  cp "$real" "$stage/probe"
  chown 0:0 "$stage/probe"
  chmod 4755 "$stage/probe"
  unshare --mount --propagation private sh -c "
    mount -t overlay overlay \
      -o lowerdir=/etc,upperdir=$stage/up,workdir=$stage/work /etc || exit 77
    MALLOC_PERTURB_=0x33 $stage/probe >$stage/plain 2>&1
    MALLOC_PERTURB_=0x33 setpriv --reuid=65534 --regid=65534 \
      --clear-groups $stage/probe >$stage/setuid 2>&1"
  rc=$?
  if [ $rc = 77 ]; then
    no_system "overlayfs cannot be mounted on /etc here"
  else
    check "under ld.so.preload, MALLOC_PERTURB_=0x33 fills with 0xcc" \
      grep -q '^mode=rseq.* fill=0xcc$\|^mode=fallback.* fill=0xcc$' \
      "$stage/plain" || show "$stage/plain"
    check "a setuid program on rsmalloc ignores MALLOC_PERTURB_" \
      grep -q '^mode=[rf].* fill=0$' "$stage/setuid" || show "$stage/setuid"
  fi
  rm -rf "$stage"
fi
finish
