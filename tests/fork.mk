# SPDX-License-Identifier: MIT
# fork() against the real library (tests/fork/): stdio-heavy threads and
# signal-handler forks must never hang, in both cache modes. Included by
# the top Makefile.am; paths are from the top.

check_PROGRAMS += tests/fork/test_fork_hang

tests_fork_test_fork_hang_SOURCES = tests/fork/test_fork_hang.c \
	tests/rseq/alloc_util.h tests/emulator_stuck.h tests/check_main.h \
	tests/on_valgrind.h
tests_fork_test_fork_hang_CFLAGS = $(CHECK_CFLAGS) $(RS_WARN_CFLAGS) \
	-pthread -fno-builtin
tests_fork_test_fork_hang_LDFLAGS = -pthread
tests_fork_test_fork_hang_LDADD = lib/librsmalloc.la $(CHECK_LIBS)

TESTS += tests/fork/test_fork_hang
