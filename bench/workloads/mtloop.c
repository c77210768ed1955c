/* SPDX-License-Identifier: MIT */
/* mtloop: many threads, each allocating and freeing mixed sizes in a loop.
 *
 * More threads than cores (32 by default on any machine), each with a small
 * window of live objects: every step frees a random one of its slots and
 * allocates a new object of a random size (log-uniform in [min, max]) in
 * its place, writing its first and last word. Threads are preempted and
 * migrate between CPUs all the time, so per-CPU or per-thread caches see
 * many owners and the central structures see every thread.
 *
 * Parameters: threads (32), slots per thread (64), min and max size
 * (16 and 1024; 4096 sizes per thread drawn ahead and used in turn),
 * steps in all (50M x scale, split evenly), seed (1). */
#include "common.h"

enum { kSizes = 4096 };

typedef struct {
  long id, slots, steps;
  size_t min, max;
  uint64_t seed, checksum;
  char pad[64];
} worker_t;

static void* worker(void* arg) {
  worker_t* w = arg;
  rng_t r = rng_make(w->seed, (uint64_t)w->id);
  uint32_t* sizes = xmalloc(kSizes * sizeof(uint32_t));
  for (size_t k = 0; k < kSizes; k++)
    sizes[k] = (uint32_t)rng_log_size(&r, w->min, w->max);
  uint64_t** slot = xmalloc((size_t)w->slots * sizeof(uint64_t*));
  for (long i = 0; i < w->slots; i++) {
    slot[i] = xmalloc(sizes[i % kSizes]);
    slot[i][0] = (uint64_t)i;
  }
  uint64_t sum = 0;
  for (long s = 0; s < w->steps; s++) {
    uint64_t i = rng_below(&r, (uint64_t)w->slots);
    sum += slot[i][0];
    free(slot[i]);
    size_t n = sizes[s % kSizes];
    uint64_t* p = xmalloc(n);
    p[0] = (uint64_t)s;
    p[n / sizeof(uint64_t) - 1] = (uint64_t)s;
    slot[i] = p;
  }
  for (long i = 0; i < w->slots; i++)
    free(slot[i]);
  free(slot);
  free(sizes);
  w->checksum = sum;
  return NULL;
}

int main(int argc, char** argv) {
  bench_args(argc, argv);
  long threads = arg_long("threads", 32);
  long slots = arg_long("slots", 64);
  long min = arg_long("min", 16);
  long max = arg_long("max", 1024);
  long steps = arg_scaled("steps", 50000000);
  uint64_t seed = (uint64_t)arg_long("seed", 1);
  bench_args_done();
  if (threads < 1 || threads > 4096 || slots < 1)
    die("need 1 to 4096 threads and a slot each");
  if (min < 8 || max < min)
    die("need 8 <= min <= max");

  worker_t* w = calloc((size_t)threads, sizeof(worker_t));
  if (w == NULL)
    die("calloc failed");
  for (long i = 0; i < threads; i++)
    w[i] = (worker_t){i, slots, steps / threads, (size_t)min, (size_t)max, seed,
                      0, {0}};
  double t0 = now_sec();
  run_threads(threads, worker, w, sizeof(worker_t));
  double secs = now_sec() - t0;
  uint64_t sum = 0;
  for (long i = 0; i < threads; i++)
    sum += w[i].checksum;
  free(w);

  result_begin("mtloop", threads, (double)(steps / threads) * (double)threads,
               secs);
  printf(" slots=%ld min=%ld max=%ld checksum=%llu\n", slots, min, max,
         (unsigned long long)sum);
  return 0;
}
