#!/bin/sh
# SPDX-License-Identifier: MIT
# Strict mode (RSMALLOC_HARDEN=1): tests/test_strict in both cache modes,
# the C++ and stress suites and real programs with it on (no false
# positives), and the setting itself: off by default, reported by
# RSMALLOC_VERBOSE.
. "$(dirname "$0")/lib.sh"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
[ -x "$top_builddir/tests/test_strict" ] || skip_all "tests/test_strict not built"

for mode in auto 0; do
  check "test_strict, RSMALLOC_RSEQ=$mode" env RSMALLOC_HARDEN=1 \
    RSMALLOC_RSEQ=$mode "$top_builddir/tests/test_strict" >"$out/s" 2>&1 ||
    show "$out/s" 30
done
# Strict mode never reuses a large block: each one is a fresh mapping whose
# every page the tests touch faults in, and test_cxx's aligned operators
# take 16 MiB blocks at 17 alignments. On a VM that charges ~9 us a fault
# that is seconds, and under make -j2 it outran Check's 30 s: more time.
for t in test_cxx test_stress; do
  check "$t with RSMALLOC_HARDEN=1" env RSMALLOC_HARDEN=1 \
    CK_TIMEOUT_MULTIPLIER=4 "$top_builddir/tests/$t" >"$out/$t" 2>&1 ||
    show "$out/$t" 30
done
check "python3 with RSMALLOC_HARDEN=1" env RSMALLOC_HARDEN=1 \
  LD_PRELOAD="$RSMALLOC_LIB" python3 -c \
  'import json, collections; d = collections.Counter(str(i % 97) for i in range(10**5)); print(len(json.dumps([list(range(50))] * 2000)))' \
  >"$out/py" 2>&1 || show "$out/py"
check "perl with RSMALLOC_HARDEN=1" env RSMALLOC_HARDEN=1 \
  LD_PRELOAD="$RSMALLOC_LIB" perl -e \
  'my %h; $h{$_} = $_ x 3 for 1 .. 50000; exit(keys(%h) == 50000 ? 0 : 1)' \
  >"$out/pl" 2>&1 || show "$out/pl"
RSMALLOC_VERBOSE=1 RSMALLOC_HARDEN=1 LD_PRELOAD="$RSMALLOC_LIB" /bin/true \
  2>"$out/v"
check "RSMALLOC_VERBOSE reports strict mode" grep -q "RSMALLOC_HARDEN=1" \
  "$out/v" || show "$out/v"
RSMALLOC_VERBOSE=1 LD_PRELOAD="$RSMALLOC_LIB" /bin/true 2>"$out/v0"
if grep -q "define RS_HARDEN_DEFAULT 1" "$top_builddir/config.h" 2>/dev/null; then
  check "--enable-harden: strict by default" grep -q "RSMALLOC_HARDEN=1" "$out/v0"
else
  check "strict mode is off by default" sh -c "! grep -q RSMALLOC_HARDEN=1 $out/v0"
fi
finish
