// SPDX-License-Identifier: MIT
// Core layer: large allocations from the page heap or their own mappings.
#include "large.h"

#include "guarded.h"
#include "lock.h"
#include "os.h"
#include "page_heap.h"
#include "page_map.h"
#include "settings.h"

namespace rs {

size_t g_map_threshold = 64 * 1024 * 1024;

namespace {

/// Alignments above this use a mapping of their own, whatever the size.
constexpr size_t kMaxHeapAlign = 1024 * 1024;

/// Recently freed mappings kept for reuse, so a program that allocates and
/// frees big blocks in a loop does not fault every page in again. Entries
/// older than the decay time are unmapped.
class MappingCache {
 public:
  /// A cached mapping resized to `bytes` (page-aligned): the smallest that
  /// is long enough, its tail kept in the cache (or unmapped when the cache
  /// is full), or else the longest, grown with mremap; its pages stay
  /// resident either way. nullptr if none.
  void* take(size_t bytes) {
    Entry e;
    {
      LockGuard guard(lock_);
      int best = -1;
      for (int i = 0; i < count_; i++) {
        size_t have = entries_[i].bytes;
        if (best < 0) {
          best = i;
        } else if (have >= bytes) {
          if (entries_[best].bytes < bytes || have < entries_[best].bytes)
            best = i;
        } else if (entries_[best].bytes < bytes &&
                   have > entries_[best].bytes) {
          best = i;
        }
      }
      if (best < 0)
        return nullptr;
      e = entries_[best];
      bytes_ -= e.bytes;
      entries_[best] = entries_[--count_];
      entries_[count_] = {};  // no stale copy: memcheck's leak check reads it
    }
    if (e.bytes > bytes) {
      // The tail is a mapping of its own from now on (bytes is a multiple
      // of rsmalloc's page, so it stays aligned), still resident: the next
      // big block may fit in it.
      void* tail = static_cast<char*>(e.start) + bytes;
      if (!keep(tail, e.bytes - bytes, e.since_ms))
        os::unmap(tail, e.bytes - bytes);
      return e.start;
    }
    if (e.bytes == bytes)
      return e.start;
    // Growing: move the resident pages to the front of a fresh mapping
    // aligned to rsmalloc's page (a plain mremap may move the mapping to an
    // address aligned only to the system's 4 KiB page).
    void* target = os::map_aligned(bytes, kPageSize);
    if (target == nullptr || !os::remap_to(e.start, e.bytes, e.bytes, target))
      os::unmap(e.start, e.bytes);
    return target;
  }

  /// Keeps a freed mapping; false when it does not fit (the caller unmaps).
  bool put(void* start, size_t bytes) {
    uint64_t now = os::now_ms();
    expire(now, g_config.decay_ms);
    return keep(start, bytes, now);
  }

  /// Unmaps entries cached for at least age_ms (all for 0). Returns bytes.
  size_t expire(uint64_t now, uint64_t age_ms) {
    Entry gone[kSlots];
    int n = 0;
    {
      LockGuard guard(lock_);
      for (int i = 0; i < count_;) {
        if (age_ms == 0 || now - entries_[i].since_ms >= age_ms) {
          gone[n++] = entries_[i];
          bytes_ -= entries_[i].bytes;
          entries_[i] = entries_[--count_];
          entries_[count_] = {};
        } else {
          i++;
        }
      }
    }
    size_t total = 0;
    for (int i = 0; i < n; i++) {
      os::unmap(gone[i].start, gone[i].bytes);
      total += gone[i].bytes;
    }
    return total;
  }

  size_t bytes() const { return __atomic_load_n(&bytes_, __ATOMIC_RELAXED); }

  const size_t* bytes_addr() const { return &bytes_; }

  /// The cached mapping that holds p: its start (and its bytes in
  /// *bytes), or 0.
  uintptr_t holding(const void* p, size_t* bytes) {
    LockGuard guard(lock_);
    for (int i = 0; i < count_; i++) {
      uintptr_t start = addr(entries_[i].start);
      if (addr(p) >= start && addr(p) - start < entries_[i].bytes) {
        *bytes = entries_[i].bytes;
        return start;
      }
    }
    return 0;
  }

  Lock& lock() { return lock_; }

 private:
  bool keep(void* start, size_t bytes, uint64_t since_ms) {
    LockGuard guard(lock_);
    if (count_ == kSlots || bytes_ + bytes > kMaxBytes ||
        g_config.decay_ms == 0)
      return false;
    entries_[count_++] = {start, bytes, since_ms};
    bytes_ += bytes;
    return true;
  }

  static constexpr int kSlots = 8;
  static constexpr size_t kMaxBytes = 256u << 20;

  struct Entry {
    void* start;        // the mapping
    size_t bytes;       // its length
    uint64_t since_ms;  // when it was freed
  };

