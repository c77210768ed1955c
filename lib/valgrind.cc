// SPDX-License-Identifier: MIT
// Base layer: the requested-size table used under valgrind.
#include "valgrind.h"

#include "os.h"

namespace rs::vg {

RS_STARTUP_DATA bool g_annotate = false;
SizeTable g_sizes;
Quarantine g_quarantine;

namespace {

constexpr uintptr_t kEmpty = 0;
constexpr uintptr_t kDeleted = 1;

/// Keys are stored inverted so memcheck's leak scan does not count the
/// table as a pointer to the block.
uintptr_t key_of(const void* p) {
  return ~addr(p);
}

size_t hash(uintptr_t key) {
  return static_cast<size_t>((key >> 4) * 0x9e3779b97f4a7c15u);
}

}  // namespace

size_t SizeTable::find_locked(uintptr_t key) const {
  size_t mask = capacity_ - 1;
  for (size_t i = hash(key) & mask;; i = (i + 1) & mask) {
    if (keys_[i] == key || keys_[i] == kEmpty)
      return i;
  }
}

bool SizeTable::grow_locked() {
  // Deleted slots are dropped by the rehash: double only for live ones.
  size_t capacity = capacity_ == 0 ? 4096 : capacity_;
  if ((live_ + 1) * 4 > capacity)
    capacity *= 2;
  auto* keys = static_cast<uintptr_t*>(os::map(capacity * sizeof(uintptr_t)));
  auto* sizes = static_cast<size_t*>(os::map(capacity * sizeof(size_t)));
  if (keys == nullptr || sizes == nullptr) {
    if (keys != nullptr)
      os::unmap(keys, capacity * sizeof(uintptr_t));
    if (sizes != nullptr)
      os::unmap(sizes, capacity * sizeof(size_t));
    return false;
  }
  uintptr_t* old_keys = keys_;
  size_t* old_sizes = sizes_;
  size_t old_capacity = capacity_;
  keys_ = keys;
  sizes_ = sizes;
  capacity_ = capacity;
  used_ = 0;
  for (size_t i = 0; i < old_capacity; i++) {
    if (old_keys[i] <= kDeleted)
      continue;
    size_t j = find_locked(old_keys[i]);
    keys_[j] = old_keys[i];
    sizes_[j] = old_sizes[i];
    used_++;
  }
  if (old_keys != nullptr) {
    os::unmap(old_keys, old_capacity * sizeof(uintptr_t));
    os::unmap(old_sizes, old_capacity * sizeof(size_t));
  }
  return true;
}

bool SizeTable::put(const void* p, size_t n) {
  LockGuard guard(lock_);
  if ((used_ + 1) * 2 > capacity_ && !grow_locked())
    return false;
  size_t i = find_locked(key_of(p));
  if (keys_[i] == kEmpty) {
    used_++;
    live_++;
  }
  keys_[i] = key_of(p);
  sizes_[i] = n;
  return true;
}

size_t SizeTable::get(const void* p, size_t otherwise) {
  LockGuard guard(lock_);
  if (capacity_ == 0)
    return otherwise;
  size_t i = find_locked(key_of(p));
  return keys_[i] == key_of(p) ? sizes_[i] : otherwise;
}

bool SizeTable::erase(const void* p) {
  LockGuard guard(lock_);
  if (capacity_ == 0)
    return false;
  size_t i = find_locked(key_of(p));
  if (keys_[i] != key_of(p))
    return false;
  keys_[i] = kDeleted;
  live_--;
  return true;
}

void Quarantine::count(const Entry& e, bool in) {
  size_t n = e.cls != 0 ? 1 : e.bytes;
  size_t held = in ? held_[e.cls] + n : held_[e.cls] - n;
  __atomic_store_n(&held_[e.cls], held, __ATOMIC_RELAXED);
  __atomic_store_n(&bytes_, in ? bytes_ + e.bytes : bytes_ - e.bytes,
                   __ATOMIC_RELAXED);
}

bool Quarantine::put(void* p, size_t bytes, uint8_t cls) {
  LockGuard guard(lock_);
  if (ring_ == nullptr) {
    ring_ = static_cast<Entry*>(os::map(kSlots * sizeof(Entry)));
    if (ring_ == nullptr)
      return false;
  }
  if (count_ == kSlots)
    return false;  // the caller takes the oldest first
  Entry& e = ring_[(head_ + count_) % kSlots];
  e = {p, bytes, cls};
  count_++;
  count(e, true);
  return true;
}

bool Quarantine::holds(const void* p) {
  LockGuard guard(lock_);
  for (size_t i = 0; i < count_; i++) {
    if (ring_[(head_ + i) % kSlots].p == p)
      return true;
  }
  return false;
}

size_t Quarantine::take(void** out, size_t max_out, bool all) {
  LockGuard guard(lock_);
  size_t n = 0;
  // Full of entries counts as over budget: a put must find a free slot.
  while (n < max_out && count_ > 0 &&
         (all || bytes_ > kMaxBytes || count_ + 1 >= kSlots)) {
    Entry& e = ring_[head_];
    out[n++] = e.p;
    count(e, false);
    e.p = nullptr;  // a stale copy would make a leak look reachable
    head_ = (head_ + 1) % kSlots;
    count_--;
  }
  return n;
}

}  // namespace rs::vg
