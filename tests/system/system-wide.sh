#!/bin/sh
# SPDX-License-Identifier: MIT
# rsmalloc in /etc/ld.so.preload, without touching the machine: in a private
# mount namespace, an overlay on /etc adds an ld.so.preload that names the
# built library, and real programs run on it: bash, python3, perl, sort,
# apt-cache, g++ (and the program it builds), and setuid programs (passwd
# run by nobody, which must ignore RSMALLOC_*; su run by root). The host's
# /etc/ld.so.preload is compared before and after. Root only; skipped where
# mount namespaces or overlayfs are not allowed.
. "$(dirname "$0")/../lib.sh"
# CI sets RSMALLOC_TEST_REQUIRE_SYSTEM=1: there, whatever this test cannot
# do (no root, no mount namespace or overlayfs, a missing program) is a
# failure, never a skip that passes silently.
if [ "${RSMALLOC_TEST_REQUIRE_SYSTEM:-0}" = 1 ]; then
  skip() { not_ok "skipped, but RSMALLOC_TEST_REQUIRE_SYSTEM=1: $*"; }
  skip_all() {
    not_ok "skipped, but RSMALLOC_TEST_REQUIRE_SYSTEM=1: $*"
    finish
  }
fi

if [ "${1:-}" != --inside ]; then
  # ---- outside: set up, run this script again in a namespace, check ----
  [ "$(id -u)" = 0 ] || skip_all "needs root for a mount namespace"
  command -v unshare >/dev/null 2>&1 || skip_all "unshare not found"
  unshare --mount --propagation private true 2>/dev/null ||
    skip_all "unshare --mount is not permitted here"
  [ -f "$RSMALLOC_LIB" ] || { not_ok "the library $RSMALLOC_LIB exists (build it first)"; finish; }

  preload_state() {
    for f in /etc/ld.so.preload /etc/suid-debug; do
      if [ -e "$f" ]; then printf '%s %s\n' "$f" "$(cksum <"$f")"; else echo "$f absent"; fi
    done
  }
  before=$(preload_state)

  # Everything the programs load must be readable by nobody: a stage in
  # /tmp, not under a private TMPDIR or the build tree.
  stage=$(mktemp -d /tmp/rsmalloc-system-wide.XXXXXX) || { not_ok "mktemp"; finish; }
  trap 'rm -rf "$stage"' EXIT
  chmod 755 "$stage"
  mkdir "$stage/up" "$stage/work" "$stage/lib" "$stage/out"
  cp "$RSMALLOC_LIB" "$stage/lib/librsmalloc.so.0" && chmod 644 "$stage/lib/librsmalloc.so.0"
  echo "$stage/lib/librsmalloc.so.0" >"$stage/up/ld.so.preload"
  # /etc/suid-debug lets LD_DEBUG show what a setuid program loads.
  : >"$stage/up/suid-debug"

  unshare --mount --propagation private sh "$0" --inside "$stage"
  rc=$?
  [ $rc -ne 77 ] || skip_all "overlayfs cannot be mounted on /etc here"
  if [ -f "$stage/counts" ]; then
    read -r p f s <"$stage/counts"
    rs_passed=$((rs_passed + p))
    rs_failed=$((rs_failed + f))
    rs_skipped=$((rs_skipped + s))
  else
    not_ok "the checks inside the namespace ran to the end (status $rc)"
  fi

  check "the host's /etc/ld.so.preload and /etc/suid-debug are unchanged" \
    test "$(preload_state)" = "$before"
  check "a process outside the namespace does not map the staged library" \
    test "$(grep -c "$stage" /proc/self/maps)" = 0
  finish
fi

# ---- inside the namespace ---------------------------------------------------
stage=$2
d=$stage/out
lib=$stage/lib/librsmalloc.so.0
unset LD_PRELOAD RSMALLOC_DISABLE RSMALLOC_VERBOSE RSMALLOC_RSEQ \
  RSMALLOC_CPU_CACHE RSMALLOC_DECAY_MS RSMALLOC_THP RSMALLOC_STATS LD_DEBUG

save_counts() {
  echo "$rs_passed $rs_failed $rs_skipped" >"$stage/counts"
}

