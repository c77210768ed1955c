#!/bin/sh
# SPDX-License-Identifier: MIT
# The rsmalloc command (tools/rsmalloc): run, and enable/disable/status on a
# scratch preload file (RSMALLOC_PRELOAD_FILE) with the built library
# (RSMALLOC_LIBRARY). As root, where mount namespaces and overlayfs work,
# also enable and disable for real on /etc/ld.so.preload inside a throwaway
# namespace, with the library overlaid into /usr/$LIB.
. "$(dirname "$0")/../lib.sh"
# CI sets RSMALLOC_TEST_REQUIRE_SYSTEM=1: there, whatever this test cannot
# do (no root, no mount namespace or overlayfs, a missing program) is a
# failure, never a skip that passes silently.
if [ "${RSMALLOC_TEST_REQUIRE_SYSTEM:-0}" = 1 ]; then
  skip() { not_ok "skipped, but RSMALLOC_TEST_REQUIRE_SYSTEM=1: $*"; }
  skip_all() {
    not_ok "skipped, but RSMALLOC_TEST_REQUIRE_SYSTEM=1: $*"
    finish
  }
fi

cmd=$top_srcdir/tools/rsmalloc
entry='/usr/$LIB/librsmalloc.so.0'
[ -f "$RSMALLOC_LIB" ] || { not_ok "the library $RSMALLOC_LIB exists (build it first)"; finish; }
tmp=$(mktemp -d /tmp/rsmalloc-command.XXXXXX) || { not_ok mktemp; finish; }
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
unset LD_PRELOAD RSMALLOC_LIBRARY RSMALLOC_PRELOAD_FILE RSMALLOC_VERBOSE \
  RSMALLOC_STATS RSMALLOC_DISABLE

# rs ARGS...: the command, with its output in $tmp/out and $tmp/err and its
# exit status in $rc.
rs() {
  sh "$cmd" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
  rc=$?
}

# explain: shows the last command's output under a failed check.
explain() {
  echo "    exit status $rc"
  show "$tmp/out"
  show "$tmp/err"
}

# The C library, a real library that is not rsmalloc.
libc=$(sed -n 's|.* \(/[^ ]*/libc\.so\.6\)$|\1|p' /proc/self/maps | head -n 1)

# --- the script itself ----------------------------------------------------------
check "tools/rsmalloc parses with sh -n" sh -n "$cmd"
if command -v dash >/dev/null 2>&1; then
  check "tools/rsmalloc parses with dash -n" dash -n "$cmd"
fi
if command -v checkbashisms >/dev/null 2>&1; then
  checkbashisms "$cmd" >"$tmp/cb" 2>&1
  check "checkbashisms finds nothing in tools/rsmalloc" test ! -s "$tmp/cb" || show "$tmp/cb"
fi
rs --version
check "rsmalloc --version" test $rc -eq 0 -a "$(cut -d' ' -f1 "$tmp/out")" = rsmalloc || explain
rs --help
check "rsmalloc --help" grep -q 'rsmalloc run COMMAND' "$tmp/out" || explain
rs frobnicate
check "an unknown subcommand exits 2" test $rc -eq 2 || explain
rs run
check "run without a command exits 2" test $rc -eq 2 || explain
rs enable extra
check "enable with an argument exits 2" test $rc -eq 2 || explain

# --- run ------------------------------------------------------------------------
export RSMALLOC_LIBRARY="$RSMALLOC_LIB"
RSMALLOC_VERBOSE=1 rs run /bin/true
check "run: the command runs on rsmalloc (RSMALLOC_VERBOSE)" \
  test $rc -eq 0 -a "$(grep -c '^rsmalloc: version ' "$tmp/err")" -eq 1 || explain
# shellcheck disable=SC2016 # for the inner sh
LD_PRELOAD=$libc rs run sh -c 'printf "%s\n" "$LD_PRELOAD"; grep -c librsmalloc /proc/self/maps'
check "run: the library goes in front of an existing LD_PRELOAD" \
  test "$(sed -n 1p "$tmp/out")" = "$RSMALLOC_LIB:$libc" -a "$(sed -n 2p "$tmp/out")" -ge 1 ||
  explain
