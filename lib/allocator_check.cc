// SPDX-License-Identifier: MIT
// Facade: free's confirmations of misuse on the slow paths: whether a
// block that carries the free mark is really free (a double free), whether
// realloc's or malloc_usable_size's pointer is a live block, and the
// report of a sized free whose size is wrong.
#include <stdint.h>

#include "allocator_internal.h"
#include "central_list.h"
#include "log.h"
#include "moves.h"
#include "os.h"
#include "page_map.h"
#include "transfer_cache.h"
#include "valgrind.h"

namespace rs {

namespace {

/// One look for p, a small block of class cls, everywhere free blocks live:
/// every CPU cache, the class's transfer cache, strict mode's quarantine,
/// its span's free list, and the first two again (a block may leave the
/// central list for a cache while we look). Aborts naming `what` when p is
/// not the start of a block at all.
bool found_free(void* p, size_t cls, const char* what) {
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

static_assert(kNumClasses <= kMoveClasses, "every class needs its counts");

/// How long a confirmation waits for a moment with no move of its class
/// before it lets the free go ahead: only a move that never ends (this
/// thread's own, when a signal handler frees in the middle of one) or
/// moves without a pause for this long get there.
constexpr uint64_t kConfirmWaitMs = 1000;

/// Whether p, a small block of class cls that carries the free mark, is
/// free. Exact: a look that finds p nowhere counts only when no move of
/// the class (nor of strict mode's quarantine, counted as class 0) was on
/// its way when it began and none began before it ended (moves.h), for a
/// block on the move is in no place the look can see. Otherwise it asks
/// new moves to wait a little (g_move_waiters), yields and looks
/// again. Slow: it scans every CPU's slots of the class and the transfer
/// cache and walks the span's free list; it runs only when the mark is
/// found.
bool small_block_is_free(void* p, size_t cls, const char* what) {
  uint32_t moves[kMoveSlots];
  uint32_t quarantine[kMoveSlots];
  bool asked = false;
  uint64_t deadline = 0;
  bool is_free = false;
  for (;;) {
    bool quiet = moves_quiet_snapshot(cls, moves);
    quiet = moves_quiet_snapshot(0, quarantine) && quiet;
    is_free = found_free(p, cls, what);
    if (is_free)
      break;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (quiet && moves_unchanged(cls, moves) && moves_unchanged(0, quarantine))
      break;  // no block was on the move: p is in use
    if (!asked) {
      __atomic_fetch_add(&g_move_waiters[cls], 1u, __ATOMIC_SEQ_CST);
      asked = true;
      os::start_clock();  // held, it would never reach the deadline
      deadline = os::now_ms() + kConfirmWaitMs;
    } else if (os::now_ms() > deadline) {
      break;  // best effort, as before moves were counted
    }
    os::yield();
  }
  if (asked)
    __atomic_fetch_sub(&g_move_waiters[cls], 1u, __ATOMIC_SEQ_CST);
  return is_free;
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
