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

extern RS_INTERNAL rseq::CpuCache g_cpu_cache;

/// Whether free checks for double frees and sized frees check their size
/// (configure --disable-checks turns them off, for measuring their cost).
inline constexpr bool kFreeChecks = RS_FREE_CHECKS != 0;

/// The free mark and the class tag: the second word of a small block (the
/// first holds the central lists' link) tells free whether the block is
/// live. Both come from g_tag_base, random per process and set before the
/// first block is handed out, whose low byte is 0: an allocation leaves the
/// class tag, g_tag_base ^ cls (classes are below 128), a free leaves the
/// free mark, g_free_mark = g_tag_base ^ kMarkByte. The mark's low byte is
/// no class, and not 0: a program that writes a 0 over a tag's low byte
/// (the end of an 8-character string in a 16-byte block) leaves neither a
/// tag nor the mark, where a mark with a low byte of 0 would have been
/// made by that store and sent the free through the slow confirmation of
/// a suspected double free. On 64-bit the base's top two bits are 01 (no
/// mark and no tag is a canonical address, so no pointer a program keeps
/// in the word equals one). The fast path reads the base's copy in
/// g_cpu_cache.word().
///
/// free xors the word with the base: for a tag that gives the block's
/// class, for the mark kMarkByte. When that equals the page map's class, p
/// is the start of a live block (a tag is only ever written at a block's
/// start, and the mark is secret), and the push goes by it: its addresses
/// then come from malloc's store to the block (forwarded while the block is
/// fresh) rather than from the page map's loads, which wait on the pointer,
/// and in a malloc/free loop the next malloc's loads would wait for them
/// (docs/benchmarks.md, "The class tag"). Anything else (a program that
/// wrote over the word, a freed block, an interior pointer) takes the full
/// check: the page map's slot check, the mark, then the page map's class.
/// Without the checks (--disable-checks) the tag is the bare class and only
/// selects the push address when it equals the page map's class.
extern RS_INTERNAL uintptr_t g_free_mark;
extern RS_INTERNAL uintptr_t g_tag_base;

/// The free mark's low byte (g_tag_base's is 0): above every class.
inline constexpr uintptr_t kMarkByte = 0x80;
static_assert(kNumClasses <= kMarkByte, "a tag's low byte is its class");

RS_FAST_PATH uintptr_t tag_of(size_t cls) {
  return kFreeChecks ? g_tag_base ^ cls : cls;
}

/// The second word of a small block: where the free mark and the class tag
/// go.
RS_FAST_PATH uintptr_t* mark_word(void* p) {
  return static_cast<uintptr_t*>(p) + 1;
}

