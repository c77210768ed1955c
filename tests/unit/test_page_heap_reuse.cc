// SPDX-License-Identifier: MIT
// Unit tests of how the page heap (lib/page_heap.h) reuses resident free
// pages: free spans are wholly resident or wholly released and do not
// merge across that line, resident pages are handed out before released
// ones, a block may span a resident and a released free span (only the
// released part is zero, and the counters stay exact), a trim returns
// only what is over the pages it keeps, and pages that the slack gave back
// and the next round faulted in again are kept from then on.
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "../check_main.h"
#include "page_heap.h"
#include "page_map.h"
#include "settings.h"

namespace {

using rs::g_page_heap;
using rs::g_page_map;
using rs::kPageSize;
using rs::PageHeapStats;
using rs::Span;
using rs::SpanState;

void setup() {
  rs::g_config = rs::Config{};
  rs::g_config.decay_ms = 3600 * 1000;  // no release unless a test asks
  // Releases in whole huge pages would change the counts below.
  rs::g_config.thp = rs::ThpSetting::kNever;
}

Span* must_allocate(size_t n, bool* zeroed = nullptr) {
  Span* s = g_page_heap.allocate(n, SpanState::kLarge, 0, 1, zeroed);
  ck_assert_msg(s != nullptr, "allocate(%zu pages) failed", n);
  return s;
}

unsigned char* span_ptr(const Span* s) {
  return reinterpret_cast<unsigned char*>(s->start());
}

bool all_bytes(const void* p, size_t n, unsigned char v) {
  const unsigned char* c = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; i++) {
    if (c[i] != v)
      return false;
  }
  return true;
}

/// The free span holding page `page`.
Span* free_span_at(uintptr_t page) {
  Span* s = g_page_map.span_at(page);
  if (s == nullptr || s->state != SpanState::kFree)
    ck_abort_msg("page %#lx is not in a free span",
                 static_cast<unsigned long>(page));
  return s;
}

size_t resident_free(const PageHeapStats& st) {
  return st.free_bytes - st.released_bytes;
}

}  // namespace

// Two freed 16-page blocks, one released since: the next 16-page request
// takes the resident one (no page faults), whatever the list order.
START_TEST(resident_pages_are_reused_first) {
  Span* g0 = must_allocate(1);
  Span* a = must_allocate(16);
  Span* g1 = must_allocate(1);
  Span* b = must_allocate(16);
  Span* g2 = must_allocate(1);
  unsigned char* a_ptr = span_ptr(a);
  unsigned char* b_ptr = span_ptr(b);
  memset(a_ptr, 0xab, 16 * kPageSize);
  memset(b_ptr, 0xcd, 16 * kPageSize);
  g_page_heap.free(a);
  ck_assert_uint_ge(g_page_heap.release(0), 16 * kPageSize);
  g_page_heap.free(b);
  ck_assert_uint_eq(resident_free(g_page_heap.stats()), 16 * kPageSize);
  bool zeroed = true;
  Span* c = must_allocate(16, &zeroed);
  ck_assert_ptr_eq(span_ptr(c), b_ptr);
  ck_assert(!zeroed);
  ck_assert(all_bytes(b_ptr, 16 * kPageSize, 0xcd));
  ck_assert_uint_eq(resident_free(g_page_heap.stats()), 0);
  // And the released one next: it reads as zeros and says so.
  Span* d = must_allocate(16, &zeroed);
  ck_assert_ptr_eq(span_ptr(d), a_ptr);
  ck_assert(zeroed);
  ck_assert(all_bytes(a_ptr, 16 * kPageSize, 0));
  Span* all[] = {c, d, g0, g1, g2};
  for (Span* s : all)
    g_page_heap.free(s);
}

END_TEST

