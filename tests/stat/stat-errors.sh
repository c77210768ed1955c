#!/bin/sh
# SPDX-License-Identifier: MIT
# rsmalloc stat's refusals: each is one line on stderr, exit status 1,
# nothing on stdout. A process not on rsmalloc, a PID with no process, a
# process of another user, one that exits during the read, one whose
# rsmalloc has another layout of the introspection block.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lib-stat.sh"

# Not on rsmalloc.
if rs_start plain off idle; then
  rs stat "$pid"
  check "a process not on rsmalloc: one line, status 1" \
    one_error "process $pid does not use rsmalloc" || show "$tmp/err"
else
  not_ok "a process not on rsmalloc starts"
fi

# No such process: a child that has been waited for.
true &
gone=$!
wait $gone
rs stat "$gone"
check "a PID with no process: one line, status 1" \
  one_error "no process with PID $gone" || show "$tmp/err"

rs stat not-a-pid
check "not a PID: status 2" test "$rc" -eq 2

# Another user's process: ptrace's rules refuse.
nobody="setpriv --reuid=65534 --regid=65534 --clear-groups"
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null 2>&1; then
  if rs_start root on idle; then
    $nobody "$cmd" stat "$pid" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    check "root's process, read as nobody: one line, status 1" \
      one_error "permission denied reading process $pid" || show "$tmp/err"
  else
    not_ok "a process of root starts"
  fi
  rs_as="setpriv --reuid=65533 --regid=65533 --clear-groups"
  if rs_start other on idle; then
    $nobody "$cmd" stat "$pid" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    check "uid 65533's process, read as nobody: one line, status 1" \
      one_error "permission denied reading process $pid" || show "$tmp/err"
    rs stat "$pid"
    check "uid 65533's process, read as root: status 0" test "$rc" -eq 0
  else
    not_ok "a process of uid 65533 starts"
  fi
  rs_as=
else
  # Not root: the first process of another user that runs.
  other=$(for d in /proc/[0-9]*; do
    [ "$(stat -c %u "$d" 2>/dev/null)" != "$(id -u)" ] && echo "${d#/proc/}" && break
  done)
  if [ -n "$other" ]; then
    rs stat "$other"
    check "process $other of another user: one line, status 1" \
      one_error "permission denied reading process $other" || show "$tmp/err"
  else
    skip "no process of another user to read"
  fi
fi

# Exits during the read: the tool pauses after finding the library and
# before reading the block (a test hook), and the process is killed then.
if rs_start dying on idle; then
  RSMALLOC_STAT_TEST_PAUSE_MS=3000 "$cmd" stat "$pid" >"$tmp/out" 2>"$tmp/err" &
  reader=$!
  sleep 1
  { kill -9 "$pid" && wait "$pid"; } 2>/dev/null
  wait "$reader"
  rc=$?
  check "a process that exits during the read: one line, status 1" \
    one_error "process $pid exited while being read" || show "$tmp/err"
else
  not_ok "a process to kill starts"
fi

# Another layout: a stand-in library with a block of layout 999.
fake=$top_builddir/tests/stat/.libs/libfakersmalloc.so
if [ -f "$fake" ]; then
  cp "$fake" "$tmp/librsmalloc.so.0"
  if rs_start fake "$tmp/librsmalloc.so.0" idle; then
    rs stat "$pid"
    check "another layout of the block: one line, status 1" \
      one_error "process $pid runs rsmalloc with statistics layout 999" ||
      show "$tmp/err"
  else
    not_ok "a process with the stand-in library starts"
  fi
else
  not_ok "$fake exists (build it first)"
fi
finish
