#!/bin/sh
# SPDX-License-Identifier: MIT
# The code a process's first malloc and free run lies in one run at the
# start of the library's text (lib/early.ld, .text.rs_first), so that the
# kernel maps it with one fault-around window: every function named there
# must still be a function of the library, placed in that run (a renamed
# or re-mangled one would silently fall back to .text, a page fault more
# per process), late_init must come in its first page (its fault starts
# the window there), and the run must fit in the 64 KiB window.
# Needs nm and readelf (binutils); on builds linked with lib/early.ld.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

lib=$RSMALLOC_LIB
script=$top_srcdir/lib/early.ld
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rs-startup-text.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if ! command -v nm >/dev/null 2>&1 || ! command -v readelf >/dev/null 2>&1; then
  skip "nm or readelf is not installed"
  finish
fi
# configure leaves lib/early.ld out where the linker refuses it (GNU gold):
# the code then stays where the compiler put it.
if [ -z "${RS_EARLY_LDFLAGS-x}" ]; then
  skip "the linker took no lib/early.ld (configure): nothing placed"
  finish
fi

# The run's bounds, in hex without 0x.
set -- $(readelf -SW "$lib" | sed -n 's/.*\] \.text\.rs_first  *PROGBITS  *\([0-9a-f]*\) [0-9a-f]* \([0-9a-f]*\) .*/\1 \2/p')
if [ $# -ne 2 ]; then
  not_ok "the library has a .text.rs_first section"
  finish
fi
start=$((0x$1))
size=$((0x$2))
end=$((start + size))
check "the start-up code takes $size bytes (at most 48 KiB: one 64 KiB window)" \
  [ "$size" -le 49152 ]

# Each name of the list: a function (or its clone or cold part) inside the
# run. Names are the text after ".text." in each "*(.text.NAME .text.NAME.*"
# or "*(.text.startup.NAME" line.
sed -n -e 's/^ *\*(\.text\.startup\.\([^ ]*\) .*/\1/p' \
  -e 's/^ *\*(\.text\.\([^ .][^ ]*\) \.text\.[^ ]*\.\* .*/\1/p' "$script" >"$tmp/names"
nm --defined-only "$lib" | awk '{ print $1, $3 }' >"$tmp/symbols"
listed=$(wc -l <"$tmp/names")
check "lib/early.ld lists the start-up functions ($listed)" [ "$listed" -ge 40 ]
# Functions that clang inlines into their one caller (gcc keeps them).
inlined=
readelf -p .comment "$lib" 2>/dev/null | grep -q clang &&
  inlined=_ZN2rs12_GLOBAL__N_114allocate_classEm
missing=0
outside=0
while read -r name; do
  # The function itself, or NAME.cold, NAME.part.0 and the like.
  found=$(awk -v n="$name" '$2 == n || index($2, n ".") == 1 { print $1 }' "$tmp/symbols")
  if [ -z "$found" ] && [ "$name" = "$inlined" ]; then
    continue
  elif [ -z "$found" ]; then
    echo "    | $name: no such function in the library"
    missing=$((missing + 1))
    continue
  fi
  for a in $found; do
    a=$((0x$a))
    if [ "$a" -lt "$start" ] || [ "$a" -ge "$end" ]; then
      echo "    | $name: at $(printf %#x "$a"), outside the run"
      outside=$((outside + 1))
    fi
  done
done <"$tmp/names"
check "every function lib/early.ld names is in the library ($missing missing)" \
  [ "$missing" -eq 0 ]
check "every one of them is in the start-up run ($outside outside)" \
  [ "$outside" -eq 0 ]

late=$(awk '$2 == "_ZN2rs12_GLOBAL__N_19late_initEv" { print $1 }' "$tmp/symbols")
into=999999
[ -n "$late" ] && into=$((0x$late - (start & ~4095)))
check "late_init is in the run's first page ($into bytes into it)" \
  [ "$into" -lt 4096 ]
finish
