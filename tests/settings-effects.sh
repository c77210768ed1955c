#!/bin/sh
# SPDX-License-Identifier: MIT
# The settings do what rsmalloc(7) says (tests/settings_prog):
# RSMALLOC_CPU_CACHE bounds cpu_cache_bytes in rsmalloc_stats_json();
# RSMALLOC_THP=always/never shows in /proc/self/smaps for the heap's
# mapping, and so does grown's advice for a heap past 32 MiB on a system
# whose setting is "madvise"; RSMALLOC_STATS=1 prints the statistics at exit with consistent,
# plausible numbers; RSMALLOC_STATS=json prints JSON that parses and agrees.
set -u
LC_ALL=C
export LC_ALL

. "$(dirname "$0")/lib.sh"

prog=$top_builddir/tests/settings_prog
[ -x "$prog" ] || skip_all "tests/settings_prog is not built"
command -v python3 >/dev/null 2>&1 || skip_all "python3 is not installed"
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
expected=$(rs_expected_mode)

# --- RSMALLOC_CPU_CACHE -----------------------------------------------------
# A cache grows past its budget by at most the first batch of each class
# (lib/rseq/cpu_cache_refill.cc: every class may cache something): batch
# min(32, max(1, 16 KiB / size)) objects.
cache_check='
import json, sys
budget, name = int(sys.argv[1]), sys.argv[2]
d = json.load(open(name))
first = sum(min(32, max(1, 16384 // c["size"])) * c["size"]
            for c in d["classes"] if c["cached"] > 0)
held = d["cpu_cache_bytes"]
cached = sum(c["cached"] * c["size"] for c in d["classes"])
print("cpu_cache_bytes %d (classes say %d), budget %d + first batches %d"
      % (held, cached, budget, first))
sys.exit(0 if held == cached and held <= budget + first else 1)
'
for setting in 8K 64K; do
  case $setting in
    8K) budget=8192 ;;
    64K) budget=65536 ;;
  esac
  RSMALLOC_CPU_CACHE=$setting "$prog" cache >"$tmp/cache.json" 2>&1
  msg=$(python3 -c "$cache_check" "$budget" "$tmp/cache.json" 2>&1)
  rc=$?
  check "RSMALLOC_CPU_CACHE=$setting: $msg" [ "$rc" -eq 0 ] ||
    show "$tmp/cache.json"
done
# The default (2M) lets the same program cache far more: the bound above is
# the setting's doing.
"$prog" cache >"$tmp/cache.json" 2>&1
held=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cpu_cache_bytes"])' \
  "$tmp/cache.json" 2>/dev/null)
check "default RSMALLOC_CPU_CACHE caches more: cpu_cache_bytes $held > 128 KiB" \
  [ "${held:-0}" -gt 131072 ]

# --- RSMALLOC_THP -------------------------------------------------------------
thp=/sys/kernel/mm/transparent_hugepage/enabled
if [ ! -r "$thp" ]; then
  skip "RSMALLOC_THP: $thp is absent"
elif grep -q '\[never\]' "$thp"; then
  skip "RSMALLOC_THP: transparent huge pages are off on this system"
else
  for setting in always never; do
    RSMALLOC_THP=$setting "$prog" thp >"$tmp/thp.$setting" 2>&1
    eligible=$(sed -n 's/^THPeligible //p' "$tmp/thp.$setting")
    huge=$(sed -n 's/^AnonHugePages //p' "$tmp/thp.$setting")
    if [ -z "$eligible" ]; then
      not_ok "RSMALLOC_THP=$setting: no THPeligible line for the heap mapping"
      show "$tmp/thp.$setting"
      continue
    fi
    want=1
    [ "$setting" = never ] && want=0
    check "RSMALLOC_THP=$setting: heap mapping THPeligible $eligible (AnonHugePages $huge kB)" \
      [ "$eligible" = "$want" ] ||
      show "$tmp/thp.$setting"
    if [ "$setting" = never ]; then
      check "RSMALLOC_THP=never: no huge pages in the heap mapping" \
        [ "${huge:-1}" = 0 ]
    fi
  done
fi

