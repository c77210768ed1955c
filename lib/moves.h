// SPDX-License-Identifier: MIT
// Base layer: the batches of free blocks on the move. A CPU cache's refill
// or drain, a transfer cache's flush and strict mode's quarantine drain
// hold free blocks in an array of their own for a moment, where no search
// finds them; each such move is counted here, per size class, so that the
// double-free confirmation (allocator_check.cc) can tell a block that is
// nowhere from one that was on the move while it looked. Depends on base
// only: the rseq layer counts its moves too.
#ifndef RS_MOVES_H_
#define RS_MOVES_H_

#include "base.h"

namespace rs {

/// Size classes the counts cover (rseq::kMaxClasses, at least kNumClasses).
inline constexpr size_t kMoveClasses = 128;

/// The moves of one size class. Each move adds one to `started` before it
/// takes its first block out of where free blocks live, and one to
/// `finished` after it has put its last block somewhere (or handed it out);
/// started - finished moves are on their way. Both wrap (compared for
/// equality only). Its own cache line: movers of other classes never
/// touch it.
struct RS_CACHELINE_ALIGNED MoveCounts {
  uint32_t started;   // moves begun
  uint32_t finished;  // moves ended
  uint32_t waiters;   // confirmations that ask new moves to wait a little
};

extern MoveCounts g_moves[kMoveClasses];

/// Before a move of class cls takes its first block: once per batch, never
/// per object. Never waits: callable with any lock held.
inline void move_begin(size_t cls) {
  __atomic_fetch_add(&g_moves[cls].started, 1u, __ATOMIC_SEQ_CST);
}

/// After the move has put its last block somewhere.
inline void move_end(size_t cls) {
  __atomic_fetch_add(&g_moves[cls].finished, 1u, __ATOMIC_SEQ_CST);
}

/// Before a move that holds no lock and is not nested in another move:
/// while a double-free confirmation of class cls waits for a moment with
/// no move of the class, gives it that moment (a few scheduler yields at
/// most; never blocks). One load of a line move_begin writes next.
void move_yield_to_waiters(size_t cls);

/// Holds a move of class cls open: begins it (after move_yield_to_waiters
/// when `polite`), ends it when it leaves scope.
class MoveScope {
 public:
  MoveScope(size_t cls, bool polite) : cls_(cls) {
    if (polite)
      move_yield_to_waiters(cls);
    move_begin(cls);
  }

  ~MoveScope() { move_end(cls_); }

  MoveScope(const MoveScope&) = delete;
  MoveScope& operator=(const MoveScope&) = delete;

 private:
  size_t cls_;  // the class moving
};

/// Fork child: moves of the parent's other threads will never end there
/// (their blocks are lost with them); every class starts with none.
void moves_after_fork_child();

}  // namespace rs

/// The injection point inside each move's window (the inject build only,
/// RS_RSEQ_INJECT): when set, a CPU cache refill or drain calls it with the
/// class and the blocks it holds in flight, so that a test can park the
/// mover there. Compiled out of every other build.
#ifdef RS_RSEQ_INJECT
extern "C" void (*volatile rs_inject_moving)(size_t cls,
                                             void* const* objs,
                                             size_t n);
#  define RS_INJECT_MOVING(cls, objs, n)      \
    do {                                      \
      if (rs_inject_moving != nullptr)        \
        rs_inject_moving((cls), (objs), (n)); \
    } while (0)
#else
#  define RS_INJECT_MOVING(cls, objs, n) \
    do {                                 \
    } while (0)
#endif

#endif  // RS_MOVES_H_
