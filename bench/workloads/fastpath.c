/* SPDX-License-Identifier: MIT */
/* fastpath: the allocator's hot path.
 *
 * Each thread does malloc immediately followed by free, sizes 16 B to 32 KiB
 * (log-uniform, so small sizes dominate by count), touching the first and
 * last byte. This is the short-lived temporary of every program: a formatted
 * string, a small buffer, a node that dies at the end of the function. Run
 * with threads=1 and with one thread per CPU (threads=0).
 *
 * Parameters: threads (1), ops per thread (20M x scale), seed (1), the
 * size range min (16) and max (32768): min=16 max=256 is the small-object
 * microbenchmark ("pairs" in bench/run), and words (0): also write the
 * first `words` 8-byte words of each block, as a program filling in a
 * header would (words=2 overwrites rsmalloc's class tag: docs/benchmarks.md,
 * "The class tag"). */
#include "common.h"

enum { kSizes = 4096 };

typedef struct {
  long ops;
  uint64_t seed;
  long id;
  size_t min, max;  // size range
  size_t words;     // leading words written
} worker_t;

static void* worker(void* arg) {
  worker_t* w = arg;
  rng_t r = rng_make(w->seed, (uint64_t)w->id);
  size_t sizes[kSizes];
  for (int i = 0; i < kSizes; i++)
    sizes[i] = rng_log_size(&r, w->min, w->max);
  for (long i = 0; i < w->ops; i++) {
    size_t n = sizes[i & (kSizes - 1)];
    char* p = malloc(n);
    if (p == NULL)
      die("malloc(%zu) failed", n);
    p[0] = (char)i;
    p[n - 1] = (char)i;
    for (size_t k = 0; k < w->words && k < n / 8; k++)
      ((volatile uint64_t*)p)[k] = (uint64_t)i + k;
    escape(p);
    free(p);
  }
  return NULL;
}

int main(int argc, char** argv) {
  bench_args(argc, argv);
  long threads = arg_threads(1);
  long ops = arg_scaled("ops", 20000000);
  uint64_t seed = (uint64_t)arg_long("seed", 1);
  long min = arg_long("min", 16), max = arg_long("max", 32768);
  long words = arg_long("words", 0);
  bench_args_done();
  if (min < 1 || max < min)
    die("bad size range min=%ld max=%ld", min, max);
  if (words < 0)
    die("bad words=%ld", words);

  worker_t* w = xmalloc((size_t)threads * sizeof(worker_t));
  for (long i = 0; i < threads; i++)
    w[i] = (worker_t){ops, seed, i, (size_t)min, (size_t)max, (size_t)words};
  double t0 = now_sec();
  run_threads(threads, worker, w, sizeof(worker_t));
  double secs = now_sec() - t0;
  free(w);
  result_begin("fastpath", threads, (double)ops * (double)threads, secs);
  printf("\n");
  return 0;
}