/// same_class(a, b): a == b, compared by an asm branch (rseq::same_word),
/// so that the compiler neither goes on with b's register once it knows
/// the two are equal (clang does) nor turns the choice into a conditional
/// move, which would wait for both.
RS_FAST_PATH bool same_class(uintptr_t a, size_t b) {
  return rseq::same_word(a, b);
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

/// A sized free whose size n is larger than the block: aborts.
[[noreturn]] RS_SLOW_PATH void wrong_size(void* p, size_t n, const char* what);

/// A sized free (free_sized, sized operator delete): as deallocate, and
/// aborts when n is larger than the block. The slow path: anything but a
/// small block whose size's class is its own.
RS_SLOW_PATH void deallocate_sized_slow(void* p, size_t n, const char* what);

/// A free of what the page map puts in a small span but is not the start
/// of an object slot free's fast path may take (n: a sized free's size, or
/// 0).
RS_FAST_PATH void deallocate_not_slot(void* p, size_t n, const char* what) {
  if (n != 0)
    deallocate_sized_slow(p, n, what);
  else
    deallocate_slow(p, what);
}

/// A free (`what` names the call) of a small block that carries the free
/// mark: aborts if the block is free already, else frees it.
RS_SLOW_PATH void free_marked(void* p, size_t cls, const char* what);

/// malloc: n bytes, 16-byte aligned; nullptr with errno ENOMEM on failure.
RS_FAST_PATH void* allocate(size_t n) {
  if (RS_LIKELY(n <= kMaxSmallSize)) {
    size_t cls = size_class_of(n);
    void* p = g_cpu_cache.pop(cls);
    if (RS_LIKELY(p != nullptr)) {
      // The class tag replaces the free mark. On x86 from g_tag_base: one
      // xor with a %rip-relative operand, where the cache's copy would
      // keep a base register across the pop and cost a spill; elsewhere
      // from the cache's copy, next to what the pop read.
#if defined(__x86_64__) || defined(__i386__)
      *mark_word(p) = tag_of(cls);
#else
      *mark_word(p) = kFreeChecks ? g_cpu_cache.word() ^ cls : cls;
#endif
      return p;
    }
  }
  return allocate_slow(n);
}

/// free of what the page map says is in a small span of class cls. With
/// the fast path on: the class tag, or else the full check; then the free
/// mark (written before the push: once pushed, another thread may take p)
/// and the push, by the tag's class when it held (unless `sized`: cls is
/// the class of a sized free's size n). The block is only read here when the
/// fast path is on: under valgrind (never on) a block of under 16 requested
/// bytes has no second word memcheck would let free read.
RS_FAST_PATH void deallocate_small(void* p,
                                   size_t cls,
                                   const PageMap::Entry& entry,
                                   const char* what,
                                   bool sized = false,
                                   size_t n = 0) {
  if (RS_LIKELY(g_cpu_cache.fast_path_on())) {
    uintptr_t word = *mark_word(p);
    if constexpr (kFreeChecks) {
      uintptr_t base = g_cpu_cache.word();  // g_tag_base
      uintptr_t mark = base | kMarkByte;    // g_free_mark
      uintptr_t tagged = word ^ base;
      if (RS_LIKELY(same_class(tagged, cls))) {
        // A store of a value known early: a `not` of the word in memory
        // would make the block's next tag wait for it.
        *mark_word(p) = mark;
        if (!sized)
          cls = tagged;
      } else {
        if (RS_UNLIKELY(!PageMap::starts_slot(p, entry, cls))) {
          // A sized free's n fits cls (its class), and pages in strict
          // mode, where blocks are smaller, never get here: n may go.
          deallocate_slow(p, what);
          return;
        }
        if (RS_UNLIKELY(tagged == kMarkByte)) {  // word == mark
          free_marked(p, cls, what);
          return;
        }
        *mark_word(p) = mark;
      }
    } else {
      if (!sized && same_class(word, cls))
        cls = word;
    }
    if (RS_LIKELY(g_cpu_cache.push_fast(cls, p)))
      return;
    deallocate_small_full(p, cls);
    return;
  }
  // Before any check is on (the first frees, before the caches start) the
  // check arrays are not read: the slow path judges p from its span, and a
  // short-lived process faults in two pages fewer.
  if (kFreeChecks && RS_UNLIKELY(!g_page_map.checks_used() ||
                                 !PageMap::starts_slot(p, entry, cls))) {
    deallocate_not_slot(p, n, what);
    return;
  }
  deallocate_small_slow(p, cls, what);
}

/// free: any pointer (nullptr, ours, or glibc's). Keeps errno. `what`
/// names the call in a misuse report.
RS_FAST_PATH void deallocate(void* p, const char* what = "free") {
  PageMap::Entry entry;
  size_t cls = g_page_map.class_at(p, &entry);
  if (RS_LIKELY(cls != 0)) {
    deallocate_small(p, cls, entry, what);
    return;
  }
  deallocate_slow(p, what);
}

/// A sized free (free_sized, sized operator delete): as deallocate, and
/// aborts when n is larger than the block.
RS_FAST_PATH void deallocate_sized(void* p, size_t n, const char* what) {
  PageMap::Entry entry;
  size_t cls = g_page_map.class_at(p, &entry);
  if (RS_LIKELY(cls != 0)) {
    // The size's class, when it is the block's, pushes (and then the size
    // is right).
    size_t by_size = n <= kMaxSmallSize ? size_class_of(n) : 0;
    if (RS_LIKELY(same_class(by_size, cls))) {
      deallocate_small(p, by_size, entry, what, true, n);
      return;
    }
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
