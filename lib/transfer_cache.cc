// SPDX-License-Identifier: MIT
// Core layer: the transfer caches between the CPU caches and the central
// lists (transfer_cache.h).
#include "transfer_cache.h"

#include <string.h>

#include "central_list.h"
#include "moves.h"
#include "os.h"

namespace rs {

TransferCache g_transfer[kNumClasses];

namespace {

/// Objects a flush moves to the central list per hold of the lock.
constexpr int kFlushChunk = 64;

uint64_t g_next_idle_flush_ms;  // when the slow paths next look

size_t g_mapped_bytes;  // the arrays of every class

/// Misses remembered at most: growth follows recent misses only.
constexpr uint32_t kMaxMisses = 64;

}  // namespace

void TransferCache::init(uint8_t cls) {
  init(cls, transfer_limits(cls));
}

void TransferCache::init(uint8_t cls, TransferLimits limits) {
  // No lock: at start-up nothing else uses it yet (a few stores per class).
  size_t max =
      limits.max < kMaxTransferObjects ? limits.max : kMaxTransferObjects;
  size_t base = limits.base < max ? limits.base : max;
  if (slots_ != nullptr && max != max_) {
    __atomic_fetch_sub(&g_mapped_bytes, array_bytes(), __ATOMIC_RELAXED);
    os::unmap(slots_, array_bytes());
    slots_ = nullptr;
  }
  cls_ = cls;
  base_ = capacity_ = static_cast<uint32_t>(base);
  max_ = static_cast<uint32_t>(max);
  __atomic_store_n(&used_, 0u, __ATOMIC_RELAXED);
  __atomic_store_n(&misses_, 0u, __ATOMIC_RELAXED);
  no_memory_ = false;
  moves_ = idle_moves_ = 0;
}

bool TransferCache::map_slots() {
  // Lock held. Once per class, the first time a batch comes.
  if (no_memory_)
    return false;
  slots_ = static_cast<void**>(os::map(array_bytes()));
  if (slots_ == nullptr) {
    no_memory_ = true;  // the central list does without
    return false;
  }
  __atomic_fetch_add(&g_mapped_bytes, array_bytes(), __ATOMIC_RELAXED);
  return true;
}

bool TransferCache::insert(void* const* objs, int n) {
  uint32_t k = static_cast<uint32_t>(n);
  if (n <= 0 || k > max_)
    return n == 0;
  lock_.lock();
  if (RS_UNLIKELY(slots_ == nullptr) && !map_slots()) {
    lock_.unlock();
    return false;
  }
  uint32_t used = used_;
  uint32_t room = used < capacity_ ? capacity_ - used : 0;
  if (room < k) {
    // Full. If refills found it empty meanwhile, objects cross threads in
    // bursts larger than it: grow by this batch (up to the max).
    uint32_t misses = __atomic_load_n(&misses_, __ATOMIC_RELAXED);
    if (misses == 0 || max_ - used < k) {
      lock_.unlock();
      return false;
    }
    __atomic_store_n(&misses_, misses - 1, __ATOMIC_RELAXED);
    __atomic_store_n(&capacity_, used + k, __ATOMIC_RELAXED);
  }
  memcpy(&slots_[used], objs, static_cast<size_t>(k) * sizeof(void*));
  __atomic_store_n(&used_, used + k, __ATOMIC_RELAXED);
  moves_++;
  lock_.unlock();
  return true;
}

void TransferCache::note_miss() {
  // Racy increments are fine: this only steers growth.
  uint32_t misses = __atomic_load_n(&misses_, __ATOMIC_RELAXED);
  if (misses < kMaxMisses && max_ > base_)
    __atomic_store_n(&misses_, misses + 1, __ATOMIC_RELAXED);
}

int TransferCache::remove(void** out, int n) {
  // An unlocked look first: an empty cache (the common case for classes
  // nothing crosses threads in) costs no lock.
  if (n <= 0)
    return 0;
  if (count() == 0) {
    note_miss();
    return 0;
  }
  lock_.lock();
  uint32_t used = used_;
  uint32_t k =
      used < static_cast<uint32_t>(n) ? used : static_cast<uint32_t>(n);
  memcpy(out, &slots_[used - k], k * sizeof(void*));
  __atomic_store_n(&used_, used - k, __ATOMIC_RELAXED);
  moves_++;
  lock_.unlock();
  if (k < static_cast<uint32_t>(n))
    note_miss();
  return static_cast<int>(k);
}

int TransferCache::take_chunk(void** out) {
  // Lock held by the caller.
  uint32_t used = used_;
  uint32_t k = used < kFlushChunk ? used : uint32_t{kFlushChunk};
  if (k == 0)
    return 0;
  memcpy(out, &slots_[used - k], k * sizeof(void*));
  __atomic_store_n(&used_, used - k, __ATOMIC_RELAXED);
  return static_cast<int>(k);
}

size_t TransferCache::flush(bool shrink) {
  void* buf[kFlushChunk];
  size_t total = 0;
  for (;;) {
    // A chunk is in buf only until the central list has it (moves.h).
    // Never waits: a flush may run inside a refill's move.
    MoveScope move(cls_, false);
    lock_.lock();
    int k = take_chunk(buf);
    // Shrink only once it is empty: inserts that come meanwhile must
    // never find more objects than its capacity.
    if (shrink && used_ == 0) {
      __atomic_store_n(&capacity_, base_, __ATOMIC_RELAXED);
      __atomic_store_n(&misses_, 0u, __ATOMIC_RELAXED);
      shrink = false;
    }
    lock_.unlock();
    if (k == 0)
      return total;
    // Never under our lock: the central list takes its own.
    g_central[cls_].insert_batch(buf, k);
    total += static_cast<size_t>(k);
  }
}

size_t TransferCache::flush_if_idle() {
  // An unlocked look (atomic: inserts change capacity_ under the lock).
  if (count() == 0 && capacity() == base_)
    return 0;
  {
    LockGuard guard(lock_);
    bool idle = moves_ == idle_moves_;
    idle_moves_ = moves_;
    if (!idle)
      return 0;
  }
  return flush(true);
}

size_t transfer_mapped_bytes() {
  return __atomic_load_n(&g_mapped_bytes, __ATOMIC_RELAXED);
}

const size_t* transfer_mapped_bytes_addr() {
  return &g_mapped_bytes;
}

bool TransferCache::holds(const void* p) {
  if (count() == 0)
    return false;
  LockGuard guard(lock_);
  for (uint32_t i = 0; i < used_; i++) {
    if (slots_[i] == p)
      return true;
  }
  return false;
}

size_t flush_transfer_caches() {
  size_t total = 0;
  for (size_t c = 1; c < kNumClasses; c++)
    total += g_transfer[c].flush();
  return total;
}

void maybe_flush_idle_transfer_caches(uint64_t period_ms) {
  uint64_t now = os::now_ms();
  uint64_t next = __atomic_load_n(&g_next_idle_flush_ms, __ATOMIC_RELAXED);
  if (now < next)
    return;
  uint64_t period = period_ms > 50 ? period_ms : 50;
  if (!__atomic_compare_exchange_n(&g_next_idle_flush_ms, &next, now + period,
                                   false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
    return;  // another thread looks
  for (size_t c = 1; c < kNumClasses; c++)
    g_transfer[c].flush_if_idle();
}

}  // namespace rs
