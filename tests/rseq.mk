# SPDX-License-Identifier: MIT
# rseq tests (tests/rseq/): conservation of objects through a standalone
# CpuCache and forced aborts of its critical sections (against the inject
# build of the core), then signal storms, drains and forks with the real
# library, and all of them under each cache mode. Included by the top
# Makefile.am; paths are from the top.

# Unit-style: the core with RS_RSEQ_INJECT, so the injection points exist.
RS_RSEQ_UNIT_CPPFLAGS = $(AM_CPPFLAGS) -DRS_RSEQ_INJECT=1
RS_RSEQ_UNIT_CXXFLAGS = $(RS_WARN_CXXFLAGS) $(CHECK_CFLAGS) -Wno-old-style-cast
RS_RSEQ_UNIT_LDADD = lib/librscore_inject.la $(CHECK_LIBS) -lpthread

# Against the shared library: malloc is rsmalloc. -fno-builtin: the
# compiler must not fold or drop allocation calls.
RS_RSEQ_LIB_CFLAGS = $(CHECK_CFLAGS) $(RS_WARN_CFLAGS) -pthread -fno-builtin
RS_RSEQ_LIB_LDADD = lib/librsmalloc.la $(CHECK_LIBS)

RS_RSEQ_TEST_BINS = \
	tests/rseq/test_conservation \
	tests/rseq/test_inject \
	tests/rseq/test_dfrace \
	tests/rseq/test_signals \
	tests/rseq/test_drain \
	tests/rseq/test_fork

check_PROGRAMS += $(RS_RSEQ_TEST_BINS)
EXTRA_DIST += tests/rseq/cache_harness.h tests/rseq/alloc_util.h tests/on_valgrind.h \
	tests/emulator_stuck.h

tests_rseq_test_conservation_SOURCES = tests/rseq/test_conservation.cc \
	tests/rseq/cache_harness.h
tests_rseq_test_conservation_CPPFLAGS = $(RS_RSEQ_UNIT_CPPFLAGS)
tests_rseq_test_conservation_CXXFLAGS = $(RS_RSEQ_UNIT_CXXFLAGS)
tests_rseq_test_conservation_LDADD = $(RS_RSEQ_UNIT_LDADD)

tests_rseq_test_inject_SOURCES = tests/rseq/test_inject.cc \
	tests/rseq/cache_harness.h
tests_rseq_test_inject_CPPFLAGS = $(RS_RSEQ_UNIT_CPPFLAGS)
tests_rseq_test_inject_CXXFLAGS = $(RS_RSEQ_UNIT_CXXFLAGS)
tests_rseq_test_inject_LDADD = $(RS_RSEQ_UNIT_LDADD)

tests_rseq_test_dfrace_SOURCES = tests/rseq/test_dfrace.cc tests/run_child.h
tests_rseq_test_dfrace_CPPFLAGS = $(RS_RSEQ_UNIT_CPPFLAGS)
tests_rseq_test_dfrace_CXXFLAGS = $(RS_RSEQ_UNIT_CXXFLAGS)
tests_rseq_test_dfrace_LDADD = $(RS_RSEQ_UNIT_LDADD)

tests_rseq_test_signals_SOURCES = tests/rseq/test_signals.c \
	tests/rseq/alloc_util.h
tests_rseq_test_signals_CFLAGS = $(RS_RSEQ_LIB_CFLAGS)
tests_rseq_test_signals_LDFLAGS = -pthread
tests_rseq_test_signals_LDADD = $(RS_RSEQ_LIB_LDADD)

tests_rseq_test_drain_SOURCES = tests/rseq/test_drain.c \
	tests/rseq/alloc_util.h
tests_rseq_test_drain_CFLAGS = $(RS_RSEQ_LIB_CFLAGS)
tests_rseq_test_drain_LDFLAGS = -pthread
tests_rseq_test_drain_LDADD = $(RS_RSEQ_LIB_LDADD)

tests_rseq_test_fork_SOURCES = tests/rseq/test_fork.c \
	tests/rseq/alloc_util.h
tests_rseq_test_fork_CFLAGS = $(RS_RSEQ_LIB_CFLAGS)
tests_rseq_test_fork_LDFLAGS = -pthread
tests_rseq_test_fork_LDADD = $(RS_RSEQ_LIB_LDADD)

dist_check_SCRIPTS += tests/rseq/modes.sh
EXTRA_DIST += tests/rseq/repeat.sh

TESTS += $(RS_RSEQ_TEST_BINS) tests/rseq/modes.sh

# Not part of make check: every rseq test 20 times in a row, with rseq and
# with RSMALLOC_RSEQ=0 (RSEQ_REPEAT=n to change the count).
check-rseq-repeat: $(RS_RSEQ_TEST_BINS) lib/librsmalloc.la
	top_srcdir='$(abs_top_srcdir)'; top_builddir='$(abs_top_builddir)'; \
	RSMALLOC_LIB='$(abs_top_builddir)/lib/.libs/librsmalloc.so'; \
	export top_srcdir top_builddir RSMALLOC_LIB; \
	$(SHELL) $(srcdir)/tests/rseq/repeat.sh
.PHONY: check-rseq-repeat