rs run sh -c 'exit 3'
check "run: exits with the command's status" test $rc -eq 3 || explain
rs run "$tmp/no-such-command"
check "run: a missing command exits 127" test $rc -eq 127 || explain
RSMALLOC_LIBRARY=$tmp/none/librsmalloc.so.0 rs run /bin/true
check "run: refuses a missing library" \
  test $rc -ne 0 -a "$(grep -c 'no such file' "$tmp/err")" -eq 1 || explain

# --- enable, disable, status on a scratch file ------------------------------------
mkdir "$tmp/etc"
export RSMALLOC_PRELOAD_FILE="$tmp/etc/ld.so.preload"
file=$RSMALLOC_PRELOAD_FILE
cat >"$tmp/original" <<'EOF'
# local preloads: rsmalloc must keep these lines as they are
/usr/lib/libfirst.so
/opt/a.so:/opt/b.so   # two on a line

/opt/librsmalloc-notes.txt
EOF
cp "$tmp/original" "$file"
chmod 640 "$file"

rs status
check "status: disabled when the file lists no rsmalloc" \
  test $rc -eq 0 -a "$(grep -c '^rsmalloc: disabled' "$tmp/out")" -eq 1 || explain
check "status: says the library loads" grep -q '^rsmalloc: library: .* loads (rsmalloc ' "$tmp/out" ||
  explain

rs enable
check "enable: succeeds and says what it did" \
  test $rc -eq 0 -a "$(grep -cF "enabled: added $entry to $file" "$tmp/out")" -eq 1 || explain
check "enable: adds exactly $entry as the last line" \
  test "$(tail -n 1 "$file")" = "$entry" -a "$(grep -c librsmalloc.so "$file")" -eq 1
sed '$d' "$file" >"$tmp/rest"
check "enable: keeps the other lines byte for byte" cmp -s "$tmp/rest" "$tmp/original"
check "enable: keeps the file's mode (0640)" test "$(ls -ln "$file" | cut -c1-10)" = '-rw-r-----'
check "enable: leaves no temporary file behind" test "$(ls -A "$tmp/etc")" = ld.so.preload
cp "$file" "$tmp/enabled"

rs enable
check "enable again: already enabled, nothing changed" \
  test $rc -eq 0 -a "$(grep -c 'already enabled' "$tmp/out")" -eq 1 || explain
check "enable again: the file is unchanged" cmp -s "$file" "$tmp/enabled"

rs status
check "status: enabled, and the library loads" \
  test $rc -eq 0 -a "$(grep -cF "enabled: $file lists $entry" "$tmp/out")" -eq 1 \
  -a "$(grep -c '^rsmalloc: library: .* loads' "$tmp/out")" -eq 1 || explain

rs disable
check "disable: succeeds and says what it did" \
  test $rc -eq 0 -a "$(grep -cF "disabled: removed $entry from $file" "$tmp/out")" -eq 1 || explain
check "disable: gives back the original file byte for byte" cmp -s "$file" "$tmp/original"
check "disable: keeps the file's mode (0640)" test "$(ls -ln "$file" | cut -c1-10)" = '-rw-r-----'

rs disable
check "disable again: already disabled, nothing changed" \
  test $rc -eq 0 -a "$(grep -c 'already disabled' "$tmp/out")" -eq 1 || explain
check "disable again: the file is unchanged" cmp -s "$file" "$tmp/original"

RSMALLOC_LIBRARY=$tmp/none/librsmalloc.so.0 rs enable
check "enable: refuses a library that does not exist, and says why" \
  test $rc -eq 1 -a "$(grep -c 'not enabled: .*cannot be preloaded' "$tmp/err")" -eq 1 || explain
check "enable: the refused enable left the file alone" cmp -s "$file" "$tmp/original"
if [ -n "$libc" ]; then
  RSMALLOC_LIBRARY=$libc rs enable
  check "enable: refuses a library that is not rsmalloc" \
    test $rc -eq 1 -a "$(grep -c 'not enabled: .*did not report itself' "$tmp/err")" -eq 1 || explain
  check "enable: that refusal left the file alone" cmp -s "$file" "$tmp/original"
