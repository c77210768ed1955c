// SPDX-License-Identifier: MIT
// Base layer: glibc's own allocator, for pointers rsmalloc did not hand out
// and for RSMALLOC_DISABLE=1. glibc exports __libc_malloc and friends; the
// rest is found once with dlsym(RTLD_NEXT), which does not allocate when
// the name exists.
#ifndef RS_GLIBC_H_
#define RS_GLIBC_H_

#include <malloc.h>
#include <stdio.h>

#include "base.h"

extern "C" {
void* __libc_malloc(size_t n);
void __libc_free(void* p);
void* __libc_calloc(size_t n, size_t m);
void* __libc_realloc(void* p, size_t n);
void* __libc_memalign(size_t align, size_t n);
}

namespace rs::glibc {

/// glibc's malloc_usable_size; 0 if it cannot be found.
size_t usable_size(void* p);

int trim(size_t pad);

struct mallinfo2 mallinfo2();

void malloc_stats();

int malloc_info(int options, FILE* fp);

int mallopt(int param, int value);

}  // namespace rs::glibc

#endif  // RS_GLIBC_H_
