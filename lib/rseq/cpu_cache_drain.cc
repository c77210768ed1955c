// SPDX-License-Identifier: MIT
// rseq layer: emptying the per-CPU caches: a class or a whole CPU
// (malloc_trim, fork's child, restart), and the drain of CPUs that
// stayed idle.
#include "moves.h"
#include "os.h"
#include "rseq/cpu_cache.h"

namespace rs::rseq {

size_t CpuCache::take_all(size_t cpu, size_t cls, bool reset_capacity) {
  // Caller holds the CPU's lock and, in rseq mode, has stopped and fenced
  // the CPU: nothing else changes this header now.
  void* buf[kMaxBatch];
  Header* h = header(cpu, cls);
  size_t begin = begin_of(cpu, cls);
  size_t cur = h->current;
  size_t total = cur - begin;
  while (cur > begin) {
    MoveScope move(cls, false);  // locks held: never waits (moves.h)
    size_t n = 0;
    while (n < kMaxBatch && cur > begin)
      buf[n++] = slot(cpu, --cur);
    backend_.drain(cls, buf, static_cast<int>(n));
  }
  if (reset_capacity && at_home(cpu, cls)) {
    // Back to the starter slots, the compact layout: a class that grows
    // again moves home again (and so do drained caches under test).
    __atomic_fetch_and(&states_[cpu].at_home[cls / 64],
                       ~(uint64_t{1} << (cls % 64)), __ATOMIC_RELAXED);
    begin = starter_[cls];
  }
  Header fresh;
  fresh.current = static_cast<uint16_t>(begin);
  fresh.begin = static_cast<uint16_t>(begin);
  fresh.end = reset_capacity ? fresh.begin : h->end;
  fresh.max_end = static_cast<uint16_t>(max_end_of(cpu, cls));
  __atomic_store(h, &fresh, __ATOMIC_RELEASE);  // restart: one store
  return total;
}

size_t CpuCache::restart_cpu(size_t cpu) {
  // The CPU's lock is held and it is stopped, but unfenced: a section may
  // still commit, so keep every object where it is and give the headers
  // back with no free room (end = current); slow paths grow them again.
  size_t bytes = 0;
  size_t big = 0;
  for (size_t cls = 1; cls < num_classes_; cls++) {
    Header* h = header(cpu, cls);
    Header fresh;
    fresh.current = __atomic_load_n(&h->current, __ATOMIC_RELAXED);
    fresh.begin = static_cast<uint16_t>(begin_of(cpu, cls));
    fresh.end = fresh.current;
    fresh.max_end = static_cast<uint16_t>(max_end_of(cpu, cls));
    __atomic_store(h, &fresh, __ATOMIC_RELEASE);
    size_t held =
        static_cast<size_t>(fresh.current - fresh.begin) * limits_[cls].size;
    bytes += held;
    if (big_class(cls))
      big += held;
  }
  states_[cpu].capacity_bytes = bytes;
  states_[cpu].big_bytes = big;
  return 0;
}

size_t CpuCache::drain_cpu(size_t cpu) {
  size_t drained = 0;
  for (size_t cls = 1; cls < num_classes_; cls++)
    drained += take_all(cpu, cls, true);
  states_[cpu].capacity_bytes = 0;
  states_[cpu].big_bytes = 0;
  return drained;
}

void CpuCache::note_activity(size_t cpu) {
  uint64_t now = os::now_ms();
  __atomic_store_n(&states_[cpu].last_active_ms, now, __ATOMIC_RELAXED);
  maybe_drain_idle(now);
}

bool CpuCache::selected(size_t cpu, uint64_t now, uint64_t idle_ms) const {
  const CpuState& st = states_[cpu];
  if (!st.initialised || st.capacity_bytes == 0)
    return false;  // never used, or already drained
  if (idle_ms == 0)
    return true;
  // Written by other threads without the lock: a time after `now` means
  // the CPU is busy right now.
  uint64_t last = __atomic_load_n(&st.last_active_ms, __ATOMIC_RELAXED);
  return last <= now && now - last >= idle_ms;
}

size_t CpuCache::drain(uint64_t idle_ms) {
  if (mode() == Mode::kNone)
    return 0;
  uint64_t now = os::now_ms();
  size_t drained = 0;
  if (mode_ == Mode::kLocked) {
    for (size_t cpu = 0; cpu < num_cpus_; cpu++) {
      LockGuard guard(states_[cpu].lock);
      if (selected(cpu, now, idle_ms))
        drained += drain_cpu(cpu);
    }
    return drained;
  }
  if (!fence_ok_)
    return 0;  // a fork child that could not re-register the fence
  // Stop the chosen CPUs, fence once, drain exactly those, and restart each
  // header with a single store. The locks keep slow paths from laying out
  // or growing a stopped header meanwhile. The choice is made once: the
  // activity times keep changing under us.
  static constexpr size_t kWordBits = 64;
  uint64_t chosen[kMaxCpus / kWordBits] = {};
  lock_all();
  bool any = false;
  for (size_t cpu = 0; cpu < num_cpus_; cpu++) {
    if (!selected(cpu, now, idle_ms))
      continue;
    chosen[cpu / kWordBits] |= uint64_t{1} << (cpu % kWordBits);
    any = true;
    for (size_t cls = 1; cls < num_classes_; cls++) {
      Header* h = header(cpu, cls);
      __atomic_store_n(&h->end, uint16_t{0}, __ATOMIC_RELAXED);
      __atomic_store_n(&h->begin, kStopped, __ATOMIC_RELAXED);
    }
  }
  // Every section running now restarts and then sees the stopped headers;
  // every section that committed before is visible to us. Without the
  // fence nothing may be taken: restart the headers as they were.
  bool fenced = any && fence();
  if (any && !fenced)
    fence_ok_ = false;
  for (size_t cpu = 0; cpu < num_cpus_; cpu++) {
    if ((chosen[cpu / kWordBits] >> (cpu % kWordBits) & 1) != 0)
      drained += fenced ? drain_cpu(cpu) : restart_cpu(cpu);
  }
  unlock_all();
  return drained;
}

void CpuCache::maybe_drain_idle(uint64_t now) {
  if (idle_ms_ == 0 ||
      now < __atomic_load_n(&next_idle_check_ms_, __ATOMIC_RELAXED))
    return;
  __atomic_store_n(&next_idle_check_ms_, now + idle_ms_, __ATOMIC_RELAXED);
  drain(idle_ms_);
}

}  // namespace rs::rseq
