# SPDX-License-Identifier: MIT
# Tests that the promised effects happen: the cache mode rsmalloc must pick
# here (tests/expected_mode, shared by the shell tests), RSMALLOC_DISABLE=1
# end to end, the background purger, and the other settings. Included from
# tests/abi.mk; paths are from the top.

check_PROGRAMS += tests/expected_mode

# On glibc's malloc: it must not ask rsmalloc what the answer is.
tests_expected_mode_SOURCES = tests/expected_mode.c tests/on_valgrind.h
tests_expected_mode_CFLAGS = $(RS_WARN_CFLAGS)
