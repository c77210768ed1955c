// SPDX-License-Identifier: MIT
// ABI layer: the C allocation functions with glibc 2.36's semantics. Thin:
// argument checks and errno here, everything else in rs::allocator.
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "allocator.h"
#include "os.h"

extern "C" {

// Not declared by glibc 2.36's headers: cfree was removed, the C23 sized
// frees are newer.
void cfree(void* p);
void free_sized(void* p, size_t size);
void free_aligned_sized(void* p, size_t align, size_t size);

RS_EXPORT void* malloc(size_t n) {
  return rs::allocate(n);
}

RS_EXPORT void free(void* p) {
  rs::deallocate(p);
}

RS_EXPORT void cfree(void* p) {
  rs::deallocate(p, "cfree");
}

RS_EXPORT void free_sized(void* p, size_t size) {
  rs::deallocate_sized(p, size, "free_sized");
}

RS_EXPORT void free_aligned_sized(void* p, size_t /*align*/, size_t size) {
  rs::deallocate_sized(p, size, "free_aligned_sized");
}

RS_EXPORT void* calloc(size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  return rs::allocate_zeroed(total);
}

RS_EXPORT void* realloc(void* p, size_t n) {
  if (p == nullptr)
    return rs::allocate(n);
  if (n == 0) {  // glibc 2.36: frees and returns NULL
    rs::deallocate(p, "realloc");
    return nullptr;
  }
  return rs::reallocate(p, n);
}

RS_EXPORT void* reallocarray(void* p, size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  return realloc(p, total);
}

RS_EXPORT int posix_memalign(void** out, size_t align, size_t n) {
  if (align % sizeof(void*) != 0 || !rs::is_pow2(align))
    return EINVAL;  // errno untouched, as in glibc
  void* p = rs::allocate_aligned(align, n);
  if (p == nullptr)
    return ENOMEM;  // errno is ENOMEM too, as in glibc
  *out = p;
  return 0;
}

/// glibc's memalign: alignments that are not powers of two are rounded up.
RS_EXPORT void* memalign(size_t align, size_t n) {
  if (align > SIZE_MAX / 2 + 1) {
    errno = EINVAL;
    return nullptr;
  }
  if (!rs::is_pow2(align)) {
    size_t a = 1;
    while (a < align)
      a <<= 1;
    align = a;
  }
  return rs::allocate_aligned(align, n);
}

/// glibc 2.36 treats aligned_alloc as memalign.
RS_EXPORT void* aligned_alloc(size_t align, size_t n) {
  return memalign(align, n);
}

RS_EXPORT void* valloc(size_t n) {
  return rs::allocate_aligned(rs::os::system_page_size(), n);
}

RS_EXPORT size_t malloc_usable_size(void* p) {
  return rs::usable_size(p);
}

RS_EXPORT int malloc_trim(size_t pad) {
  return rs::trim(pad);
}

RS_EXPORT struct mallinfo2 mallinfo2(void) {
  return rs::mallinfo2();
}

RS_EXPORT struct mallinfo mallinfo(void) {
  struct mallinfo2 m2 = rs::mallinfo2();
  struct mallinfo m = {};
  // glibc's mallinfo truncates to int the same way.
  m.arena = static_cast<int>(m2.arena);
  m.ordblks = static_cast<int>(m2.ordblks);
  m.smblks = static_cast<int>(m2.smblks);
  m.hblks = static_cast<int>(m2.hblks);
  m.hblkhd = static_cast<int>(m2.hblkhd);
  m.usmblks = static_cast<int>(m2.usmblks);
  m.fsmblks = static_cast<int>(m2.fsmblks);
  m.uordblks = static_cast<int>(m2.uordblks);
  m.fordblks = static_cast<int>(m2.fordblks);
  m.keepcost = static_cast<int>(m2.keepcost);
  return m;
}

RS_EXPORT void malloc_stats(void) {
  rs::print_malloc_stats();
}

RS_EXPORT int malloc_info(int options, FILE* fp) {
  return rs::malloc_info(options, fp);
}

RS_EXPORT int mallopt(int param, int value) {
  return rs::mallopt(param, value);
}

}  // extern "C"
