// SPDX-License-Identifier: MIT
// Base layer: lazily resolved glibc functions that have no __libc_ alias.
#include "glibc.h"

#include <dlfcn.h>

namespace rs::glibc {
namespace {

/// Resolves `name` in the objects after rsmalloc (glibc) once.
template <typename Fn>
Fn next(Fn* cache, const char* name) {
  Fn fn = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
  if (fn == nullptr) {
    fn = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
    __atomic_store_n(cache, fn, __ATOMIC_RELEASE);
  }
  return fn;
}

size_t (*g_usable_size)(void*);
int (*g_trim)(size_t);
struct mallinfo2 (*g_mallinfo2)();
void (*g_malloc_stats)();
int (*g_malloc_info)(int, FILE*);
int (*g_mallopt)(int, int);

}  // namespace

size_t usable_size(void* p) {
  auto fn = next(&g_usable_size, "malloc_usable_size");
  return fn != nullptr ? fn(p) : 0;
}

int trim(size_t pad) {
  auto fn = next(&g_trim, "malloc_trim");
  return fn != nullptr ? fn(pad) : 0;
}

struct mallinfo2 mallinfo2() {
  auto fn = next(&g_mallinfo2, "mallinfo2");
  struct mallinfo2 none = {};
  return fn != nullptr ? fn() : none;
}

void malloc_stats() {
  auto fn = next(&g_malloc_stats, "malloc_stats");
  if (fn != nullptr)
    fn();
}

int malloc_info(int options, FILE* fp) {
  auto fn = next(&g_malloc_info, "malloc_info");
  return fn != nullptr ? fn(options, fp) : -1;
}

int mallopt(int param, int value) {
  auto fn = next(&g_mallopt, "mallopt");
  return fn != nullptr ? fn(param, value) : 0;
}

}  // namespace rs::glibc
