#!/bin/sh
# SPDX-License-Identifier: MIT
# The man pages: rsmalloc(7) names every RSMALLOC_* variable, rsmalloc(3)
# every exported symbol, rsmalloc(1) the command's own variables; the pages
# lint clean with mandoc and with lintian's man-db check; the example in
# rsmalloc(3) builds and runs.
. "$(dirname "$0")/../lib.sh"
# CI sets RSMALLOC_TEST_REQUIRE_SYSTEM=1: there, whatever this test cannot
# do (no root, no mount namespace or overlayfs, a missing program) is a
# failure, never a skip that passes silently.
if [ "${RSMALLOC_TEST_REQUIRE_SYSTEM:-0}" = 1 ]; then
  skip() { not_ok "skipped, but RSMALLOC_TEST_REQUIRE_SYSTEM=1: $*"; }
  skip_all() {
    not_ok "skipped, but RSMALLOC_TEST_REQUIRE_SYSTEM=1: $*"
    finish
  }
fi

man3=$top_srcdir/man/rsmalloc.3
man7=$top_srcdir/man/rsmalloc.7
man1=$top_srcdir/man/rsmalloc.1
command=$top_srcdir/tools/rsmalloc
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for page in "$man3" "$man7" "$man1"; do
  [ -f "$page" ] || { not_ok "$page exists"; finish; }
done

# The text of a page with font changes and escapes removed: what grep -w
# can search for identifiers.
plain() {
  sed -e 's/\\f[BIRP]//g' -e 's/\\f(CW//g' -e 's/\\[&%]//g' -e 's/\\-/-/g' "$1"
}
plain "$man3" >"$tmp/3"
plain "$man7" >"$tmp/7"
plain "$man1" >"$tmp/1"

# One section of a plain page: the lines after ".SH NAME" up to the next .SH.
section() {
  awk -v want="$2" '
    /^\.SH / { sub(/^\.SH +/, ""); gsub(/"/, ""); on = ($0 == want); next }
    on' "$1"
}

# --- rsmalloc(7) documents every RSMALLOC_* name -------------------------
# Names in the library's sources and in the command. Macros that
# <rsmalloc.h> defines belong to the API (rsmalloc(3)), not the environment.
find "$top_srcdir/lib" -type f \( -name '*.h' -o -name '*.cc' -o -name '*.c' \
  -o -name '*.S' -o -name '*.map' \) -exec grep -ohE 'RSMALLOC_[A-Z0-9_]+' {} + \
  >"$tmp/names.lib"
grep -ohE 'RSMALLOC_[A-Z0-9_]+' "$command" >"$tmp/names.cmd"
sed -n 's/^#[[:space:]]*\(define\|ifndef\)[[:space:]]\{1,\}\(RSMALLOC_[A-Z0-9_]*\).*/\2/p' \
  "$top_srcdir/lib/rsmalloc.h" | sort -u >"$tmp/names.api"
sort -u "$tmp/names.lib" "$tmp/names.cmd" | grep -v '_$' |
  grep -vxF -f "$tmp/names.api" >"$tmp/names.env"
if [ -s "$tmp/names.env" ]; then
  missing=
  while read -r name; do
    grep -qw -- "$name" "$tmp/7" || missing="$missing $name"
  done <"$tmp/names.env"
  check "rsmalloc.7 names all $(wc -l <"$tmp/names.env") RSMALLOC_* variables${missing:+ (missing:$missing)}" \
    test -z "$missing"
else
  not_ok "found RSMALLOC_* names in lib/ and tools/rsmalloc"
fi

# The command's own variables are in rsmalloc(1) too.
missing=
for name in $(sort -u "$tmp/names.cmd" | grep -v '_$'); do
  grep -qw -- "$name" "$tmp/1" || missing="$missing $name"
done
check "rsmalloc.1 names the command's variables${missing:+ (missing:$missing)}" \
  test -z "$missing"

# The API macros of <rsmalloc.h> are in rsmalloc(3).
missing=
for name in $(grep -v '^RSMALLOC_H$' "$tmp/names.api"); do
  grep -qw -- "$name" "$tmp/3" || missing="$missing $name"
done
check "rsmalloc.3 names the macros of <rsmalloc.h>${missing:+ (missing:$missing)}" \
  test -z "$missing"

# --- rsmalloc(3) documents every exported symbol ------------------------
if [ ! -f "$RSMALLOC_LIB" ]; then
  not_ok "the library $RSMALLOC_LIB exists (build it first)"
elif ! command -v nm >/dev/null 2>&1; then
  skip "exported symbols: nm not found"
else
  nm -D --defined-only "$RSMALLOC_LIB" |
    awk '$2 ~ /^[TtWwiV]$/ { sub(/@.*/, "", $3); print $3 }' | sort -u >"$tmp/syms"
  section "$tmp/3" NAME >"$tmp/3.name"
  section "$tmp/3" SYNOPSIS >"$tmp/3.synopsis"
  section "$tmp/3" DESCRIPTION >"$tmp/3.description"
  c_missing=
  cxx_missing=
  cxx=0
  while read -r sym; do
    case $sym in
      _Z*)
        cxx=$((cxx + 1))
        if command -v c++filt >/dev/null 2>&1; then
          demangled=$(printf '%s\n' "$sym" | c++filt)
        else
          demangled=$sym
        fi
        # The operators are documented as a group: each form's name
        # (operator new, new[], delete, delete[]) in the synopsis and the
        # description.
        case $demangled in
          'operator new[]('* | 'operator delete[]('* | 'operator new('* | 'operator delete('*)
            op=${demangled%%(*}
            grep -qF -- "$op(" "$tmp/3.synopsis" &&
              grep -qF -- "${op%\[\]}" "$tmp/3.description" ||
              cxx_missing="$cxx_missing $sym"
            ;;
          *) cxx_missing="$cxx_missing $sym($demangled)" ;;
        esac
        ;;
      *)
        { grep -qw -- "$sym" "$tmp/3.name" &&
          grep -qw -- "$sym" "$tmp/3.synopsis" &&
          grep -qw -- "$sym" "$tmp/3.description"; } || c_missing="$c_missing $sym"
        ;;
    esac
  done <"$tmp/syms"
  nc=$(grep -vc '^_Z' "$tmp/syms")
  check "rsmalloc.3 names all $nc exported C functions in NAME, SYNOPSIS and DESCRIPTION${c_missing:+ (missing:$c_missing)}" \
    test -z "$c_missing" -a "$nc" -gt 0
  check "rsmalloc.3 documents the $cxx exported operator new/delete forms${cxx_missing:+ (missing:$cxx_missing)}" \
    test -z "$cxx_missing" -a "$cxx" -gt 0
