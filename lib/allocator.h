// SPDX-License-Identifier: MIT
// Facade: allocate, deallocate, reallocate, usable_size and the rest of
// what lib/abi/ needs. The only file that joins the per-CPU caches (rseq/)
// with the core. Fast paths are inline here; everything else is in
// allocator.cc and its siblings (allocator_internal.h).
#ifndef RS_ALLOCATOR_H_
#define RS_ALLOCATOR_H_

#include <malloc.h>
#include <stdio.h>

#include "base.h"
#include "config.h"
#include "page_map.h"
#include "rseq/cpu_cache.h"
#include "size_class.h"
#include "stats.h"

namespace rs {

extern rseq::CpuCache g_cpu_cache;

/// Whether free checks for double frees and sized frees check their size
/// (configure --disable-checks turns them off, for measuring their cost).
inline constexpr bool kFreeChecks = RS_FREE_CHECKS != 0;

/// The free mark: a free writes it into the second word of a small block
/// (the first holds the central lists' link), and every allocation
/// replaces it with the block's class tag (below). A free that finds it is
/// most likely a double free, which free_marked() confirms. Random per
/// process, odd (no aligned pointer equals it, nor any class), set before
/// the first block is handed out. The fast path reads its copy in
/// g_cpu_cache.word().
extern uintptr_t g_free_mark;

/// The second word of a small block: where the free mark and the class tag
/// go.
RS_FAST_PATH uintptr_t* mark_word(void* p) {
  return static_cast<uintptr_t*>(p) + 1;
}

/// The class tag: an allocation leaves the block's class in its second
/// word, and free pushes by the tag when it still equals the page map's
/// class, so that the push's addresses come from malloc's store to the
/// block (forwarded while the block is fresh) rather than from the page
/// map's loads, which wait on the pointer: in a malloc/free loop the next
/// malloc's loads would wait for them (docs/benchmarks.md, "The class
/// tag"). Sized frees do the same with the size's class. Neither is
/// trusted: a program that wrote over the word gets the page map's class,
/// as does one whose data happens to differ.
///
/// same_class(a, b): a == b, compared by an asm branch, so that the
/// compiler neither goes on with b's register once it knows the two are
/// equal (clang does) nor turns the choice into a conditional move, which
/// would wait for both. Other architectures have no rseq fast path: the
/// page map's class.
RS_FAST_PATH bool same_class(uintptr_t a, size_t b) {
#if defined(__x86_64__) || defined(__i386__)
  __asm__ goto("cmp %1, %0\n\tjne %l[other]" : : "r"(a), "r"(b) : "cc" : other);
  return true;
other:
  return false;
#elif defined(__aarch64__)
  __asm__ goto("cmp %0, %1\n\tb.ne %l[other]"
               :
               : "r"(a), "r"(b)
               : "cc"
               : other);
  return true;
other:
  return false;
#else
  (void)a;
  (void)b;
  return false;
#endif
}

RS_SLOW_PATH void* allocate_slow(size_t n);

/// free's slow path for a small block of class cls that has not been
/// checked: the locked fallback, valgrind and M_PERTURB come here.
RS_SLOW_PATH void deallocate_small_slow(void* p, size_t cls, const char* what);

/// free's slow path after the fast path checked p and wrote its free mark
/// but found this CPU's cache full.
RS_SLOW_PATH void deallocate_small_full(void* p, size_t cls);

/// free's slow path for everything but the starts of small objects: large
/// blocks, foreign pointers, nullptr, and pointers into small spans that
/// are not an object's start (an invalid free: it aborts naming `what`).
RS_SLOW_PATH void deallocate_slow(void* p, const char* what = "free");

/// A free (`what` names the call) of a small block that carries the free
/// mark: aborts if the block is free already, else frees it.
RS_SLOW_PATH void free_marked(void* p, size_t cls, const char* what);

/// A sized free whose size n is larger than the block: aborts.
[[noreturn]] RS_SLOW_PATH void wrong_size(void* p, size_t n, const char* what);

/// malloc: n bytes, 16-byte aligned; nullptr with errno ENOMEM on failure.
RS_FAST_PATH void* allocate(size_t n) {
  if (RS_LIKELY(n <= kMaxSmallSize)) {
    size_t cls = size_class_of(n);
    void* p = g_cpu_cache.pop(cls);
    if (RS_LIKELY(p != nullptr)) {
      *mark_word(p) = cls;  // clears the free mark: the class tag
      return p;
    }
  }
  return allocate_slow(n);
}

/// free of a small block of class cls. With the fast path on: checks the
/// free mark, writes it (before the push: once pushed, another thread may
/// take p), then pushes, by the class tag where it holds (unless `early`:
/// cls came from a sized free's size). The block is only read here when
/// the fast path is on: under valgrind (never on) a block of under 16
/// requested bytes has no second word memcheck would let free read.
RS_FAST_PATH void deallocate_small(void* p,
                                   size_t cls,
                                   const char* what,
                                   bool early = false) {
  if (RS_LIKELY(g_cpu_cache.fast_path_on())) {
    uintptr_t word = *mark_word(p);
    if constexpr (kFreeChecks) {
      uintptr_t mark = g_cpu_cache.word();  // g_free_mark
      if (RS_UNLIKELY(word == mark)) {
        free_marked(p, cls, what);
        return;
      }
      *mark_word(p) = mark;
    }
    if (!early && same_class(word, cls))
      cls = word;
    if (RS_LIKELY(g_cpu_cache.push_fast(cls, p)))
      return;
    deallocate_small_full(p, cls);
    return;
  }
  deallocate_small_slow(p, cls, what);
}

/// Whether p is a small block for free's fast path, with its class. With
/// the checks: the start of an object slot; without: anywhere in a small
/// span.
RS_FAST_PATH bool small_object_at(const void* p, size_t* cls) {
  if constexpr (kFreeChecks) {
    if (!g_page_map.object_at(p, cls))
      return false;
    if (*cls == 0)
      __builtin_unreachable();  // object_at gives a class
    return true;
  }
  *cls = g_page_map.class_of(p);
  return *cls != 0;
}

/// free: any pointer (nullptr, ours, or glibc's). Keeps errno. `what`
/// names the call in a misuse report.
RS_FAST_PATH void deallocate(void* p, const char* what = "free") {
  size_t cls;
  if (RS_LIKELY(small_object_at(p, &cls))) {
    deallocate_small(p, cls, what);
    return;
  }
  deallocate_slow(p, what);
}

/// A sized free (free_sized, sized operator delete): as deallocate, and
/// aborts when n is larger than the block. The slow path: anything but a
/// small block that passed free's fast check.
RS_SLOW_PATH void deallocate_sized_slow(void* p, size_t n, const char* what);

RS_FAST_PATH void deallocate_sized(void* p, size_t n, const char* what) {
  size_t cls;
  if (RS_LIKELY(small_object_at(p, &cls))) {
    // The size's class, when it is the block's, pushes (and then the size
    // is right).
    size_t sized = n <= kMaxSmallSize ? size_class_of(n) : 0;
    if (RS_LIKELY(same_class(sized, cls))) {
      deallocate_small(p, sized, what, true);
      return;
    }
    if constexpr (kFreeChecks) {
      if (RS_UNLIKELY(n > class_size(cls)))
        wrong_size(p, n, what);
    }
    deallocate_small(p, cls, what);
    return;
  }
  deallocate_sized_slow(p, n, what);
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
