# SPDX-License-Identifier: MIT
# Unit tests of the core modules, one Check program per module, linked
# against the internal convenience library so they reach internals (the
# test programs themselves run on glibc's malloc).
RS_UNIT_LDADD = lib/librscore.la $(CHECK_LIBS) -lpthread
RS_UNIT_CXXFLAGS = $(RS_WARN_CXXFLAGS) $(CHECK_CFLAGS) -Wno-old-style-cast
RS_UNIT_TESTS = \
	tests/unit/test_size_class \
	tests/unit/test_settings \
	tests/unit/test_log \
	tests/unit/test_page_map \
	tests/unit/test_page_heap \
	tests/unit/test_page_heap_reuse \
	tests/unit/test_central_list \
	tests/unit/test_central_lines \
	tests/unit/test_transfer_cache \
	tests/unit/test_moves \
	tests/unit/test_span_release \
	tests/unit/test_large \
	tests/unit/test_cpu_cache \
	tests/unit/test_cpu_cache_threads

check_PROGRAMS += tests/unit/test_size_class
tests_unit_test_size_class_SOURCES = tests/unit/test_size_class.cc \
	tests/check_main.h
tests_unit_test_size_class_CXXFLAGS = $(RS_UNIT_CXXFLAGS)
tests_unit_test_size_class_LDADD = $(RS_UNIT_LDADD)
TESTS += tests/unit/test_size_class

check_PROGRAMS += tests/unit/test_settings
tests_unit_test_settings_SOURCES = tests/unit/test_settings.cc
tests_unit_test_settings_CXXFLAGS = $(RS_UNIT_CXXFLAGS)
tests_unit_test_settings_LDADD = $(RS_UNIT_LDADD)
TESTS += tests/unit/test_settings

check_PROGRAMS += tests/unit/test_moves
tests_unit_test_moves_SOURCES = tests/unit/test_moves.cc
tests_unit_test_moves_CXXFLAGS = $(RS_UNIT_CXXFLAGS)
tests_unit_test_moves_LDADD = $(RS_UNIT_LDADD)
TESTS += tests/unit/test_moves

check_PROGRAMS += tests/unit/test_log
tests_unit_test_log_SOURCES = tests/unit/test_log.cc
tests_unit_test_log_CXXFLAGS = $(RS_UNIT_CXXFLAGS)
tests_unit_test_log_LDADD = $(RS_UNIT_LDADD)
TESTS += tests/unit/test_log

check_PROGRAMS += tests/unit/test_page_map
tests_unit_test_page_map_SOURCES = tests/unit/test_page_map.cc
tests_unit_test_page_map_CXXFLAGS = $(RS_UNIT_CXXFLAGS)
tests_unit_test_page_map_LDADD = $(RS_UNIT_LDADD)
TESTS += tests/unit/test_page_map

check_PROGRAMS += tests/unit/test_page_heap
tests_unit_test_page_heap_SOURCES = tests/unit/test_page_heap.cc
tests_unit_test_page_heap_CXXFLAGS = $(RS_UNIT_CXXFLAGS)
tests_unit_test_page_heap_LDADD = $(RS_UNIT_LDADD)
TESTS += tests/unit/test_page_heap

check_PROGRAMS += tests/unit/test_page_heap_reuse
tests_unit_test_page_heap_reuse_SOURCES = tests/unit/test_page_heap_reuse.cc
tests_unit_test_page_heap_reuse_CXXFLAGS = $(RS_UNIT_CXXFLAGS)
tests_unit_test_page_heap_reuse_LDADD = $(RS_UNIT_LDADD)
TESTS += tests/unit/test_page_heap_reuse

check_PROGRAMS += tests/unit/test_central_list
tests_unit_test_central_list_SOURCES = tests/unit/test_central_list.cc
tests_unit_test_central_list_CXXFLAGS = $(RS_UNIT_CXXFLAGS)
tests_unit_test_central_list_LDADD = $(RS_UNIT_LDADD)
TESTS += tests/unit/test_central_list

check_PROGRAMS += tests/unit/test_central_lines
tests_unit_test_central_lines_SOURCES = tests/unit/test_central_lines.cc
tests_unit_test_central_lines_CXXFLAGS = $(RS_UNIT_CXXFLAGS)
tests_unit_test_central_lines_LDADD = $(RS_UNIT_LDADD)
TESTS += tests/unit/test_central_lines

check_PROGRAMS += tests/unit/test_transfer_cache
tests_unit_test_transfer_cache_SOURCES = tests/unit/test_transfer_cache.cc
tests_unit_test_transfer_cache_CXXFLAGS = $(RS_UNIT_CXXFLAGS)
tests_unit_test_transfer_cache_LDADD = $(RS_UNIT_LDADD)
TESTS += tests/unit/test_transfer_cache

