# SPDX-License-Identifier: MIT
"""pywork: a Python workload (run by Debian's /usr/bin/python3).

Builds records as dicts, round-trips them through JSON, sorts them, counts
words, makes class instances and drops half of everything, some rounds over:
the object churn of a typical Python service or script. The runner starts it
with PYTHONMALLOC=malloc so that every object goes through malloc; with
Python's default pymalloc, objects up to 512 bytes are served by Python's
own arenas and the allocator under test only sees the larger blocks.

usage: python3 pywork.py [scale=F] [seed=N]   (rounds = 8 x scale)
"""

import json
import random
import sys
import time


class Point:
    __slots__ = ("x", "y", "label")

    def __init__(self, x, y, label):
        self.x = x
        self.y = y
        self.label = label


def one_round(rnd, n):
    records = {}
    for i in range(n):
        records[f"user:{i}"] = {
            "id": i,
            "name": "".join(rnd.choices("abcdefghij", k=rnd.randrange(3, 12))),
            "score": rnd.random(),
            "tags": [f"t{rnd.randrange(100)}" for _ in range(rnd.randrange(0, 6))],
        }
    text = json.dumps(list(records.values()))
    back = json.loads(text)
    back.sort(key=lambda r: (r["name"], r["id"]))
    counts = {}
    for word in " ".join(r["name"] for r in back).split():
        counts[word] = counts.get(word, 0) + 1
    points = [Point(i, i * 2, str(i)) for i in range(n)]
    for key in list(records)[::2]:
        del records[key]
    del points[::2]
    return len(text) + len(counts) + len(points) + len(records)


def main():
    args = dict(a.lstrip("-").split("=", 1) for a in sys.argv[1:])
    scale = float(args.pop("scale", 1.0))
    seed = int(args.pop("seed", 1))
    if args:
        sys.exit(f"pywork: unknown argument(s) {sorted(args)}")
    rounds = max(1, round(8 * scale))
    n = 20000
    rnd = random.Random(seed)
    check = 0
    t0 = time.perf_counter()
    for _ in range(rounds):
        check += one_round(rnd, n)
    secs = time.perf_counter() - t0
    ops = rounds * n
    print(
        f"RESULT workload=python threads=1 ops={ops} seconds={secs:.6f} "
        f"ops_per_sec={ops / secs:.0f} check={check}"
    )


if __name__ == "__main__":
    main()
