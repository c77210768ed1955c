# SPDX-License-Identifier: MIT
"""real: Debian's own programs under the allocator being measured.

usage: real.py redis|sqlite [scale=F] [seed=N]

The runner starts this driver without LD_PRELOAD and names the allocator in
the environment: BENCH_PRELOAD is the library to preload into the program
('' for glibc), BENCH_LAUNCH the launch helper that reports a program's own
peak RSS, and BENCH_CACHE a directory for generated inputs. The driver times
only the program's work, then prints the usual RESULT line with maxrss_kb=
(the program's, which the runner takes instead of this driver's).

redis: Debian's redis-server links libjemalloc.so.2 dynamically and calls
plain malloc/free/realloc/malloc_usable_size, so a preloaded allocator does
take those calls (only jemalloc's mallctl statistics stay with jemalloc).
For the glibc column, glibc's own libc.so.6 is preloaded, which puts its
malloc ahead of jemalloc's. The check: INFO memory's allocator_allocated
(what jemalloc itself holds) stays near zero unless jemalloc is measured.
The load is a deterministic stream of SET/GETRANGE/APPEND/LPUSH/HSET/DEL with
values of 8 B - 2 KiB (skewed small), sent with redis-cli --pipe over a Unix
socket; the time is the pipe's.

sqlite: sqlite3 on an in-memory database: many small INSERT statements
(parsing and prepare), a bulk insert, two indexes, GROUP BY, ORDER BY and
DISTINCT queries (the sorter), UPDATE and DELETE.
"""

import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def parse_args(argv):
    if len(argv) < 1 or argv[0] not in ("redis", "sqlite"):
        sys.exit("usage: real.py redis|sqlite [scale=F] [seed=N]")
    args = dict(a.lstrip("-").split("=", 1) for a in argv[1:])
    scale = float(args.pop("scale", 1.0))
    seed = int(args.pop("seed", 1))
    if args:
        sys.exit(f"real.py: unknown argument(s) {sorted(args)}")
    return argv[0], scale, seed


def skipped(name, why):
    """A program that is not installed: still a result line, marked."""
    print(f"RESULT workload={name} threads=1 ops=0 seconds=0 ops_per_sec=0 skipped=1")
    print(f"real.py: {name} skipped: {why}", file=sys.stderr)
    sys.exit(0)


def libc_path():
    """The libc.so.6 this process runs on (to preload for the glibc column)."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if os.path.basename(path).startswith("libc.so"):
                return path
    return "libc.so.6"


def program_env(preload):
    env = dict(os.environ)
    for key in ("LD_PRELOAD", "BENCH_PRELOAD", "BENCH_CACHE", "BENCH_LAUNCH"):
        env.pop(key, None)
    if preload:
        env["LD_PRELOAD"] = preload
    return env


# Bump when a generator below changes, so cached inputs are made anew.
INPUT_VERSION = 1


def cache_file(name):
    name = f"v{INPUT_VERSION}-{name}"
    cache = os.environ.get("BENCH_CACHE") or tempfile.gettempdir()
    os.makedirs(cache, exist_ok=True)
    return os.path.join(cache, name)


class Program:
    """A measured program, started through bench's launch helper (named by
    BENCH_LAUNCH) so that its peak RSS is its own: Linux carries ru_maxrss
    across exec, and a child forked from this Python process would start
    with this process's RSS. Without the helper, falls back to wait4."""

    def __init__(self, argv, preload, **popen_kw):
        launch = os.environ.get("BENCH_LAUNCH")
        env = program_env(preload)
        self.report = None
        if launch:
            fd, self.report = tempfile.mkstemp(prefix="rsbench-launch-")
            os.close(fd)
            env.pop("LD_PRELOAD", None)
            env["LAUNCH_LD_PRELOAD"] = preload
            argv = [launch, self.report, *argv]
        # In this driver's process group, which the runner kills on a timeout.
        self.proc = subprocess.Popen(argv, env=env, **popen_kw)

    def kill(self):
        """Kills the program (through the helper, which takes its child along)."""
        self.proc.kill()

    def wait(self):
        """Returns (exit status, peak RSS in KiB)."""
        _, status, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        if self.report is None:
            return self.proc.returncode, usage.ru_maxrss
        with open(self.report) as f:
            fields = dict(w.split("=", 1) for w in f.read().split())
        os.unlink(self.report)
        return self.proc.returncode, int(fields.get("maxrss_kb", 0))