fi
RSMALLOC_LIBRARY=$tmp/none/librsmalloc.so.0 rs status
check "status: exits 1 when the library does not load" \
  test $rc -eq 1 -a "$(grep -c 'does not load' "$tmp/out")" -eq 1 || explain

# An older entry (another path) is replaced; words on the same line stay.
printf '/opt/old/librsmalloc.so.0 /usr/lib/libkeep.so\n' >"$file"
rs enable
check "enable: replaces an older rsmalloc entry, keeps its neighbour" \
  test $rc -eq 0 -a "$(cat "$file")" = "/usr/lib/libkeep.so
$entry" || { explain; show "$file"; }

# disable removes every form, and the file once nothing else is left.
printf '%s\n/build/lib/.libs/librsmalloc.so\n' "$entry" >"$file"
rs disable
check "disable: removes every rsmalloc entry, then the empty file" \
  test $rc -eq 0 -a ! -e "$file" -a "$(grep -c 'removed ' "$tmp/out")" -eq 3 || explain

# enable creates a missing file, world-readable.
rs enable
check "enable: creates a missing file with mode 0644 and the one entry" \
  test $rc -eq 0 -a "$(cat "$file")" = "$entry" \
  -a "$(ls -ln "$file" | cut -c1-10)" = '-rw-r--r--' || explain

# A symbolic link is followed: its target is written, the link stays.
rm -f "$file"
cp "$tmp/original" "$tmp/etc/real-preload"
ln -s real-preload "$file"
rs enable
check "enable: writes through a symbolic link and keeps the link" \
  test $rc -eq 0 -a -L "$file" -a "$(tail -n 1 "$tmp/etc/real-preload")" = "$entry" || explain
rs disable
check "disable: through the link too" cmp -s "$tmp/etc/real-preload" "$tmp/original"
rm -f "$file" "$tmp/etc/real-preload"

# The installed copy: man/man.mk replaces @libdir@ and @VERSION@ (the same
# sed as its install rule). A libdir outside /usr gives an absolute entry.
sed -e 's|@libdir[@]|/usr/local/lib|g' -e 's|@VERSION[@]|9.8.7|g' "$cmd" >"$tmp/installed"
sh "$tmp/installed" --version >"$tmp/out" 2>&1
check "installed copy: --version gives the substituted version" grep -qx 'rsmalloc 9.8.7' "$tmp/out"
RSMALLOC_LIBRARY='' sh "$tmp/installed" status >"$tmp/out" 2>&1
check "installed copy with libdir /usr/local/lib: tests /usr/local/lib/librsmalloc.so.0" \
  grep -q 'library: /usr/local/lib/librsmalloc.so.0 ' "$tmp/out" || show "$tmp/out"
sed -e 's|@libdir[@]|/usr/lib/x86_64-linux-gnu|g' "$cmd" >"$tmp/installed"
sh "$tmp/installed" enable >"$tmp/out" 2>&1
check "installed copy with a multiarch libdir writes $entry" \
  test "$(cat "$file")" = "$entry" || show "$tmp/out"
rm -f "$file"
unset RSMALLOC_PRELOAD_FILE RSMALLOC_LIBRARY

# --- for real, in a throwaway mount namespace (root) ----------------------------
real_skip=
if [ "$(id -u)" != 0 ]; then
  real_skip="not root"
elif ! command -v unshare >/dev/null 2>&1 ||
  ! unshare --mount --propagation private true 2>/dev/null; then
  real_skip="unshare --mount is not permitted"
