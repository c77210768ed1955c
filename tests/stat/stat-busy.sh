#!/bin/sh
# SPDX-License-Identifier: MIT
# rsmalloc stat while the process allocates and frees in four threads:
# every snapshot parses, no figure is negative (or wrapped around), and the
# totals are the sums of the classes.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lib-stat.sh"

rs_start busy on churn 4 || { not_ok "the busy program starts"; finish; }

reads=${RSMALLOC_TEST_STAT_READS:-40}
failed_runs=0
bad=0
i=0
while [ $i -lt "$reads" ]; do
  i=$((i + 1))
  rs stat "$pid" --json
  if [ "$rc" -ne 0 ]; then
    failed_runs=$((failed_runs + 1))
    show "$tmp/err"
    continue
  fi
  library_part "$tmp/out" >"$tmp/lib.json"
  # One line: the shape, then the sums (awk's doubles are exact here).
  if ! awk '
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
    END { if (bad != "") { print "   " bad; exit 1 } }' "$tmp/lib.json"; then
    bad=$((bad + 1))
    cut -c1-300 "$tmp/lib.json"
  fi
done
check "all $reads reads of a busy process succeed" test "$failed_runs" -eq 0
check "all $reads snapshots parse and add up" test "$bad" -eq 0
kill -0 "$pid" 2>/dev/null
check "the busy process still runs (reading it cost it nothing)" test $? -eq 0
finish
