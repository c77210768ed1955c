// SPDX-License-Identifier: MIT
// Core layer: strict mode's large blocks with guard pages.
//
// A block of n bytes aligned to A (at least 16) is laid out in a mapping of
// its own, in system pages (sys, e.g. 4 KiB):
//
//   [guard: sys][head fill][block: n, then < grain][guard: sys]
//   M           front      p                       E
//
// with grain = min(A, sys): p = E - align_up(n, grain), so the block ends
// fewer than `grain` bytes before the trailing guard (malloc: fewer than
// 16, all of them usable; memalign with A >= sys: p starts a page and
// ends fewer than sys bytes short). The bytes from the start of p's page
// to p (the head, fewer than sys) hold kHeadFill, checked when the block
// is freed: an underflow into them aborts, one past them faults.
//
// The page map records the rsmalloc pages from p's down to E's (rounded
// up) as a kMapped span, which lies inside the mapping since each guard
// is at least half an rsmalloc page; the span's guarded_start and
// guarded_end say where the block is.
#include "guarded.h"

#include <string.h>

#include "os.h"
#include "page_heap.h"
#include "page_map.h"

namespace rs {

namespace {

/// What the bytes between a block's page start and the block hold.
constexpr unsigned char kHeadFill = 0xdb;

/// Freed guarded blocks, inaccessible and without memory (their pages given
/// back), held back oldest first so their addresses are not handed out
/// again soon: a stale access faults and a double free is named. Bounded
/// in count and address space; the oldest are unmapped beyond that.
class FreedBlocks {
 public:
  /// Holds back the freed block `block` of mapping [start, start + bytes)
  /// (already inaccessible), or unmaps it when it cannot be held.
  void put(uintptr_t block, uintptr_t start, size_t bytes, size_t usable) {
    Entry gone[kSlots + 1];
    int n = 0;
    {
      LockGuard guard(lock_);
      while (count_ > 0 && (count_ == kSlots || bytes_ + bytes > kMaxBytes)) {
        gone[n++] = entries_[head_];
        bytes_ -= entries_[head_].bytes;
        entries_[head_] = {};
        head_ = (head_ + 1) % kSlots;
        __atomic_store_n(&count_, count_ - 1, __ATOMIC_RELAXED);
      }
      if (bytes <= kMaxBytes) {
        entries_[(head_ + count_) % kSlots] = {block, start, bytes, usable};
        bytes_ += bytes;
        __atomic_store_n(&count_, count_ + 1, __ATOMIC_RELAXED);
      } else {
        gone[n++] = {block, start, bytes, usable};
      }
    }
    for (int i = 0; i < n; i++)
      os::unmap(ptr_at<void>(gone[i].start), gone[i].bytes);
  }

  /// Unmaps them all; returns their bytes.
  size_t release_all() {
    Entry gone[kSlots];
    int n = 0;
    size_t total = 0;
    {
      LockGuard guard(lock_);
      for (; count_ > 0;) {
        gone[n++] = entries_[head_];
        entries_[head_] = {};
        head_ = (head_ + 1) % kSlots;
        __atomic_store_n(&count_, count_ - 1, __ATOMIC_RELAXED);
      }
      total = bytes_;
      bytes_ = 0;
    }
    for (int i = 0; i < n; i++)
      os::unmap(ptr_at<void>(gone[i].start), gone[i].bytes);
    return total;
  }

  /// The entry whose mapping holds p, copied to *out; false if none.
  bool find(const void* p, uintptr_t* block, size_t* usable) {
    if (__atomic_load_n(&count_, __ATOMIC_RELAXED) == 0)
      return false;
    LockGuard guard(lock_);
    for (int i = 0; i < count_; i++) {
      const Entry& e = entries_[(head_ + i) % kSlots];
      if (addr(p) >= e.start && addr(p) - e.start < e.bytes) {
        *block = e.block;
        *usable = e.usable;
        return true;
      }
    }
    return false;
  }

  Lock& lock() { return lock_; }

 private:
  static constexpr int kSlots = 64;
  static constexpr size_t kMaxBytes =
      sizeof(void*) == 8 ? size_t{1} << 30 : size_t{64} << 20;

  struct Entry {
    uintptr_t block;  // the freed block's address
    uintptr_t start;  // its mapping, guards included
    size_t bytes;
    size_t usable;  // the block's usable bytes, for messages
  };

