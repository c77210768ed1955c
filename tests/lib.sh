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

# Skips the whole test with a reason.
skip_all() {
  printf 'skip: %s\n' "$*"
  { printf '%s: skipped: %s\n' "$rs_test_name" "$*" >&9; } 2>/dev/null || true
  exit 77
}
