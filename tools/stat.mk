# SPDX-License-Identifier: MIT
# tools/stat.mk, included from Makefile.am: rsmalloc-stat, the helper that
# `rsmalloc stat` and `rsmalloc top` (tools/rsmalloc) run. It reads other
# processes' statistics from outside and formats them with the library's
# own code (lib/stats.cc), built here again for a program: against libc
# only, linked through the C driver so that libstdc++ is not needed.
pkglibexec_PROGRAMS = tools/rsmalloc-stat
tools_rsmalloc_stat_SOURCES = \
	tools/rsmalloc-stat.cc \
	tools/stat/target.h tools/stat/target.cc \
	lib/introspect.h \
	lib/stats.h lib/stats.cc \
	lib/log.h lib/log.cc \
	lib/os.h lib/os.cc \
	lib/size_class.h lib/size_class.cc
tools_rsmalloc_stat_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tools
tools_rsmalloc_stat_CXXFLAGS = -fno-exceptions -fno-rtti \
	-fno-threadsafe-statics $(RS_WARN_CXXFLAGS)
tools_rsmalloc_stat_LINK = $(CC) $(tools_rsmalloc_stat_CXXFLAGS) \
	$(CXXFLAGS) $(AM_LDFLAGS) $(LDFLAGS) -o $@