fi

# --- rsmalloc(3) has man-pages(7)'s sections, in order -------------------
sed -n 's/^\.SH  *//p' "$man3" | tr -d '"' | tr '\n' '|' >"$tmp/order"
want='NAME|LIBRARY|SYNOPSIS|DESCRIPTION|RETURN VALUE|ERRORS|ATTRIBUTES|NOTES|EXAMPLES|SEE ALSO|'
check "rsmalloc.3 sections in man-pages(7) order" test "$(cat "$tmp/order")" = "$want"

# --- linting ---------------------------------------------------------------
if command -v mandoc >/dev/null 2>&1; then
  for page in "$man3" "$man7" "$man1"; do
    mandoc -Tlint -W warning "$page" >"$tmp/lint" 2>&1
    rc=$?
    check "mandoc -Tlint -W warning ${page##*/} is clean" test $rc -eq 0 -a ! -s "$tmp/lint" ||
      show "$tmp/lint"
  done
else
  skip "mandoc lint: mandoc not installed"
fi

if command -v man >/dev/null 2>&1 && man --version 2>/dev/null | grep -q '^man '; then
  for page in "$man3" "$man7" "$man1"; do
    # lintian's own check (groff through man-db, warnings on).
    LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 \
      man --warnings -E UTF-8 -l -Tutf8 -Z "$page" >/dev/null 2>"$tmp/warn"
    check "man --warnings ${page##*/} prints nothing (lintian's check)" test ! -s "$tmp/warn" ||
      show "$tmp/warn"
    MANWIDTH=80 man -l "$page" 2>/dev/null >"$tmp/render"
    check "man -l ${page##*/} renders" grep -q 'NAME' "$tmp/render"
  done
else
  skip "man-db check: man (man-db) not installed"
fi

# --- the example in rsmalloc(3) builds and runs ----------------------------
cc=${CC:-cc}
if ! command -v "$cc" >/dev/null 2>&1; then
  skip "EXAMPLES: no C compiler"
elif [ ! -f "$RSMALLOC_LIB" ]; then
  skip "EXAMPLES: the library is not built"
else
  sed -n '/^\.\\" SRC BEGIN/,/^\.\\" SRC END/p' "$man3" |
    sed -e '1,2d' -e '$d' | sed -e '$d' -e 's/\\e/\\/g' >"$tmp/example.c"
  libdir=$(dirname "$RSMALLOC_LIB")
  if "$cc" -Wall -Wextra -Werror -I"$top_srcdir/lib" -o "$tmp/example" \
    "$tmp/example.c" "$RSMALLOC_LIB" -Wl,-rpath,"$libdir" >"$tmp/cc" 2>&1; then
    ok "the example in rsmalloc.3 compiles without warnings"
    "$tmp/example" >"$tmp/out" 2>&1
    rc=$?
    check "the example in rsmalloc.3 runs on rsmalloc" test $rc -eq 0 -a \
      "$(sed -n '1s/^\(rsmalloc \)[0-9.]*, cache mode .*/\1/p' "$tmp/out")" = 'rsmalloc ' ||
      show "$tmp/out"
  else
    not_ok "the example in rsmalloc.3 compiles without warnings"
    show "$tmp/cc"
  fi
fi

finish
