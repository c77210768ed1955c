# SPDX-License-Identifier: MIT
# ABI-level tests of the shared library librsmalloc.la: the exported C and
# C++ entry points (Check), multi-threaded stress, a 512 MiB address-space
# limit, the symbol table and dependencies, and real programs under
# LD_PRELOAD. Included by the top Makefile.am; paths are from the top.

# -fno-builtin: the compiler must not fold or drop allocation calls.
RS_ABI_TEST_CFLAGS = $(CHECK_CFLAGS) $(RS_WARN_CFLAGS) -pthread -fno-builtin
RS_ABI_TEST_LIBS = lib/librsmalloc.la $(CHECK_LIBS)

check_PROGRAMS += tests/test_abi tests/test_cxx tests/test_stress \
	tests/limit_prog tests/test_promises

tests_test_abi_SOURCES = tests/test_abi.c tests/check_main.h tests/stats_json.h
tests_test_abi_CFLAGS = $(RS_ABI_TEST_CFLAGS)
tests_test_abi_LDFLAGS = -pthread
tests_test_abi_LDADD = $(RS_ABI_TEST_LIBS)

# Promises other tests could not see broken (calloc's zeros, misuse
# aborts, statistics); reruns itself with RSMALLOC_RSEQ=0.
tests_test_promises_SOURCES = tests/test_promises.c tests/check_main.h tests/stats_json.h \
	tests/misuse.h tests/run_child.h
tests_test_promises_CFLAGS = $(RS_ABI_TEST_CFLAGS)
tests_test_promises_LDFLAGS = -pthread
tests_test_promises_LDADD = $(RS_ABI_TEST_LIBS)

# A C++ program: linked by the C++ driver, libstdc++ is fine here.
# -fsized-deallocation: clang before 19 leaves sized delete off by default.
tests_test_cxx_SOURCES = tests/test_cxx.cc tests/check_main.h tests/on_valgrind.h
tests_test_cxx_CXXFLAGS = $(CHECK_CFLAGS) $(RS_WARN_CXXFLAGS) -pthread \
	-fno-builtin -fsized-deallocation
tests_test_cxx_LDFLAGS = -pthread
tests_test_cxx_LDADD = $(RS_ABI_TEST_LIBS)

tests_test_stress_SOURCES = tests/test_stress.c tests/check_main.h tests/on_valgrind.h
tests_test_stress_CFLAGS = $(RS_ABI_TEST_CFLAGS)
tests_test_stress_LDFLAGS = -pthread
tests_test_stress_LDADD = $(RS_ABI_TEST_LIBS)

# Run by tests/ulimit.sh under ulimit -v; needs no Check.
tests_limit_prog_SOURCES = tests/limit_prog.c
tests_limit_prog_CFLAGS = $(RS_WARN_CFLAGS) -fno-builtin
tests_limit_prog_LDADD = lib/librsmalloc.la

dist_check_SCRIPTS += tests/abi-deps.sh tests/ulimit.sh \
	tests/real-programs.sh tests/commit-charge.sh
EXTRA_DIST += tests/abi-symbols.txt

# glibc's behaviours: errno, mallopt, M_PERTURB and MALLOC_PERTURB_,
# malloc_stats and malloc_info (run by tests/glibc-compat.sh in each mode).
check_PROGRAMS += tests/test_glibc_compat tests/perturb_probe
tests_test_glibc_compat_SOURCES = tests/test_glibc_compat.c \
	tests/check_main.h tests/on_valgrind.h
tests_test_glibc_compat_CFLAGS = $(RS_ABI_TEST_CFLAGS)
tests_test_glibc_compat_LDFLAGS = -pthread
tests_test_glibc_compat_LDADD = $(RS_ABI_TEST_LIBS)
# Not linked with rsmalloc: it runs under /etc/ld.so.preload.
tests_perturb_probe_SOURCES = tests/perturb_probe.c
tests_perturb_probe_CFLAGS = $(RS_WARN_CFLAGS) -fno-builtin
dist_check_SCRIPTS += tests/glibc-compat.sh
TESTS += tests/glibc-compat.sh

# Settings and modes: promises that tests/effects.mk checks.
include $(srcdir)/tests/effects.mk

# Cheap checks first.
TESTS += tests/abi-deps.sh tests/test_abi tests/test_promises tests/test_cxx \
	tests/test_stress tests/ulimit.sh tests/real-programs.sh \
	tests/commit-charge.sh

# Fresh objects of two CPUs' caches share no cache line (false sharing),
# in both cache modes.
check_PROGRAMS += tests/test_lines
tests_test_lines_SOURCES = tests/test_lines.c tests/check_main.h \
	tests/on_valgrind.h
tests_test_lines_CFLAGS = $(RS_ABI_TEST_CFLAGS)
tests_test_lines_LDFLAGS = -pthread
tests_test_lines_LDADD = $(RS_ABI_TEST_LIBS)
TESTS += tests/test_lines

# Misuse that rsmalloc stops by default: double, interior and wrong-size
# frees, in both cache modes (issue 12).
check_PROGRAMS += tests/test_hardening
tests_test_hardening_SOURCES = tests/test_hardening.c tests/misuse.h \
	tests/check_main.h tests/on_valgrind.h
tests_test_hardening_CFLAGS = $(RS_ABI_TEST_CFLAGS)
tests_test_hardening_LDFLAGS = -pthread
tests_test_hardening_LDADD = $(RS_ABI_TEST_LIBS)
TESTS += tests/test_hardening

# Strict mode (RSMALLOC_HARDEN=1), run by tests/strict.sh.
check_PROGRAMS += tests/test_strict
tests_test_strict_SOURCES = tests/test_strict.c tests/misuse.h tests/check_main.h
tests_test_strict_CFLAGS = $(RS_ABI_TEST_CFLAGS)
tests_test_strict_LDADD = $(RS_ABI_TEST_LIBS)
dist_check_SCRIPTS += tests/strict.sh
TESTS += tests/strict.sh
