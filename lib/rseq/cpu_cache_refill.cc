// SPDX-License-Identifier: MIT
// rseq layer: the per-CPU caches' slow paths: a class's room (its
// capacity, the move from its starter slots to its home slots), and
// the refills and drains of one class on a miss, rseq or locked.
#include <string.h>

#include "moves.h"
#include "rseq/cpu_cache.h"

namespace rs::rseq {

bool CpuCache::grow(size_t cpu, size_t cls, bool underflow) {
  Header* h = header(cpu, cls);
  const ClassLimits& lim = limits_[cls];
  CpuState& st = states_[cpu];
  size_t have = __atomic_load_n(&h->end, __ATOMIC_RELAXED) - h->begin;
  // Past one batch, a full class grows only if it also ran empty since it
  // last grew that way: a CPU that only frees objects of a class (the
  // consumer of a pipeline) would otherwise fill its cache with them up to
  // the budget, memory that nothing on this CPU allocates again. One
  // batch of room is what its drains need to go out whole.
  if (underflow) {
    st.underflowed[cls] = 1;
  } else if (have >= lim.batch) {
    if (st.underflowed[cls] == 0)
      return false;
    st.underflowed[cls] = 0;
  }
  // Slow start: one slot first, then doubling, at most a batch a step. A
  // refill brings the room there is and one object for the caller, and
  // each object it brings gets the free mark, which touches its page: a
  // class that a CPU uses for one object at a time (temporaries of one
  // size) costs two objects there, not a batch of up to 16 KiB.
  size_t step = have > 0 ? have : 1;
  if (step > lim.batch)
    step = lim.batch;
  // Out of starter slots: home first (kStarterSlots).
  if (needs_home(cpu, cls, 1) && !move_home(cpu, cls))
    return false;
  return add_room(cpu, cls, step, true) != 0;
}

bool CpuCache::move_home(size_t cpu, size_t cls) {
  Header* h = header(cpu, cls);
  Header old;
  __atomic_load(h, &old, __ATOMIC_RELAXED);
  if (old.begin != starter_[cls] || old.current < old.begin ||
      old.end < old.current)
    return false;  // stopped, or not laid out yet
  uint16_t home = begin_[cls];
  Header next;
  next.begin = home;
  next.current = static_cast<uint16_t>(home + (old.current - old.begin));
  next.end = static_cast<uint16_t>(home + (old.end - old.begin));
  next.max_end = static_cast<uint16_t>(home + limits_[cls].max_capacity);
  static_assert(kStarterSlots == 4, "rseq::relocate copies four slots");
  // The objects change slots: a search for one of them (the double-free
  // confirmation) must not conclude from not finding it (moves.h).
  MoveScope move(cls, false);  // the CPU's lock held: never waits
  if (mode_ == Mode::kRseq) {
    // A section on this CPU may use the header meanwhile: the copy and the
    // new header commit together, on this CPU only, or not at all.
    uint64_t expect, with;
    memcpy(&expect, &old, sizeof(expect));
    memcpy(&with, &next, sizeof(with));
    if (!rseq::relocate(where_, cpu, cls, expect, with, old.begin, home))
      return false;
  } else {
    // The locked caches: the lock is all there is.
    for (size_t i = 0; i < kStarterSlots; i++)
      slot(cpu, home + i) = slot(cpu, old.begin + i);
    __atomic_store(h, &next, __ATOMIC_RELEASE);
  }
  __atomic_fetch_or(&states_[cpu].at_home[cls / 64], uint64_t{1} << (cls % 64),
                    __ATOMIC_RELAXED);
  return true;
}

size_t CpuCache::add_line_room(size_t cpu, size_t cls, size_t n) {
  // The rest of a line must stay on this CPU (drained, it would go to
  // another): home first when the starter slots cannot take it.
  if (needs_home(cpu, cls, n))
    move_home(cpu, cls);
  return add_room(cpu, cls, n);
}

size_t CpuCache::add_room(size_t cpu, size_t cls, size_t n, bool first_step) {
  Header* h = header(cpu, cls);
  CpuState& st = states_[cpu];
  uint16_t end = __atomic_load_n(&h->end, __ATOMIC_RELAXED);
  if (end >= h->max_end)  // full, or stopped (max_end 0)
    return 0;
  size_t add = h->max_end - end;
  if (add > n)
    add = n;
  size_t bytes = add * limits_[cls].size;
  // A class's first step (grow's) is allowed over the budget, so that
  // every class can cache something, but only for objects of at most 1/64
  // of the budget (32 KiB by default): the classes above are few objects
  // each, and one of each of them alone is more than the budget.
  bool first_allowed =
      first_step && end == h->begin && bytes <= budget_bytes_ / 64;
  if (st.capacity_bytes + bytes > budget_bytes_ && !first_allowed)
    return 0;
  // Big objects share a part of the budget, so that the small classes,
  // many objects each, still get room once the big ones have theirs.
  bool big = big_class(cls);
  if (big && st.big_bytes + bytes > budget_bytes_ / kBigShare && !first_allowed)
    return 0;
  // Growing only adds room: a section that read the old end is still right.
  __atomic_store_n(&h->end, static_cast<uint16_t>(end + add), __ATOMIC_RELEASE);
  st.capacity_bytes += bytes;
  if (big)
    st.big_bytes += bytes;
  return add;
}

size_t CpuCache::push_batch(size_t cls, void* const* objs, size_t n) {
  if (n == 0)
    return 0;
  return rseq::push_batch(where_, cls, objs, n);
}

size_t CpuCache::pop_batch(size_t cls, void** out, size_t n) {
  return rseq::pop_batch(where_, cls, out, n);
}

void* CpuCache::pop_slow(size_t cls) {
  void* buf[kMaxBatch];
  Mode m = mode_or_start();
  if (m == Mode::kLocked)
    return pop_locked(cls);
  if (m == Mode::kNone || !thread_has_rseq()) {
    return backend_.refill(cls, buf, 1, 1) == 1 ? buf[0] : nullptr;
  }
  size_t cpu = current_cpu();
  ensure_region(cpu);
  note_activity(cpu);
  size_t want;
  {
    LockGuard guard(states_[cpu].lock);
    grow(cpu, cls, true);
    Header* h = header(cpu, cls);
    size_t end = __atomic_load_n(&h->end, __ATOMIC_RELAXED);
    size_t cur = __atomic_load_n(&h->current, __ATOMIC_RELAXED);
    // The room there is, and the caller's object. (Only the room, one
    // object fewer, touches no fewer pages here and made fastpath-1t 25%
    // slower in CPU time, pinned, for reasons not found.)
    want = (end > cur ? end - cur : 0) + 1;
  }
  if (want > limits_[cls].batch)
    want = limits_[cls].batch;
  // From the refill until the last block is pushed or drained back, the
  // batch is in buf only: a move (moves.h).
  MoveScope move(cls, true);
  int got = backend_.refill(cls, buf, static_cast<int>(want), kMaxBatch);
  if (got <= 0)
    return nullptr;
  if (static_cast<size_t>(got) > want) {
    // The rest of a cache line: room for it here, where the line's other
    // objects are (drained, they would go to another CPU).
    LockGuard guard(states_[cpu].lock);
    add_line_room(cpu, cls, static_cast<size_t>(got) - want);
  }
  size_t rest = static_cast<size_t>(got) - 1;
  RS_INJECT_MOVING(cls, buf + 1, rest);
  size_t pushed = push_batch(cls, buf + 1, rest);
  if (pushed < rest) {
    backend_.drain(cls, buf + 1 + pushed, static_cast<int>(rest - pushed));
  }
  return buf[0];
}

void CpuCache::push_slow(size_t cls, void* obj) {
  void* buf[kMaxBatch + 1];
  Mode m = mode_or_start();
  if (m == Mode::kLocked) {
    push_locked(cls, obj);
    return;
  }
  if (m == Mode::kNone || !thread_has_rseq()) {
    backend_.drain(cls, &obj, 1);
    return;
  }
  size_t cpu = current_cpu();
  ensure_region(cpu);
  note_activity(cpu);
  bool grew;
  {
    LockGuard guard(states_[cpu].lock);
    grew = grow(cpu, cls, false);
  }
  if (grew && rseq::push(where_, cls, obj))
    return;
  // Full: take a batch off this CPU's class and hand it back with obj, a
  // move (moves.h) until the backend has them all.
  MoveScope move(cls, true);
  size_t n = pop_batch(cls, buf, limits_[cls].batch);
  buf[n++] = obj;
  RS_INJECT_MOVING(cls, buf, n);
  backend_.drain(cls, buf, static_cast<int>(n));
}

void* CpuCache::pop_locked(size_t cls) {
  void* buf[kMaxBatch];
  size_t cpu = current_cpu();
  CpuState& st = states_[cpu];
  size_t want;
  {
    LockGuard guard(st.lock);
    if (!st.initialised)
      init_region(cpu);
    Header* h = header(cpu, cls);
    if (h->current > h->begin) {
      void* obj = slot(cpu, --h->current);
      slot(cpu, h->current) = nullptr;  // a leak checker must not see it here
      return obj;
    }
    grow(cpu, cls, true);
    want = static_cast<size_t>(h->end - h->current) + 1;
  }
  note_activity(cpu);  // a miss; no lock held: it may drain idle CPUs
  if (want > limits_[cls].batch)
    want = limits_[cls].batch;
  MoveScope move(cls, true);  // the batch is in buf only (moves.h)
  int got = backend_.refill(cls, buf, static_cast<int>(want), kMaxBatch);
  if (got <= 0)
    return nullptr;
  RS_INJECT_MOVING(cls, buf + 1, static_cast<size_t>(got - 1));
  int k = 1;
  {
    LockGuard guard(st.lock);
    Header* h = header(cpu, cls);
    if (static_cast<size_t>(got) > want)  // the rest of a line (pop_slow)
      add_line_room(cpu, cls, static_cast<size_t>(got) - want);
    while (k < got && h->current < h->end)
      slot(cpu, h->current++) = buf[k++];
  }
  if (k < got)
    backend_.drain(cls, buf + k, got - k);
  return buf[0];
}

void CpuCache::push_locked(size_t cls, void* obj) {
  void* buf[kMaxBatch + 1];
  size_t cpu = current_cpu();
  CpuState& st = states_[cpu];
  int n = 0;
  size_t move;  // the move's slot (moves.h)
  {
    LockGuard guard(st.lock);
    if (!st.initialised)
      init_region(cpu);
    Header* h = header(cpu, cls);
    if (h->current < h->end || (grow(cpu, cls, false) && h->current < h->end)) {
      slot(cpu, h->current++) = obj;
      return;
    }
    // A miss: the batch is in buf only until the backend has it (moves.h).
    // Begun under the lock, so it never waits.
    move = move_begin(cls);
    while (n < limits_[cls].batch && h->current > h->begin) {
      buf[n++] = slot(cpu, --h->current);
    }
  }
  note_activity(cpu);  // a miss; no lock held: it may drain idle CPUs
  buf[n++] = obj;
  RS_INJECT_MOVING(cls, buf, static_cast<size_t>(n));
  backend_.drain(cls, buf, n);
  move_end(cls, move);
}

}  // namespace rs::rseq
