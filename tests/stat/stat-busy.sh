#!/bin/sh
# SPDX-License-Identifier: MIT
# rsmalloc stat while the process allocates and frees in four threads:
# every snapshot parses, no figure is negative (or wrapped around), and the
# totals are the sums of the classes.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lib-stat.sh"

rs_start busy on churn 4 || { not_ok "the busy program starts"; finish; }

reads=${RSMALLOC_TEST_STAT_READS:-100}
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
  cksum <"$tmp/lib.json" >>"$tmp/sums"
  if ! consistent "$tmp/lib.json"; then
    bad=$((bad + 1))
    cut -c1-300 "$tmp/lib.json"
  fi
done
check "all $reads reads of a busy process succeed" test "$failed_runs" -eq 0
check "all $reads snapshots parse and add up" test "$bad" -eq 0
distinct=$(sort -u "$tmp/sums" | wc -l)
check "the process was busy: $distinct different snapshots of $reads" \
  test "$distinct" -gt $((reads / 2))
kill -0 "$pid" 2>/dev/null
check "the busy process still runs (reading it cost it nothing)" test $? -eq 0
finish
