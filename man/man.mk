# SPDX-License-Identifier: MIT
# man/man.mk, included from Makefile.am: the man pages, the rsmalloc
# command (tools/rsmalloc) and the system tests (tests/system/).

dist_man_MANS += man/rsmalloc.3 man/rsmalloc.7 man/rsmalloc.1

# The rsmalloc command. tools/rsmalloc runs as it is from the source tree
# (it then assumes a system install); the installed copy gets this build's
# libdir and version. An install rule rather than bin_SCRIPTS: a generated
# script would need a name of its own next to the source one.
EXTRA_DIST += tools/rsmalloc
rs_command_subst = sed -e 's|@libdir[@]|$(libdir)|g' -e 's|@VERSION[@]|$(VERSION)|g' \
	-e 's|@pkglibexecdir[@]|$(pkglibexecdir)|g'

install-exec-local: install-rsmalloc-command
uninstall-local: uninstall-rsmalloc-command

install-rsmalloc-command:
	$(MKDIR_P) '$(DESTDIR)$(bindir)'
	$(rs_command_subst) '$(srcdir)/tools/rsmalloc' >'$(DESTDIR)$(bindir)/rsmalloc.tmp'
	chmod 755 '$(DESTDIR)$(bindir)/rsmalloc.tmp'
	mv -f '$(DESTDIR)$(bindir)/rsmalloc.tmp' '$(DESTDIR)$(bindir)/rsmalloc'

uninstall-rsmalloc-command:
	rm -f '$(DESTDIR)$(bindir)/rsmalloc'

.PHONY: install-rsmalloc-command uninstall-rsmalloc-command

# System tests: the man pages against the sources and the library, the
# command, and the library in /etc/ld.so.preload inside a mount namespace
# (root only; the last two skip what they cannot do).
RS_SYSTEM_TESTS = \
	tests/system/man-pages.sh \
	tests/system/system-wide.sh \
	tests/system/rsmalloc-command.sh
TESTS += $(RS_SYSTEM_TESTS)
dist_check_SCRIPTS += $(RS_SYSTEM_TESTS)
EXTRA_DIST += tests/lib.sh
