// SPDX-License-Identifier: MIT
// Base layer: the counts of free blocks on the move (moves.h).
#include "moves.h"

#include <sched.h>

#ifdef RS_RSEQ_INJECT
extern "C" {
void (*volatile rs_inject_moving)(size_t, void* const*, size_t);
}
#endif

namespace rs {

MoveCounts g_moves[kMoveClasses];

namespace {

/// Yields a move gives a waiting confirmation at most: enough for its
/// search to run in a quiet moment, short enough that a move nested in
/// one the confirmation waits for (a flush inside a refill) only delays.
constexpr int kPoliteYields = 64;

}  // namespace

void move_yield_to_waiters(size_t cls) {
  for (int i = 0; i < kPoliteYields; i++) {
    if (RS_LIKELY(__atomic_load_n(&g_moves[cls].waiters, __ATOMIC_RELAXED) ==
                  0))
      return;
    sched_yield();
  }
}

void moves_after_fork_child() {
  for (size_t c = 0; c < kMoveClasses; c++) {
    MoveCounts& m = g_moves[c];
    __atomic_store_n(&m.finished, __atomic_load_n(&m.started, __ATOMIC_RELAXED),
                     __ATOMIC_RELAXED);
    __atomic_store_n(&m.waiters, 0u, __ATOMIC_RELAXED);
  }
}

}  // namespace rs
