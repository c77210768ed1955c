# SPDX-License-Identifier: MIT
# Memcheck must see every rsmalloc block: deliberate defects under valgrind.
check_PROGRAMS += tests/valgrind/defects
tests_valgrind_defects_SOURCES = tests/valgrind/defects.c
tests_valgrind_defects_CFLAGS = $(RS_WARN_CFLAGS) -g -O0 -fno-builtin
tests_valgrind_defects_LDADD = lib/librsmalloc.la
dist_check_SCRIPTS += tests/valgrind/memcheck.sh
TESTS += tests/valgrind/memcheck.sh
