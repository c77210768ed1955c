// SPDX-License-Identifier: MIT
// Core layer: the page heap's return of free pages to the OS: the decay of
// resident free spans, the slack kept beyond what is in use, malloc_trim.
// A release splits a resident free span so that what goes back becomes a
// released span of its own: free spans stay wholly one or the other.
#include "os.h"
#include "page_heap.h"
#include "page_map.h"
#include "settings.h"

namespace rs {

size_t PageHeap::release_locked(uint64_t decay_ms, uint64_t now) {
  size_t released = 0;
  for (size_t i = next_nonempty(kResident, 0); i <= kExactLists;
       i = next_nonempty(kResident, i + 1)) {
    // release_span puts what stays resident at the head of a list: the
    // walk goes on from the saved next.
    for (Span *s = free_[kResident][i], *next; s != nullptr; s = next) {
      next = s->next;
      if (decay_ms != 0 && now - s->free_since_ms < decay_ms)
        continue;
      released += release_span(s, SIZE_MAX);
    }
  }
  return released;
}

// Returns at most max_pages of the resident free span s, from its end, to
// the OS. The released part becomes a free span of its own (merged with
// released neighbours); what stays resident keeps s. Returns bytes.
size_t PageHeap::release_span(Span* s, size_t max_pages) {
  if (cannot_release_ || s->released_pages != 0)
    return 0;
  uintptr_t lo = s->start(), hi = s->end();
  if (max_pages < s->num_pages)
    lo = hi - (max_pages << kPageShift);
  // Where huge pages back the heap (RSMALLOC_THP=always, or the system's
  // THP setting is "always"), only whole huge pages go back: releasing part
  // of one would leave it split and half used, its memory still held.
  if (huge_backed_locked()) {
    lo = align_up(lo, kHugePageSize);
    hi &= ~(kHugePageSize - 1);
  }
  if (lo >= hi)
    return 0;
  Span* spare[2] = {hi < s->end() ? spans_.allocate() : nullptr,
                    lo > s->start() ? spans_.allocate() : nullptr};
  bool ok = (hi == s->end() || spare[0] != nullptr) &&
            (lo == s->start() || spare[1] != nullptr);
  // Released pages are taken to read as zeros (calloc relies on it): if
  // madvise fails (locked memory), the span stays resident.
  if (ok && !os::release(ptr_at<void>(lo), hi - lo)) {
    cannot_release_ = true;
    ok = false;
  }
  if (!ok) {
    for (Span* x : spare) {
      if (x != nullptr)
        spans_.free(x);
    }
    return 0;
  }
  remove(s);
  if (Span* tail = spare[0]) {  // a resident tail (a huge page's edge)
    *tail = *s;
    tail->first_page = hi >> kPageShift;
    tail->num_pages = (s->end() - hi) >> kPageShift;
    g_page_map.set_range(tail->first_page, tail->num_pages, tail, 0);
    insert(tail);
    s->num_pages -= tail->num_pages;
  }
  Span* mid = s;
  if (Span* part = spare[1]) {  // s keeps its resident head
    *part = *s;
    part->first_page = lo >> kPageShift;
    part->num_pages = (hi - lo) >> kPageShift;
    g_page_map.set_range(part->first_page, part->num_pages, part, 0);
    s->num_pages -= part->num_pages;
    insert(s);
    mid = part;
  }
  mid->released_pages = mid->num_pages;
  merge_insert(mid);
  unadvise_released(lo, hi);
  return hi - lo;
}

size_t PageHeap::trim_locked(size_t keep_bytes, size_t min_pages) {
  size_t released = 0;
  // Largest spans first: fewer system calls for the same bytes; of the
  // last one only what is over keep_bytes, or min_pages of it.
  for (size_t i = 0; i <= kExactLists; i++) {
    size_t list = i == 0 ? 0 : kExactLists + 1 - i;
    if (list != 0 && list < min_pages)
      return released;  // list k holds spans of k pages; list 0, longer
    for (Span *s = free_[kResident][list], *next; s != nullptr; s = next) {
      next = s->next;
      size_t resident = stats_.free_bytes - stats_.released_bytes;
      if (resident <= keep_bytes)
        return released;
      size_t over = align_up(resident - keep_bytes, kPageSize) >> kPageShift;
      released += release_span(s, over > min_pages ? over : min_pages);
    }
  }
  return released;
}

// Free pages beyond a slack of a quarter of what is in use (at least
// kMinSlackBytes) go back at once: a program that frees most of its heap
// sees RSS fall without waiting for the decay time or a later call.
// What was freed since the window's peak stays too, so a program that
// frees and allocates again in a loop keeps its pages; the window is one
// decay time long. But only up to an eighth of that peak: a program that
// frees a large heap and goes idle makes no call that could return the
// rest later (the frees of a burst may all come within one decay time),
// so what goes beyond goes back while the frees are still coming. Large
// spans keep their peak, and a quarter more, over this window and the one
// before: a big block faults all its pages in at once when it comes back,
// and programs that churn them (buffers) would have slow rounds. And what
// such trims gave back and the program then faulted in again stays, as a
// round's worth of slack (note_regrowth).
void PageHeap::trim_to_slack() {
  uint64_t now = os::now_ms();
  size_t in_use = stats_.small_span_bytes + stats_.large_bytes;
  if (now >= window_end_ms_) {
    // The window before counts only if it ended just now.
    bool next = now - window_end_ms_ < g_config.decay_ms;
    last_large_peak_ = next ? large_peak_ : 0;
    window_end_ms_ = now + g_config.decay_ms;
    window_peak_ = in_use;
    large_peak_ = stats_.large_bytes;
  }
  if (now >= long_end_ms_) {
    uint64_t span_ms = kRegrowWindows * g_config.decay_ms;
    last_long_peak_ = now - long_end_ms_ < span_ms ? long_peak_ : 0;
    long_end_ms_ = now + span_ms;
    long_peak_ = in_use;
  }
  if (in_use > long_peak_)
    long_peak_ = in_use;
  if (in_use > window_peak_)
    window_peak_ = in_use;
  if (stats_.large_bytes > large_peak_)
    large_peak_ = stats_.large_bytes;
  size_t min_slack = min_slack_set_ ? min_slack_ : kMinSlackBytes;
  size_t slack = in_use / 4 > min_slack ? in_use / 4 : min_slack;
  size_t dropped = window_peak_ - in_use;
  if (dropped > window_peak_ / kPeakKeepDivisor)
    dropped = window_peak_ / kPeakKeepDivisor;
  if (dropped > slack)
    slack = dropped;
  size_t large_peak =
      large_peak_ > last_large_peak_ ? large_peak_ : last_large_peak_;
  size_t large_keep = large_peak + large_peak / 4;
  if (large_keep > stats_.large_bytes &&
      large_keep - stats_.large_bytes > slack)
    slack = large_keep - stats_.large_bytes;
  // The regrowth slack, up to what the program dropped since its peak in
  // use of the last 16 to 32 decay times: a program whose use stays level
  // (a server's steady churn) keeps nothing for it.
  size_t recent_peak =
      long_peak_ > last_long_peak_ ? long_peak_ : last_long_peak_;
  size_t regrow = recent_peak > in_use ? recent_peak - in_use : 0;
  regrow = regrow < regrow_keep_ ? regrow : regrow_keep_;
  if (regrow > slack)
    slack = regrow;
  // Down to 7/8 of the slack: frees that keep coming release in steps of
  // an eighth, not a system call per span.
  if (stats_.free_bytes - stats_.released_bytes > slack) {
    size_t keep = slack - slack / 8;
    keep = keep > regrow ? keep : regrow;
    size_t released = trim_locked(keep, kAtOnceMinPages);
    if (released != 0) {
      if (now >= trimmed_until_ms_)
        trimmed_ = regrown_ = 0;  // what went back long ago is no regrowth
      trimmed_ += released;
      trimmed_kept_ = keep;
      trimmed_until_ms_ = now + kRegrowWindows * g_config.decay_ms;
    }
  }
}

// Pages that trim_to_slack gave back and a span faults in again soon after
// mean the program frees and allocates in rounds larger than the slack
// (a Python script dropping its data between rounds): each round would
// pay a madvise and a page fault per page for memory it needs again. What
// came back that way is kept from then on. A single burst of frees
// followed by nothing, the case the at-once trim is for, never faults
// them in, and keeps nothing more. This slack only spares pages the
// at-once trim: the decay still returns free pages that no call reused for
// RSMALLOC_DECAY_MS (release_locked), so a program whose rounds get smaller
// does not keep the larger ones' pages. No cap by the peaks of recent
// windows: under load a round may last longer than two windows, and such
// a cap gave the pages back at every round again.
void PageHeap::note_regrowth(size_t faulted_bytes) {
  if (trimmed_ == 0 || faulted_bytes == 0)
    return;
  if (os::now_ms() >= trimmed_until_ms_) {
    trimmed_ = regrown_ = 0;
    return;
  }
  size_t back = faulted_bytes < trimmed_ ? faulted_bytes : trimmed_;
  trimmed_ -= back;
  regrown_ += back;
  // The round needs what the trim kept resident and what came back.
  if (trimmed_kept_ + regrown_ > regrow_keep_)
    regrow_keep_ = trimmed_kept_ + regrown_;
}

void PageHeap::maybe_decay() {
  trim_to_slack();
  uint64_t now = os::now_ms();
  if (now < next_decay_ms_)
    return;
  uint64_t decay = g_config.decay_ms;
  next_decay_ms_ = now + (decay / 4 > 0 ? decay / 4 : 0);
  release_locked(decay, now);
}

size_t PageHeap::trim(size_t keep_bytes) {
  LockGuard guard(lock_);
  return trim_locked(keep_bytes, 1);
}

size_t PageHeap::release(uint64_t decay_ms) {
  LockGuard guard(lock_);
  return release_locked(decay_ms, os::now_ms());
}

}  // namespace rs
