#!/bin/sh
# SPDX-License-Identifier: MIT
# rsmalloc under a 512 MiB address-space limit (ulimit -v): limit_prog must
# start, hit ENOMEM cleanly (never abort) and recover, with rseq and with
# the locked fallback; preloaded programs must start and run normally.
set -u

. "$(dirname "$0")/lib.sh"

if [ ! -f "$RSMALLOC_LIB" ]; then
  echo "ERROR: $RSMALLOC_LIB not found"
  exit 99
fi
prog=$top_builddir/tests/limit_prog
if [ ! -x "$prog" ]; then
  echo "ERROR: $prog not built"
  exit 99
fi
limit_kib=524288
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT

# libtool's wrapper may relink the program on its first run: do that
# outside the limit.
"$prog" --probe || {
  echo "ERROR: $prog --probe failed"
  exit 99
}

# run_limited NAME CMD...: runs CMD under the limit with a timeout; output
# in $tmp/NAME.out, status in $rc.
run_limited() {
  key=$(printf '%s' "$1" | tr -c 'A-Za-z0-9_' '_')
  shift
  (ulimit -v "$limit_kib" && exec timeout -k 5 120 "$@") \
    >"$tmp/$key.out" 2>"$tmp/$key.err" </dev/null
  rc=$?
}

# check_limit_prog NAME [VAR=VALUE...] -- PHASE ARGS...
check_limit_prog() {
  name=$1
  shift
  envs=
  while [ "$1" != -- ]; do
    envs="$envs $1"
    shift
  done
  shift
  # shellcheck disable=SC2086
  run_limited "$name" env $envs "$prog" "$@"
  sed 's/^/  /' "$tmp/$key.out" "$tmp/$key.err"
  if [ "$rc" -eq 0 ] && grep -qx OK "$tmp/$key.out"; then
    ok "$name"
  elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    not_ok "$name: timed out"
  elif [ "$rc" -gt 128 ]; then
    not_ok "$name: killed by signal $((rc - 128))"
  else
    not_ok "$name: exit status $rc"
  fi
}

MiB=1048576
for mode in rseq no_rseq; do
  env=
  [ "$mode" = no_rseq ] && env=RSMALLOC_RSEQ=0
  # Start-up and ordinary use under the limit.
  check_limit_prog "$mode/start" $env -- start
  # The limit must not push rsmalloc into a fallback (no room for the
  # per-CPU caches): the mode is the one expected without it.
  # shellcheck disable=SC2086
  want=$(rs_expected_mode $env)
  got=$(sed -n 's/.*, cache mode \(.*\), phase start$/\1/p' \
    "$tmp/${key}.out" | head -n 1)
  check "$mode/start under the limit: cache mode '$got' (expected '$want')" \
    rs_mode_ok "$got" "$want"
  # 1 GiB requests fail with ENOMEM from every entry point.
  check_limit_prog "$mode/impossible" $env -- impossible
  # Exhaust with one size, free, allocate that size again.
  check_limit_prog "$mode/exhaust 64 MiB" $env -- $((64 * MiB))
  check_limit_prog "$mode/exhaust 1 MiB" $env -- $MiB
  check_limit_prog "$mode/exhaust 200 KiB" $env -- 204800
  check_limit_prog "$mode/exhaust 4 KiB" $env -- 4096
  # Address space freed by one size serves another one afterwards.
  check_limit_prog "$mode/exhaust 1 MiB, then 64 MiB" $env -- $MiB $((64 * MiB))
  check_limit_prog "$mode/exhaust 4 KiB, then 64 MiB" $env -- 4096 $((64 * MiB))
  check_limit_prog "$mode/exhaust 64 MiB, then 256 KiB" $env -- $((64 * MiB)) 262144
done

# Preloaded programs start and behave as without rsmalloc under the limit.
seq 1 50000 | awk '{ print ($1 * 7919) % 100003 }' >"$tmp/numbers"
check_preloaded() {
  name=$1
  shift
  "$@" >"$tmp/$name.want" 2>&1 </dev/null
  want_rc=$?
  run_limited "$name" env LD_PRELOAD="$RSMALLOC_LIB" "$@"
  cat "$tmp/$key.err" >>"$tmp/$key.out"
  if [ "$rc" -ne "$want_rc" ]; then
    not_ok "$name under the limit: exit $rc, expected $want_rc"
    head -5 "$tmp/$key.out"
  elif ! cmp -s "$tmp/$name.want" "$tmp/$key.out"; then
    not_ok "$name under the limit: output differs"
    diff "$tmp/$name.want" "$tmp/$key.out" | head -10
  else
    ok "$name under the limit"
  fi
}

check_preloaded true true
check_preloaded sh sh -c 'echo start; x=$(seq 1 2000 | tr "\n" " "); echo ${#x}'
check_preloaded ls ls -l /usr/bin
check_preloaded sort sort -n "$tmp/numbers"
if command -v python3 >/dev/null 2>&1; then
  check_preloaded python3 python3 -c '
d = {str(i): [i] * (i % 7) for i in range(100000)}
s = "".join(k for k in d if len(d[k]) == 3)
print(len(d), len(s), sum(len(v) for v in d.values()))
b = [bytearray(1 << 20) for _ in range(100)]
print(sum(len(x) for x in b))
'
fi

finish