// A resident 8-page span next to a released one does not merge with it; a
// 16-page request takes both (no new address space), is not reported
// zeroed, finds the released half zero and the resident half as it was,
// and the released-bytes counter falls by exactly the released half.
START_TEST(block_over_resident_and_released_spans) {
  Span* g0 = must_allocate(1);
  Span* a = must_allocate(8);
  Span* b = must_allocate(8);
  Span* g1 = must_allocate(1);
  // Spans are cut from the top of the free space: b lies right below a.
  ck_assert_uint_eq(b->first_page + 8, a->first_page);
  unsigned char* a_ptr = span_ptr(a);
  unsigned char* b_ptr = span_ptr(b);
  memset(a_ptr, 0xab, 8 * kPageSize);
  memset(b_ptr, 0xcd, 8 * kPageSize);
  uintptr_t a_first = a->first_page, b_first = b->first_page;
  g_page_heap.free(b);
  g_page_heap.release(0);  // b's pages go back
  g_page_heap.free(a);     // a's stay
  Span* fa = free_span_at(a_first);
  ck_assert_uint_eq(fa->first_page, a_first);  // not merged with b
  ck_assert_uint_eq(fa->num_pages, 8);
  ck_assert_uint_eq(fa->released_pages, 0);
  Span* fb = free_span_at(b_first);
  ck_assert_uint_eq(fb->released_pages, fb->num_pages);
  PageHeapStats before = g_page_heap.stats();
  ck_assert_uint_eq(resident_free(before), 8 * kPageSize);
  bool zeroed = true;
  Span* c = must_allocate(16, &zeroed);
  ck_assert_uint_eq(c->first_page, b_first);
  ck_assert(!zeroed);
  ck_assert(all_bytes(b_ptr, 8 * kPageSize, 0));
  ck_assert(all_bytes(a_ptr, 8 * kPageSize, 0xab));
  for (uintptr_t p = b_first; p < b_first + 16; p++)
    ck_assert_ptr_eq(g_page_map.span_at(p), c);
  PageHeapStats after = g_page_heap.stats();
  ck_assert_uint_eq(after.heap_mapped_bytes, before.heap_mapped_bytes);
  ck_assert_uint_eq(before.released_bytes - after.released_bytes,
                    8 * kPageSize);
  ck_assert_uint_eq(resident_free(after), 0);
  ck_assert_uint_eq(after.free_bytes + after.large_bytes,
                    before.free_bytes + before.large_bytes);
  // Freed, it is resident as a whole: all 16 pages merge into one span.
  g_page_heap.free(c);
  Span* f = free_span_at(b_first);
  ck_assert_uint_eq(f->first_page, b_first);
  ck_assert_uint_eq(f->num_pages, 16);
  ck_assert_uint_eq(f->released_pages, 0);
  g_page_heap.free(g0);
  g_page_heap.free(g1);
}

END_TEST

// trim(keep) returns only the pages over keep, from the end of a span;
// the rest stays resident and intact.
START_TEST(trim_releases_only_what_is_over) {
  Span* g0 = must_allocate(1);
  Span* a = must_allocate(64);
  Span* g1 = must_allocate(1);
  unsigned char* p = span_ptr(a);
  memset(p, 0x5c, 64 * kPageSize);
  g_page_heap.free(a);
  PageHeapStats st = g_page_heap.stats();
  ck_assert_uint_eq(resident_free(st), 64 * kPageSize);
  ck_assert_uint_eq(g_page_heap.trim(16 * kPageSize), 48 * kPageSize);
  st = g_page_heap.stats();
  ck_assert_uint_eq(resident_free(st), 16 * kPageSize);
  ck_assert(all_bytes(p, 16 * kPageSize, 0x5c));
  ck_assert(all_bytes(p + 16 * kPageSize, 48 * kPageSize, 0));
  ck_assert_uint_eq(g_page_heap.trim(16 * kPageSize), 0);
  // A request for all 64 pages is one block again, not reported zeroed.
  bool zeroed = true;
  Span* again = must_allocate(64, &zeroed);
  ck_assert_ptr_eq(span_ptr(again), p);
  ck_assert(!zeroed);
  g_page_heap.free(again);
  g_page_heap.free(g0);
  g_page_heap.free(g1);
}

END_TEST

// A big block freed just after a decay-time window ended stays resident:
// the slack covers the large-span peak of the window before, even with
// no minimum slack (M_TRIM_THRESHOLD 0).
START_TEST(large_peak_of_the_window_before_is_kept) {
  rs::g_config.decay_ms = 1000;
  g_page_heap.set_min_slack(0);
  Span* g0 = must_allocate(1);
  Span* a = must_allocate(1024);  // 8 MiB; this window's large peak
  memset(span_ptr(a), 0x77, a->bytes());
  usleep(1100 * 1000);  // the window ends (the next starts within 1 s)
  g_page_heap.free(a);
  ck_assert_uint_eq(resident_free(g_page_heap.stats()), 1024 * kPageSize);
  g_page_heap.free(g0);
}

END_TEST

// Rounds of the same size (a script that drops its data between rounds):
// the first round's frees go back at once beyond the slack, and the second
// round faults those pages in again. From then on they stay: the second
// round's frees keep them resident, and the third round faults nothing.
// Small spans: large ones keep their peak anyway.
START_TEST(pages_that_came_back_stay) {
  g_page_heap.set_min_slack(0);
  Span* g0 = must_allocate(1);
  const size_t kRound = 512;  // 4 MiB a round, in 64 spans of 8 pages
  Span* spans[64];
  size_t resident_after[3];
  for (int round = 0; round < 3; round++) {
    for (Span*& s : spans) {
      s = g_page_heap.allocate(kRound / 64, SpanState::kSmall, 1);
      ck_assert_ptr_nonnull(s);
      memset(span_ptr(s), 0x3c, s->bytes());
    }
    for (Span* s : spans)
      g_page_heap.free(s);
    resident_after[round] = resident_free(g_page_heap.stats());
  }
  // A single burst keeps an eighth of its peak (7/8 of it after the
  // trim's step), no more.
  ck_assert_uint_le(resident_after[0], kRound * kPageSize / 8);
  // Once the pages came back, the whole round stays resident.
  ck_assert_uint_ge(resident_after[1], kRound * kPageSize * 7 / 8);
  ck_assert_uint_ge(resident_after[2], kRound * kPageSize * 7 / 8);
  g_page_heap.free(g0);
}

