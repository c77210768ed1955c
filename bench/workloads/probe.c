/* SPDX-License-Identifier: MIT */
/* probe: which library serves malloc in this process.
 *
 * The runner starts it under each allocator's LD_PRELOAD before measuring
 * anything, to check that the preload takes (a library that fails to load
 * or does not export malloc would silently measure glibc) and that the
 * allocator survives a few basic calls. Prints one line:
 *
 *   PROBE malloc_from=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
 *         [rsmalloc_version=V cache_mode=MODE, to the end of the line] */
#ifndef _GNU_SOURCE
#  define _GNU_SOURCE 1 /* dladdr */
#endif
#include <dlfcn.h>

#include "common.h"

int main(int argc, char** argv) {
  bench_args(argc, argv);
  bench_args_done();

  void* blocks[64];
  for (int i = 0; i < 64; i++) {
    blocks[i] = xmalloc((size_t)16 << (i % 16));
    memset(blocks[i], i, 16);
  }
  for (int i = 0; i < 64; i += 2)
    blocks[i] = xrealloc(blocks[i], 100000);
  for (int i = 0; i < 64; i++)
    free(blocks[i]);

  void* sym = dlsym(RTLD_DEFAULT, "malloc");
  Dl_info info;
  const char* from = "unknown";
  if (sym != NULL && dladdr(sym, &info) != 0 && info.dli_fname != NULL) {
    from = info.dli_fname;
  }
  printf("PROBE malloc_from=%s", from);

  typedef const char* (*str_fn)(void);
  str_fn version = (str_fn)dlsym(RTLD_DEFAULT, "rsmalloc_version");
  str_fn mode = (str_fn)dlsym(RTLD_DEFAULT, "rsmalloc_cache_mode");
  if (version != NULL)
    printf(" rsmalloc_version=%s", version());
  /* Last, as it may contain spaces ("fallback: <reason>"). */
  if (mode != NULL)
    printf(" cache_mode=%s", mode());
  printf("\n");
  return 0;
}
