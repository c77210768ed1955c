# SPDX-License-Identifier: MIT
# tests/stat/stat.mk, included from Makefile.am: `rsmalloc stat` and
# `rsmalloc top` (tools/rsmalloc-stat) against running test processes.
# Paths are from the top.

check_PROGRAMS += tests/stat/stat_target
# Not linked with rsmalloc: preloaded when a test wants it on rsmalloc.
tests_stat_stat_target_SOURCES = tests/stat/stat_target.c
tests_stat_stat_target_CFLAGS = $(RS_WARN_CFLAGS) -fno-builtin
tests_stat_stat_target_LDFLAGS = -pthread
tests_stat_stat_target_LDADD = -ldl

# A fake librsmalloc with an introspection block of another layout.
check_LTLIBRARIES += tests/stat/libfakersmalloc.la
tests_stat_libfakersmalloc_la_SOURCES = tests/stat/fake_block.c
tests_stat_libfakersmalloc_la_CFLAGS = $(RS_WARN_CFLAGS)
tests_stat_libfakersmalloc_la_LDFLAGS = -module -avoid-version -rpath /nowhere

# compute_stats, shared by collect_stats and the tool: exact, and clamped
# where counters read out of step would go negative.
check_PROGRAMS += tests/stat/test_compute_stats
tests_stat_test_compute_stats_SOURCES = tests/stat/test_compute_stats.cc \
	tests/check_main.h
tests_stat_test_compute_stats_CXXFLAGS = $(RS_UNIT_CXXFLAGS)
tests_stat_test_compute_stats_LDADD = $(RS_UNIT_LDADD)
TESTS += tests/stat/test_compute_stats

RS_STAT_TESTS = \
	tests/stat/stat-exact.sh \
	tests/stat/stat-busy.sh \
	tests/stat/stat-errors.sh \
	tests/stat/top.sh \
	tests/stat/helper-deps.sh
TESTS += $(RS_STAT_TESTS)
dist_check_SCRIPTS += $(RS_STAT_TESTS)
EXTRA_DIST += tests/stat/lib-stat.sh
