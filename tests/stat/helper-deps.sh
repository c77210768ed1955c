#!/bin/sh
# SPDX-License-Identifier: MIT
# rsmalloc-stat, the helper behind rsmalloc stat and top, needs the C
# library only: no libstdc++, no libgcc_s, no C++ runtime symbols but
# libc's own __cxa_finalize (the librsmalloc package must not pull them in).
. "$(dirname "$0")/../lib.sh"

helper=$top_builddir/tools/rsmalloc-stat
[ -x "$helper" ] || { not_ok "$helper exists (build it first)"; finish; }
command -v readelf >/dev/null 2>&1 || { skip "readelf not found"; finish; }

needed=$(readelf -d "$helper" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
check "rsmalloc-stat needs libc.so.6 only (needs: $needed)" \
  test "$needed" = "libc.so.6 "
runtime=$(nm -D --undefined-only "$helper" 2>/dev/null |
  grep -E '__cxa_|__gxx_personality|_Unwind_|_Zn|_Zd' | grep -v '@GLIBC_' | tr '\n' ' ')
check "rsmalloc-stat uses no C++ runtime symbol${runtime:+ ($runtime)}" \
  test -z "$runtime"
finish
