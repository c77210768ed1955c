// SPDX-License-Identifier: MIT
// Facade: the slow paths of allocation and free, calloc, alignment,
// realloc, usable sizes, ownership and malloc_trim, with valgrind's
// annotations. Joins the per-CPU caches with the central lists.
#include "allocator.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

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
uintptr_t g_free_mark;
bool g_harden = false;

namespace {

void* fail_enomem() {
  errno = ENOMEM;
  return nullptr;
}

/// mallopt(M_PERTURB) or MALLOC_PERTURB_: 0 off; else new blocks are filled
/// with the complement of its low byte and freed ones with the byte, as
/// glibc does (calloc excepted). While it is on, the CPU caches' inline
/// fast path is off, so every malloc and free comes through here.
int g_perturb = 0;

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

// Strict mode (RSMALLOC_HARDEN=1). Small blocks end in an 8-byte canary
// that malloc_usable_size does not count; a freed small block is filled
// with kFreeFill (its second word keeps the free mark) and waits in the
// quarantine (vg::g_quarantine, shared with valgrind's) before reuse, and
// leaves it only if the fill is intact. The inline fast path is off, so
// every call comes through here.

/// Bytes at the end of a small block that hold its canary in strict mode.
constexpr size_t kCanaryBytes = 8;

/// What a freed block holds in strict mode.
constexpr unsigned char kFreeFill = 0xdf;

/// A small block's canary: its address mixed with the free mark.
uintptr_t canary_of(const void* p) {
  return (addr(p) * 0x9e3779b97f4a7c15u) ^ g_free_mark;
}

uintptr_t* canary_word(void* p, size_t cls) {
  return ptr_at<uintptr_t>(addr(p) + class_size(cls) - kCanaryBytes);
}

/// The bytes of a block of class cls that are the program's (what
/// malloc_usable_size says and misuse reports name).
size_t block_bytes(size_t cls) {
  return class_size(cls) - (RS_UNLIKELY(g_harden) ? kCanaryBytes : 0);
}

/// Whether a request of n bytes is served from a size class, and the
/// bytes it takes there: n, and in strict mode its canary too.
bool small_request(size_t n, size_t* need) {
  *need = RS_UNLIKELY(g_harden) ? n + kCanaryBytes : n;
  return *need <= kMaxSmallSize && *need >= n;
}

/// Strict mode: writes the canary of a new block p (small blocks only).
void* with_canary(void* p) {
  if (RS_UNLIKELY(g_harden) && p != nullptr) {
    size_t cls = g_page_map.class_of(p);
    if (cls != 0)
      *canary_word(p, cls) = canary_of(p);
  }
  return p;
}

/// An object of class cls, from the cache or its slow path, its free mark
/// cleared (under valgrind vg_new clears it: memcheck still sees the
/// block as freed here).
void* allocate_class(size_t cls) {
  void* p = g_cpu_cache.pop_cached(cls);
  if (p == nullptr)
    p = g_cpu_cache.pop_slow(cls);
  if (p == nullptr)
    return fail_enomem();
  if (kFreeChecks && !g_valgrind)
    *mark_word(p) = 0;
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

/// malloc after start-up, without valgrind annotations.
void* raw_allocate(size_t n) {
  if (RS_UNLIKELY(g_disabled))
    return __libc_malloc(n);
  size_t need;
  if (small_request(n, &need))
    return with_canary(allocate_class(size_class_of(need)));
  bool zeroed;
  return allocate_large(n, kMinAlign, &zeroed);
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

/// The span of a large allocation starting at p; aborts naming `what` when
/// p is inside our memory but not such a start. nullptr for foreign p.
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

/// Usable bytes of our block p (small or large).
size_t raw_usable_size(size_t cls, const Span* span) {
  return cls != 0 ? class_size(cls) : large_usable_size(span);
}

/// Under valgrind: tells memcheck about a new block of n requested bytes.
void* vg_new(void* p, size_t n, bool zeroed) {
  if (p == nullptr || g_disabled)
    return p;  // glibc's blocks are memcheck's own business
  size_t cls = g_page_map.class_of(p);
  size_t usable =
      raw_usable_size(cls, cls != 0 ? nullptr : g_page_map.span_of(p));
  if (kFreeChecks && cls != 0) {
    // Clear the free mark while the block is still ours; malloclike then
    // gives every byte its state (past n: unaddressable).
    vg::make_undefined(mark_word(p), sizeof(uintptr_t));
    *mark_word(p) = 0;
  }
  vg::g_sizes.put(p, n);
  vg::malloclike(p, n, usable, zeroed);
  return p;
}

/// Under valgrind: the block p (ours) is being freed. False when memcheck
/// did not know it as a live block (a double or invalid free, which it has
/// just reported): it must not be freed again.
bool vg_free(void* p) {
  bool live = vg::g_sizes.erase(p);
  vg::freelike(p);
  return live;
}

/// Frees p (ours; under valgrind already told to memcheck) for reuse.
void raw_free(void* p) {
  size_t cls = g_page_map.class_of(p);
  if (cls != 0) {
    g_cpu_cache.push_slow(cls, p);
  } else {
    large_free(g_page_map.span_of(p), p);
  }
}

/// Frees up to 32 of the oldest quarantined blocks (all of them when
/// `all`, else those beyond its budget); returns how many.
size_t vg_drain_quarantine(bool all) {
  void* out[32];
  size_t n = vg::g_quarantine.take(out, 32, all);
  for (size_t i = 0; i < n; i++)
    raw_free(out[i]);
  return n;
}

/// Under valgrind: frees p after its time in the quarantine.
void vg_release(void* p) {
  size_t cls = g_page_map.class_of(p);
  Span* span = cls != 0 ? nullptr : g_page_map.span_of(p);
  if (!vg::g_quarantine.put(p, raw_usable_size(cls, span),
                            static_cast<uint8_t>(cls)))
    raw_free(p);
  while (vg_drain_quarantine(false) > 0) {
  }
}

/// realloc under valgrind: in place only within the same small object,
/// told to memcheck; otherwise a new block, a copy of what memcheck
/// considers defined, and a free.
void* vg_reallocate(void* p, size_t n) {
  size_t cls = g_page_map.class_of(p);
  Span* span = cls != 0 ? nullptr : large_span(p, "realloc");
  if (cls == 0 && span == nullptr)
    return __libc_realloc(p, n);
  size_t usable = raw_usable_size(cls, span);
  size_t old_n = vg::g_sizes.get(p, usable);
  if (cls != 0 && n <= usable && n >= usable / 2) {
    vg::resize_in_place(p, old_n, n);
    vg::g_sizes.put(p, n);
    return p;
  }
  void* q = vg_new(raw_allocate(n), n, false);
  if (q == nullptr)
    return nullptr;
  memcpy(q, p, n < old_n ? n : old_n);
  if (vg_free(p))
    vg_release(p);
  return q;
}

/// Whether p, a small block of class cls that carries the free mark, is
/// free: in some CPU cache, in its class's transfer cache, or free in its
/// span. Aborts naming `what` when p is not the start of a block at all.
/// Slow: it scans every CPU's slots of the class and the transfer cache
/// and walks the span's free list; it runs only when the mark is found.
/// An object that is moving between those just then can be missed: the
/// free then goes ahead.
bool small_block_is_free(void* p, size_t cls, const char* what) {
  if (g_cpu_cache.holds(cls, p) || g_transfer[cls].holds(p))
    return true;
  if (RS_UNLIKELY(g_harden) && vg::g_quarantine.holds(p))
    return true;
  BlockState state = g_central[cls].block_state(p);
  if (state == BlockState::kNotABlock)
    fatal_pointer(what, p);
  return state == BlockState::kFree || g_transfer[cls].holds(p) ||
         g_cpu_cache.holds(cls, p);
}

/// Whether p starts one of the slots of span, a small span of class cls
/// (0: none), the tail past its last slot excluded.
bool starts_slot(const Span* span, const void* p, size_t cls) {
  if (cls == 0)
    return false;
  uintptr_t off = addr(p) - span->start();
  size_t index = class_divide(cls, off);
  return index * class_size(cls) == off && index < class_info(cls).objects;
}

/// For realloc and malloc_usable_size of a small block: aborts naming
/// `what` when p is not the start of an object, or is free already.
void check_small_block(void* p, size_t cls, const char* what) {
  Span* span = g_page_map.span_of(p);
  if (span == nullptr)
    fatal_pointer(what, p);  // a class but no span: the map is corrupted
  uintptr_t off = addr(p) - span->start();
  if (class_divide(cls, off) * class_size(cls) != off)
    fatal_pointer(what, p);
  bool freed = false;
  if (__atomic_load_n(&span->released_mask, __ATOMIC_RELAXED) != 0)
    freed = g_central[cls].released_state(p) == BlockState::kFree;
  if (!freed && kFreeChecks && *mark_word(p) == g_free_mark)
    freed = small_block_is_free(p, cls, what);
  if (freed)
    fatal_block(what, "freed block", p, block_bytes(cls));
}

/// Frees our small object p of class cls (not under valgrind).
void free_small(void* p, size_t cls) {
  if (RS_UNLIKELY(g_perturb != 0))
    perturb_free(p, class_size(cls));
  if constexpr (kFreeChecks)
    *mark_word(p) = g_free_mark;
  if (!g_cpu_cache.push_cached(cls, p))
    g_cpu_cache.push_slow(cls, p);
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

/// Strict mode: frees up to 32 of the oldest quarantined blocks (all when
/// `all`, else those beyond its budget) after checking that their fill is
/// intact; `what` names the call that finds a write after free. Returns
/// how many.
size_t strict_drain_quarantine(bool all, const char* what) {
  void* out[32];
  size_t n = vg::g_quarantine.take(out, 32, all);
  for (size_t i = 0; i < n; i++) {
    void* q = out[i];
    size_t cls = g_page_map.class_of(q);
    // Word by word; word 1 holds the free mark.
    const uint64_t* w = static_cast<const uint64_t*>(q);
    constexpr uint64_t kFillWord = 0x0101010101010101u * kFreeFill;
    for (size_t k = 0; k < class_size(cls) / sizeof(uint64_t); k++) {
      if (w[k] != kFillWord && k != 1)
        fatal_block(what, "write after free to", q,
                    class_size(cls) - kCanaryBytes);
    }
    free_small(q, cls);
  }
  return n;
}

/// Strict mode's free of a small block: the canary checked, the block
/// filled, marked and quarantined; the oldest quarantined blocks leave.
void strict_free(void* p, size_t cls, const char* what) {
  size_t size = class_size(cls);
  if (*canary_word(p, cls) != canary_of(p))
    fatal_block(what, "overflow past the end of", p, size - kCanaryBytes);
  memset(p, kFreeFill, size);
  *mark_word(p) = g_free_mark;
  while (!vg::g_quarantine.put(p, size, static_cast<uint8_t>(cls))) {
    if (strict_drain_quarantine(false, what) == 0) {
      free_small(p, cls);  // no room for its record: no quarantine for it
      return;
    }
  }
  while (strict_drain_quarantine(false, what) > 0) {
  }
}

/// Strict mode, where every free comes through deallocate_slow: whether p
/// is the start of a slot of class cls that has been handed out, in a span
/// with no page returned to the OS, read without the class lock (bump and
/// released_mask are read racily: a stale bump is lower, and a page is
/// released only when every block on it is free). False sends the free
/// to the locked check.
bool strict_slot(const Span* span, const void* p, size_t cls) {
  return starts_slot(span, p, cls) &&
         addr(p) < __atomic_load_n(&span->bump, __ATOMIC_RELAXED) &&
         __atomic_load_n(&span->released_mask, __ATOMIC_RELAXED) == 0;
}

/// A small block the slow path has looked at: the mark check, then a
/// free (never the inline path again, which would send it back here).
void deallocate_small_checked(void* p, size_t cls, const char* what) {
  if (kFreeChecks && RS_UNLIKELY(*mark_word(p) == g_free_mark)) {
    free_marked(p, cls, what);
    return;
  }
  if (RS_UNLIKELY(g_harden)) {
    strict_free(p, cls, what);
    return;
  }
  free_small(p, cls);
}

}  // namespace

void set_harden(bool on) {
  if (g_valgrind || g_disabled)
    on = false;  // memcheck's checks, or glibc's, apply
  g_harden = on;
  set_fast_free_checks(!on);  // strict: sized frees reach deallocate_slow
  g_cpu_cache.set_fast_path(!on && g_perturb == 0);
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

void free_marked(void* p, size_t cls, const char* what) {
  if (small_block_is_free(p, cls, what))
    fatal_block(what, "double free of", p, block_bytes(cls));
  free_small(p, cls);  // in use: its second word held the mark by chance
}

void wrong_size(void* p, size_t n, const char* what) {
  size_t cls = g_page_map.class_of(p);
  size_t usable = cls != 0 ? block_bytes(cls) : usable_size(p);
  char problem[64];
  Log text(problem, sizeof(problem));
  text.str("size ").dec(n).str(" given for");
  text.terminate();
  fatal_block(what, problem, p, usable);
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
  if (span->state == SpanState::kFree)
    fatal_block(what, "double free of", p, 0);  // its span went back too
  free_large(span, p);
}

void deallocate_sized_slow(void* p, size_t n, const char* what) {
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
  size_t cls = g_page_map.class_of(p);
  size_t old_size;
  Span* span = nullptr;
  if (cls != 0) {
    check_small_block(p, cls, "realloc");
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
  void* q = allocate(n);
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
  size_t cls = g_page_map.class_of(p);
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
    check_small_block(const_cast<void*>(p), cls, "malloc_usable_size");
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
