// SPDX-License-Identifier: MIT
// Facade: the slow paths of allocation and free, calloc, alignment,
// realloc, usable sizes, ownership, malloc_trim and M_PERTURB. Joins the
// per-CPU caches with the central lists; strict mode, valgrind's paths and
// free's confirmations have files of their own (allocator_internal.h).
#include "allocator.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "allocator_internal.h"
#include "central_list.h"
#include "glibc.h"
#include "guarded.h"
#include "init.h"
#include "large.h"
#include "log.h"
#include "page_heap.h"
#include "release.h"
#include "transfer_cache.h"
#include "valgrind.h"

namespace rs {

rseq::CpuCache g_cpu_cache;
RS_STARTUP_DATA uintptr_t g_free_mark;
RS_STARTUP_DATA uintptr_t g_tag_base;

/// mallopt(M_PERTURB) or MALLOC_PERTURB_ (allocator_internal.h).
RS_STARTUP_DATA int g_perturb = 0;

namespace {

void* fail_enomem() {
  errno = ENOMEM;
  return nullptr;
}

/// M_PERTURB: a new block's first n bytes.
void perturb_new(void* p, size_t n) {
  int byte = __atomic_load_n(&g_perturb, __ATOMIC_RELAXED);
  if (byte != 0 && p != nullptr)
    memset(p, (byte ^ 0xff) & 0xff, n);
}

/// M_PERTURB: a freed block (ours) of `size` bytes, before anything
/// reuses it.
void perturb_free(void* p, size_t size) {
  int byte = __atomic_load_n(&g_perturb, __ATOMIC_RELAXED);
  if (byte != 0)
    memset(p, byte & 0xff, size);
}

/// An object of class cls, from the cache or its slow path, its free mark
/// replaced by the class tag (under valgrind vg_new clears it: memcheck
/// still sees the block as freed here).
void* allocate_class(size_t cls) {
  void* p = g_cpu_cache.pop_cached(cls);
  if (p == nullptr)
    p = g_cpu_cache.pop_slow(cls);
  if (p == nullptr)
    return fail_enomem();
  if (!g_valgrind)
    *mark_word(p) = tag_of(cls);
  return p;
}

/// calloc from this size up: clearing costs more than a central-list trip
/// per cache miss (about 100 ns for 4 KiB, and a page made resident).
constexpr size_t kCallocDirectBytes = 4096;

/// For calloc of a page or more: a CPU-cache miss takes the object from its
/// span directly (not a batch), where it is known whether it was ever
/// written.
void* allocate_class_zeroed(size_t cls, bool* zeroed) {
  void* p = g_cpu_cache.pop_cached(cls);
  if (p != nullptr)
    return p;
  p = g_central[cls].remove_one(zeroed);
  maybe_release_span_pages();
  return p != nullptr ? p : fail_enomem();
}

/// A large block of n bytes aligned to align; in strict mode with guard
/// pages (always fresh, zeroed memory).
void* allocate_large(size_t n, size_t align, bool* zeroed) {
  if (n > PTRDIFF_MAX)
    return fail_enomem();
  void* p;
  if (RS_UNLIKELY(g_harden)) {
    p = guarded_allocate(n, align);
    *zeroed = true;
  } else {
    p = large_allocate(n, align > kPageSize ? align : kPageSize, zeroed);
  }
  maybe_release_span_pages();
  return p != nullptr ? p : fail_enomem();
}

void* raw_allocate_aligned(size_t align, size_t n) {
  if (g_disabled)
    return __libc_memalign(align, n);
  size_t need;
  if (align <= kPageSize && small_request(n, &need)) {
    // Every object of a class whose size is a multiple of align is aligned:
    // spans start on a page boundary.
    size_t cls = size_class_of(need > align ? need : align);
    while (cls < kNumClasses && class_size(cls) % align != 0)
      cls++;
    if (cls < kNumClasses)
      return with_canary(allocate_class(cls));
  }
  bool zeroed;
  return allocate_large(n, align, &zeroed);
}

/// For a pointer the page map does not know, before it goes to glibc:
/// aborts naming `what` when p lies in a freed large block rsmalloc still
/// holds (cached for reuse, or strict mode's held-back guarded blocks).
void check_not_held(const void* p, const char* what) {
  check_not_cached(p, what);
  guarded_check_freed(p, what);
}

/// Frees our large block p of span (not under valgrind).
void free_large(Span* span, void* p) {
  // Blocks with their own mapping go back to the OS: glibc leaves those
  // alone too.
  if (RS_UNLIKELY(g_perturb != 0) && span->start() == addr(p) &&
      span->state == SpanState::kLarge)
    perturb_free(p, large_usable_size(span));
  large_free(span, p);  // checks that p starts a live large block
}

/// What realloc allocates to grow a small block of class cls (old_size
/// usable bytes) to n bytes: at least a quarter more than it had, so that
/// a block grown in small steps (a Python list appended to, a string
/// built piece by piece) is copied once per quarter of growth, not at
/// every size class (they are an eighth apart). Only from the classes
/// spaced that way (above 128 B) and within the small sizes; shrinks,
/// large blocks and strict mode get exactly n. A block that grows skips
/// the page-and-header class (kPageHeaderSize), which is there for blocks
/// of that size: a buffer passing through it would leave a span of that
/// class behind as well (bench/run's realloc: peak RSS +4%).
size_t realloc_target(size_t cls, size_t old_size, size_t n) {
  if (cls == 0 || n <= old_size || RS_UNLIKELY(g_harden))
    return n;
  size_t target = n;
  size_t grown = old_size + old_size / 4;
  if (old_size >= 128 && n < grown && grown <= kMaxSmallSize)
    target = grown;
  constexpr size_t page_header_class = size_class_of(kPageHeaderSize);
  if (target <= kMaxSmallSize && size_class_of(target) == page_header_class)
    target = class_size(page_header_class + 1);
  return target;
}

}  // namespace

void* raw_allocate(size_t n) {
  if (RS_UNLIKELY(g_disabled))
    return __libc_malloc(n);
  size_t need;
  if (small_request(n, &need))
    return with_canary(allocate_class(size_class_of(need)));
  bool zeroed;
  return allocate_large(n, kMinAlign, &zeroed);
}

Span* large_span(const void* p, const char* what) {
  Span* span = g_page_map.span_of(p);
  if (span == nullptr)
    return nullptr;
  if ((span->state != SpanState::kLarge && span->state != SpanState::kMapped) ||
      large_block_start(span) != addr(p)) {
    fatal_pointer(what, p);
  }
  return span;
}

void free_small(void* p, size_t cls) {
  if (RS_UNLIKELY(g_perturb != 0))
    perturb_free(p, class_size(cls));
  if constexpr (kFreeChecks)
    *mark_word(p) = g_free_mark;
  if (!g_cpu_cache.push_cached(cls, p))
    g_cpu_cache.push_slow(cls, p);
}

void set_perturb(int value) {
  if (g_valgrind || g_disabled)
    return;  // memcheck's checks, or glibc's own perturb, apply
  __atomic_store_n(&g_perturb, value, __ATOMIC_RELAXED);
  g_cpu_cache.set_fast_path(value == 0 && !g_harden);
}

void* allocate_slow(size_t n) {
  ensure_init();
  if (RS_UNLIKELY(g_valgrind))
    return vg_new(raw_allocate(n), n, false);
  void* p = raw_allocate(n);
  if (RS_UNLIKELY(g_perturb != 0))
    perturb_new(p, n);
  return p;
}

void deallocate_small_slow(void* p, size_t cls, const char* what) {
  if (RS_UNLIKELY(g_valgrind)) {
    if (vg_free(p))
      vg_release(p);
    return;
  }
  deallocate_small_checked(p, cls, what);
}

void deallocate_small_full(void* p, size_t cls) {
  // The mark is written and M_PERTURB is off (the fast path was on): only
  // the section's miss is left to handle.
  g_cpu_cache.push_slow(cls, p);
}

void deallocate_slow(void* p, const char* what) {
  if (p == nullptr)
    return;
  Span* span = g_page_map.span_of(p);
  if (span == nullptr) {
    if (RS_LIKELY(!g_valgrind))  // memcheck reports it: its free is glibc's
      check_not_held(p, what);
    __libc_free(p);  // not ours: glibc's, from before rsmalloc was loaded
    return;
  }
  if (RS_UNLIKELY(g_valgrind)) {
    if (vg_free(p))  // memcheck reports invalid frees itself
      vg_release(p);
    return;
  }
  if (span->state == SpanState::kSmall) {
    // Not an object's start, or a span with pages returned to the OS; in
    // strict mode, every free (strict_slot() spares it the class lock).
    size_t cls = g_page_map.class_of(p);
    if (RS_UNLIKELY(g_harden) && strict_slot(span, p, cls)) {
      deallocate_small_checked(p, cls, what);
      return;
    }
    BlockState state =
        cls != 0 ? g_central[cls].released_state(p) : BlockState::kNotABlock;
    if (state == BlockState::kNotABlock)
      fatal_pointer(what, p);
    if (state == BlockState::kFree)
      fatal_block(what, "double free of", p, block_bytes(cls));
    deallocate_small_checked(p, cls, what);
    return;
  }
  if (span->state == SpanState::kFree) {  // its span went back too
    fatal_block(what, "double free of", p, g_page_heap.freed_block_size(p));
  }
  free_large(span, p);
}

void deallocate_sized_slow(void* p, size_t n, const char* what) {
  PageMap::Entry entry;
  size_t cls = g_page_map.class_at(p, &entry);
  if (cls != 0 && (!kFreeChecks || (PageMap::starts_slot(p, entry, cls) &&
                                    n <= class_size(cls)))) {
    // A small block (with the checks: an object's start) whose size is
    // not its class's but fits: as an unsized free.
    deallocate_small(p, cls, entry, what);
    return;
  }
  Span* span = kFreeChecks ? g_page_map.span_of(p) : nullptr;
  if (span != nullptr && !g_valgrind) {
    // A small block whose page sends frees here (not carved that far, or
    // next to pages returned to the OS; any page in strict mode), or a
    // large block.
    size_t usable = SIZE_MAX;  // deallocate_slow judges the pointer
    if (span->state == SpanState::kSmall) {
      usable = block_bytes(g_page_map.class_of(p));
    } else if (large_span(p, what) != nullptr) {
      usable = large_usable_size(span);
    }
    if (n > usable)
      wrong_size(p, n, what);
  }
  deallocate_slow(p, what);
}

void* allocate_zeroed(size_t n) {
  ensure_init();
  if (g_disabled)
    return __libc_calloc(1, n);
  bool zeroed = false;
  void* p;
  if (n > kMaxSmallSize) {
    p = allocate_large(n, kMinAlign, &zeroed);
  } else if (n >= kCallocDirectBytes && !g_valgrind && !g_harden) {
    p = allocate_class_zeroed(size_class_of(n), &zeroed);
  } else {
    p = raw_allocate(n);
  }
  if (RS_UNLIKELY(g_valgrind))
    vg_new(p, n, true);  // before the memset, which memcheck must allow
  if (p != nullptr && !zeroed)
    memset(p, 0, n);
  return p;
}

void* allocate_aligned(size_t align, size_t n) {
  if (align <= kMinAlign)
    return allocate(n);
  ensure_init();
  void* p = raw_allocate_aligned(align, n);
  if (RS_UNLIKELY(g_valgrind))
    vg_new(p, n, false);
  else if (RS_UNLIKELY(g_perturb != 0))
    perturb_new(p, n);
  return p;
}

void* reallocate(void* p, size_t n) {
  if (n > PTRDIFF_MAX)
    return fail_enomem();
  if (RS_UNLIKELY(g_valgrind))
    return vg_reallocate(p, n);
  PageMap::Entry entry;
  size_t cls = g_page_map.class_at(p, &entry);
  size_t old_size;
  Span* span = nullptr;
  if (cls != 0) {
    check_live_block(p, cls, entry, "realloc");
    old_size = class_size(cls);
    if (RS_UNLIKELY(g_harden)) {
      old_size -= kCanaryBytes;  // strict: always a new block, checked free
    } else if (n <= old_size && n >= old_size / 2) {
      return p;
    }
  } else {
    span = large_span(p, "realloc");
    if (span == nullptr) {
      check_not_held(p, "realloc");
      return __libc_realloc(p, n);
    }
    void* q = large_resize_in_place(span, p, n);
    if (q != nullptr)
      return q;
    old_size = large_usable_size(span);
  }
  void* q = allocate(realloc_target(cls, old_size, n));
  if (q == nullptr)
    return nullptr;
  memcpy(q, p, n < old_size ? n : old_size);
  if (span != nullptr) {
    free_large(span, p);
  } else if (RS_UNLIKELY(g_harden)) {
    strict_free(p, cls, "realloc");
  } else {
    free_small(p, cls);
  }
  return q;
}

size_t usable_size(const void* p) {
  PageMap::Entry entry;
  size_t cls = g_page_map.class_at(p, &entry);
  Span* span = nullptr;
  if (cls == 0) {
    if (p == nullptr)
      return 0;
    span = large_span(p, "malloc_usable_size");
    if (span == nullptr) {
      check_not_held(p, "malloc_usable_size");
      return glibc::usable_size(const_cast<void*>(p));
    }
  } else if (RS_LIKELY(!g_valgrind)) {
    check_live_block(const_cast<void*>(p), cls, entry, "malloc_usable_size");
  }
  size_t usable = raw_usable_size(cls, span);
  if (RS_UNLIKELY(g_harden) && cls != 0)
    usable -= kCanaryBytes;  // strict mode: the canary is not the program's
  // Under valgrind: what memcheck considers addressable, the request.
  return RS_UNLIKELY(g_valgrind) ? vg::g_sizes.get(p, usable) : usable;
}

bool owns(const void* p) {
  Span* span = g_page_map.span_of(p);
  if (span == nullptr)
    return false;
  // Racy by nature (another thread may free the span): read it once.
  SpanState state = static_cast<SpanState>(__atomic_load_n(
      reinterpret_cast<const uint8_t*>(&span->state), __ATOMIC_RELAXED));
  if (state == SpanState::kSmall) {
    return starts_slot(span, p, g_page_map.class_of(p));
  }
  return (state == SpanState::kLarge || state == SpanState::kMapped) &&
         large_block_start(span) == addr(p);
}

int trim(size_t pad) {
  ensure_init();
  if (g_disabled)
    return glibc::trim(pad);
  if (RS_UNLIKELY(g_valgrind)) {
    while (vg_drain_quarantine(true) > 0) {
    }
  }
  if (RS_UNLIKELY(g_harden)) {
    while (strict_drain_quarantine(true, "malloc_trim") > 0) {
    }
  }
  size_t drained = g_cpu_cache.drain_all();
  drained += flush_transfer_caches();  // what the drain left there too
  size_t released = g_page_heap.trim(pad) + large_trim_mappings(0);
  released += release_span_pages(0, SIZE_MAX);
  return released > 0 || drained > 0 ? 1 : 0;
}

}  // namespace rs
