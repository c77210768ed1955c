/* SPDX-License-Identifier: MIT */
/* large: big blocks allocated, touched and freed over and over.
 *
 * Sizes are 256 KiB to 64 MiB, log-uniform; two blocks are live at a time
 * and a random one is replaced each round. Every page of a new block is
 * written, so the cost is mostly the kernel's: mmap/munmap, page faults and
 * zeroing, unless the allocator keeps and reuses freed large blocks. Models
 * I/O buffers, image and decompression buffers, and large hash tables.
 *
 * Parameters: rounds (400 x scale), seed (1). */
#include "common.h"

enum { kLive = 2 };

int main(int argc, char** argv) {
  bench_args(argc, argv);
  long rounds = arg_scaled("rounds", 400);
  uint64_t seed = (uint64_t)arg_long("seed", 1);
  bench_args_done();

  rng_t r = rng_make(seed, 0);
  long page = sysconf(_SC_PAGESIZE);
  char* live[kLive] = {NULL};
  double touched = 0;
  double t0 = now_sec();
  for (long i = 0; i < rounds; i++) {
    uint64_t k = rng_below(&r, kLive);
    free(live[k]);
    size_t n = rng_log_size(&r, 256 * 1024, 64 * 1024 * 1024);
    char* p = xmalloc(n);
    for (size_t off = 0; off < n; off += (size_t)page)
      p[off] = (char)i;
    p[n - 1] = (char)i;
    escape(p);
    live[k] = p;
    touched += (double)n;
  }
  for (int k = 0; k < kLive; k++)
    free(live[k]);
  double secs = now_sec() - t0;

  result_begin("large", 1, (double)rounds, secs);
  printf(" touched_mib=%.0f\n", touched / (1024.0 * 1024.0));
  return 0;
}
