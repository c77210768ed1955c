// SPDX-License-Identifier: MIT
// Core layer: span allocation, splitting, coalescing and decay.
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
  size_t i = list_index(span->num_pages, kExactLists);
  span->state = SpanState::kFree;
  span->prev = nullptr;
  span->next = free_[i];
  if (free_[i] != nullptr)
    free_[i]->prev = span;
  free_[i] = span;
  stats_.free_bytes += span->bytes();
  stats_.released_bytes += span->released_pages << kPageShift;
  stats_.free_spans++;
}

void PageHeap::remove(Span* span) {
  size_t i = list_index(span->num_pages, kExactLists);
  if (span->prev != nullptr) {
    span->prev->next = span->next;
  } else {
    free_[i] = span->next;
  }
  if (span->next != nullptr)
    span->next->prev = span->prev;
  span->next = span->prev = nullptr;
  stats_.free_bytes -= span->bytes();
  stats_.released_bytes -= span->released_pages << kPageShift;
  stats_.free_spans--;
}

Span* PageHeap::take(size_t n) {
  for (size_t i = n; i <= kExactLists; i++) {
    if (free_[i] != nullptr)
      return free_[i];
  }
  Span* best = nullptr;
  for (Span* s = free_[0]; s != nullptr; s = s->next) {
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
  // Released pages are not tracked page by page; split them in proportion.
  // "All released" must stay exact (calloc skips zeroing such spans), so a
  // part of a partly released span never counts as all released.
  size_t released = span->released_pages;
  if (released == old) {
    tail->released_pages = n;
  } else {
    tail->released_pages = released * n / old;
    if (tail->released_pages == n)
      tail->released_pages = n - 1;
  }
  tail->state = span->state;
  tail->free_since_ms = span->free_since_ms;
  span->num_pages = old - n;
  span->released_pages = released - tail->released_pages;
  if (released != old && span->released_pages >= span->num_pages)
    span->released_pages = span->num_pages - 1;
  return tail;
}

bool PageHeap::grow(size_t n) {
  if (n > (SIZE_MAX >> kPageShift) / 2)
    return false;
  size_t bytes = align_up(n << kPageShift, kChunkBytes);
  void* mem = os::map_aligned(bytes, kChunkBytes);
  if (mem == nullptr) {  // a tight RLIMIT_AS: ask for just what is needed
    bytes = n << kPageShift;
    mem = os::map_aligned(bytes, kPageSize);
  }
  if (mem == nullptr && unmap_free_locked() > 0) {
    mem = os::map_aligned(bytes, kPageSize);  // address space came back
  }
  if (mem == nullptr)
    return false;
  uintptr_t first = addr(mem) >> kPageShift;
  size_t pages = bytes >> kPageShift;
  Span* span = g_page_map.ensure(first, pages) ? spans_.allocate() : nullptr;
  if (span == nullptr) {
    os::unmap(mem, bytes);
    return false;
  }
  if (g_config.thp != ThpSetting::kAuto) {
    os::advise_hugepage(mem, bytes, g_config.thp == ThpSetting::kAlways);
  }
  stats_.heap_mapped_bytes += bytes;
  vg::make_noaccess(mem, bytes);  // no block here until one is handed out
  span->first_page = first;
  span->num_pages = pages;
  span->released_pages = pages;  // fresh memory is not resident
  span->free_since_ms = os::now_ms();
  g_page_map.set_range(first, pages, span, 0);
  free_locked(span);
  return true;
}

Span* PageHeap::allocate_locked(size_t n) {
  Span* span = take(n);
  if (span == nullptr) {
    if (!grow(n))
      return nullptr;
    span = take(n);
    if (span == nullptr)
      return nullptr;
  }
  remove(span);
  if (span->num_pages > n) {
    Span* tail = carve_tail(span, n);
    insert(span);  // what is left stays free
    if (tail == nullptr)
      return nullptr;
    span = tail;
    g_page_map.set_range(span->first_page, n, span, 0);
  }
  span->state = SpanState::kLarge;  // in use; the caller sets the final state
  return span;
}

Span* PageHeap::allocate(
    size_t n, SpanState state, uint8_t cls, size_t align_pages, bool* zeroed) {
  LockGuard guard(lock_);
  maybe_decay();
  size_t want = n + align_pages - 1;
  if (want < n)
    return nullptr;
  Span* span = allocate_locked(want);
  if (span == nullptr)
    return nullptr;
  if (align_pages > 1) {
    // Give back the pages before and after the aligned run.
    size_t head = align_up(span->first_page, align_pages) - span->first_page;
    size_t tail = span->num_pages - head - n;
    if (tail != 0) {
      Span* t = carve_tail(span, tail);
      if (t == nullptr) {
        free_locked(span);
        return nullptr;
      }
      g_page_map.set_range(t->first_page, t->num_pages, t, 0);
      free_locked(t);  // its left neighbour is in use: no merge
    }
    if (head != 0) {
      Span* body = carve_tail(span, n);
      if (body == nullptr) {
        free_locked(span);
        return nullptr;
      }
      g_page_map.set_range(body->first_page, n, body, 0);
      free_locked(span);  // the head keeps the old descriptor and labels
      span = body;
    }
  }
  // Exact, although splits share released pages out in proportion: a
  // part counts as all released only if what it came from did.
  if (zeroed != nullptr)
    *zeroed = span->released_pages == span->num_pages;
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
  return span;
}

void PageHeap::free_locked(Span* span) {
  if (span->state == SpanState::kSmall) {
    // Class 0 from now on, so a stray free of an old object is caught.
    g_page_map.set_range(span->first_page, span->num_pages, span, 0);
  }
  span->state = SpanState::kFree;
  span->size_class = 0;
  span->free_list = nullptr;
  if (span->free_since_ms == 0)
    span->free_since_ms = os::now_ms();

  Span* left = g_page_map.span_at(span->first_page - 1);
  if (left != nullptr && left->state == SpanState::kFree) {
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
  Span* right = g_page_map.span_at(span->first_page + span->num_pages);
  if (right != nullptr && right->state == SpanState::kFree) {
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

void PageHeap::free(Span* span) {
  LockGuard guard(lock_);
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
  stats_.large_bytes -= span->bytes();
  span->free_since_ms = os::now_ms();
  span->released_pages = 0;
  free_locked(span);
  maybe_decay();
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

size_t PageHeap::release_locked(uint64_t decay_ms, uint64_t now) {
  size_t released = 0;
  for (size_t i = 0; i <= kExactLists; i++) {
    for (Span* s = free_[i]; s != nullptr; s = s->next) {
      if (s->released_pages == s->num_pages)
        continue;
      if (decay_ms != 0 && now - s->free_since_ms < decay_ms)
        continue;
      released += release_span(s);
    }
  }
  return released;
}

size_t PageHeap::release_span(Span* s) {
  if (s->released_pages == s->num_pages || cannot_release_)
    return 0;
  // Where huge pages back the heap (RSMALLOC_THP=always, or the system's
  // THP setting is "always"), only whole huge pages go back: releasing part
  // of one would leave it split and half used, its memory still held.
  bool huge = huge_backed_locked();
  uintptr_t lo = s->start(), hi = s->end();
  if (huge) {
    lo = align_up(lo, kHugePageSize);
    hi &= ~(kHugePageSize - 1);
    if (lo >= hi)
      return 0;
  }
  size_t pages = (hi - lo) >> kPageShift;
  if (s->released_pages >= pages)
    return 0;  // the whole huge pages inside it went back already
  // Released pages are taken to read as zeros (calloc relies on it): if
  // madvise fails (locked memory), keep the span counted as resident.
  if (!os::release(ptr_at<void>(lo), hi - lo)) {
    cannot_release_ = true;
    return 0;
  }
  size_t newly = (pages - s->released_pages) << kPageShift;
  stats_.released_bytes += newly;
  s->released_pages = pages;
  return newly;
}

bool PageHeap::huge_backed_locked() {
  if (g_config.thp == ThpSetting::kAuto) {
    if (system_thp_ == 0)
      system_thp_ = os::thp_always() ? 1 : 2;
    return system_thp_ == 1;
  }
  return g_config.thp == ThpSetting::kAlways;
}

bool PageHeap::huge_backed() {
  LockGuard guard(lock_);
  return huge_backed_locked();
}

size_t PageHeap::trim_locked(size_t keep_bytes) {
  size_t released = 0;
  // Largest spans first: fewer system calls for the same bytes.
  for (size_t i = 0; i <= kExactLists; i++) {
    size_t list = i == 0 ? 0 : kExactLists + 1 - i;
    for (Span* s = free_[list]; s != nullptr; s = s->next) {
      if (stats_.free_bytes - stats_.released_bytes <= keep_bytes)
        return released;
      released += release_span(s);
    }
  }
  return released;
}

void PageHeap::maybe_decay() {
  // Free pages beyond a slack of a quarter of what is in use (at least
  // kMinSlackBytes) go back at once: a program that frees most of its heap
  // sees RSS fall without waiting for the decay time or a later call.
  // What was freed since the window's peak stays too, so a program that
  // frees and allocates again in a loop keeps its pages; the window is one
  // decay time long, so after a lasting drop they go back within two. But
  // only up to an eighth of that peak: a program that frees a large heap
  // and goes idle makes no call that could return the rest later (the
  // frees of a burst may all come within one decay time), so what goes
  // beyond goes back while the frees are still coming.
  uint64_t now = os::now_ms();
  uint64_t decay = g_config.decay_ms;
  size_t in_use = stats_.small_span_bytes + stats_.large_bytes;
  if (now >= window_end_ms_) {
    window_end_ms_ = now + decay;
    window_peak_ = in_use;
  } else if (in_use > window_peak_) {
    window_peak_ = in_use;
  }
  size_t min_slack = min_slack_set_ ? min_slack_ : kMinSlackBytes;
  size_t slack = in_use / 4 > min_slack ? in_use / 4 : min_slack;
  size_t dropped = window_peak_ - in_use;
  if (dropped > window_peak_ / kPeakKeepDivisor)
    dropped = window_peak_ / kPeakKeepDivisor;
  if (dropped > slack)
    slack = dropped;
  // Down to 7/8 of the slack: frees that keep coming release in steps of
  // an eighth, not a system call per span.
  if (stats_.free_bytes - stats_.released_bytes > slack)
    trim_locked(slack - slack / 8);
  if (now < next_decay_ms_)
    return;
  next_decay_ms_ = now + (decay / 4 > 0 ? decay / 4 : 0);
  release_locked(decay, now);
}

size_t PageHeap::trim(size_t keep_bytes) {
  LockGuard guard(lock_);
  return trim_locked(keep_bytes);
}

size_t PageHeap::release(uint64_t decay_ms) {
  LockGuard guard(lock_);
  return release_locked(decay_ms, os::now_ms());
}

size_t PageHeap::unmap_free_locked() {
  size_t unmapped = 0;
  for (size_t i = 0; i <= kExactLists; i++) {
    while (free_[i] != nullptr) {
      Span* s = free_[i];
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