  Lock lock_;
  Entry entries_[kSlots];  // cached mappings, unordered
  int count_;              // entries in use
  size_t bytes_;           // their total length
};

MappingCache g_mapping_cache;

void* map_large(size_t n, size_t align, bool* zeroed) {
  os::start_clock();  // the mapping cache's entries age
  size_t bytes = align_up(n, kPageSize);
  if (bytes < n)
    return nullptr;
  size_t map_align = align > kPageSize ? align : kPageSize;
  void* mem = map_align == kPageSize ? g_mapping_cache.take(bytes) : nullptr;
  if (mem != nullptr) {
    if (g_page_heap.record_mapping(mem, bytes) == nullptr) {
      os::unmap(mem, bytes);
      return nullptr;
    }
    *zeroed = false;  // reused: it holds an old block's bytes
    return mem;
  }
  *zeroed = true;  // fresh from mmap
  mem = os::map_aligned(bytes, map_align);
  if (mem == nullptr && g_mapping_cache.expire(0, 0) > 0) {
    mem = os::map_aligned(bytes, map_align);
  }
  if (mem == nullptr && g_page_heap.unmap_free() > 0) {
    mem = os::map_aligned(bytes, map_align);  // address space came back
  }
  if (mem == nullptr)
    return nullptr;
  if (g_page_heap.record_mapping(mem, bytes) == nullptr) {
    os::unmap(mem, bytes);
    return nullptr;
  }
  return mem;
}

}  // namespace

void* large_allocate(size_t n, size_t align, bool* zeroed) {
  if (n > (SIZE_MAX >> 1) - align)
    return nullptr;
  if (n == 0)
    n = 1;  // aligned_alloc(align, 0) still gets a block of its own
  if (n >= __atomic_load_n(&g_map_threshold, __ATOMIC_RELAXED) ||
      align > kMaxHeapAlign) {
    return map_large(n, align, zeroed);
  }
  size_t pages = align_up(n, kPageSize) >> kPageShift;
  size_t align_pages = align > kPageSize ? align >> kPageShift : 1;
  Span* span =
      g_page_heap.allocate(pages, SpanState::kLarge, 0, align_pages, zeroed);
  return span != nullptr ? ptr_at<void>(span->start()) : nullptr;
}

void large_free(Span* span, void* p) {
  if (is_guarded(span))
    return guarded_free(span, p);  // strict mode
  if (span->state == SpanState::kMapped) {
    size_t bytes = span->mapped_bytes;
    if (!g_page_heap.forget_mapping(span, p))
      fatal_pointer("free", p);
    if (!g_mapping_cache.put(p, bytes))
      os::unmap(p, bytes);
    return;
  }
  if (!g_page_heap.free_large(span, p))
    fatal_pointer("free", p);
}

size_t large_trim_mappings(uint64_t age_ms) {
  return g_mapping_cache.expire(os::now_ms(), age_ms);
}

void check_not_cached(const void* p, const char* what) {
  if (g_mapping_cache.bytes() == 0)
    return;
  size_t bytes = 0;
  uintptr_t start = g_mapping_cache.holding(p, &bytes);
  if (start == addr(p))
    fatal_block(what, "double free of", p, bytes);
  if (start != 0)
    fatal_pointer(what, p);
}

size_t large_cached_bytes() {
  return g_mapping_cache.bytes();
}

const size_t* large_cached_bytes_addr() {
  return g_mapping_cache.bytes_addr();
}

Lock& large_cache_lock() {
  return g_mapping_cache.lock();
}

size_t large_usable_size(const Span* span) {
  if (is_guarded(span))
    return guarded_usable_size(span);  // strict mode
  return span->state == SpanState::kMapped ? span->mapped_bytes : span->bytes();
}

void* large_resize_in_place(Span* span, void* p, size_t n) {
  if (is_guarded(span))
    return guarded_resize_in_place(span, p, n);  // strict mode
  size_t have = large_usable_size(span);
  if (span->state != SpanState::kMapped) {
    // A heap span: keep it while the new size fits and wastes at most half;
    // grow it into the free pages after it when they suffice (below the
    // map threshold: from there a block gets a mapping, mremap grows it).
    if (n <= have)
      return n > have / 2 ? p : nullptr;
    size_t bytes = align_up(n, kPageSize);
    if (bytes < n || n >= __atomic_load_n(&g_map_threshold, __ATOMIC_RELAXED))
      return nullptr;
    return g_page_heap.extend_large(span, bytes >> kPageShift) ? p : nullptr;
  }
  size_t bytes = align_up(n, kPageSize);
  if (bytes < n)
    return nullptr;
  if (bytes == have)
    return p;
  if (n < __atomic_load_n(&g_map_threshold, __ATOMIC_RELAXED) / 2) {
    return nullptr;  // small enough to go back to the heap: copy
  }
  if (bytes < have) {  // shrinking in place always works
    if (!os::remap_in_place(p, have, bytes))
      return nullptr;
    g_page_heap.move_mapping(span, p, bytes);
    return p;
  }
  if (os::remap_in_place(p, have, bytes)) {
    if (g_page_heap.move_mapping(span, p, bytes))
      return p;
    os::remap_in_place(p, bytes, have);  // no page map memory: undo
    return nullptr;
  }
  // Move the pages (no copy) onto a new recorded mapping.
  bool zeroed;
  void* target = map_large(bytes, kPageSize, &zeroed);
  if (target == nullptr)
    return nullptr;
  Span* target_span = g_page_map.span_of(target);
  if (!os::remap_to(p, have, bytes, target)) {
    large_free(target_span, target);
    return nullptr;
  }
  if (!g_page_heap.forget_mapping(span, p))
    fatal_pointer("realloc", p);
  return target;
}

}  // namespace rs