# ---- redis ----------------------------------------------------------------


def resp(*parts):
    out = [b"*%d\r\n" % len(parts)]
    for p in parts:
        if isinstance(p, str):
            p = p.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(p), p))
    return b"".join(out)


def redis_value_size(rnd):
    """8 B - 2 KiB; band k (8 << k) gets sqrt((k+1)/8) - sqrt(k/8)."""
    band = int(8 * rnd.random() ** 2)
    base = 8 << band
    return base + rnd.randrange(base)


def redis_commands(n, seed):
    """The command stream, generated once per (n, seed) and cached."""
    path = cache_file(f"redis-{seed}-{n}.resp")
    if os.path.exists(path):
        return path
    rnd = random.Random(seed)
    keys = max(1000, n // 10)
    chunks = []
    for i in range(n):
        op = rnd.random()
        k = rnd.randrange(keys)
        if op < 0.40:
            chunks.append(resp("SET", f"key:{k}", b"v" * redis_value_size(rnd)))
        elif op < 0.55:
            # GETRANGE, not GET: a short reply, so the time and peak RSS do
            # not hang on how fast redis-cli drains the socket.
            chunks.append(resp("GETRANGE", f"key:{k}", "0", "31"))
        elif op < 0.65:
            chunks.append(resp("APPEND", f"key:{k}", b"a" * (1 + rnd.randrange(64))))
        elif op < 0.77:
            lst = f"list:{k % 1000}"
            chunks.append(resp("LPUSH", lst, b"l" * redis_value_size(rnd)))
            if rnd.randrange(20) == 0:
                chunks.append(resp("LTRIM", lst, "0", "99"))
        elif op < 0.89:
            field = f"f{rnd.randrange(50)}"
            chunks.append(resp("HSET", f"hash:{k % 2000}", field, b"h" * redis_value_size(rnd)))
        else:
            chunks.append(resp("DEL", f"key:{k}"))
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(b"".join(chunks))
    os.replace(tmp, path)
    return path


def redis_cli(sock, *args):
    out = subprocess.run(
        ["redis-cli", "-s", sock, *args], capture_output=True, text=True, timeout=60
    )
    return out.stdout


def redis_info(sock):
    info = {}
    for line in redis_cli(sock, "INFO", "memory").splitlines():
        if ":" in line:
            key, value = line.strip().split(":", 1)
            info[key] = value
    return info


def run_redis(scale, seed, preload):
    for prog in ("redis-server", "redis-cli"):
        if shutil.which(prog) is None:
            skipped("redis", f"{prog} not installed (apt-get install redis-server)")
    n = max(2000, int(600000 * scale))
    commands = redis_commands(n, seed)
    allocator = os.environ.get("BENCH_ALLOCATOR", "")
    # Glibc's malloc must be preloaded to take over from the linked jemalloc.
    preload = preload or libc_path()
    with tempfile.TemporaryDirectory(prefix="rsbench-redis-") as tmp:
        sock = os.path.join(tmp, "redis.sock")
        server = Program(
            [
                "redis-server", "--port", "0", "--unixsocket", sock,
                "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--dir", tmp, "--loglevel", "warning", "--jemalloc-bg-thread", "no",
            ],
            preload,
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    with socket.socket(socket.AF_UNIX) as s:
                        s.connect(sock)
                    break
                except OSError:
                    if server.proc.poll() is not None or time.monotonic() > deadline:
                        sys.exit("real.py: redis-server did not start")
                    time.sleep(0.02)
            t0 = time.perf_counter()
            with open(commands, "rb") as stdin:
                pipe = subprocess.run(
                    ["redis-cli", "-s", sock, "--pipe"],
                    stdin=stdin, capture_output=True, text=True, timeout=600,
                )
            secs = time.perf_counter() - t0
            summary = pipe.stdout.strip().splitlines()[-1:] or [""]
            if pipe.returncode != 0 or "errors: 0," not in summary[0]:
                sys.exit(f"real.py: redis-cli --pipe failed: {pipe.stdout}{pipe.stderr}")
            info = redis_info(sock)
            keys = redis_cli(sock, "DBSIZE").strip()
            redis_cli(sock, "SHUTDOWN", "NOSAVE")
        except BaseException:
            server.kill()
            raise
        status, maxrss = server.wait()
    if status != 0:
        sys.exit(f"real.py: redis-server exited with status {status}")
    used = int(info.get("used_memory", 0))
    je_held = int(info.get("allocator_allocated", 0))
    if allocator != "jemalloc" and je_held > max(used // 4, 4 << 20):
        sys.exit(f"real.py: jemalloc holds {je_held} bytes: the preload did not take")
    print(
        f"RESULT workload=redis threads=1 ops={n} seconds={secs:.6f} "
        f"ops_per_sec={n / secs:.0f} maxrss_kb={maxrss} "
        f"used_memory_kb={used // 1024} keys={keys} "
        f"rss_end_kb={int(info.get('used_memory_rss', 0)) // 1024}"
    )


# ---- sqlite ---------------------------------------------------------------


def sqlite_script(scale, seed):
    rows = max(1000, int(150000 * scale))
    singles = max(200, int(20000 * scale))
    path = cache_file(f"sqlite-{seed}-{rows}-{singles}.sql")
    if os.path.exists(path):
        return path
    rnd = random.Random(seed)
    lines = [
        "PRAGMA cache_size = -262144;",
        "CREATE TABLE kv(id INTEGER PRIMARY KEY, k INTEGER, name TEXT, body BLOB);",
        "BEGIN;",
    ]
    for i in range(singles):
        name = "".join(rnd.choices("abcdefghijklmnop", k=rnd.randrange(4, 40)))
        lines.append(
            f"INSERT INTO kv(k, name, body) VALUES ({rnd.randrange(100003)}, "
            f"'{name}', zeroblob({rnd.randrange(16, 1500)}));"
        )
    lines += [
        "COMMIT;",
        f"""WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows})
INSERT INTO kv(k, name, body)
  SELECT (x * 2654435761) % 100003,
         printf('n%08d-%s', (x * 40503) % 1000003, substr(hex(x * x), 1, 1 + x % 24)),
         zeroblob(16 + (x * 7919) % 1500)
  FROM c;""",
        "CREATE INDEX kv_k ON kv(k);",
        "CREATE INDEX kv_name ON kv(name);",
        "SELECT k % 97, count(*), sum(length(body)) FROM kv GROUP BY k % 97 ORDER BY 3 DESC LIMIT 3;",
        "SELECT count(DISTINCT name) FROM kv;",
        "SELECT name FROM kv ORDER BY name DESC LIMIT 1 OFFSET 5000;",
        "SELECT length(group_concat(name, ',')) FROM (SELECT name FROM kv ORDER BY k LIMIT 50000);",
        "UPDATE kv SET body = zeroblob(length(body) * 2) WHERE k % 5 = 0;",
        "DELETE FROM kv WHERE k % 3 = 0;",
        "SELECT count(*), sum(length(body)) FROM kv;",
    ]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path


def run_sqlite(scale, seed, preload):
    if shutil.which("sqlite3") is None:
        skipped("sqlite", "sqlite3 not installed (apt-get install sqlite3)")
    script = sqlite_script(scale, seed)
    ops = max(1000, int(150000 * scale)) + max(200, int(20000 * scale))
    with open(script) as stdin, tempfile.TemporaryFile() as out, \
            tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        prog = Program(["sqlite3", "-bail", ":memory:"], preload,
                       stdin=stdin, stdout=out, stderr=err)
        status, maxrss = prog.wait()
        secs = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        out, err = out.read(), err.read()
    if status != 0 or err:
        sys.exit(f"real.py: sqlite3 failed ({status}): {err.decode(errors='replace')}")
    print(
        f"RESULT workload=sqlite threads=1 ops={ops} seconds={secs:.6f} "
        f"ops_per_sec={ops / secs:.0f} maxrss_kb={maxrss} "
        f"check={len(out.splitlines())}"
    )


def main():
    name, scale, seed = parse_args(sys.argv[1:])
    preload = os.environ.get("BENCH_PRELOAD", "")
    if name == "redis":
        run_redis(scale, seed, preload)
    else:
        run_sqlite(scale, seed, preload)


if __name__ == "__main__":
    main()
