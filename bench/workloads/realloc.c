/* SPDX-License-Identifier: MIT */
/* realloc: strings and vectors that grow, then shrink.
 *
 * 64 buffers live at once, worked on in random order. A string grows by
 * appending 1-32 bytes with realloc to the exact new length (a naive string
 * builder); a vector doubles its capacity. Each grows to a random final size
 * (16 B - 256 KiB, log-uniform), is shrunk to fit, then shrunk to a quarter
 * (trimmed), and starts over. Every realloc keeps the contents, and a few
 * bytes are checked after each move.
 *
 * Parameters: reallocs (4M x scale), seed (1). */
#include "common.h"

enum { kLive = 64, kMaxSize = 256 * 1024 };

typedef struct {
  char* p;
  size_t len, cap, target;
  int vector;
} buf_t;

static void start_over(buf_t* b, rng_t* r) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
  b->target = rng_log_size(r, 16, kMaxSize);
  b->vector = (int)rng_below(r, 2);
}

int main(int argc, char** argv) {
  bench_args(argc, argv);
  long reallocs = arg_scaled("reallocs", 4000000);
  uint64_t seed = (uint64_t)arg_long("seed", 1);
  bench_args_done();

  rng_t r = rng_make(seed, 0);
  buf_t bufs[kLive];
  memset(bufs, 0, sizeof(bufs));
  for (int i = 0; i < kLive; i++)
    start_over(&bufs[i], &r);
  char chunk[32];
  memset(chunk, 'x', sizeof(chunk));

  long calls = 0;
  double t0 = now_sec();
  while (calls < reallocs) {
    buf_t* b = &bufs[rng_below(&r, kLive)];
    if (b->len < b->target) {
      size_t add = 1 + rng_below(&r, 32);
      if (b->len + add > b->cap) {
        size_t cap = b->len + add;
        if (b->vector) {
          cap = b->cap ? b->cap : 16;
          while (cap < b->len + add)
            cap *= 2;
        }
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
        calls++;
        if (b->len > 0 && b->p[b->len - 1] != 'x')
          die("realloc lost data");
      }
      memcpy(b->p + b->len, chunk, add);
      b->len += add;
    } else {
      b->p = xrealloc(b->p, b->len);         /* shrink to fit */
      b->p = xrealloc(b->p, b->len / 4 + 1); /* trim */
      calls += 2;
      if (b->p[0] != 'x')
        die("realloc lost data");
      start_over(b, &r);
    }
  }
  double secs = now_sec() - t0;
  for (int i = 0; i < kLive; i++)
    free(bufs[i].p);

  result_begin("realloc", 1, (double)calls, secs);
  printf("\n");
  return 0;
}
