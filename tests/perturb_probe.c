/* SPDX-License-Identifier: MIT */
/* Run by tests/glibc-compat.sh under /etc/ld.so.preload, setuid and not:
 * prints the cache mode of the preloaded rsmalloc ("none" when it is not
 * loaded) and the first byte of a new 300-byte block, which is the
 * complement of MALLOC_PERTURB_ when that is honoured. Not linked with
 * rsmalloc: it finds it as any program on such a machine would. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  const char* (*mode)(void) =
      (const char* (*)(void))dlsym(RTLD_DEFAULT, "rsmalloc_cache_mode");
  unsigned char* p = malloc(300);
  if (p == NULL)
    return 1;
  printf("mode=%s fill=%#x\n", mode != NULL ? mode() : "none", p[100]);
  free(p);
  return 0;
}