  Lock lock_;
  Entry entries_[kSlots];  // a ring, oldest at head_
  int head_;
  int count_;
  size_t bytes_;  // their mappings' total length
};

FreedBlocks g_freed;

/// A fresh mapping of `bytes` whose address plus `lead` is aligned to
/// `align` (a power of two, at least the system page); nullptr when the
/// OS refuses even after unmapping what rsmalloc holds back.
void* map_for(size_t bytes, size_t lead, size_t align) {
  size_t extra = align - os::system_page_size();  // align >= system page
  if (bytes + extra < bytes)
    return nullptr;
  void* raw = os::map(bytes + extra);
  if (raw == nullptr && g_freed.release_all() > 0)
    raw = os::map(bytes + extra);
  if (raw == nullptr && g_page_heap.unmap_free() > 0)
    raw = os::map(bytes + extra);
  if (raw == nullptr)
    return nullptr;
  uintptr_t start = align_up(addr(raw) + lead, align) - lead;
  if (start > addr(raw))
    os::unmap(raw, start - addr(raw));
  uintptr_t end = addr(raw) + bytes + extra;
  if (end > start + bytes)
    os::unmap(ptr_at<void>(start + bytes), end - (start + bytes));
  return ptr_at<void>(start);
}

}  // namespace

void* guarded_allocate(size_t n, size_t align) {
  size_t sys = os::system_page_size();
  if (align < kMinAlign)
    align = kMinAlign;
  size_t grain = align < sys ? align : sys;
  if (n == 0)
    n = 1;
  if (n > (SIZE_MAX >> 2) || align > (SIZE_MAX >> 2))
    return nullptr;
  size_t used = align_up(n, grain);   // p to E
  size_t data = align_up(used, sys);  // front to E
  size_t bytes = data + 2 * sys;      // M to E + sys
  void* mem = map_for(bytes, sys, align > sys ? align : sys);
  if (mem == nullptr)
    return nullptr;
  uintptr_t front = addr(mem) + sys;
  uintptr_t end = front + data;
  uintptr_t p = end - used;
  if (!os::protect(mem, sys, false) ||
      !os::protect(ptr_at<void>(end), sys, false)) {
    os::unmap(mem, bytes);  // out of mappings (vm.max_map_count)
    return nullptr;
  }
  memset(ptr_at<void>(front), kHeadFill, p - front);
  uintptr_t first = p & ~(kPageSize - 1);
  uintptr_t last = align_up(end, kPageSize);
  Span* span = g_page_heap.record_mapping(ptr_at<void>(first), last - first);
  if (span == nullptr) {
    os::unmap(mem, bytes);
    return nullptr;
  }
  span->guarded_start = p;
  span->guarded_end = end;
  return ptr_at<void>(p);
}

void guarded_free(Span* span, void* p) {
  uintptr_t start = span->guarded_start;
  uintptr_t end = static_cast<uintptr_t>(span->guarded_end);
  if (addr(p) != start)
    fatal_pointer("free", p);
  size_t sys = os::system_page_size();
  uintptr_t front = start & ~(sys - 1);
  for (uintptr_t b = front; b < start; b++) {
    if (*ptr_at<unsigned char>(b) != kHeadFill)
      fatal_block("free", "underflow before the start of", p, end - start);
  }
  if (!g_page_heap.forget_mapping(span, ptr_at<void>(span->start())))
    fatal_pointer("free", p);  // freed by another thread just now
  // Keep the address range, inaccessible and without memory, for a while.
  uintptr_t mem = front - sys;
  size_t bytes = end + sys - mem;
  if (!os::release(ptr_at<void>(front), end - front) ||
      !os::protect(ptr_at<void>(front), end - front, false)) {
    os::unmap(ptr_at<void>(mem), bytes);
    return;
  }
  g_freed.put(start, mem, bytes, end - start);
}

void* guarded_resize_in_place(Span* span, void* p, size_t n) {
  size_t usable = guarded_usable_size(span);
  return n <= usable && usable - n < kMinAlign ? p : nullptr;
}

void guarded_check_freed(const void* p, const char* what) {
  uintptr_t block;
  size_t usable;
  if (!g_freed.find(p, &block, &usable))
    return;
  if (block == addr(p))
    fatal_block(what, "double free of", p, usable);
  fatal_pointer(what, p);
}

size_t guarded_release_freed() {
  return g_freed.release_all();
}

Lock& guarded_lock() {
  return g_freed.lock();
}

}  // namespace rs
