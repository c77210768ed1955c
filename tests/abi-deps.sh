#!/bin/sh
# SPDX-License-Identifier: MIT
# The shared library's dynamic section and symbol tables: NEEDED is libc
# (and the loader) only, SONAME librsmalloc.so.0, no C++ runtime reference
# that is not weak, exactly the exports in abi-symbols.txt (unversioned),
# hardening flags, and libc's own malloc calls binding to rsmalloc.
set -u
LC_ALL=C
export LC_ALL

. "$(dirname "$0")/lib.sh"

lib=$RSMALLOC_LIB
expected=$top_srcdir/tests/abi-symbols.txt
for tool in readelf nm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIP: $tool is not installed"
    exit 77
  fi
done
if [ ! -f "$lib" ]; then
  echo "ERROR: $lib not found"
  exit 99
fi
if [ ! -f "$expected" ]; then
  echo "ERROR: $expected not found"
  exit 99
fi
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT

readelf -dW "$lib" >"$tmp/dynamic" || { echo "ERROR: readelf -d failed"; exit 99; }
readelf -lW "$lib" >"$tmp/program" || { echo "ERROR: readelf -l failed"; exit 99; }

# NEEDED: libc.so.6, and the loader if it is listed; nothing else.
sed -n 's/.*(NEEDED).*\[\(.*\)\].*/\1/p' "$tmp/dynamic" | sort >"$tmp/needed"
grep -v -x -e 'libc.so.6' -e 'ld-linux.*\.so\.[0-9]*' "$tmp/needed" >"$tmp/extra"
if ! grep -qx 'libc.so.6' "$tmp/needed"; then
  not_ok "NEEDED lacks libc.so.6: $(tr '\n' ' ' <"$tmp/needed")"
elif [ -s "$tmp/extra" ]; then
  not_ok "NEEDED has more than libc and the loader: $(tr '\n' ' ' <"$tmp/extra")"
else
  ok "NEEDED is $(tr '\n' ' ' <"$tmp/needed")"
fi

# SONAME.
soname=$(sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p' "$tmp/dynamic")
if [ "$soname" = librsmalloc.so.0 ]; then
  ok "SONAME is librsmalloc.so.0"
else
  not_ok "SONAME is '$soname', expected librsmalloc.so.0"
fi

# Undefined symbols. Strong ones must all come from glibc (versioned
# GLIBC_*); C++ runtime symbols (mangled _Z*, std::...) may only be weak
# references, and no reference may carry a libstdc++/libgcc_s version.
nm -D --undefined-only "$lib" | awk '{ print $1, $2 }' >"$tmp/undef"
awk '$1 == "U" && $2 !~ /@GLIBC_/ { print $2 }' "$tmp/undef" >"$tmp/strong_foreign"
if [ -s "$tmp/strong_foreign" ]; then
  not_ok "strong undefined symbols not from glibc: $(tr '\n' ' ' <"$tmp/strong_foreign")"
else
  ok "every strong undefined symbol is glibc's"
fi
awk '$1 == "U" && $2 ~ /^(__cxa_|__gxx_personality|_Unwind_|_Z)/ && $2 !~ /@GLIBC_/ { print $2 }' \
  "$tmp/undef" >"$tmp/cxx_strong"
if [ -s "$tmp/cxx_strong" ]; then
  not_ok "strong C++ runtime references: $(tr '\n' ' ' <"$tmp/cxx_strong")"
else
  ok "no strong __cxa_*, __gxx_personality*, _Unwind_* or std:: references"
fi
awk '$2 ~ /@(GLIBCXX|CXXABI|GCC)_/ { print $1, $2 }' "$tmp/undef" >"$tmp/cxx_versioned"
if [ -s "$tmp/cxx_versioned" ]; then
  not_ok "references bound to libstdc++/libgcc_s versions: $(tr '\n' ' ' <"$tmp/cxx_versioned")"
else
  ok "no reference carries a libstdc++ or libgcc_s version"
fi
awk '$1 != "U" && $1 != "w" && $1 != "v" { print $1, $2 }' "$tmp/undef" >"$tmp/odd"
if [ -s "$tmp/odd" ]; then
  not_ok "undefined symbols of unexpected type: $(tr '\n' ' ' <"$tmp/odd")"
else
  ok "undefined symbols are U or weak"
fi
echo "weak references: $(awk '$1 == "w" { print $2 }' "$tmp/undef" | tr '\n' ' ')"

# Defined exports: functions only (but for the one read-only pointer that
# rsmalloc stat looks up), unversioned, exactly abi-symbols.txt.
nm -D --defined-only "$lib" | awk '{ print $2, $3 }' >"$tmp/defined"
awk '$1 != "T" && $1 != "W" && $1 != "i" &&
  !($1 ~ /^[DdRr]$/ && $2 == "rsmalloc_introspection") { print $1, $2 }' \
  "$tmp/defined" >"$tmp/nonfunc"
if [ -s "$tmp/nonfunc" ]; then
  not_ok "exported symbols that are not functions: $(tr '\n' ' ' <"$tmp/nonfunc")"
else
  ok "every export is a function (T/W/i), or rsmalloc_introspection"
fi
awk '$2 ~ /@/ { print $2 }' "$tmp/defined" >"$tmp/versioned"
if [ -s "$tmp/versioned" ]; then
  not_ok "exports carry a version (use an anonymous version node): $(head -3 "$tmp/versioned" | tr '\n' ' ')"
else
  ok "exports are unversioned"
fi
awk '$1 == "T" || $1 == "W" || $1 == "i" || $2 == "rsmalloc_introspection" {
  sub(/@.*/, "", $2); print $2 }' \
  "$tmp/defined" | sort -u >"$tmp/exports"
