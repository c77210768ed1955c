#!/bin/sh
# SPDX-License-Identifier: MIT
# rsmalloc stat against a process that allocated a known pattern and waits:
# the JSON is exactly the program's own rsmalloc_stats_json() taken after
# the pattern, each class's in-use count grew by the blocks left live, and
# the large blocks are all there. The text form tells the same.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lib-stat.sh"

rs_start exact on pattern || { not_ok "the pattern program starts"; finish; }
dir=$tmp/exact

rs stat "$pid" --json
check "stat --json exits 0" test "$rc" -eq 0 || show "$tmp/err"
cp "$tmp/out" "$tmp/stat.json"
library_part "$tmp/stat.json" >"$tmp/lib.json"
check "stat --json is the program's own rsmalloc_stats_json()" \
  cmp -s "$tmp/lib.json" "$dir/after.json" ||
  { diff "$dir/after.json" "$tmp/lib.json" | tr ',' '\n' | grep '^[<>]' | head -5; }
check "stat --json adds the PID, settings and CPU caches" \
  grep -q "\"pid\": $pid, \"command\": \"stat_target\", \"settings\": {\"rseq\": \"auto\", \"cpu_cache_bytes\": 2097152, .*\"cpus\": \[" \
  "$tmp/stat.json"

# Per class: the blocks left live, exactly.
while read -r size live; do
  [ "$size" -le 262144 ] || continue
  before=$(class_in_use "$dir/before.json" "$size")
  now=$(class_in_use "$tmp/stat.json" "$size")
  check "class of $size bytes: $live more in use ($before -> $now)" \
    test "$((now - before))" -eq "$live"
done <"$dir/pattern"

# Large blocks: 3 of 512 KiB from the page heap, 1 of 80 MiB with its own
# mapping (above the 64 MiB threshold).
large=$(($(field "$tmp/stat.json" large_in_use_bytes) - $(field "$dir/before.json" large_in_use_bytes)))
check "large blocks: 3 x 512 KiB + 80 MiB more in use ($large)" \
  test "$large" -eq $((3 * 524288 + 83886080))
count=$(($(field "$tmp/stat.json" mapped_large_count) - $(field "$dir/before.json" mapped_large_count)))
bytes=$(($(field "$tmp/stat.json" mapped_large_bytes) - $(field "$dir/before.json" mapped_large_bytes)))
check "one more block with its own mapping, of 80 MiB ($count, $bytes)" \
  test "$count" -eq 1 -a "$bytes" -eq 83886080

# Nothing moves in an idle process: a second read is the same.
rs stat "$pid" --json
check "a second read gives the same numbers" cmp -s "$tmp/out" "$tmp/stat.json"

# The text form: RSMALLOC_STATS's lines with the same figures.
rs stat "$pid"
in_use=$(field "$tmp/stat.json" in_use_bytes)
mode=$(sed -n 's/.*"cache_mode": "\([^"]*\)".*/\1/p' "$tmp/stat.json")
check "stat (text) exits 0 and starts like RSMALLOC_STATS" \
  test "$rc" -eq 0 -a "$(head -n 1 "$tmp/out")" = "rsmalloc: statistics (cache mode $mode)"
check "stat (text) reports the same bytes in use ($in_use)" \
  grep -q "^rsmalloc:   in use by the program:   $in_use bytes" "$tmp/out"
finish
