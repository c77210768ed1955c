#!/bin/sh
# SPDX-License-Identifier: MIT
# rsmalloc top --once (and --json) lists the two test processes that run on
# rsmalloc, with their figures, and not a third that does not.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lib-stat.sh"

rs_start one on pattern && a=$pid &&
  rs_start two on idle && b=$pid &&
  rs_start three off idle && c=$pid || { not_ok "three test processes start"; finish; }

rs top --once
check "top --once exits 0" test "$rc" -eq 0 || show "$tmp/err"
check "top --once has a header" grep -q '^ *PID COMMAND .* IN-USE .*CACHED .*FREE .*RELEASED .*MODE' "$tmp/out"
row() {
  awk -v pid="$1" '$1 == pid' "$tmp/out"
}
check "top --once lists the first process on rsmalloc, with its figures" \
  sh -c "printf '%s\n' '$(row "$a")' | grep -q 'stat_target .* rseq\|stat_target .* fallback'" ||
  show "$tmp/out"
check "top --once lists the second process on rsmalloc" test -n "$(row "$b")"
check "top --once does not list the process that is not on rsmalloc" \
  test -z "$(row "$c")"
# Sorted by in-use: the pattern program (10 MiB in use) comes before the
# idle one.
order=$(awk -v a="$a" -v b="$b" '$1 == a { print "a" } $1 == b { print "b" }' "$tmp/out" | tr -d '\n')
check "sorted by in-use: the pattern program first ($order)" test "$order" = ab

rs top --once --json
check "top --once --json exits 0" test "$rc" -eq 0
check "top --json lists both processes on rsmalloc, not the third" \
  sh -c "grep -q '\"pid\": $a, ' '$tmp/out' && grep -q '\"pid\": $b, ' '$tmp/out' && ! grep -q '\"pid\": $c, ' '$tmp/out'"
rs stat "$a" --json
want=$(field "$tmp/out" in_use_bytes)
rs top --once --json
check "top --json's in-use of the pattern program is stat's ($want)" \
  grep -q "\"pid\": $a, \"command\": \"stat_target\", \"rss_bytes\": [0-9]*, \"in_use_bytes\": $want," "$tmp/out"
finish