END_TEST

// By default (no M_TRIM_THRESHOLD) a burst of small spans freed down to
// almost nothing in use keeps 2 MiB of free pages resident, not the 6 MiB
// freed: the minimum slack is 2 MiB, and the window's peak keeps an
// eighth of itself (0.75 MiB here).
START_TEST(default_minimum_slack_is_2_mib) {
  Span* g0 = must_allocate(1);
  Span* spans[96];  // 6 MiB in spans of 8 pages
  for (Span*& s : spans) {
    s = g_page_heap.allocate(8, SpanState::kSmall, 1);
    ck_assert_ptr_nonnull(s);
    memset(span_ptr(s), 0x5a, s->bytes());
  }
  for (Span* s : spans)
    g_page_heap.free(s);
  size_t kept = resident_free(g_page_heap.stats());
  ck_assert_msg(kept <= (size_t{2} << 20), "%zu bytes of free pages kept",
                kept);
  ck_assert_msg(kept >= (size_t{2} << 20) * 7 / 8 - 8 * kPageSize,
                "%zu bytes of free pages kept", kept);
  g_page_heap.free(g0);
}

END_TEST

// The at-once trim returns only free runs of 32 pages (256 KiB) or more: a
// madvise of fewer than 33 system pages flushes the TLB page by page,
// which some VMs charge an exit for each. Isolated 8-page runs stay
// resident however far over the slack they are (the decay or malloc_trim
// returns them); a 64-page run goes.
START_TEST(at_once_trim_leaves_small_runs) {
  g_page_heap.set_min_slack(0);
  Span* g0 = must_allocate(1);

  enum { kRuns = 96 };

  uintptr_t first_page[kRuns];
  Span* runs[kRuns];
  Span* guards[kRuns];
  for (int i = 0; i < kRuns; i++) {
    runs[i] = g_page_heap.allocate(8, SpanState::kSmall, 1);
    ck_assert_ptr_nonnull(runs[i]);
    memset(span_ptr(runs[i]), 0x6b, runs[i]->bytes());
    first_page[i] = runs[i]->first_page;
    guards[i] = must_allocate(1);  // keeps the freed runs apart
  }
  for (Span* r : runs)
    g_page_heap.free(r);
  Span* big = must_allocate(64);
  uintptr_t big_page = big->first_page;
  Span* g1 = must_allocate(1);
  memset(span_ptr(big), 0x6b, big->bytes());
  g_page_heap.free(big);
  // The big run went back whole; every run under 32 pages is still
  // resident (where chunks meet, a few of the 8-page runs may lie side by
  // side and merge into one of 32 or more, which may go).
  Span* f = free_span_at(big_page);
  ck_assert_uint_eq(f->released_pages, f->num_pages);
  int small = 0;
  for (uintptr_t page : first_page) {
    f = free_span_at(page);
    if (f->num_pages >= 32)
      continue;
    small++;
    ck_assert_msg(f->released_pages == 0,
                  "a free run of %zu pages went back at once",
                  static_cast<size_t>(f->num_pages));
  }
  ck_assert_int_ge(small, kRuns * 3 / 4);
  // malloc_trim returns them all.
  g_page_heap.trim(0);
  ck_assert_uint_eq(resident_free(g_page_heap.stats()), 0);
  for (Span* g : guards)
    g_page_heap.free(g);
  g_page_heap.free(g0);
  g_page_heap.free(g1);
}

END_TEST

int main(void) {
  Suite* s = suite_create("page_heap_reuse");
  TCase* tc = tcase_create("reuse");
  tcase_add_checked_fixture(tc, setup, nullptr);
  tcase_add_test(tc, resident_pages_are_reused_first);
  tcase_add_test(tc, block_over_resident_and_released_spans);
  tcase_add_test(tc, trim_releases_only_what_is_over);
  tcase_add_test(tc, large_peak_of_the_window_before_is_kept);
  tcase_add_test(tc, pages_that_came_back_stay);
  tcase_add_test(tc, default_minimum_slack_is_2_mib);
  tcase_add_test(tc, at_once_trim_leaves_small_runs);
  suite_add_tcase(s, tc);
  return rs_check_run(s, "test_page_heap_reuse");
}