mount -t overlay overlay \
  -o "lowerdir=/etc,upperdir=$stage/up,workdir=$stage/work" /etc 2>"$d/mount" ||
  { show "$d/mount"; exit 77; }
check "/etc/ld.so.preload in the namespace names the library" \
  grep -qxF "$lib" /etc/ld.so.preload

# run NAME COMMAND...: COMMAND with RSMALLOC_VERBOSE=1 RSMALLOC_STATS=json;
# stdout in $d/NAME.out, stderr in $d/NAME.err, exit status in $rc.
run() {
  name=$1
  shift
  RSMALLOC_VERBOSE=1 RSMALLOC_STATS=json "$@" >"$d/$name.out" 2>"$d/$name.err" </dev/null
  rc=$?
}

# served NAME: rsmalloc started (its RSMALLOC_VERBOSE lines), the loader
# did not complain, and, unless $stats is "no", rsmalloc served allocations
# (its exit statistics list size classes). GNU coreutils close standard
# error at exit, before rsmalloc can print its statistics: stats=no there.
stats=yes
served() {
  grep -q '^rsmalloc: version ' "$d/$1.err" &&
    grep -q '^rsmalloc: cache mode ' "$d/$1.err" &&
    ! grep -q -e 'cannot be preloaded' -e '^rsmalloc: fatal' -e 'invalid pointer' "$d/$1.err" &&
    { [ $stats = no ] || grep -q '"classes": \[{"class"' "$d/$1.err"; }
}

# expect NAME DESCRIPTION STRING...: exit status 0, every STRING on stdout,
# rsmalloc served it.
expect() {
  name=$1
  desc=$2
  shift 2
  good=yes
  [ "$rc" -eq 0 ] || good=no
  for s in "$@"; do
    [ -z "$s" ] || grep -qF -- "$s" "$d/$name.out" || good=no
  done
  served "$name" || good=no
  check "$desc" test $good = yes || {
    echo "    exit status $rc; stdout:"
    show "$d/$name.out" 10
    echo "    stderr:"
    show "$d/$name.err" 10
  }
}

stats=no
run grep grep -c librsmalloc /proc/self/maps
expect grep "grep runs on rsmalloc" ""
stats=yes
check "grep's /proc/self/maps shows librsmalloc" test "$(cat "$d/grep.out")" -ge 1

if command -v bash >/dev/null 2>&1; then
  # shellcheck disable=SC2016 # for bash to expand
  run bash bash -c 'a=(); for i in $(seq 1000); do a+=("x$i"); done; echo "n=${#a[@]}";
    grep -q librsmalloc /proc/$$/maps && echo mapped'
  expect bash "bash -c runs on rsmalloc" "n=1000" mapped
else
  skip "bash not installed"
fi

python=$(command -v /usr/bin/python3 || command -v python3)
if [ -n "$python" ]; then
  run python "$python" -c '
import json
d = {str(i): [i] * 3 for i in range(100000)}
print(len(json.dumps(d)) > 0, len(d))
print("mapped" if "librsmalloc" in open("/proc/self/maps").read() else "absent")'
  expect python "python3 runs on rsmalloc" "True 100000" mapped
else
  skip "python3 not installed"
fi

if command -v perl >/dev/null 2>&1; then
  run perl perl -e '
my %h; $h{$_} = $_ x 3 for 1 .. 100000;
print scalar(keys %h), "\n";
open(my $m, "<", "/proc/self/maps") or die;
print((grep { /librsmalloc/ } <$m>) ? "mapped\n" : "absent\n");'
  expect perl "perl runs on rsmalloc" 100000 mapped
else
  skip "perl not installed"
fi

seq 1 200000 | awk '{ print ($1 * 7919) % 200003 }' >"$d/numbers"
stats=no
run sort sort -n -o "$d/sorted" "$d/numbers"
expect sort "sort sorts 200000 numbers on rsmalloc" ""
check "sort's output is sorted and complete" sh -c \
  "sort -n -c '$d/sorted' && test \$(wc -l <'$d/sorted') -eq 200000"
