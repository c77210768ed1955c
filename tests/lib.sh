# SPDX-License-Identifier: MIT
# Shared by the shell tests: counting, the closing "N passed, N failed"
# line, and the paths make check exports (AM_TESTS_ENVIRONMENT), found from
# the test's own place when it runs alone. Sourced, not run.

rs_test_name=$(basename "$0" .sh)
rs_here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${top_srcdir:-}" ]; then
  top_srcdir=$rs_here
  while [ ! -f "$top_srcdir/configure.ac" ] && [ "$top_srcdir" != / ]; do
    top_srcdir=$(dirname "$top_srcdir")
  done
fi
: "${top_builddir:=$top_srcdir}"
: "${RSMALLOC_LIB:=$top_builddir/lib/.libs/librsmalloc.so}"
export top_srcdir top_builddir RSMALLOC_LIB

rs_passed=0
rs_failed=0
rs_skipped=0

ok() {
  rs_passed=$((rs_passed + 1))
  printf 'ok: %s\n' "$*"
}

not_ok() {
  rs_failed=$((rs_failed + 1))
  printf 'FAIL: %s\n' "$*"
}

skip() {
  rs_skipped=$((rs_skipped + 1))
  printf 'skip: %s\n' "$*"
}

# check DESCRIPTION COMMAND...: one test, passed when COMMAND succeeds;
# returns COMMAND's success, so `check ... || show FILE` explains a failure.
check() {
  rs_desc=$1
  shift
  if "$@"; then
    ok "$rs_desc"
  else
    not_ok "$rs_desc"
    return 1
  fi
}

# Shows a file's lines, indented, under a failed check.
show() {
  [ -s "$1" ] && sed -e 's/^/    | /' "$1" | head -n "${2:-20}"
  return 0
}

# The closing line, on stdout and on fd 9 when make check opened it; exits
# 1 on any failure, 77 (skip) when nothing ran, else 0.
finish() {
  rs_line="$rs_passed passed, $rs_failed failed"
  [ "$rs_skipped" -eq 0 ] || rs_line="$rs_line, $rs_skipped skipped"
  printf '%s\n' "$rs_line"
  { printf '%s: %s\n' "$rs_test_name" "$rs_line" >&9; } 2>/dev/null || true
  [ "$rs_failed" -eq 0 ] || exit 1
  [ "$rs_passed" -gt 0 ] || exit 77
  exit 0
}

# rs_expected_mode [VAR=VALUE...]: the cache mode rsmalloc must report with
# these settings on this machine, worked out by tests/expected_mode without
# the library: "rseq/mm_cid", "rseq/cpu_id", "disabled", "fallback: ..."
# (that exact mode) or "fallback" (any reason). Empty when not built.
rs_expected_mode() {
  [ -x "$top_builddir/tests/expected_mode" ] || return 1
  env "$@" "$top_builddir/tests/expected_mode" 2>/dev/null
}

# rs_mode_ok ACTUAL EXPECTED: whether the mode the library reported is the
# expected one. RSMALLOC_TEST_ALLOW_FALLBACK=1 accepts a fallback where rseq
# is expected (a machine where the probe above is wrong, for now).
rs_mode_ok() {
  case $2 in
    "") return 1 ;;
    fallback)
      case $1 in "fallback: "?*) return 0 ;; esac
      return 1
      ;;
  esac
  [ "$1" = "$2" ] && return 0
  case $2:${RSMALLOC_TEST_ALLOW_FALLBACK:-0} in
    rseq/*:1)
      case $1 in "fallback: "?*) return 0 ;; esac
      ;;
  esac
  return 1
}

# rs_verbose_mode FILE: the mode from RSMALLOC_VERBOSE's start-up line.
rs_verbose_mode() {
  sed -n 's/^rsmalloc: cache mode //p' "$1" | head -n 1
}

# Skips the whole test with a reason.
skip_all() {
  printf 'skip: %s\n' "$*"
  { printf '%s: skipped: %s\n' "$rs_test_name" "$*" >&9; } 2>/dev/null || true
  exit 77
}
