#!/bin/sh
# SPDX-License-Identifier: MIT
# RSMALLOC_DISABLE=1 end to end: tests/test_disabled (mode "disabled", no
# block owned, glibc's mallopt, mallinfo2 and malloc_info), test_abi and
# test_cxx (which expect glibc's behaviour when they see "disabled"), and
# python3 with the library preloaded: same output as without it, the mode
# reported, no block owned, glibc's answers through ctypes.
set -u
LC_ALL=C
export LC_ALL

. "$(dirname "$0")/lib.sh"

if [ ! -f "$RSMALLOC_LIB" ]; then
  echo "ERROR: $RSMALLOC_LIB not found"
  exit 99
fi
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT

# run_check NAME PROGRAM: a Check program under RSMALLOC_DISABLE=1.
run_check() {
  name=$1
  prog=$top_builddir/tests/$name
  if [ ! -x "$prog" ]; then
    not_ok "$name is not built"
    return
  fi
  RSMALLOC_DISABLE=1 timeout -k 10 300 "$prog" >"$tmp/$name.out" 2>&1 9>&-
  rc=$?
  summary=$(grep -E '^[0-9]+%: Checks' "$tmp/$name.out" | tail -n 1)
  if [ "$rc" -eq 0 ] && [ -n "$summary" ]; then
    ok "RSMALLOC_DISABLE=1 $name: $summary"
  else
    not_ok "RSMALLOC_DISABLE=1 $name: exit $rc $summary"
    show "$tmp/$name.out" 40
  fi
}

run_check test_disabled
run_check test_abi
run_check test_cxx

# The mode line rsmalloc prints, and nothing else of its own.
RSMALLOC_DISABLE=1 RSMALLOC_VERBOSE=1 LD_PRELOAD=$RSMALLOC_LIB /bin/true \
  2>"$tmp/verbose.err"
mode=$(rs_verbose_mode "$tmp/verbose.err")
check "RSMALLOC_VERBOSE=1 says cache mode '$mode' (want disabled)" \
  [ "$mode" = disabled ] || show "$tmp/verbose.err"

if ! command -v python3 >/dev/null 2>&1; then
  skip "python3 is not installed"
  finish
fi

cat >"$tmp/work.py" <<'PY'
import collections, ctypes, json, os, sys, tempfile
c = ctypes.CDLL(None)
rs = hasattr(c, "rsmalloc_cache_mode")  # not without the preload
if rs:
    c.rsmalloc_cache_mode.restype = ctypes.c_char_p
    c.rsmalloc_owns.argtypes = [ctypes.c_void_p]
c.malloc.restype = ctypes.c_void_p
c.malloc.argtypes = [ctypes.c_size_t]
c.free.argtypes = [ctypes.c_void_p]
c.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
M_PERTURB = -6

# A workload whose output must not change.
d = {str(i): [i] * (i % 7) for i in range(100000)}
print(len(d), sum(len(v) for v in d.values()))
print(collections.Counter(len(k) for k in d).most_common(3))
blob = json.dumps(sorted(d.items())[:5000])
print(len(blob), len(json.loads(blob)))

mode = c.rsmalloc_cache_mode().decode() if rs else "none"
blocks = [c.malloc(n) for n in (1, 24, 100, 1000, 5000, 100000, 1 << 22)]
owned = sum(c.rsmalloc_owns(p) for p in blocks) if rs else 0
for p in blocks:
    c.free(p)
perturb = c.mallopt(M_PERTURB, 0)
f = tempfile.TemporaryFile()
fp = ctypes.CDLL(None).fdopen
fp.restype = ctypes.c_void_p
fp.argtypes = [ctypes.c_int, ctypes.c_char_p]
stream = fp(os.dup(f.fileno()), b"w")
c.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
c.fclose.argtypes = [ctypes.c_void_p]
rc = c.malloc_info(0, stream)
c.fclose(stream)
f.seek(0)
xml = f.read().decode()
sys.stderr.write("mode=%s owned=%d perturb=%d malloc_info=%d\n" %
                 (mode, owned, perturb, rc))
sys.stderr.write(xml)
PY

PYTHONHASHSEED=0 timeout -k 10 300 python3 "$tmp/work.py" \
  >"$tmp/plain.out" 2>"$tmp/plain.err"
RSMALLOC_DISABLE=1 PYTHONHASHSEED=0 LD_PRELOAD=$RSMALLOC_LIB \
  timeout -k 10 300 python3 "$tmp/work.py" >"$tmp/pre.out" 2>"$tmp/pre.err"
rc=$?
if [ "$rc" -ne 0 ]; then
  not_ok "python3 under RSMALLOC_DISABLE=1 exits $rc"
  show "$tmp/pre.err"
else
  check "python3 under RSMALLOC_DISABLE=1: same output as without rsmalloc" \
    cmp -s "$tmp/plain.out" "$tmp/pre.out" || diff "$tmp/plain.out" "$tmp/pre.out"
  line=$(head -n 1 "$tmp/pre.err")
  check "python3 sees: $line (want mode=disabled owned=0 perturb=1 malloc_info=0)" \
    [ "$line" = "mode=disabled owned=0 perturb=1 malloc_info=0" ]
  # glibc's malloc_info: the main arena, <sizes>, arenas of a threaded
  # program; rsmalloc writes one heap.
  check "python3's malloc_info is glibc's (<heap nr=\"0\">, <sizes>)" \
    grep -q '^<heap nr="0">$' "$tmp/pre.err" ||
    show "$tmp/pre.err"
  check "without rsmalloc python3 sees: $(head -n 1 "$tmp/plain.err")" \
    [ "$(head -n 1 "$tmp/plain.err")" = \
    "mode=none owned=0 perturb=1 malloc_info=0" ]
  # The elements, numbers and the free-chunk lists left out (those depend
  # on the heap's history): glibc's form either way.
  sed -e 1d -e '/^  </d' -e 's/="[0-9]*"/=""/g' "$tmp/plain.err" |
    sort -u >"$tmp/plain.xml"
  sed -e 1d -e '/^  </d' -e 's/="[0-9]*"/=""/g' "$tmp/pre.err" |
    sort -u >"$tmp/pre.xml"
  check "python3's malloc_info has the elements it has without rsmalloc" \
    cmp -s "$tmp/plain.xml" "$tmp/pre.xml" ||
    diff "$tmp/plain.xml" "$tmp/pre.xml" | head
fi

finish
