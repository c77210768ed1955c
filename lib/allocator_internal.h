// SPDX-License-Identifier: MIT
// Facade: what the facade's slow paths share among allocator.cc (the
// paths themselves and M_PERTURB), allocator_strict.cc (strict mode),
// allocator_valgrind.cc (memcheck's paths) and allocator_check.cc (free's
// confirmations). Not for lib/abi/, which goes through allocator.h.
#ifndef RS_ALLOCATOR_INTERNAL_H_
#define RS_ALLOCATOR_INTERNAL_H_

#include "allocator.h"
#include "init.h"
#include "large.h"
#include "span.h"

namespace rs {

// allocator.cc

/// mallopt(M_PERTURB) or MALLOC_PERTURB_: 0 off; else new blocks are filled
/// with the complement of its low byte and freed ones with the byte, as
/// glibc does (calloc excepted). While it is on, the CPU caches' inline
/// fast path is off, so every malloc and free comes through the slow paths.
extern int g_perturb;

/// malloc after start-up, without valgrind annotations.
void* raw_allocate(size_t n);

/// Usable bytes of our block p (small of class cls, else large of span).
inline size_t raw_usable_size(size_t cls, const Span* span) {
  return cls != 0 ? class_size(cls) : large_usable_size(span);
}

/// The span of a large allocation starting at p; aborts naming `what` when
/// p is inside our memory but not such a start. nullptr for foreign p.
Span* large_span(const void* p, const char* what);

/// Frees our small object p of class cls (not under valgrind): M_PERTURB's
/// fill, the free mark, the push.
void free_small(void* p, size_t cls);

// allocator_strict.cc: strict mode (RSMALLOC_HARDEN=1). Small blocks end in
// an 8-byte canary that malloc_usable_size does not count; a freed small
// block is filled and waits in the quarantine before reuse.

/// Bytes at the end of a small block that hold its canary in strict mode.
inline constexpr size_t kCanaryBytes = 8;

/// The bytes of a block of class cls that are the program's (what
/// malloc_usable_size says and misuse reports name).
inline size_t block_bytes(size_t cls) {
  return class_size(cls) - (RS_UNLIKELY(g_harden) ? kCanaryBytes : 0);
}

/// Whether a request of n bytes is served from a size class, and the
/// bytes it takes there: n, and in strict mode its canary too.
inline bool small_request(size_t n, size_t* need) {
  *need = RS_UNLIKELY(g_harden) ? n + kCanaryBytes : n;
  return *need <= kMaxSmallSize && *need >= n;
}

/// Strict mode: writes the canary of a new block p (small blocks only).
void* with_canary(void* p);

/// Strict mode's free of a small block: the canary checked, the block
/// filled, marked and quarantined; the oldest quarantined blocks leave.
void strict_free(void* p, size_t cls, const char* what);

/// Strict mode: frees up to 32 of the oldest quarantined blocks (all when
/// `all`, else those beyond its budget) after checking that their fill is
/// intact; `what` names the call that finds a write after free. Returns
/// how many.
size_t strict_drain_quarantine(bool all, const char* what);

/// Strict mode, where every free comes through deallocate_slow: whether p
/// is the start of a slot of class cls that has been handed out, in a span
/// with no page returned to the OS, read without the class lock. False
/// sends the free to the locked check.
bool strict_slot(const Span* span, const void* p, size_t cls);

// allocator_valgrind.cc: the paths under valgrind, where every call comes
// through the slow paths and memcheck is told about each block.

/// Tells memcheck about a new block p of n requested bytes; returns p.
void* vg_new(void* p, size_t n, bool zeroed);

/// The block p (ours) is being freed. False when memcheck did not know it
/// as a live block (a double or invalid free, which it has just reported):
/// it must not be freed again.
bool vg_free(void* p);

/// Frees p after its time in the quarantine.
void vg_release(void* p);

/// Frees up to 32 of the oldest quarantined blocks (all of them when
/// `all`, else those beyond its budget); returns how many.
size_t vg_drain_quarantine(bool all);

/// realloc of our or glibc's block p.
void* vg_reallocate(void* p, size_t n);

// allocator_check.cc: free's confirmations of misuse.

/// Whether p starts one of the slots of span, a small span of class cls
/// (0: none), the tail past its last slot excluded.
bool starts_slot(const Span* span, const void* p, size_t cls);

/// For realloc and malloc_usable_size of a small block: aborts naming
/// `what` when p is not the start of an object, or is free already.
void check_small_block(void* p, size_t cls, const char* what);

/// check_small_block's verdict without reading p's span descriptor (a
/// cache miss: bench/run's realloc spent 8% of its time there) where free's
/// checks can give it: the page map's slot check, on the line class_at read
/// (entry), and the free mark. A page whose check is on holds no released
/// unit and no uncarved slot without the mark, so there a start of a slot
/// whose second word is not the mark is a live block, as free's full path
/// takes it (a page whose check is off has a check word of 0, which
/// starts_slot never passes). Otherwise (strict mode, --disable-checks,
/// the mark found) check_small_block decides.
inline void check_live_block(void* p,
                             size_t cls,
                             const PageMap::Entry& entry,
                             const char* what) {
  if (kFreeChecks && RS_LIKELY(!g_harden) &&
      PageMap::starts_slot(p, entry, cls) && *mark_word(p) != g_free_mark)
    return;
  check_small_block(p, cls, what);
}

/// A small block the slow path has looked at: the mark check, then a
/// free (never the inline path again, which would send it back here).
void deallocate_small_checked(void* p, size_t cls, const char* what);

}  // namespace rs

#endif  // RS_ALLOCATOR_INTERNAL_H_
