#!/bin/sh
# SPDX-License-Identifier: MIT
# Real programs with and without LD_PRELOAD=librsmalloc: python3, perl,
# sort, g++ and git run deterministic workloads whose output (stdout,
# stderr, exit status) must match byte for byte; a crash or hang fails.
# Also RSMALLOC_VERBOSE's start-up line and the library in /proc/self/maps.
set -u
LC_ALL=C
export LC_ALL

. "$(dirname "$0")/lib.sh"

lib=$RSMALLOC_LIB
if [ ! -f "$lib" ]; then
  echo "ERROR: $lib not found"
  exit 99
fi
case $lib in
  /*) ;;
  *) lib=$(cd "$(dirname "$lib")" && pwd)/$(basename "$lib") ;;
esac
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
limit=${RS_REAL_TIMEOUT:-300}
# The cache mode rsmalloc must report here (tests/expected_mode).
expected=$(rs_expected_mode)

have() { command -v "$1" >/dev/null 2>&1; }

# compare NAME SCRIPT [ARGS...]: runs `sh SCRIPT WORKDIR ARGS` twice, in
# fresh work directories, without and with the preload (which then covers
# sh and every program it starts), and compares the results.
compare() {
  name=$1
  script=$2
  shift 2
  for mode in plain preload; do
    work=$tmp/$name.$mode.d
    mkdir -p "$work"
    if [ "$mode" = plain ]; then
      timeout -k 10 "$limit" sh "$script" "$work" "$@" \
        >"$tmp/$name.$mode.out" 2>"$tmp/$name.$mode.err" </dev/null
    else
      LD_PRELOAD=$lib timeout -k 10 "$limit" sh "$script" "$work" "$@" \
        >"$tmp/$name.$mode.out" 2>"$tmp/$name.$mode.err" </dev/null
    fi
    echo $? >"$tmp/$name.$mode.rc"
  done
  rc_plain=$(cat "$tmp/$name.plain.rc")
  rc_pre=$(cat "$tmp/$name.preload.rc")
  if [ "$rc_pre" -eq 124 ] || [ "$rc_pre" -eq 137 ]; then
    not_ok "$name: hung under rsmalloc (timeout ${limit}s)"
  elif [ "$rc_pre" -gt 128 ] && [ "$rc_plain" -le 128 ]; then
    not_ok "$name: killed by signal $((rc_pre - 128)) under rsmalloc"
  elif [ "$rc_plain" -ne 0 ]; then
    not_ok "$name: the workload itself failed without rsmalloc (exit $rc_plain)"
    head -20 "$tmp/$name.plain.err"
  elif [ "$rc_pre" -ne "$rc_plain" ]; then
    not_ok "$name: exit status $rc_pre under rsmalloc, $rc_plain without"
  elif ! cmp -s "$tmp/$name.plain.out" "$tmp/$name.preload.out"; then
    not_ok "$name: stdout differs under rsmalloc"
    diff "$tmp/$name.plain.out" "$tmp/$name.preload.out" | head -20
  elif ! cmp -s "$tmp/$name.plain.err" "$tmp/$name.preload.err"; then
    not_ok "$name: stderr differs under rsmalloc"
    diff "$tmp/$name.plain.err" "$tmp/$name.preload.err" | head -20
  else
    ok "$name ($(wc -l <"$tmp/$name.plain.out") lines identical)"
    return 0
  fi
  head -20 "$tmp/$name.preload.err"
  return 1
}

# --- python3: dicts, strings, threads --------------------------------------
if have python3; then
  cat >"$tmp/work.py" <<'EOF'
import collections, gc, hashlib, json, re, sys, threading

def work(seed, out):
    d = {}
    for i in range(60000):
        k = "key-%d-%d" % ((i * 7919 + seed) % 100003, i % 13)
        d[k] = (k * (i % 5 + 1))[: i % 97 + 1]
    s = "|".join(sorted(d)[:3000])
    c = collections.Counter(len(v) for v in d.values())
    blob = json.dumps({"s": s, "c": sorted(c.items()), "n": len(d)})
    again = json.loads(blob)
    assert again["n"] == len(d)
    out[seed] = hashlib.sha256(blob.encode()).hexdigest()

res = {}
threads = [threading.Thread(target=work, args=(i, res)) for i in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for k in sorted(res):
    print(k, res[k])

chunks = []
for i in range(300):
    chunks.append(bytes(i * 1000) + str(i).encode())
    if i % 3 == 0:
        chunks.pop(0)
print(len(chunks), sum(map(len, chunks)))
words = [str(i) * (i % 17 + 1) for i in range(300000)]
del words[::2]
text = " ".join(words[:20000])
print(len(words), sum(map(len, words)), len(re.findall(r"\d{5,}", text)))
text = text.upper().replace("1", "one")[::-1]
print(hashlib.md5(text.encode()).hexdigest())
sets = [set(range(i, i + 500)) for i in range(0, 20000, 7)]
print(len(set().union(*sets)))
gc.collect()
big = bytearray(50 << 20)
big[-1] = 7
big = big + b"x"
print(len(big), big[-2])
EOF
  cat >"$tmp/python.sh" <<EOF
cd "\$1" && PYTHONHASHSEED=0 python3 "$tmp/work.py"
EOF
  compare python3 "$tmp/python.sh"
else
  skip "python3 is not installed"
fi

# --- perl: hashes and strings -----------------------------------------------
if have perl; then
  cat >"$tmp/work.pl" <<'EOF'
use strict;
use warnings;
use Digest::MD5 qw(md5_hex);
my %h;
$h{"k$_"} = ("v" x ($_ % 50)) . $_ for 0 .. 199999;
my @k = sort keys %h;
print scalar(@k), "\n";
print md5_hex(join(",", map { $h{$_} } @k[0 .. 19999])), "\n";
my %c;
$c{length $_}++ for values %h;
print join(" ", map { "$_=$c{$_}" } sort { $a <=> $b } keys %c), "\n";
delete $h{"k$_"} for grep { $_ % 3 } 0 .. 199999;
print scalar(keys %h), "\n";
my $str = join("", map { chr(65 + $_ % 26) } 0 .. 999999);
(my $t = $str) =~ s/ABC/xyz/g;
print md5_hex($t), "\n";
my @parts = split /Q/, $str;
print scalar(@parts), " ", length($parts[1]), "\n";
my @nested = map { { id => $_, tags => [ ($_) x ($_ % 9) ] } } 1 .. 50000;
my $sum = 0;
$sum += scalar(@{ $_->{tags} }) for @nested;
print "$sum\n";
EOF
  cat >"$tmp/perl.sh" <<EOF
cd "\$1" && PERL_HASH_SEED=0 perl "$tmp/work.pl"
EOF
  compare perl "$tmp/perl.sh"
else
  skip "perl is not installed"
fi

# --- sort: a 200,000-line file, several keys, two threads ------------------
if have sort && have awk; then
  awk 'BEGIN {
    x = 12345
    for (i = 0; i < 200000; i++) {
      x = (x * 1103515245 + 12345) % 2147483648
      printf "%d\t%s%d\t%x\n", x % 1000000, substr("abcdefghijklmnop", x % 16 + 1, 5), i % 977, x
    }
  }' >"$tmp/lines.txt"
  cat >"$tmp/sort.sh" <<EOF
cd "\$1" || exit 1
sort --parallel=2 -S 8M "$tmp/lines.txt" | cksum
sort -n --parallel=2 -S 8M "$tmp/lines.txt" | cksum
sort -t '	' -k2,2 -k1,1n "$tmp/lines.txt" | cksum
sort -u -k3 "$tmp/lines.txt" | wc -l
sort -r "$tmp/lines.txt" | head -5
EOF
  compare sort "$tmp/sort.sh"
else
  skip "sort or awk is not installed"
fi

# --- g++: compile a small program, compare what it prints -----------------
if have g++; then
  cat >"$tmp/prog.cc" <<'EOF'
#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

template <typename T>
struct Tree {
  T value;
  std::vector<std::unique_ptr<Tree>> kids;
  explicit Tree(T v) : value(v) {}
  T sum() const {
    T s = value;
    for (const auto& k : kids) s += k->sum();
    return s;
  }
};

int main() {
  std::map<std::string, std::vector<int>> m;
  for (int i = 0; i < 100000; i++) m["k" + std::to_string(i % 997)].push_back(i);
  std::unordered_map<int, std::string> u;
  for (int i = 0; i < 50000; i++) u[i * 7] = std::string(i % 40, 'a' + i % 26);
  Tree<long> root(1);
  for (int i = 0; i < 1000; i++) {
    root.kids.push_back(std::make_unique<Tree<long>>(i));
    for (int j = 0; j < 10; j++)
      root.kids.back()->kids.push_back(std::make_unique<Tree<long>>(j));
  }
  std::ostringstream os;
  for (const auto& [k, v] : m) os << k << ':' << std::accumulate(v.begin(), v.end(), 0L) << '\n';
  std::string s = os.str();
  std::sort(s.begin(), s.end());
  size_t total = 0;
  for (const auto& [k, v] : u) total += v.size() + static_cast<size_t>(k);
  std::cout << m.size() << ' ' << u.size() << ' ' << root.sum() << ' ' << total << ' '
            << std::hash<std::string>{}(s) << '\n';
}
EOF
  cat >"$tmp/gxx.sh" <<EOF
cd "\$1" || exit 1
g++ -std=c++17 -O2 -Wall -o prog "$tmp/prog.cc" || exit 1
./prog
EOF
  compare g++ "$tmp/gxx.sh"
  # Both binaries print the same, and the plain one also under rsmalloc.
  if [ -x "$tmp/g++.plain.d/prog" ]; then
    "$tmp/g++.plain.d/prog" >"$tmp/prog.plain" 2>&1
    LD_PRELOAD=$lib "$tmp/g++.plain.d/prog" >"$tmp/prog.pre" 2>&1
    if cmp -s "$tmp/prog.plain" "$tmp/prog.pre"; then
      ok "g++-built C++ program under rsmalloc"
    else
      not_ok "g++-built C++ program prints differently under rsmalloc"
      diff "$tmp/prog.plain" "$tmp/prog.pre" | head
    fi
  fi
else
  skip "g++ is not installed"
fi

# --- git: many files, commits, gc, log with fixed identities and dates -----
if have git; then
  cat >"$tmp/git.sh" <<'EOF'
cd "$1" || exit 1
HOME=$1
GIT_CONFIG_NOSYSTEM=1
GIT_AUTHOR_NAME='A U Thor'
GIT_AUTHOR_EMAIL=author@example.invalid
GIT_COMMITTER_NAME='C O Mitter'
GIT_COMMITTER_EMAIL=committer@example.invalid
export HOME GIT_CONFIG_NOSYSTEM GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL
export GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL
git -c init.defaultBranch=main init -q repo || exit 1
cd repo || exit 1
git config gc.auto 0
git config pack.threads 2
mkdir dir0 dir1 dir2 dir3 dir4 dir5 dir6 dir7 dir8 dir9
c=1
while [ $c -le 12 ]; do
  awk -v c=$c 'BEGIN {
    for (f = 0; f < 150; f++) {
      if ((f + c) % 4 != 0 && c > 1) continue
      file = sprintf("dir%d/file%03d.txt", f % 10, f)
      for (l = 0; l < 40 + f % 30; l++)
        printf "line %d of file %d, commit %d: %s\n", l, f, c, substr("lorem ipsum dolor sit amet", 1, (l * 7 + f) % 26) > file
      close(file)
    }
  }'
  GIT_AUTHOR_DATE="2021-03-$(printf %02d $c)T10:00:00+00:00"
  GIT_COMMITTER_DATE=$GIT_AUTHOR_DATE
  export GIT_AUTHOR_DATE GIT_COMMITTER_DATE
  git add -A && git commit -q -m "commit $c" || exit 1
  [ $c -eq 6 ] && git tag -a -m "tag v$c" v$c
  c=$((c + 1))
done
git gc -q --aggressive || exit 1
git fsck --full --no-progress 2>&1 || exit 1
git log --format='%H %an <%ae> %ad %cn %s' --date=iso-strict
git log --stat --format='%h %s' -3
git rev-list --all --objects | wc -l
git ls-tree -r HEAD | git hash-object --stdin
git diff v6 HEAD --shortstat
git describe --tags
git show HEAD~3:dir1/file001.txt | tail -2
EOF
  compare git "$tmp/git.sh"
else
  skip "git is not installed"
fi

# --- start-up line and mapping --------------------------------------------
# `true` is a shell builtin: run the program.
truebin=
for c in /usr/bin/true /bin/true; do
  if [ -x "$c" ]; then
    truebin=$c
    break
  fi
done
if [ -n "$truebin" ]; then
  RSMALLOC_VERBOSE=1 LD_PRELOAD=$lib "$truebin" >"$tmp/verbose.out" 2>"$tmp/verbose.err"
  rc=$?
  if [ $rc -ne 0 ]; then
    not_ok "RSMALLOC_VERBOSE=1 $truebin exits $rc"
  elif grep -q '^rsmalloc: version [0-9]' "$tmp/verbose.err"; then
    ok "RSMALLOC_VERBOSE=1 prints: $(grep '^rsmalloc: version' "$tmp/verbose.err")"
  else
    not_ok "RSMALLOC_VERBOSE=1 printed no 'rsmalloc: version' line on stderr"
    show "$tmp/verbose.err"
  fi
  mode=$(rs_verbose_mode "$tmp/verbose.err")
  check "RSMALLOC_VERBOSE=1: cache mode '$mode' (expected '$expected')" \
    rs_mode_ok "$mode" "$expected"
  if [ -s "$tmp/verbose.out" ]; then
    not_ok "RSMALLOC_VERBOSE=1 wrote to stdout"
  else
    ok "RSMALLOC_VERBOSE=1 leaves stdout alone"
  fi
  # A program that allocates, too.
  RSMALLOC_VERBOSE=1 LD_PRELOAD=$lib ls / >/dev/null 2>"$tmp/verbose_ls.err"
  mode=$(rs_verbose_mode "$tmp/verbose_ls.err")
  if grep -q '^rsmalloc: version [0-9]' "$tmp/verbose_ls.err" &&
    rs_mode_ok "$mode" "$expected"; then
    ok "RSMALLOC_VERBOSE=1 ls prints the version and cache mode $mode"
  else
    not_ok "RSMALLOC_VERBOSE=1 ls: no version line, or mode '$mode'" \
      "(expected '$expected')"
    show "$tmp/verbose_ls.err"
  fi
  LD_PRELOAD=$lib "$truebin" 2>"$tmp/quiet.err"
  if [ -s "$tmp/quiet.err" ]; then
    not_ok "without RSMALLOC_VERBOSE rsmalloc printed: $(head -1 "$tmp/quiet.err")"
  else
    ok "quiet by default"
  fi
fi
if have cat; then
  LD_PRELOAD=$lib cat /proc/self/maps >"$tmp/maps" 2>&1
  if grep -q librsmalloc "$tmp/maps"; then
    ok "/proc/self/maps of a preloaded cat lists librsmalloc"
  else
    not_ok "/proc/self/maps of a preloaded cat does not list librsmalloc"
  fi
fi
if have python3; then
  out=$(LD_PRELOAD=$lib python3 -c '
import ctypes
c = ctypes.CDLL(None)
c.rsmalloc_version.restype = ctypes.c_char_p
c.rsmalloc_cache_mode.restype = ctypes.c_char_p
c.rsmalloc_owns.argtypes = [ctypes.c_void_p]
c.malloc.restype = ctypes.c_void_p
c.malloc.argtypes = [ctypes.c_size_t]
p = c.malloc(100)
print(c.rsmalloc_version().decode(), c.rsmalloc_cache_mode().decode(), c.rsmalloc_owns(p))
' 2>&1)
  # version, mode, owns: "0.1.0 rseq/mm_cid 1"; anything else fails.
  version=${out%% *}
  owns=${out##* }
  mode=${out#"$version "}
  mode=${mode%" $owns"}
  if [ "$owns" = 1 ] && rs_mode_ok "$mode" "$expected" &&
    printf '%s\n' "$version" | grep -qx '[0-9]*\.[0-9]*\.[0-9]*'; then
    ok "python3 reaches rsmalloc through the preload: $out"
  else
    not_ok "python3 under the preload: '$out' (want VERSION $expected 1)"
  fi
fi

finish
