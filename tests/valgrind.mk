# SPDX-License-Identifier: MIT
# Memcheck must see every rsmalloc block: deliberate defects under valgrind.
check_PROGRAMS += tests/valgrind/defects
tests_valgrind_defects_SOURCES = tests/valgrind/defects.c \
	tests/valgrind/defects_cxx.cc
tests_valgrind_defects_CFLAGS = $(RS_WARN_CFLAGS) -g -O0 -fno-builtin
# A test program may use libstdc++ (the library itself must not).
# -fsized-deallocation: clang before 19 leaves sized delete off by default.
tests_valgrind_defects_CXXFLAGS = $(RS_WARN_CXXFLAGS) -g -O0 -fno-builtin \
	-fsized-deallocation -Wno-old-style-cast
tests_valgrind_defects_LDADD = lib/librsmalloc.la
dist_check_SCRIPTS += tests/valgrind/memcheck.sh
TESTS += tests/valgrind/memcheck.sh
