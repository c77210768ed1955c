// SPDX-License-Identifier: MIT
// Facade: allocate, deallocate, reallocate, usable_size and the rest of
// what lib/abi/ needs. The only file that joins the per-CPU caches (rseq/)
// with the core. Fast paths are inline here; everything else is in
// allocator.cc.
#ifndef RS_ALLOCATOR_H_
#define RS_ALLOCATOR_H_

#include <malloc.h>
#include <stdio.h>

#include "base.h"
#include "page_map.h"
#include "rseq/cpu_cache.h"
#include "size_class.h"
#include "stats.h"

namespace rs {

extern rseq::CpuCache g_cpu_cache;

RS_SLOW_PATH void* allocate_slow(size_t n);
RS_SLOW_PATH void deallocate_slow(void* p, size_t cls);

/// malloc: n bytes, 16-byte aligned; nullptr with errno ENOMEM on failure.
RS_FAST_PATH void* allocate(size_t n) {
  if (RS_LIKELY(n <= kMaxSmallSize)) {
    void* p = g_cpu_cache.pop(size_class_of(n));
    if (RS_LIKELY(p != nullptr))
      return p;
  }
  return allocate_slow(n);
}

/// free: any pointer (nullptr, ours, or glibc's). Keeps errno.
RS_FAST_PATH void deallocate(void* p) {
  size_t cls = g_page_map.class_of(p);
  if (RS_LIKELY(cls != 0) && RS_LIKELY(g_cpu_cache.push(cls, p)))
    return;
  deallocate_slow(p, cls);
}

/// calloc after the overflow check: n zeroed bytes.
void* allocate_zeroed(size_t n);

/// n bytes aligned to align (a power of two); errno ENOMEM on failure.
void* allocate_aligned(size_t align, size_t n);

/// realloc for p != nullptr and n != 0; on failure p is untouched.
void* reallocate(void* p, size_t n);

/// malloc_usable_size; 0 for nullptr.
size_t usable_size(const void* p);

/// True when p is the start of a block in memory rsmalloc manages.
bool owns(const void* p);

/// malloc_trim: drains caches and returns free pages; 1 if any memory was
/// released, else 0.
int trim(size_t pad);

/// Fills a statistics snapshot.
void collect_stats(Stats* s);

/// "rseq/mm_cid", "rseq/cpu_id", "fallback: <reason>" or "disabled".
const char* cache_mode();

/// True when the process runs under valgrind (known after start-up).
bool on_valgrind();

/// The glibc-compatible reporting functions (glibc's own when disabled).
struct mallinfo2 mallinfo2();
void print_malloc_stats();
int malloc_info(int options, FILE* fp);
int mallopt(int param, int value);

/// Writes the statistics as JSON into buf; returns the length needed.
size_t stats_json(char* buf, size_t len);

}  // namespace rs

#endif  // RS_ALLOCATOR_H_