sort -u "$expected" >"$tmp/expected"
if cmp -s "$tmp/exports" "$tmp/expected"; then
  ok "exports equal tests/abi-symbols.txt ($(wc -l <"$tmp/exports") symbols)"
else
  not_ok "exports differ from tests/abi-symbols.txt (- expected, + actual):"
  diff -u "$tmp/expected" "$tmp/exports" | sed -n '3,$p'
fi

# Hardening a preloaded library must not weaken: RELRO, BIND_NOW, no
# executable stack, no text relocations.
if grep -q 'GNU_RELRO' "$tmp/program"; then
  ok "GNU_RELRO segment"
else
  not_ok "no GNU_RELRO segment"
fi
if grep -Eq '\(FLAGS\).*BIND_NOW|\(FLAGS_1\).*NOW|\(BIND_NOW\)' "$tmp/dynamic"; then
  ok "BIND_NOW"
else
  not_ok "not linked with -z now"
fi
stack=$(awk '$1 == "GNU_STACK" { print $(NF - 1) }' "$tmp/program")
if [ -z "$stack" ]; then
  not_ok "no GNU_STACK header: the loader would make stacks executable"
elif [ "$stack" = RW ]; then
  ok "stack is not executable"
else
  not_ok "GNU_STACK flags $stack: executable stack"
fi
if grep -q 'TEXTREL' "$tmp/dynamic"; then
  not_ok "text relocations"
else
  ok "no text relocations"
fi

# At run time: libc's own references to the allocator bind to rsmalloc,
# and a C program does not get the C++ runtime loaded.
if [ -x /bin/cat ]; then
  LD_BIND_NOW=1 LD_DEBUG=bindings LD_PRELOAD=$lib /bin/cat /dev/null \
    2>"$tmp/bindings" >/dev/null
  missing=
  for sym in malloc free calloc realloc; do
    grep "libc\.so\.6 .* to .*librsmalloc[^ ]* .*symbol \`$sym'" \
      "$tmp/bindings" >/dev/null || missing="$missing $sym"
  done
  if [ -z "$missing" ]; then
    ok "libc binds malloc, free, calloc, realloc to rsmalloc"
  else
    not_ok "libc's references not bound to rsmalloc:$missing"
    grep "symbol \`malloc'" "$tmp/bindings" | head -3
  fi
  LD_PRELOAD=$lib /bin/cat /proc/self/maps >"$tmp/maps" 2>&1
  if ! grep -q librsmalloc "$tmp/maps"; then
    not_ok "librsmalloc not mapped in a preloaded cat"
  elif grep -Eq 'libstdc\+\+|libgcc_s' "$tmp/maps"; then
    not_ok "a preloaded C program maps $(grep -Eo 'libstdc\+\+[^ ]*|libgcc_s[^ ]*' "$tmp/maps" | sort -u | tr '\n' ' ')"
  else
    ok "a preloaded C program maps librsmalloc and no C++ runtime"
  fi
fi

finish
