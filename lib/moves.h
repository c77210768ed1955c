// SPDX-License-Identifier: MIT
// Base layer: the batches of free blocks on the move. A CPU cache's refill
// or drain, a transfer cache's flush and strict mode's quarantine drain
// hold free blocks in an array of their own for a moment, where no search
// finds them; each such move is counted here, per size class and thread
// slot, so that the double-free confirmation (allocator_check.cc) can tell
// a block that is nowhere from one that was on the move while it looked.
// Depends on base only: the rseq layer counts its moves too.
#ifndef RS_MOVES_H_
#define RS_MOVES_H_

#include "base.h"

namespace rs {

/// Size classes the counts cover (rseq::kMaxClasses, at least kNumClasses).
inline constexpr size_t kMoveClasses = 128;

/// Movers count in one of this many slots, chosen by thread (a power of
/// two). A slot is a thread's own in practice, so counting a move writes a
/// cache line no other CPU writes: one shared line per class cost
/// xthread-64 about 7% (its refills and drains bounced the line between
/// the producer's and the consumer's CPUs).
inline constexpr size_t kMoveSlots = 64;

/// The moves of one size class counted in one slot. Each move adds one to
/// `started` before it takes its first block out of where free blocks
/// live, and one to `finished` of the same slot after it has put its last
/// block somewhere (or handed it out); started - finished moves are on
/// their way. Both wrap (compared for equality only).
struct MoveCount {
  uint32_t started;   // moves begun
  uint32_t finished;  // moves ended
};

/// One slot: every class's counts (1 KiB).
struct RS_CACHELINE_ALIGNED MoveSlot {
  MoveCount cls[kMoveClasses];
};

extern MoveSlot g_move_slots[kMoveSlots];

/// Bit s: some thread has begun a move in slot s. A forked child resets
/// only those slots' counts (moves_after_fork_child), so that it neither
/// writes nor reads the pages of slots never used: every page of the 64 KiB
/// it touched cost the child a page fault (a copy, or a zero page).
extern uint64_t g_move_slots_used;

/// Per class: confirmations that ask new moves to wait a little. Written
/// only by confirmations (rare), read by movers.
extern uint32_t g_move_waiters[kMoveClasses];

/// The calling thread's slot.
size_t move_slot();

/// Before a move of class cls takes its first block: once per batch, never
/// per object. Never waits: callable with any lock held. Returns the slot
/// to give move_end.
inline size_t move_begin(size_t cls) {
  size_t slot = move_slot();
  uint64_t bit = uint64_t{1} << slot;
  // Once per slot and process. The count's seq_cst add below orders the
  // bit before it: a child never sees a count its bit does not cover.
  if (RS_UNLIKELY(
          (__atomic_load_n(&g_move_slots_used, __ATOMIC_RELAXED) & bit) == 0))
    __atomic_fetch_or(&g_move_slots_used, bit, __ATOMIC_RELAXED);
  __atomic_fetch_add(&g_move_slots[slot].cls[cls].started, 1u,
                     __ATOMIC_SEQ_CST);
  return slot;
}

/// After the move has put its last block somewhere.
inline void move_end(size_t cls, size_t slot) {
  __atomic_fetch_add(&g_move_slots[slot].cls[cls].finished, 1u,
                     __ATOMIC_SEQ_CST);
}

/// Moves of class cls begun so far, over every slot (tests).
uint32_t moves_started(size_t cls);

/// The confirmation's side (allocator_check.cc), a seqlock reader over the
/// slots: quiet_snapshot reads each slot's finished, then started, into
/// `started`, and is true when no move of class cls was on its way;
/// moves_unchanged, after the look (and a full fence), is true when none
/// began since. A block on the move while the look ran is then in no
/// move: the look saw every free block.
bool moves_quiet_snapshot(size_t cls, uint32_t* started);
bool moves_unchanged(size_t cls, const uint32_t* started);

/// Before a move that holds no lock and is not nested in another move:
/// while a double-free confirmation of class cls waits for a moment with
/// no move of the class, gives it that moment (a few scheduler yields at
/// most; never blocks). One load of a line that only confirmations write.
void move_yield_to_waiters(size_t cls);

/// Holds a move of class cls open: begins it (after move_yield_to_waiters
/// when `polite`), ends it when it leaves scope.
class MoveScope {
 public:
  MoveScope(size_t cls, bool polite) : cls_(cls) {
    if (polite)
      move_yield_to_waiters(cls);
    slot_ = move_begin(cls);
  }

  ~MoveScope() { move_end(cls_, slot_); }

  MoveScope(const MoveScope&) = delete;
  MoveScope& operator=(const MoveScope&) = delete;

 private:
  size_t cls_;   // the class moving
  size_t slot_;  // where it was counted
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
