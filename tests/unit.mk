# SPDX-License-Identifier: MIT
# Unit tests of the core modules, linked against the internal convenience
# library so they reach internals.
RS_UNIT_LDADD = lib/librscore.la $(CHECK_LIBS) -lpthread
RS_UNIT_CXXFLAGS = $(RS_WARN_CXXFLAGS) $(CHECK_CFLAGS) -Wno-old-style-cast

check_PROGRAMS += tests/unit/test_core
tests_unit_test_core_SOURCES = tests/unit/test_core.cc
tests_unit_test_core_CXXFLAGS = $(RS_UNIT_CXXFLAGS)
tests_unit_test_core_LDADD = $(RS_UNIT_LDADD)
TESTS += tests/unit/test_core
