/* SPDX-License-Identifier: MIT */
/* memory: footprint for a fixed live set, and what is given back after it
 * is freed.
 *
 * Build phase: allocate objects of 8 B - 8 KiB (skewed small), freeing a
 * random live one a quarter of the time, until the live bytes reach the
 * target (128 MiB); then replace as many random objects as there are live
 * ones. Free phase: free all but one object in 64 (scattered survivors pin
 * some pages, as in a real program that drops a cache). The process then
 * keeps running lightly (a few small allocations every millisecond for
 * idle_ms) so allocators that return memory on a timer get the chance.
 *
 * Reports RSS (from /proc/self/statm) at the end of the build phase, after
 * the free phase, and after malloc_trim(0). malloc_trim is looked up with
 * dlsym(RTLD_DEFAULT) so the program runs on any allocator; trim_from= names
 * the library that provided it (with a preloaded allocator that lacks one it
 * is glibc's, which then has nothing to trim).
 *
 * Parameters: live_mib (128 x scale), idle_ms (1000), seed (1). */
#ifndef _GNU_SOURCE
#  define _GNU_SOURCE 1 /* dladdr */
#endif
#include <dlfcn.h>

#include "common.h"

typedef struct {
  char* p;
  size_t n;
} obj_t;

static const char* basename_of(const char* path) {
  const char* slash = strrchr(path, '/');
  return slash != NULL ? slash + 1 : path;
}

int main(int argc, char** argv) {
  bench_args(argc, argv);
  double live_mib = 128.0 * arg_double("scale", 1.0);
  live_mib = arg_double("live_mib", live_mib < 1.0 ? 1.0 : live_mib);
  long idle_ms = arg_long("idle_ms", 1000);
  uint64_t seed = (uint64_t)arg_long("seed", 1);
  bench_args_done();

  rng_t r = rng_make(seed, 0);
  size_t target = (size_t)(live_mib * 1024 * 1024);
  size_t cap = 1024, len = 0, live = 0, ops = 0;
  obj_t* objs = xmalloc(cap * sizeof(obj_t));
  double t0 = now_sec();

  while (live < target) {
    if (len > 0 && rng_below(&r, 4) == 0) {
      size_t i = rng_below(&r, len);
      live -= objs[i].n;
      free(objs[i].p);
      objs[i] = objs[--len];
    } else {
      if (len == cap) {
        cap *= 2;
        objs = xrealloc(objs, cap * sizeof(obj_t));
      }
      size_t n = rng_server_size(&r);
      char* p = xmalloc(n);
      memset(p, 1, n);
      objs[len++] = (obj_t){p, n};
      live += n;
    }
    ops++;
  }
  for (size_t k = 0, churn = len; k < churn; k++, ops++) {
    size_t i = rng_below(&r, len);
    free(objs[i].p);
    size_t n = rng_server_size(&r);
    objs[i].p = xmalloc(n);
    memset(objs[i].p, 1, n);
    live += n - objs[i].n;
    objs[i].n = n;
  }
  double secs = now_sec() - t0;
  long rss_peak = rss_kb();

  size_t kept = 0, kept_bytes = 0;
  for (size_t i = 0; i < len; i++) {
    if (i % 64 == 0) {
      objs[kept++] = objs[i];
      kept_bytes += objs[i].n;
    } else {
      free(objs[i].p);
    }
  }
  len = kept;

  /* Keep running: a little allocation traffic every millisecond. */
  double idle_end = now_sec() + (double)idle_ms / 1000.0;
  while (now_sec() < idle_end) {
    void* tmp[16];
    for (int k = 0; k < 16; k++)
      tmp[k] = xmalloc(rng_server_size(&r));
    for (int k = 0; k < 16; k++)
      free(tmp[k]);
    sleep_ms(1);
  }
  long rss_free = rss_kb();

  typedef int (*trim_fn)(size_t);
  trim_fn trim = (trim_fn)dlsym(RTLD_DEFAULT, "malloc_trim");
  const char* trim_from = "none";
  Dl_info info;
  if (trim != NULL) {
    trim(0);
    if (dladdr((void*)trim, &info) != 0 && info.dli_fname != NULL) {
      trim_from = basename_of(info.dli_fname);
    }
  }
  long rss_trim = rss_kb();

  for (size_t i = 0; i < len; i++)
    free(objs[i].p);
  free(objs);
  result_begin("memory", 1, (double)ops, secs);
  printf(
      " live_kb=%zu rss_peak_kb=%ld kept_kb=%zu rss_after_free_kb=%ld"
      " rss_after_trim_kb=%ld trim_from=%s\n",
      target / 1024, rss_peak, kept_bytes / 1024, rss_free, rss_trim,
      trim_from);
  return 0;
}
