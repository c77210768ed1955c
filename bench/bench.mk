# SPDX-License-Identifier: MIT
# bench/bench.mk: the benchmark suite (see docs/benchmarks.md).
#
#   make bench         full run against glibc, jemalloc, tcmalloc, mimalloc
#   make bench-quick   every workload once, small: checks they all run
#   make bench BENCHFLAGS='--reps 3 --workloads server,redis'
#
# bench/run builds the workload programs itself with plain cc into
# bench/build/: they are never linked with rsmalloc, which each run picks
# with LD_PRELOAD (the freshly built lib/.libs/librsmalloc.so).

BENCH_RUN = RSMALLOC_LIB='$(abs_top_builddir)/lib/.libs/librsmalloc.so' \
	$(top_srcdir)/bench/run \
	--build-dir '$(abs_top_builddir)/bench/build' \
	--results-dir '$(abs_top_builddir)/bench/results'

bench: lib/librsmalloc.la
	$(BENCH_RUN) $(BENCHFLAGS)

bench-quick: lib/librsmalloc.la
	$(BENCH_RUN) --quick $(BENCHFLAGS)

bench-clean:
	rm -rf '$(abs_top_builddir)/bench/build'

clean-local: bench-clean

.PHONY: bench bench-quick bench-clean

EXTRA_DIST += \
	bench/ab \
	bench/run \
	bench/startup-ab \
	bench/startup/empty.c \
	bench/startup/firstuse.c \
	bench/workloads/bigbuf.c \
	bench/workloads/common.h \
	bench/workloads/falseshare.c \
	bench/workloads/fsprobe.c \
	bench/workloads/fastpath.c \
	bench/workloads/large.c \
	bench/workloads/launch.c \
	bench/workloads/memory.c \
	bench/workloads/mtloop.c \
	bench/workloads/probe.c \
	bench/workloads/prodcons.c \
	bench/workloads/pywork.py \
	bench/workloads/real.py \
	bench/workloads/realloc.c \
	bench/workloads/server.c \
	bench/workloads/startup.c \
	bench/workloads/threads.c \
	bench/workloads/xthread.c
