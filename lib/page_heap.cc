// SPDX-License-Identifier: MIT
// Core layer: span allocation, splitting, coalescing and decay. Where a
// request's pages come from (placement) is in page_heap_place.cc.
//
// Invariant: every page of every span the heap knows (free or in use) maps
// to that span in the page map, so a neighbour lookup always finds the
// current descriptor. Mapped large allocations record only their first
// and last page, enough for frees and for the neighbour checks here.
#include "page_heap.h"

#include "os.h"
#include "page_map.h"
#include "settings.h"
#include "valgrind.h"

namespace rs {

PageHeap g_page_heap;

namespace {

size_t list_index(size_t pages, size_t exact) {
  return pages <= exact ? pages : 0;
}

}  // namespace

void PageHeap::insert(Span* span) {
  // Exact residency: a free span is wholly resident or wholly released.
  int kind = span->released_pages != 0 ? kReleased : kResident;
  size_t i = list_index(span->num_pages, kExactLists);
  span->state = SpanState::kFree;
  span->prev = nullptr;
  span->next = free_[kind][i];
  if (free_[kind][i] != nullptr)
    free_[kind][i]->prev = span;
  free_[kind][i] = span;
  nonempty_[kind][i / 64] |= uint64_t{1} << (i % 64);
  stats_.free_bytes += span->bytes();
  stats_.released_bytes += span->released_pages << kPageShift;
  stats_.free_spans++;
}

void PageHeap::remove(Span* span) {
  int kind = span->released_pages != 0 ? kReleased : kResident;
  size_t i = list_index(span->num_pages, kExactLists);
  if (span->prev != nullptr) {
    span->prev->next = span->next;
  } else {
    free_[kind][i] = span->next;
    if (span->next == nullptr)
      nonempty_[kind][i / 64] &= ~(uint64_t{1} << (i % 64));
  }
  if (span->next != nullptr)
    span->next->prev = span->prev;
  span->next = span->prev = nullptr;
  stats_.free_bytes -= span->bytes();
  stats_.released_bytes -= span->released_pages << kPageShift;
  stats_.free_spans--;
}

size_t PageHeap::next_nonempty(int kind, size_t from) const {
  for (size_t w = from / 64; w < kListWords; w++) {
    uint64_t bits = nonempty_[kind][w];
    if (w == from / 64)
      bits &= ~uint64_t{0} << (from % 64);
    if (bits != 0)
      return w * 64 + static_cast<size_t>(__builtin_ctzll(bits));
  }
  return kExactLists + 1;
}

Span* PageHeap::best_fit(int kind, size_t n) {
  size_t i = n <= kExactLists ? next_nonempty(kind, n) : kExactLists + 1;
  if (i <= kExactLists)
    return free_[kind][i];
  Span* best = nullptr;
  for (Span* s = free_[kind][0]; s != nullptr; s = s->next) {
    if (s->num_pages >= n &&
        (best == nullptr || s->num_pages < best->num_pages)) {
      best = s;
    }
  }
  return best;
}

Span* PageHeap::carve_tail(Span* span, size_t n) {
  Span* tail = spans_.allocate();
  if (tail == nullptr)
    return nullptr;
  size_t old = span->num_pages;
  tail->first_page = span->first_page + old - n;
  tail->num_pages = n;
  // Both parts keep the residency of the whole (it is all or nothing).
  tail->released_pages = span->released_pages != 0 ? n : 0;
  tail->state = span->state;
  tail->free_since_ms = span->free_since_ms;
  span->num_pages = old - n;
  span->released_pages = span->released_pages != 0 ? old - n : 0;
  return tail;
}

bool PageHeap::grow_reserved(size_t n) {
  // From the top of the reservation down, as the kernel places mappings:
  // each step lands next to the one before and merges with its free end.
  // The first step is what most processes ever use; then each step is as
  // large as all before it (256 KiB, 256 KiB, 512 KiB, 1 MiB: four calls
  // for the chunk, where equal steps took eight, ~3.4 us each on the
  // reference VM).
  size_t left = reserved_hi_ - reserved_lo_;
  size_t done = kChunkBytes - left;  // a multiple of kReserveStepBytes
  size_t step = done > kReserveStepBytes ? done : kReserveStepBytes;
  size_t need = n << kPageShift;
  size_t bytes = (need + step - 1) / step * step;  // step: 768 KiB may be
  if (bytes > left)
    bytes = left;
  uintptr_t lo = reserved_hi_ - bytes;
  uintptr_t first = lo >> kPageShift;
  size_t pages = bytes >> kPageShift;
  if (!os::protect(ptr_at<void>(lo), bytes, true) ||
      !g_page_map.ensure(first, pages))
    return false;  // the commit limit: out of memory
  Span* span = spans_.allocate();
  if (span == nullptr)
    return false;
  reserved_hi_ = lo;
  stats_.heap_mapped_bytes += bytes;
  vg::make_noaccess(ptr_at<void>(lo), bytes);
  span->first_page = first;
  span->num_pages = pages;
  span->released_pages = pages;  // fresh memory is not resident
  span->free_since_ms = os::now_ms();
  g_page_map.set_range(first, pages, span, 0);
  merge_insert(span);
  return true;
}

bool PageHeap::grow(size_t n) {
  if (n > (SIZE_MAX >> kPageShift) / 2)
    return false;
  if (n <= (reserved_hi_ - reserved_lo_) >> kPageShift)
    return grow_reserved(n);
  size_t bytes = align_up(n << kPageShift, kChunkBytes);
  // RSMALLOC_THP=always or never decides for every chunk. Under auto (and
  // grown), the chunks of a small heap refuse huge pages: where the system's
  // policy is "always", the first touch of a chunk (2 MiB, aligned) would fault
  // in a whole huge page for a process that uses a few KiB, and every process
  // of a machine with rsmalloc in /etc/ld.so.preload would pay 2 MiB. Past
  // kSmallHeapBytes the system's policy applies, as it does to glibc's
  // heap, which gets huge pages only once it spans aligned 2 MiB ranges
  // (and so does a first chunk mapped larger than that, for a big block).
  bool no_huge = g_config.thp == ThpSetting::kNever ||
                 (g_config.thp != ThpSetting::kAlways &&
                  stats_.heap_mapped_bytes + bytes <= kSmallHeapBytes);
  // The clock may stay held while the heap is its first chunk: what decays
  // late then is at most that chunk's free pages (os.h, hold_clock).
  if (stats_.heap_mapped_bytes != 0 || bytes > kChunkBytes)
    os::start_clock();
  bool first_chunk = stats_.heap_mapped_bytes == 0 && bytes == kChunkBytes &&
                     no_huge && reserved_hi_ == reserved_lo_;
  void* mem = first_chunk ? os::reserve_aligned(bytes, kChunkBytes, no_huge)
                          : os::map_aligned(bytes, kChunkBytes, no_huge);
  if (mem == nullptr) {  // a tight RLIMIT_AS: ask for just what is needed
    first_chunk = false;
    bytes = n << kPageShift;
    mem = os::map_aligned(bytes, kPageSize, no_huge);
  }
  if (mem == nullptr && unmap_free_locked() > 0) {
    mem = os::map_aligned(bytes, kPageSize, no_huge);  // address space back
  }
  if (mem == nullptr)
    return false;
  if (first_chunk) {
    // Under vm.overcommit_memory=2 a writable 2 MiB chunk is charged whole
    // to the commit limit in every process, most of which use a few KiB of
    // it: the first chunk is reserved (os.h, reserve) and made writable in
    // steps (grow_reserved), one system call more for the first malloc.
    // Its steps count as mapped as they come (heap_mapped_bytes is the
    // heap's free and used spans together).
    reserved_lo_ = addr(mem);
    reserved_hi_ = addr(mem) + bytes;
    if (grow_reserved(n))
      return true;
    os::unmap(mem, bytes);
    reserved_lo_ = reserved_hi_ = 0;
    return false;
  }
  uintptr_t first = addr(mem) >> kPageShift;
  size_t pages = bytes >> kPageShift;
  Span* span = g_page_map.ensure(first, pages) ? spans_.allocate() : nullptr;
  if (span == nullptr) {
    os::unmap(mem, bytes);
    return false;
  }
  if (!no_huge)
    advise_chunk_locked(mem, bytes);  // always, or grown past 32 MiB
  stats_.heap_mapped_bytes += bytes;
  vg::make_noaccess(mem, bytes);  // no block here until one is handed out
  span->first_page = first;
  span->num_pages = pages;
  span->released_pages = pages;  // fresh memory is not resident
  span->free_since_ms = os::now_ms();
  g_page_map.set_range(first, pages, span, 0);
  merge_insert(span);  // next to an older chunk's released end: one span
  return true;
}

Span* PageHeap::allocate(
    size_t n, SpanState state, uint8_t cls, size_t align_pages, bool* zeroed) {
  LockGuard guard(lock_);
  maybe_decay();
  size_t want = n + align_pages - 1;
  if (want < n)
    return nullptr;
  // An aligned span comes from one free span, so the head and tail it
  // gives back have that span's residency, exactly.
  Span* span = allocate_locked(want, align_pages == 1);
  if (span == nullptr)
    return nullptr;
  bool released = span->released_pages == span->num_pages;
  if (align_pages > 1) {
    // Give back the pages before and after the aligned run.
    size_t head = align_up(span->first_page, align_pages) - span->first_page;
    size_t tail = span->num_pages - head - n;
    if (tail != 0) {
      Span* t = carve_tail(span, tail);
      if (t == nullptr) {
        free_piece(span, released);
        return nullptr;
      }
      g_page_map.set_range(t->first_page, t->num_pages, t, 0);
      free_piece(t, released);  // its left neighbour is in use: no merge
    }
    if (head != 0) {
      Span* body = carve_tail(span, n);
      if (body == nullptr) {
        free_piece(span, released);
        return nullptr;
      }
      g_page_map.set_range(body->first_page, n, body, 0);
      free_piece(span, released);  // the head keeps the old descriptor
      span = body;
    }
  }
  // Exact: free spans are wholly resident or wholly released, and a block
  // carved from several counts the released pages it took.
  if (zeroed != nullptr)
    *zeroed = span->released_pages == span->num_pages;
  note_regrowth(span->released_pages << kPageShift);
  span->state = state;
  span->size_class = cls;
  span->free_since_ms = 0;
  span->released_pages = 0;
  if (cls != 0)
    g_page_map.set_range(span->first_page, span->num_pages, span, cls);
  if (state == SpanState::kSmall) {
    stats_.small_span_bytes += span->bytes();
  } else {
    stats_.large_bytes += span->bytes();
  }
  // In use grew: free pages beyond the slack go back now, before the
  // caller faults the new span in.
  trim_to_slack();
  return span;
}

// A piece of a span being handed out goes back free: released when the
// whole span was, else resident.
void PageHeap::free_piece(Span* piece, bool released) {
  piece->released_pages = released ? piece->num_pages : 0;
  if (piece->free_since_ms == 0)
    piece->free_since_ms = os::now_ms();
  merge_insert(piece);
}

void PageHeap::free_locked(Span* span) {
  if (span->state == SpanState::kSmall) {
    // Class 0 from now on, so a stray free of an old object is caught.
    g_page_map.set_range(span->first_page, span->num_pages, span, 0);
  }
  span->released_pages = 0;  // it was in use: resident
  merge_insert(span);
}

// Inserts the free span, merged with the free neighbours of the same
// residency (a resident span next to a released one stays apart, so the
// heap keeps knowing which pages are resident).
void PageHeap::merge_insert(Span* span) {
  span->state = SpanState::kFree;
  span->size_class = 0;
  if (span->free_since_ms == 0)
    span->free_since_ms = os::now_ms();
  bool released = span->released_pages != 0;
  Span* left = g_page_map.span_near(span->first_page - 1);
  if (left != nullptr && left->state == SpanState::kFree &&
      (left->released_pages != 0) == released) {
    remove(left);
    Span* keep = left->num_pages >= span->num_pages ? left : span;
    Span* drop = keep == left ? span : left;
    g_page_map.set_range(drop->first_page, drop->num_pages, keep, 0);
    keep->first_page = left->first_page;
    keep->num_pages = left->num_pages + span->num_pages;
    keep->released_pages = left->released_pages + span->released_pages;
    keep->free_since_ms = left->free_since_ms > span->free_since_ms
                              ? left->free_since_ms
                              : span->free_since_ms;
    spans_.free(drop);
    span = keep;
  }
  Span* right = g_page_map.span_near(span->first_page + span->num_pages);
  if (right != nullptr && right->state == SpanState::kFree &&
      (right->released_pages != 0) == released) {
    remove(right);
    Span* keep = right->num_pages > span->num_pages ? right : span;
    Span* drop = keep == right ? span : right;
    g_page_map.set_range(drop->first_page, drop->num_pages, keep, 0);
    keep->first_page = span->first_page;
    keep->num_pages = span->num_pages + right->num_pages;
    keep->released_pages = span->released_pages + right->released_pages;
    keep->free_since_ms = span->free_since_ms > right->free_since_ms
                              ? span->free_since_ms
                              : right->free_since_ms;
    spans_.free(drop);
    span = keep;
  }
  insert(span);
}

void PageHeap::remember_freed(const Span* span) {
  // Mapped at the first span given back once the checks have started, not
  // in .bss: the first calls of a process (before its CPU caches start,
  // each free gives its span back) touch no page for it, and map nothing
  // (tests/startup.sh counts both).
  if (freed_ == nullptr) {
    if (!g_page_map.checks_used())
      return;
    freed_ =
        static_cast<FreedRecord*>(os::map(kFreedRecords * sizeof(FreedRecord)));
    if (freed_ == nullptr)
      return;  // the report then names no size
  }
  size_t block = span->state == SpanState::kSmall ? class_size(span->size_class)
                                                  : span->bytes();
  freed_[freed_next_ % kFreedRecords] = {span->first_page, span->num_pages,
                                         block};
  freed_next_++;
}

size_t PageHeap::freed_block_size(const void* p) {
  LockGuard guard(lock_);
  if (freed_ == nullptr)
    return 0;
  uintptr_t page = addr(p) >> kPageShift;
  size_t kept = freed_next_ < kFreedRecords ? freed_next_ : kFreedRecords;
  for (size_t k = 1; k <= kept; k++) {  // the newest first
    const FreedRecord& r = freed_[(freed_next_ - k) % kFreedRecords];
    if (page < r.first_page || page - r.first_page >= r.pages)
      continue;
    return (addr(p) - (r.first_page << kPageShift)) % r.block == 0 ? r.block
                                                                   : 0;
  }
  return 0;
}

void PageHeap::free(Span* span) {
  LockGuard guard(lock_);
  remember_freed(span);
  if (span->state == SpanState::kSmall) {
    stats_.small_span_bytes -= span->bytes();
  } else {
    stats_.large_bytes -= span->bytes();
  }
  span->free_since_ms = os::now_ms();
  span->released_pages = 0;
  free_locked(span);
  maybe_decay();
}

bool PageHeap::free_large(Span* span, const void* p) {
  LockGuard guard(lock_);
  if (span->state != SpanState::kLarge || span->start() != addr(p))
    return false;
  remember_freed(span);
  stats_.large_bytes -= span->bytes();
  span->free_since_ms = os::now_ms();
  span->released_pages = 0;
  free_locked(span);
  maybe_decay();
  return true;
}

bool PageHeap::extend_large(Span* span, size_t n) {
  LockGuard guard(lock_);
  if (span->state != SpanState::kLarge || n <= span->num_pages)
    return false;
  size_t need = n - span->num_pages;
  Span* right = g_page_map.span_at(span->first_page + span->num_pages);
  if (right == nullptr || right->state != SpanState::kFree ||
      right->num_pages < need)
    return false;
  remove(right);
  uintptr_t from = right->first_page;
  if (right->num_pages > need) {  // its tail stays free, same residency
    right->first_page += need;
    right->num_pages -= need;
    if (right->released_pages != 0)
      right->released_pages = right->num_pages;
    insert(right);
  } else {
    spans_.free(right);
  }
  span->num_pages = n;
  g_page_map.set_range(from, need, span, 0);
  stats_.large_bytes += need << kPageShift;
  trim_to_slack();
  return true;
}

Span* PageHeap::record_mapping(void* start, size_t bytes) {
  LockGuard guard(lock_);
  uintptr_t first = addr(start) >> kPageShift;
  size_t pages = bytes >> kPageShift;
  if (!g_page_map.ensure(first, pages))
    return nullptr;
  Span* span = spans_.allocate();
  if (span == nullptr)
    return nullptr;
  span->first_page = first;
  span->num_pages = pages;
  span->state = SpanState::kMapped;
  span->mapped_bytes = bytes;
  // Every page, not only the ends: a free of a pointer deep inside the
  // block must find it (an invalid free), not pass it to glibc.
  g_page_map.set_range(first, pages, span, 0);
  stats_.mapped_large_bytes += bytes;
  stats_.mapped_large_count++;
  note_mapping_peak();
  return span;
}

bool PageHeap::forget_mapping(Span* span, const void* p) {
  LockGuard guard(lock_);
  if (span->state != SpanState::kMapped || span->start() != addr(p))
    return false;
  g_page_map.set_range(span->first_page, span->num_pages, nullptr, 0);
  stats_.mapped_large_bytes -= span->mapped_bytes;
  stats_.mapped_large_count--;
  span->state = SpanState::kFree;
  spans_.free(span);
  return true;
}

bool PageHeap::move_mapping(Span* span, void* new_start, size_t new_bytes) {
  LockGuard guard(lock_);
  uintptr_t first = addr(new_start) >> kPageShift;
  size_t pages = new_bytes >> kPageShift;
  if (!g_page_map.ensure(first, pages))
    return false;
  g_page_map.set_range(span->first_page, span->num_pages, nullptr, 0);
  stats_.mapped_large_bytes += new_bytes - span->mapped_bytes;
  note_mapping_peak();
  span->first_page = first;
  span->num_pages = pages;
  span->mapped_bytes = new_bytes;
  g_page_map.set_range(first, pages, span, 0);
  return true;
}

size_t PageHeap::unmap_free_locked() {
  forget_advised_locked();
  size_t unmapped = 0;
  for (size_t i = 0; i < 2 * (kExactLists + 1); i++) {
    Span** list = &free_[i / (kExactLists + 1)][i % (kExactLists + 1)];
    while (*list != nullptr) {
      Span* s = *list;
      remove(s);
      g_page_map.set_range(s->first_page, s->num_pages, nullptr, 0);
      os::unmap(ptr_at<void>(s->start()), s->bytes());
      unmapped += s->bytes();
      stats_.heap_mapped_bytes -= s->bytes();
      spans_.free(s);
    }
  }
  return unmapped;
}

size_t PageHeap::unmap_free() {
  LockGuard guard(lock_);
  return unmap_free_locked();
}

void PageHeap::set_min_slack(size_t bytes) {
  LockGuard guard(lock_);
  min_slack_ = bytes;
  min_slack_set_ = true;
}

void PageHeap::note_mapping_peak() {
  if (stats_.mapped_large_count > stats_.max_mapped_large_count)
    stats_.max_mapped_large_count = stats_.mapped_large_count;
  if (stats_.mapped_large_bytes > stats_.max_mapped_large_bytes)
    stats_.max_mapped_large_bytes = stats_.mapped_large_bytes;
}

PageHeapStats PageHeap::stats() {
  LockGuard guard(lock_);
  PageHeapStats s = stats_;
  s.metadata_bytes = spans_.mapped_bytes() + g_page_map.leaf_bytes();
  return s;
}

}  // namespace rs