# --- huge pages a small process never takes ---------------------------------
# rsmalloc's page-map leaves always refuse huge pages, and so, under the
# default RSMALLOC_THP=auto (and grown), do the chunks of a heap under 8 MiB: with the
# system's policy at "always", each would fault in a 2 MiB page for a process
# that uses a few KiB. A heap past 8 MiB follows the system's policy.
if [ ! -r "$thp" ]; then
  skip "huge pages refused: $thp is absent"
else
  for setting in auto never grown; do
    RSMALLOC_THP=$setting "$prog" small >"$tmp/small.$setting" 2>&1
    total=$(grep -c '^anon ' "$tmp/small.$setting")
    refused=$(grep -c '^anon .* nohuge 1 ' "$tmp/small.$setting")
    block=$(grep -c '^anon .* nohuge 1 holds_block 1' "$tmp/small.$setting")
    good=no
    [ "$total" -ge 1 ] && [ "$refused" = "$total" ] && [ "$block" = 1 ] &&
      good=yes
    check "RSMALLOC_THP=$setting, one malloc: $refused of $total anonymous mappings of 2 MiB or more, and the block's, refuse huge pages" \
      [ "$good" = yes ] ||
      show "$tmp/small.$setting"
  done
  RSMALLOC_THP=auto "$prog" thp >"$tmp/thp.auto" 2>&1
  check "RSMALLOC_THP=auto, 64 MiB heap: its middle follows the system's policy" \
    grep -q '^nohuge 0$' "$tmp/thp.auto" ||
    show "$tmp/thp.auto"
fi

# --- RSMALLOC_THP=grown where the system's setting is "madvise" --------------
# Past 32 MiB of heap the chunks get MADV_HUGEPAGE (lib/page_heap_huge.cc):
# the first object's mapping is not eligible, the last one's is; after
# frees and malloc_trim released pages among them, none is any more.
if [ ! -r "$thp" ] || ! grep -q '\[madvise\]' "$thp"; then
  skip "RSMALLOC_THP=grown: the system's THP setting is not madvise"
else
  for probe in "first" "last" "last trim"; do
    # shellcheck disable=SC2086 # probe is two words for the trim case
    RSMALLOC_THP=grown "$prog" thp $probe >"$tmp/thp.grown" 2>&1
    eligible=$(sed -n 's/^THPeligible //p' "$tmp/thp.grown")
    want=0
    [ "$probe" = last ] && want=1
    check "RSMALLOC_THP=grown, madvise system, thp $probe: THPeligible ${eligible:-none}, want $want" \
      [ "$eligible" = "$want" ] ||
      show "$tmp/thp.grown"
  done
  # The default gives no advice, however large the heap.
  env -u RSMALLOC_THP "$prog" thp last >"$tmp/thp.auto" 2>&1
  eligible=$(sed -n 's/^THPeligible //p' "$tmp/thp.auto")
  check "RSMALLOC_THP=auto, madvise system, thp last: THPeligible ${eligible:-none}, want 0" \
    [ "$eligible" = 0 ] ||
    show "$tmp/thp.auto"
fi

# --- RSMALLOC_STATS=1 ---------------------------------------------------------
small=10000000
large=83886080  # above the 64 MiB map threshold: its own mapping
RSMALLOC_STATS=1 "$prog" hold $small $large >"$tmp/hold.out" 2>"$tmp/stats.txt"
rc=$?
text_check='
import re, sys
held_small, held_large, mode_ok = int(sys.argv[1]), int(sys.argv[2]), sys.argv[4]
lines = open(sys.argv[3]).read().splitlines()
errors = []
def need(cond, what):
    if not cond:
        errors.append(what)
need(lines and re.fullmatch(r"rsmalloc: statistics \(cache mode (.+)\)", lines[0]),
     "first line: %r" % (lines[:1],))
need(all(l.startswith("rsmalloc: ") for l in lines), "a line without the prefix")
labels = ["in use by the program", "small objects", "large allocations",
          "cached in CPU caches", "held in transfer caches",
          "free in central lists", "free in page heap",
          "metadata", "returned to the OS", "inside spans in use",
          "mapped from the OS"]
v = {}
for l in lines:
    m = re.fullmatch(r"rsmalloc:\s+(.+?):\s+(\d+) bytes \((\d+) KiB\)", l)
    if m:
        need(int(m.group(3)) == int(m.group(2)) >> 10, "KiB wrong: " + l)
        need(m.group(1) not in v, "twice: " + m.group(1))
        v[m.group(1)] = int(m.group(2))