check_PROGRAMS += tests/unit/test_span_release
tests_unit_test_span_release_SOURCES = tests/unit/test_span_release.cc
tests_unit_test_span_release_CXXFLAGS = $(RS_UNIT_CXXFLAGS)
tests_unit_test_span_release_LDADD = $(RS_UNIT_LDADD)
TESTS += tests/unit/test_span_release

check_PROGRAMS += tests/unit/test_large
tests_unit_test_large_SOURCES = tests/unit/test_large.cc
tests_unit_test_large_CXXFLAGS = $(RS_UNIT_CXXFLAGS)
tests_unit_test_large_LDADD = $(RS_UNIT_LDADD)
TESTS += tests/unit/test_large

check_PROGRAMS += tests/unit/test_cpu_cache
tests_unit_test_cpu_cache_SOURCES = tests/unit/test_cpu_cache.cc \
	tests/unit/cpu_cache_fake.cc tests/unit/cpu_cache_fake.h
tests_unit_test_cpu_cache_CXXFLAGS = $(RS_UNIT_CXXFLAGS)
tests_unit_test_cpu_cache_LDADD = $(RS_UNIT_LDADD)
TESTS += tests/unit/test_cpu_cache

check_PROGRAMS += tests/unit/test_cpu_cache_threads
tests_unit_test_cpu_cache_threads_SOURCES = \
	tests/unit/test_cpu_cache_threads.cc \
	tests/unit/cpu_cache_fake.cc tests/unit/cpu_cache_fake.h
tests_unit_test_cpu_cache_threads_CXXFLAGS = $(RS_UNIT_CXXFLAGS)
tests_unit_test_cpu_cache_threads_LDADD = $(RS_UNIT_LDADD)
TESTS += tests/unit/test_cpu_cache_threads

# make check-sanitize: the core and the unit tests above, built apart in
# build-san/ with AddressSanitizer and UndefinedBehaviorSanitizer (never the
# exported library: ASan brings its own malloc). A configured source tree
# cannot host a second build directory, so the sources (tracked, plus new
# files that are not ignored, plus the generated build system) are copied
# into build-san/src and configured there; reruns rebuild only what changed.
# Any sanitizer report fails the target.
RS_SAN_DIR = $(abs_top_builddir)/build-san
RS_SAN_CXXFLAGS = -O1 -g -fsanitize=address,undefined \
	-fno-omit-frame-pointer -fno-sanitize-recover=all
RS_SAN_LINK = -fsanitize=address,undefined
RS_SAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
check-sanitize:
	@cd $(abs_top_srcdir) && git rev-parse --git-dir >/dev/null 2>&1 || \
	  { echo "check-sanitize: needs a git checkout to copy the sources"; \
	    exit 1; }
	$(MKDIR_P) $(RS_SAN_DIR)/src
	cd $(abs_top_srcdir) && \
	  { git ls-files --cached; \
	    git ls-files --others --exclude-standard | grep '\.[a-z0-9]*$$'; \
	    ls -d configure Makefile.in aclocal.m4 config.h.in build-aux/* m4/* \
	      2>/dev/null; \
	  } | grep -v '^build-san/' | sort -u | \
	  while read -r f; do test -f "$$f" && echo "$$f"; done | \
	  tar -cf - -T - | (cd $(RS_SAN_DIR)/src && tar -xf -)
	cd $(RS_SAN_DIR)/src && ./configure --quiet \
	  CXXFLAGS='$(RS_SAN_CXXFLAGS)' LDFLAGS='$(RS_SAN_LINK)'
	cd $(RS_SAN_DIR)/src && $(MAKE) $(AM_MAKEFLAGS) $(RS_UNIT_TESTS)
	cd $(RS_SAN_DIR)/src && $(RS_SAN_ENV) $(MAKE) $(AM_MAKEFLAGS) \
	  check-TESTS TESTS='$(RS_UNIT_TESTS)' check_PROGRAMS='$(RS_UNIT_TESTS)' \
	  check_LTLIBRARIES= dist_check_SCRIPTS=
	@if grep -l -E 'AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:' \
	    $(RS_SAN_DIR)/src/tests/unit/*.log; then \
	  echo "check-sanitize: sanitizer reports in the logs above"; exit 1; \
	fi

# make check-tsan: the same unit tests under ThreadSanitizer, in build-tsan/.
# TSan does not see the memory accesses inside the rseq assembly, so of
# test_cpu_cache's two modes it judges the locked one; the exported library
# cannot run under TSan at all (TSan brings its own malloc).
check-tsan:
	$(MAKE) $(AM_MAKEFLAGS) check-sanitize \
	  RS_SAN_DIR='$(abs_top_builddir)/build-tsan' \
	  RS_SAN_CXXFLAGS='-O1 -g -fsanitize=thread -fno-omit-frame-pointer' \
	  RS_SAN_LINK='-fsanitize=thread' \
	  RS_SAN_ENV='TSAN_OPTIONS=halt_on_error=1'
clean-sanitize:
	rm -rf $(RS_SAN_DIR) $(abs_top_builddir)/build-tsan
.PHONY: check-sanitize check-tsan clean-sanitize
