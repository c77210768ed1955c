/* SPDX-License-Identifier: MIT */
/* bigbuf: a set of 5-25 MiB buffers, each replaced by a fresh one over and
 * over.
 *
 * Every thread keeps `slots` buffers; each round frees a random one and
 * allocates a new buffer of a size drawn uniformly from 5 to 25 MiB, then
 * writes every page of it, as a program that builds an image, a
 * decompressed file or a serialised message in a fresh buffer does. The
 * allocator's cost is mostly the kernel's (page faults, zeroing, mmap and
 * munmap) unless it keeps freed pages and hands them out again; a peer
 * that keeps everything pays in resident memory instead.
 *
 * Parameters: threads (1; 0 = one per CPU), slots per thread (10), rounds
 * per thread (300 x scale), seed (1). */
#include "common.h"

enum { kMinBytes = 5 << 20, kMaxBytes = 25 << 20 };

typedef struct {
  long id;
  long slots;
  long rounds;
  uint64_t seed;
  double touched; /* bytes of new buffers */
  char pad[64];   /* keep the workers' fields on their own cache lines */
} worker_t;

static void* run(void* arg) {
  worker_t* w = arg;
  rng_t r = rng_make(w->seed, (uint64_t)w->id);
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  char** buf = xmalloc((size_t)w->slots * sizeof(char*));
  memset(buf, 0, (size_t)w->slots * sizeof(char*));
  for (long i = 0; i < w->rounds; i++) {
    uint64_t k = rng_below(&r, (uint64_t)w->slots);
    free(buf[k]);
    size_t n = kMinBytes + (size_t)rng_below(&r, kMaxBytes - kMinBytes + 1);
    char* p = xmalloc(n);
    for (size_t off = 0; off < n; off += page)
      p[off] = (char)i;
    p[n - 1] = (char)i;
    escape(p);
    buf[k] = p;
    w->touched += (double)n;
  }
  for (long k = 0; k < w->slots; k++)
    free(buf[k]);
  free(buf);
  return NULL;
}

int main(int argc, char** argv) {
  bench_args(argc, argv);
  long threads = arg_threads(1);
  long slots = arg_long("slots", 10);
  long rounds = arg_scaled("rounds", 300);
  uint64_t seed = (uint64_t)arg_long("seed", 1);
  bench_args_done();
  if (slots < 1)
    die("slots=%ld: need at least 1", slots);

  worker_t* w = xmalloc((size_t)threads * sizeof(worker_t));
  for (long i = 0; i < threads; i++)
    w[i] = (worker_t){i, slots, rounds, seed, 0.0, {0}};
  double t0 = now_sec();
  run_threads(threads, run, w, sizeof(worker_t));
  double secs = now_sec() - t0;
  double touched = 0;
  for (long i = 0; i < threads; i++)
    touched += w[i].touched;
  free(w);

  result_begin("bigbuf", threads, (double)(rounds * threads), secs);
  printf(" touched_mib=%.0f\n", touched / (1024.0 * 1024.0));
  return 0;
}