run sortmaps sort /proc/self/maps
expect sortmaps "sort's /proc/self/maps shows librsmalloc" librsmalloc
stats=yes

if command -v apt-cache >/dev/null 2>&1; then
  run apt apt-cache policy apt
  expect apt "apt-cache policy runs on rsmalloc" "apt:" "Installed:"
else
  skip "apt-cache not installed"
fi

cxx=${CXX:-g++}
if command -v "$cxx" >/dev/null 2>&1; then
  cat >"$d/hello.cc" <<'EOF'
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

int main() {
  std::map<std::string, std::vector<std::unique_ptr<int>>> m;
  for (int i = 0; i < 20000; i++)
    m[std::to_string(i % 100)].push_back(std::make_unique<int>(i));
  std::ifstream maps("/proc/self/maps");
  std::string line;
  bool mapped = false;
  while (std::getline(maps, line))
    if (line.find("librsmalloc") != std::string::npos)
      mapped = true;
  std::cout << m.size() << ' ' << m["7"].size() << ' ' << *m["7"].back()
            << (mapped ? " mapped" : " absent") << '\n';
}
EOF
  stats=no  # the driver's children print them, not all of them
  run gxx "$cxx" -O1 -o "$d/hello" "$d/hello.cc"
  expect gxx "$cxx compiles a C++ program on rsmalloc" ""
  stats=yes
  run hello "$d/hello"
  expect hello "the compiled C++ program runs on rsmalloc" "100 200 19907 mapped"
else
  skip "g++ not installed"
fi

# Setuid: passwd run by nobody runs in secure-execution mode (AT_SECURE).
# The loader still loads the library (LD_DEBUG, allowed by the staged
# /etc/suid-debug, shows it) but rsmalloc ignores RSMALLOC_*. The control:
# a plain program run by nobody in the same way honours RSMALLOC_VERBOSE.
as_nobody="setpriv --reuid=65534 --regid=65534 --clear-groups"
passwd=$(command -v passwd)
if ! command -v setpriv >/dev/null 2>&1; then
  skip "setuid checks: setpriv not installed"
elif [ -z "$passwd" ] || [ ! -u "$passwd" ]; then
  skip "setuid checks: no setuid passwd"
else
  $as_nobody env RSMALLOC_VERBOSE=1 /bin/true >"$d/control.out" 2>"$d/control.err" </dev/null
  rc=$?
  check "nobody's plain program honours RSMALLOC_VERBOSE (control)" \
    test $rc -eq 0 -a "$(grep -c '^rsmalloc: version ' "$d/control.err")" -eq 1 ||
    show "$d/control.err"

  $as_nobody env RSMALLOC_VERBOSE=1 RSMALLOC_STATS=1 LD_DEBUG=libs \
    "$passwd" --help >"$d/passwd.out" 2>"$d/passwd.err" </dev/null
  rc=$?
  check "setuid passwd --help run by nobody works" \
    test $rc -eq 0 -a "$(grep -c 'Usage: passwd' "$d/passwd.out")" -ge 1 ||
    show "$d/passwd.out"
  check "setuid passwd loads librsmalloc (LD_DEBUG)" \
    grep -qF "calling init: $lib" "$d/passwd.err" ||
    show "$d/passwd.err"
  check "setuid passwd ignores RSMALLOC_VERBOSE and RSMALLOC_STATS (AT_SECURE)" \
    test "$(grep -c '^rsmalloc:' "$d/passwd.err")" -eq 0 ||
    show "$d/passwd.err"
fi

if ! getent passwd nobody >/dev/null 2>&1; then
  skip "su check: no user nobody"
elif command -v su >/dev/null 2>&1 && [ -u "$(command -v su)" ]; then
  su -s /bin/sh nobody -c 'cat /proc/self/maps' >"$d/su.out" 2>"$d/su.err" </dev/null
  rc=$?
  check "su -s /bin/sh nobody run by root works and nobody's cat maps librsmalloc" \
    test $rc -eq 0 -a "$(grep -c librsmalloc "$d/su.out")" -ge 1 ||
    { echo "    exit status $rc"; show "$d/su.err"; }
else
  skip "su not installed"
fi

save_counts
exit 0
