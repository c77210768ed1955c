# SPDX-License-Identifier: MIT
# Shared by tests/stat/*.sh, sourced after ../lib.sh: starting and stopping
# the test processes (tests/stat/stat_target), and running the command.

cmd=$top_srcdir/tools/rsmalloc
target=$top_builddir/tests/stat/stat_target
RSMALLOC_STAT_HELPER=$top_builddir/tools/rsmalloc-stat
export RSMALLOC_STAT_HELPER
unset LD_PRELOAD RSMALLOC_LIBRARY RSMALLOC_STATS RSMALLOC_DISABLE \
  RSMALLOC_VERBOSE RSMALLOC_STAT_TEST_PAUSE_MS
for f in "$RSMALLOC_LIB" "$target" "$RSMALLOC_STAT_HELPER"; do
  [ -e "$f" ] || { not_ok "$f exists (build it first)"; finish; }
done
# Yama's ptrace_scope 2 lets only root read other processes, 3 nobody: then
# nothing here can run (stat_target lifts scope 1 for itself).
scope=$(cat /proc/sys/kernel/yama/ptrace_scope 2>/dev/null || echo 0)
if [ "$scope" -ge 3 ] || { [ "$scope" -ge 2 ] && [ "$(id -u)" -ne 0 ]; }; then
  skip "kernel.yama.ptrace_scope is $scope: no process may be read here"
  [ "${RSMALLOC_TEST_REQUIRE_SYSTEM:-0}" = 1 ] && not_ok "skipped, but RSMALLOC_TEST_REQUIRE_SYSTEM=1"
  finish
fi
tmp=$(mktemp -d /tmp/rsmalloc-stat.XXXXXX) || { not_ok mktemp; finish; }
chmod 755 "$tmp"
rs_pids=
rs_cleanup() {
  {
    for p in $rs_pids; do kill -9 "$p"; done
    wait
  } 2>/dev/null
  rm -rf "$tmp"
}
trap rs_cleanup EXIT

# rs_start NAME on|off|LIBRARY MODE [N]: starts stat_target MODE in
# $tmp/NAME, on rsmalloc (preloaded), or not, or with LIBRARY preloaded, as
# the user in $rs_as (a setpriv prefix, or empty); waits until it is ready.
# Sets $pid; false when it did not start.
rs_as=
rs_start() {
  name=$1
  how=$2
  mode=$3
  shift 3
  mkdir -p "$tmp/$name"
  chmod 777 "$tmp/$name"
  [ "$how" = on ] && how=$RSMALLOC_LIB
  if [ "$how" != off ]; then
    # shellcheck disable=SC2086 # rs_as is a command prefix
    env LD_PRELOAD="$how" $rs_as "$target" "$mode" "$tmp/$name" "$@" \
      >"$tmp/$name.out" 2>&1 &
  else
    # shellcheck disable=SC2086
    $rs_as "$target" "$mode" "$tmp/$name" "$@" >"$tmp/$name.out" 2>&1 &
  fi
  pid=$!
  rs_pids="$rs_pids $pid"
  i=0
  while [ ! -e "$tmp/$name/ready" ]; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
      show "$tmp/$name.out"
      return 1
    fi
    sleep 0.1
  done
}

# rs ARGS...: the command, its output in $tmp/out and $tmp/err, its exit
# status in $rc.
rs() {
  "$cmd" "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
}

# one_error PATTERN: the last command failed as an error must: status 1,
# nothing on stdout, one line on stderr that matches PATTERN.
one_error() {
  [ "$rc" -eq 1 ] && [ ! -s "$tmp/out" ] &&
    [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q -- "$1" "$tmp/err"
}

# field FILE NAME: the top-level number NAME of a JSON statistics line.
field() {
  sed -n "s/.*\"$2\": \([0-9]*\).*/\1/p" "$1" | head -n 1
}

# class_in_use FILE SIZE: in_use of the class of SIZE bytes (0 if absent).
class_in_use() {
  tr '{' '\n' <"$1" |
    sed -n "s/.*\"size\": $2, \"in_use\": \([0-9]*\),.*/\1/p" | grep . ||
    echo 0
}

# The library's part of `rsmalloc stat --json`: without what the tool adds.
library_part() {
  sed 's/, "pid": .*$/}/' "$1"
}

# consistent FILE: FILE (the library's part of one snapshot) is one line of
# the right shape with no negative or wrapped-around figure, and its totals
# are the sums of its classes (awk's doubles are exact at these sizes).
# Says what is wrong otherwise.
consistent() {
  awk '
function val(s, k,   m) {
  if (!match(s, "\"" k "\": [0-9]+")) { bad = bad " no " k; return 0 }
  m = substr(s, RSTART, RLENGTH); sub(/.*: /, "", m); return m + 0
}
NR > 1 { bad = bad " more than one line" }
{
  if ($0 !~ /^\{"version": "[^"]*", "cache_mode": "[^"]*", .*"classes": \[.*\]\}$/)
    bad = bad " shape"
  if ($0 ~ /-/ || $0 ~ /[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]/)
    bad = bad " a negative or wrapped-around number"
  n = split($0, part, "{")
  small = 0; cached = 0
  for (i = 3; i <= n; i++) {
    size = val(part[i], "size")
    small += size * val(part[i], "in_use")
    cached += size * val(part[i], "cached")
  }
  if (val(part[2], "small_in_use_bytes") != small)
    bad = bad " small_in_use_bytes != sum of classes"
  if (val(part[2], "cpu_cache_bytes") != cached)
    bad = bad " cpu_cache_bytes != sum of classes"
  if (val(part[2], "in_use_bytes") != val(part[2], "small_in_use_bytes") + val(part[2], "large_in_use_bytes"))
    bad = bad " in_use_bytes != small + large"
}
END { if (bad != "") { print "   " bad; exit 1 } }' "$1"
}
