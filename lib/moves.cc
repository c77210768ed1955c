// SPDX-License-Identifier: MIT
// Base layer: the counts of free blocks on the move (moves.h).
#include "moves.h"

#include "os.h"

#ifdef RS_RSEQ_INJECT
extern "C" {
void (*volatile rs_inject_moving)(size_t, void* const*, size_t);
}
#endif

namespace rs {

MoveSlot g_move_slots[kMoveSlots];
uint64_t g_move_slots_used;
uint32_t g_move_waiters[kMoveClasses];

namespace {

/// Yields a move gives a waiting confirmation at most: enough for its
/// search to run in a quiet moment, short enough that a move nested in
/// one the confirmation waits for (a flush inside a refill) only delays.
constexpr int kPoliteYields = 64;

}  // namespace

size_t move_slot() {
  // The thread pointer (glibc's pthread_self() on x86-64): distinct per
  // live thread, a register read, and no libc symbol to look up at load.
  // The multiply spreads its bits; the top ones pick the slot.
  uint64_t self = reinterpret_cast<uintptr_t>(__builtin_thread_pointer());
  return static_cast<size_t>((self * 0x9e3779b97f4a7c15u) >> 58) &
         (kMoveSlots - 1);
}

uint32_t moves_started(size_t cls) {
  uint32_t sum = 0;
  for (size_t s = 0; s < kMoveSlots; s++)
    sum += __atomic_load_n(&g_move_slots[s].cls[cls].started, __ATOMIC_SEQ_CST);
  return sum;
}

bool moves_quiet_snapshot(size_t cls, uint32_t* started) {
  bool quiet = true;
  for (size_t s = 0; s < kMoveSlots; s++) {
    // finished before started: started - finished then counts at least
    // every move of this slot on its way when started was read.
    const MoveCount& m = g_move_slots[s].cls[cls];
    uint32_t finished = __atomic_load_n(&m.finished, __ATOMIC_SEQ_CST);
    started[s] = __atomic_load_n(&m.started, __ATOMIC_SEQ_CST);
    quiet = quiet && started[s] == finished;
  }
  return quiet;
}

bool moves_unchanged(size_t cls, const uint32_t* started) {
  for (size_t s = 0; s < kMoveSlots; s++) {
    if (__atomic_load_n(&g_move_slots[s].cls[cls].started, __ATOMIC_SEQ_CST) !=
        started[s])
      return false;
  }
  return true;
}

void move_yield_to_waiters(size_t cls) {
  for (int i = 0; i < kPoliteYields; i++) {
    if (RS_LIKELY(__atomic_load_n(&g_move_waiters[cls], __ATOMIC_RELAXED) == 0))
      return;
    os::yield();
  }
}

void moves_after_fork_child() {
  uint64_t used = __atomic_load_n(&g_move_slots_used, __ATOMIC_RELAXED);
  for (size_t s = 0; s < kMoveSlots; s++) {
    if ((used & (uint64_t{1} << s)) == 0)
      continue;
    for (size_t c = 0; c < kMoveClasses; c++) {
      // A store only where a move was on its way: the child's copy of a
      // page stays shared with the parent's.
      MoveCount& m = g_move_slots[s].cls[c];
      uint32_t started = __atomic_load_n(&m.started, __ATOMIC_RELAXED);
      if (__atomic_load_n(&m.finished, __ATOMIC_RELAXED) != started)
        __atomic_store_n(&m.finished, started, __ATOMIC_RELAXED);
    }
  }
  for (size_t c = 0; c < kMoveClasses; c++) {
    if (__atomic_load_n(&g_move_waiters[c], __ATOMIC_RELAXED) != 0)
      __atomic_store_n(&g_move_waiters[c], 0u, __ATOMIC_RELAXED);
  }
}

}  // namespace rs
