# SPDX-License-Identifier: MIT
# The start-up cost of a preloaded rsmalloc, in system calls
# (tests/startup.sh). Paths are from the top.

# On glibc's malloc: the test preloads the library.
check_PROGRAMS += tests/startup_prog
tests_startup_prog_SOURCES = tests/startup_prog.c
tests_startup_prog_CFLAGS = $(RS_WARN_CFLAGS) -fno-builtin

dist_check_SCRIPTS += tests/startup.sh tests/startup-text.sh
TESTS += tests/startup.sh tests/startup-text.sh
