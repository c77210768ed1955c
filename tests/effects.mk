# SPDX-License-Identifier: MIT
# Tests that the promised effects happen: the cache mode rsmalloc must pick
# here (tests/expected_mode, shared by the shell tests), RSMALLOC_DISABLE=1
# end to end, the background purger, and the other settings. Included from
# tests/abi.mk; paths are from the top.

check_PROGRAMS += tests/expected_mode tests/test_disabled tests/background tests/settings_prog

# On glibc's malloc: it must not ask rsmalloc what the answer is.
tests_expected_mode_SOURCES = tests/expected_mode.c tests/on_valgrind.h
tests_expected_mode_CFLAGS = $(RS_WARN_CFLAGS)

tests_test_disabled_SOURCES = tests/test_disabled.c tests/check_main.h
tests_test_disabled_CFLAGS = $(RS_ABI_TEST_CFLAGS)
tests_test_disabled_LDFLAGS = -pthread
tests_test_disabled_LDADD = $(RS_ABI_TEST_LIBS)

tests_background_SOURCES = tests/background.c
tests_background_CFLAGS = $(RS_WARN_CFLAGS) -fno-builtin
tests_background_LDADD = lib/librsmalloc.la

tests_settings_prog_SOURCES = tests/settings_prog.c
tests_settings_prog_CFLAGS = $(RS_WARN_CFLAGS) -fno-builtin
tests_settings_prog_LDADD = lib/librsmalloc.la

dist_check_SCRIPTS += tests/disabled.sh tests/background.sh tests/settings-effects.sh
TESTS += tests/disabled.sh tests/background.sh tests/settings-effects.sh
