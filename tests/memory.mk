# SPDX-License-Identifier: MIT
# Returning memory and statistics (issue: giving memory back).
check_PROGRAMS += tests/memory/return
tests_memory_return_SOURCES = tests/memory/return.c
tests_memory_return_CFLAGS = $(RS_WARN_CFLAGS) -pthread -fno-builtin
tests_memory_return_LDFLAGS = -pthread
tests_memory_return_LDADD = lib/librsmalloc.la
dist_check_SCRIPTS += tests/memory/return.sh
TESTS += tests/memory/return.sh