fi
# Where the loader looks for /usr/$LIB: the directory of libc, under /usr.
libdir=$(dirname "${libc:-/none/x}")
case $libdir in /usr/*) ;; *) libdir=/usr$libdir ;; esac
# shellcheck disable=SC2016 # $LIB is for the loader
if [ -z "$real_skip" ] && [ -n "$(LD_PRELOAD='/usr/$LIB/libc.so.6' /bin/true 2>&1)" ]; then
  real_skip="cannot tell the loader's \$LIB directory"
fi

if [ -n "$real_skip" ]; then
  skip "enable/disable on /etc/ld.so.preload in a mount namespace: $real_skip"
else
  state() {
    for f in /etc/ld.so.preload "$libdir/librsmalloc.so.0"; do
      if [ -e "$f" ]; then printf '%s %s\n' "$f" "$(cksum <"$f")"; else echo "$f absent"; fi
    done
  }
  before=$(state)
  mkdir "$tmp/etc-up" "$tmp/etc-work" "$tmp/lib-up" "$tmp/lib-work"
  cp "$RSMALLOC_LIB" "$tmp/lib-up/librsmalloc.so.0"
  chmod 644 "$tmp/lib-up/librsmalloc.so.0"
  # Another entry the command must keep: the C library, harmless to preload.
  echo "$libc" >"$tmp/etc-up/ld.so.preload"
  cat >"$tmp/inside.sh" <<'EOF'
set -u
tmp=$1 cmd=$2 libdir=$3 libc=$4
entry='/usr/$LIB/librsmalloc.so.0'
say() { printf '%s %s\n' "$1" "$2"; }  # "ok"/"FAIL" and the description
t() { d=$1; shift; if "$@"; then say ok "$d"; else say FAIL "$d"; fi; }
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$tmp/etc-up,workdir=$tmp/etc-work" /etc || exit 77
mount -t overlay overlay -o "lowerdir=$libdir,upperdir=$tmp/lib-up,workdir=$tmp/lib-work" "$libdir" || exit 77

sh "$cmd" enable >"$tmp/r.out" 2>&1
t "real enable: succeeds" grep -qF "enabled: added $entry to /etc/ld.so.preload" "$tmp/r.out"
t "real enable: /etc/ld.so.preload keeps the other entry and adds $entry" \
  test "$(cat /etc/ld.so.preload)" = "$libc
$entry"
t "real enable: a new process maps librsmalloc" \
  test "$(grep -c "$libdir/librsmalloc.so.0" /proc/self/maps)" -ge 1
RSMALLOC_VERBOSE=1 /bin/true 2>"$tmp/r.err"
t "real enable: a new process reports rsmalloc" grep -q '^rsmalloc: version ' "$tmp/r.err"
sh "$cmd" status >"$tmp/r.out" 2>&1
t "real status: enabled and loads" \
  test "$(grep -c -e "^rsmalloc: enabled: /etc/ld.so.preload lists $entry" \
    -e '^rsmalloc: library: .* loads (' "$tmp/r.out")" -eq 2
sh "$cmd" disable >"$tmp/r.out" 2>&1
t "real disable: succeeds" grep -qF "disabled: removed $entry from /etc/ld.so.preload" "$tmp/r.out"
t "real disable: only the other entry is left" test "$(cat /etc/ld.so.preload)" = "$libc"
t "real disable: a new process does not map librsmalloc" \
  test "$(grep -c librsmalloc /proc/self/maps)" -eq 0
# The library gone from /usr/$LIB: enable must refuse and change nothing.
rm -f "$libdir/librsmalloc.so.0"
sh "$cmd" enable >"$tmp/r.out" 2>&1
rc=$?
t "real enable: refuses when /usr/\$LIB/librsmalloc.so.0 is missing" \
  test $rc -eq 1 -a "$(grep -c 'not enabled: .*cannot be preloaded' "$tmp/r.out")" -eq 1
t "real enable: the refusal left /etc/ld.so.preload alone" test "$(cat /etc/ld.so.preload)" = "$libc"
EOF
  unshare --mount --propagation private sh "$tmp/inside.sh" "$tmp" "$cmd" "$libdir" "$libc" \
    >"$tmp/inside" 2>&1
  rc=$?
  if [ $rc -eq 77 ]; then
    skip "enable/disable on /etc/ld.so.preload in a mount namespace: overlayfs not available"
  else
    while read -r verdict desc; do
      case $verdict in
        ok) ok "$desc" ;;
        FAIL) not_ok "$desc" ;;
        *) not_ok "in the namespace: $verdict $desc" ;;
      esac
    done <"$tmp/inside"
    check "the namespace checks ran (status $rc)" test $rc -eq 0 -a -s "$tmp/inside"
  fi
  check "the host's /etc/ld.so.preload and $libdir are unchanged" test "$(state)" = "$before"
fi

finish
