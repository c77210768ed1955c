// SPDX-License-Identifier: MIT
// Facade: free's confirmations of misuse on the slow paths: whether a
// block that carries the free mark is really free (a double free), whether
// realloc's or malloc_usable_size's pointer is a live block, and the
// report of a sized free whose size is wrong.
#include <stdint.h>

#include "allocator_internal.h"
#include "central_list.h"
#include "log.h"
#include "page_map.h"
#include "transfer_cache.h"
#include "valgrind.h"

namespace rs {

namespace {

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

}  // namespace

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

}  // namespace rs