need(sorted(v) == sorted(labels), "labels: %s" % sorted(v))
if not errors:
    need(v["small objects"] >= held_small, "small in use < held")
    need(v["large allocations"] >= held_large, "large in use < held")
    need(v["in use by the program"] == v["small objects"] + v["large allocations"],
         "in use != small + large")
    # Churn and the start-up leave little: in use is near what is held.
    need(v["in use by the program"] <= (held_small + held_large) * 1.1 + (1 << 20),
         "in use far above what is held")
    need(v["mapped from the OS"] >= v["in use by the program"], "mapped < in use")
    need(v["returned to the OS"] >= v["inside spans in use"], "released parts")
    est = [l for l in lines if "resident estimate" in l]
    total = (v["in use by the program"] + v["cached in CPU caches"]
             + v["held in transfer caches"] + v["free in central lists"] + v["free in page heap"] + v["metadata"])
    need(len(est) == 1 and est[0].endswith("= %d bytes" % total),
         "resident estimate: %s, want %d" % (est, total))
rows = [l.split()[1:] for l in lines if re.fullmatch(r"rsmalloc:\s+\d+ \d+ \d+ \d+ \d+ \d+", l)]
need(any(int(r[1]) >= 10000 and int(r[2]) >= held_small // 10000 for r in rows),
     "no class row holding the 10000-byte blocks: %s" % rows[-3:])
need(mode_ok == "1", "cache mode line: %s" % lines[:1])
print("; ".join(errors) if errors else
      "in use %d >= held %d, %d class rows" % (v["in use by the program"],
                                              held_small + held_large, len(rows)))
sys.exit(1 if errors else 0)
'
mode=$(sed -n '1s/^rsmalloc: statistics (cache mode \(.*\))$/\1/p' "$tmp/stats.txt")
mode_ok=0
rs_mode_ok "$mode" "$expected" && mode_ok=1
if [ "$rc" -ne 0 ]; then
  not_ok "RSMALLOC_STATS=1 settings_prog hold exits $rc"
  show "$tmp/stats.txt"
else
  msg=$(python3 -c "$text_check" $small $large "$tmp/stats.txt" $mode_ok 2>&1)
  rc=$?
  check "RSMALLOC_STATS=1 (mode '$mode', want '$expected'): $msg" \
    [ "$rc" -eq 0 ] || show "$tmp/stats.txt" 40
fi

# --- RSMALLOC_STATS=json ----------------------------------------------------
RSMALLOC_STATS=json "$prog" hold $small $large >"$tmp/hold.out" \
  2>"$tmp/stats.json"
check "RSMALLOC_STATS=json output parses (python3 -m json.tool)" \
  python3 -m json.tool "$tmp/stats.json" >/dev/null || show "$tmp/stats.json"
json_check='
import json, sys
d = json.load(open(sys.argv[1]))
held_small, held_large = int(sys.argv[2]), int(sys.argv[3])
e = []
if d["small_in_use_bytes"] < held_small: e.append("small_in_use_bytes")
if d["large_in_use_bytes"] < held_large: e.append("large_in_use_bytes")
if d["in_use_bytes"] != d["small_in_use_bytes"] + d["large_in_use_bytes"]:
    e.append("in_use_bytes != small + large")
if d["mapped_bytes"] < d["in_use_bytes"]: e.append("mapped_bytes < in use")
if d["mapped_large_count"] < 1 or d["mapped_large_bytes"] < held_large:
    e.append("mapped_large")
if sum(c["in_use"] * c["size"] for c in d["classes"]) != d["small_in_use_bytes"]:
    e.append("classes do not add up to small_in_use_bytes")
print(d["cache_mode"])
print("; ".join(e) or "in_use_bytes %d" % d["in_use_bytes"])
sys.exit(1 if e else 0)
'
python3 -c "$json_check" "$tmp/stats.json" $small $large >"$tmp/json.msg" 2>&1
rc=$?
mode=$(sed -n 1p "$tmp/json.msg")
check "RSMALLOC_STATS=json fields: $(sed -n '2,$p' "$tmp/json.msg")" [ "$rc" -eq 0 ]
check "RSMALLOC_STATS=json cache_mode '$mode' (want '$expected')" \
  rs_mode_ok "$mode" "$expected"

finish
