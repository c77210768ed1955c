// SPDX-License-Identifier: MIT
// Unit tests of the page heap (lib/page_heap.h) through g_page_heap: span
// labels in the page map, coalescing, aligned spans, release and decay,
// statistics, invalid frees, out-of-memory and concurrent use.
#include <algorithm>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <vector>

#include <sys/mman.h>

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
  // No time-based release in the middle of a test unless it asks for it.
  rs::g_config.decay_ms = 3600 * 1000;
}

Span* must_allocate(size_t n,
                    SpanState state = SpanState::kLarge,
                    uint8_t cls = 0,
                    size_t align = 1) {
  Span* s = g_page_heap.allocate(n, state, cls, align);
  ck_assert_msg(s != nullptr, "allocate(%zu pages, align %zu) failed", n,
                align);
  return s;
}

/// Every page of s maps to s with class cls; returns the pages that do not.
size_t mislabelled_pages(const Span* s, uint8_t cls) {
  size_t bad = 0;
  for (uintptr_t p = s->first_page; p < s->first_page + s->num_pages; p++) {
    const void* a = reinterpret_cast<void*>(p << rs::kPageShift);
    const void* last =
        reinterpret_cast<void*>((p << rs::kPageShift) + kPageSize - 1);
    if (g_page_map.span_at(p) != s || g_page_map.class_of(a) != cls ||
        g_page_map.span_of(last) != s) {
      bad++;
    }
  }
  return bad;
}

void check_accounting() {
  PageHeapStats st = g_page_heap.stats();
  ck_assert_msg(st.heap_mapped_bytes ==
                    st.free_bytes + st.small_span_bytes + st.large_bytes,
                "mapped %zu != free %zu + small %zu + large %zu",
                st.heap_mapped_bytes, st.free_bytes, st.small_span_bytes,
                st.large_bytes);
  ck_assert_uint_le(st.released_bytes, st.free_bytes);
}

/// Checks that the free span holding page `first` is exactly
/// [first, first + n) and that all its pages point at it.
void expect_free_run(uintptr_t first, size_t n) {
  Span* s = g_page_map.span_at(first);
  ck_assert_ptr_nonnull(s);
  ck_assert_msg(s->state == SpanState::kFree, "page %#lx: span not free",
                static_cast<unsigned long>(first));
  ck_assert_msg(s->first_page == first && s->num_pages == n,
                "free run at %#lx: got [%#lx, +%zu), want +%zu",
                static_cast<unsigned long>(first),
                static_cast<unsigned long>(s->first_page), s->num_pages, n);
  ck_assert_uint_eq(mislabelled_pages(s, 0), 0);
}

bool all_bytes(const void* p, size_t n, unsigned char v) {
  const unsigned char* c = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; i++) {
    if (c[i] != v)
      return false;
  }
  return true;
}

void* span_ptr(const Span* s) {
  return reinterpret_cast<void*>(s->start());
}

}  // namespace

// --- allocation

START_TEST(allocate_labels_every_page) {
  static const size_t sizes[] = {1,   2,   3,   7,   64,  127, 128,
                                 129, 255, 256, 257, 300, 1000};
  std::vector<Span*> live;
  for (size_t n : sizes) {
    Span* s = must_allocate(n);
    ck_assert_uint_eq(s->start() % kPageSize, 0);
    ck_assert_uint_eq(s->num_pages, n);
    ck_assert(s->state == SpanState::kLarge);
    ck_assert_uint_eq(s->size_class, 0);
    ck_assert_uint_eq(mislabelled_pages(s, 0), 0);
    memset(span_ptr(s), 0x5a, s->bytes());  // writable, all of it
    live.push_back(s);
  }
  for (uint8_t cls : {1, 9, 40, 96}) {
    Span* s = must_allocate(4, SpanState::kSmall, cls);
    ck_assert(s->state == SpanState::kSmall);
    ck_assert_uint_eq(s->size_class, cls);
    ck_assert_uint_eq(mislabelled_pages(s, cls), 0);
    live.push_back(s);
  }
  // No two spans overlap.
  std::vector<Span*> sorted = live;
  std::sort(sorted.begin(), sorted.end(),
            [](Span* a, Span* b) { return a->start() < b->start(); });
  for (size_t i = 1; i < sorted.size(); i++)
    ck_assert_uint_le(sorted[i - 1]->end(), sorted[i]->start());
  check_accounting();
  for (Span* s : live)
    g_page_heap.free(s);
  check_accounting();
  PageHeapStats st = g_page_heap.stats();
  ck_assert_uint_eq(st.large_bytes, 0);
  ck_assert_uint_eq(st.small_span_bytes, 0);
  ck_assert_uint_eq(st.free_bytes, st.heap_mapped_bytes);
}

END_TEST

START_TEST(freed_small_span_loses_its_class) {
  Span* s = must_allocate(3, SpanState::kSmall, 17);
  uintptr_t first = s->first_page;
  g_page_heap.free(s);
  for (uintptr_t p = first; p < first + 3; p++) {
    ck_assert_uint_eq(
        g_page_map.class_of(reinterpret_cast<void*>(p << rs::kPageShift)), 0);
    Span* now = g_page_map.span_at(p);
    ck_assert_ptr_nonnull(now);
    ck_assert(now->state == SpanState::kFree);
  }
}

END_TEST

// The first chunk is reserved read-only and made writable in steps that
// double (256 KiB, 256 KiB, 512 KiB, 1 MiB), rounded to fit the request:
// whatever the order of sizes, every span the heap hands out from it is
// whole and writable, and they all come from that one 2 MiB chunk.
START_TEST(first_chunk_grows_in_steps) {
  const size_t sizes[] = {75, 100, 1, 40, 3, 20};  // pages: 600 KiB, ...
  std::vector<Span*> spans;
  for (size_t n : sizes) {
    Span* s = must_allocate(n);
    ck_assert_uint_eq(s->num_pages, n);
    memset(reinterpret_cast<void*>(s->start()), 0x5a, s->bytes());
    spans.push_back(s);
  }
  PageHeapStats st = g_page_heap.stats();
  ck_assert_uint_eq(st.heap_mapped_bytes % (256 * 1024), 0);
  ck_assert_uint_le(st.heap_mapped_bytes, 2u << 20);
  std::sort(spans.begin(), spans.end(),
            [](Span* a, Span* b) { return a->start() < b->start(); });
  for (size_t i = 1; i < spans.size(); i++)
    ck_assert_uint_le(spans[i - 1]->end(), spans[i]->start());
  // The rest of the chunk, then past it.
  size_t left =
      ((2u << 20) - (st.heap_mapped_bytes - st.free_bytes)) / kPageSize;
  Span* rest = must_allocate(left);
  memset(reinterpret_cast<void*>(rest->start()), 0x6b, rest->bytes());
  ck_assert_uint_eq(g_page_heap.stats().heap_mapped_bytes, 2u << 20);
  Span* more = must_allocate(10);
  memset(reinterpret_cast<void*>(more->start()), 0x7c, more->bytes());
  ck_assert_uint_gt(g_page_heap.stats().heap_mapped_bytes, 2u << 20);
  for (Span* s : spans)
    ck_assert_uint_eq(*reinterpret_cast<unsigned char*>(s->start()), 0x5a);
}

END_TEST

START_TEST(statistics_follow_allocations) {
  Span* warm = must_allocate(1);  // maps the first chunk
  PageHeapStats a = g_page_heap.stats();
  ck_assert_uint_gt(a.heap_mapped_bytes, 0);
  ck_assert_uint_gt(a.metadata_bytes, 0);
  Span* big = must_allocate(5);
  Span* small = must_allocate(3, SpanState::kSmall, 2);
  PageHeapStats b = g_page_heap.stats();
  ck_assert_uint_eq(b.heap_mapped_bytes, a.heap_mapped_bytes);  // no growth
  ck_assert_uint_eq(b.large_bytes, a.large_bytes + 5 * kPageSize);
  ck_assert_uint_eq(b.small_span_bytes, a.small_span_bytes + 3 * kPageSize);
  ck_assert_uint_eq(b.free_bytes, a.free_bytes - 8 * kPageSize);
  g_page_heap.free(big);
  PageHeapStats c = g_page_heap.stats();
  ck_assert_uint_eq(c.large_bytes, a.large_bytes);
  ck_assert_uint_eq(c.free_bytes, a.free_bytes - 3 * kPageSize);
  g_page_heap.free(small);
  g_page_heap.free(warm);
  PageHeapStats d = g_page_heap.stats();
  ck_assert_uint_eq(d.small_span_bytes, 0);
  ck_assert_uint_eq(d.large_bytes, 0);
  ck_assert_uint_eq(d.free_bytes, d.heap_mapped_bytes);
  check_accounting();
}

END_TEST

// --- coalescing

namespace {

/// Three adjacent spans between two guards, freed in the order given by
/// perm (a permutation of 0, 1, 2 in address order).
void coalesce_in_order(const size_t sizes[3], const int perm[3]) {
  // The heap carves from the top of a free span, so spans allocated one
  // after another from one free span are adjacent: first make sure a free
  // span of the whole size exists. Guards on both sides keep the rest of
  // the chunk out of the picture.
  g_page_heap.free(must_allocate(sizes[0] + sizes[1] + sizes[2] + 2));
  Span* g1 = must_allocate(1);
  Span* s[3];
  for (int i = 0; i < 3; i++)
    s[i] = must_allocate(sizes[i]);
  Span* g2 = must_allocate(1);
  Span* by_addr[5] = {g1, s[0], s[1], s[2], g2};
  std::sort(by_addr, by_addr + 5,
            [](Span* a, Span* b) { return a->start() < b->start(); });
  for (int i = 1; i < 5; i++) {
    ck_assert_msg(by_addr[i - 1]->end() == by_addr[i]->start(),
                  "precondition: consecutive allocations are not adjacent");
  }
  ck_assert(by_addr[0] == g1 || by_addr[0] == g2);
  ck_assert(by_addr[4] == g1 || by_addr[4] == g2);
  Span* mid[3] = {by_addr[1], by_addr[2], by_addr[3]};
  uintptr_t first[3];
  size_t len[3];
  for (int i = 0; i < 3; i++) {
    first[i] = mid[i]->first_page;
    len[i] = mid[i]->num_pages;
  }
  size_t free_spans_before = g_page_heap.stats().free_spans;

  bool freed[3] = {false, false, false};
  for (int k = 0; k < 3; k++) {
    int i = perm[k];
    g_page_heap.free(mid[i]);
    freed[i] = true;
    // The run of freed neighbours around i is one free span.
    int lo = i, hi = i;
    while (lo > 0 && freed[lo - 1])
      lo--;
    while (hi < 2 && freed[hi + 1])
      hi++;
    size_t n = 0;
    for (int j = lo; j <= hi; j++)
      n += len[j];
    expect_free_run(first[lo], n);
    check_accounting();
  }
  // One free span of the summed length; the guards are untouched.
  expect_free_run(first[0], len[0] + len[1] + len[2]);
  ck_assert_uint_eq(g_page_heap.stats().free_spans, free_spans_before + 1);
  ck_assert(g1->state == SpanState::kLarge && mislabelled_pages(g1, 0) == 0);
  ck_assert(g2->state == SpanState::kLarge && mislabelled_pages(g2, 0) == 0);

  // An allocation of the total size fits exactly there.
  Span* whole = must_allocate(len[0] + len[1] + len[2]);
  ck_assert_uint_eq(whole->first_page, first[0]);
  ck_assert_uint_eq(mislabelled_pages(whole, 0), 0);
  g_page_heap.free(whole);
  g_page_heap.free(g1);
  g_page_heap.free(g2);
  check_accounting();
  PageHeapStats st = g_page_heap.stats();
  ck_assert_uint_eq(st.free_bytes, st.heap_mapped_bytes);
}

const int kPerms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                          {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};

}  // namespace

START_TEST(coalesce_small_spans) {
  static const size_t sizes[3] = {3, 5, 2};
  coalesce_in_order(sizes, kPerms[_i]);
}

END_TEST

START_TEST(coalesce_long_spans) {
  // Long enough that the merged span leaves the exact-size lists.
  static const size_t sizes[3] = {100, 60, 90};
  coalesce_in_order(sizes, kPerms[_i]);
}

END_TEST

// --- alignment

START_TEST(aligned_allocation) {
  std::vector<Span*> live;
  live.push_back(must_allocate(1));  // misalign the free space
  for (size_t align = 2; align <= 256; align *= 2) {
    for (size_t n : {size_t{1}, size_t{3}, align, align + 1}) {
      PageHeapStats before = g_page_heap.stats();
      Span* s = must_allocate(n, SpanState::kLarge, 0, align);
      ck_assert_msg(s->first_page % align == 0, "align %zu: page %#lx", align,
                    static_cast<unsigned long>(s->first_page));
      ck_assert_uint_eq(s->num_pages, n);
      ck_assert_uint_eq(mislabelled_pages(s, 0), 0);
      // Only n pages left the free lists: the trimmed head and tail went
      // back (bytes that came in by growing are free too).
      PageHeapStats after = g_page_heap.stats();
      ck_assert_uint_eq((after.heap_mapped_bytes - before.heap_mapped_bytes) -
                            (after.free_bytes - before.free_bytes),
                        n * kPageSize);
      ck_assert_uint_eq(after.large_bytes - before.large_bytes, n * kPageSize);
      check_accounting();
      live.push_back(s);
      // Neighbours that are not live spans are free spans.
      for (uintptr_t p : {s->first_page - 1, s->first_page + n}) {
        Span* nb = g_page_map.span_at(p);
        if (nb == nullptr ||
            std::find(live.begin(), live.end(), nb) != live.end()) {
          continue;
        }
        ck_assert_msg(nb->state == SpanState::kFree,
                      "align %zu n %zu: neighbour not free", align, n);
        ck_assert_uint_eq(mislabelled_pages(nb, 0), 0);
      }
    }
  }
  for (Span* s : live)
    g_page_heap.free(s);
  check_accounting();
  PageHeapStats st = g_page_heap.stats();
  ck_assert_uint_eq(st.free_bytes, st.heap_mapped_bytes);
}

END_TEST

START_TEST(aligned_small_span_keeps_class) {
  Span* pad = must_allocate(1);
  Span* s = must_allocate(4, SpanState::kSmall, 33, 16);
  ck_assert_uint_eq(s->first_page % 16, 0);
  ck_assert_uint_eq(mislabelled_pages(s, 33), 0);
  g_page_heap.free(s);
  g_page_heap.free(pad);
  check_accounting();
}

END_TEST

// --- returning memory

START_TEST(release_returns_dirty_pages) {
  Span* g1 = must_allocate(1);
  Span* s = must_allocate(16);
  Span* g2 = must_allocate(1);
  unsigned char* p = static_cast<unsigned char*>(span_ptr(s));
  memset(p, 0xab, s->bytes());
  g_page_heap.free(s);
  PageHeapStats st = g_page_heap.stats();
  ck_assert_uint_lt(st.released_bytes, st.free_bytes);  // some are dirty
  ck_assert(all_bytes(p, 16 * kPageSize, 0xab));        // not released yet
  size_t released = g_page_heap.release(0);
  ck_assert_uint_ge(released, 16 * kPageSize);
  st = g_page_heap.stats();
  ck_assert_uint_eq(st.released_bytes, st.free_bytes);
  ck_assert_msg(all_bytes(p, 16 * kPageSize, 0), "released pages not zero");
  ck_assert_uint_eq(g_page_heap.release(0), 0);  // nothing left to do
  g_page_heap.free(g1);
  g_page_heap.free(g2);
  check_accounting();
}

END_TEST

// allocate() reports a span as zeroed only when every page is fresh or was
// released since it was last used, also after splits and merges of partly
// released spans (calloc skips its memset on that word).
START_TEST(zeroed_only_when_every_page_was_released) {
  Span* g1 = must_allocate(1);
  Span* a = must_allocate(8);
  Span* b = must_allocate(8);
  Span* g2 = must_allocate(1);
  bool zeroed = true;
  // Split 16 pages, 8 dirty ones in front of 8 released ones, in two every
  // way: no part that holds a dirty page may be reported zeroed.
  for (size_t n = 1; n < 16; n++) {
    memset(span_ptr(a), 0xcd, a->bytes());
    memset(span_ptr(b), 0xcd, b->bytes());
    g_page_heap.free(b);
    g_page_heap.release(0);  // b's pages go back: they read as zeros
    g_page_heap.free(a);     // a's dirty pages join them, in front
    Span* s = g_page_heap.allocate(n, SpanState::kLarge, 0, 1, &zeroed);
    ck_assert_ptr_nonnull(s);
    ck_assert_msg(!zeroed || all_bytes(span_ptr(s), s->bytes(), 0),
                  "the %zu-page tail was reported zeroed but is not", n);
    Span* rest = g_page_heap.allocate(16 - n, SpanState::kLarge, 0, 1, &zeroed);
    ck_assert_ptr_nonnull(rest);
    ck_assert_msg(!zeroed || all_bytes(span_ptr(rest), rest->bytes(), 0),
                  "the %zu-page head was reported zeroed but is not", 16 - n);
    g_page_heap.free(s);
    g_page_heap.free(rest);
    b = must_allocate(8);  // the back half (the tail is taken first)
    a = must_allocate(8);
  }
  g_page_heap.free(a);
  g_page_heap.free(b);
  // Released as a whole, any part is zeroed.
  g_page_heap.release(0);
  Span* s = g_page_heap.allocate(5, SpanState::kLarge, 0, 1, &zeroed);
  ck_assert(zeroed);
  ck_assert(all_bytes(span_ptr(s), s->bytes(), 0));
  memset(span_ptr(s), 1, s->bytes());
  g_page_heap.free(s);
  s = g_page_heap.allocate(5, SpanState::kLarge, 0, 1, &zeroed);
  ck_assert(!zeroed);  // just freed dirty
  g_page_heap.free(s);
  g_page_heap.free(g1);
  g_page_heap.free(g2);
  check_accounting();
}

END_TEST

// RSMALLOC_THP=always: only the whole huge pages inside a free span go
// back; the parts of huge pages it shares with spans in use stay resident.
START_TEST(huge_pages_released_whole) {
  rs::g_config.thp = rs::ThpSetting::kAlways;
  const size_t huge_pages = rs::kHugePageSize / kPageSize;
  Span* g1 = must_allocate(1);
  Span* s = must_allocate(2 * huge_pages + 1);  // holds 1 or 2 huge pages
  Span* g2 = must_allocate(1);
  unsigned char* p = static_cast<unsigned char*>(span_ptr(s));
  size_t bytes = s->bytes();
  memset(p, 0xab, bytes);
  g_page_heap.free(s);
  size_t released = g_page_heap.release(0);
  uintptr_t lo = rs::align_up(rs::addr(p), rs::kHugePageSize);
  uintptr_t hi = (rs::addr(p) + bytes) & ~(rs::kHugePageSize - 1);
  ck_assert_uint_gt(hi, lo);
  ck_assert_uint_lt(hi - lo, bytes);  // an edge shares a huge page
  ck_assert_uint_ge(released, hi - lo);
  for (uintptr_t a = rs::addr(p); a < rs::addr(p) + bytes; a += kPageSize) {
    unsigned char want = a >= lo && a < hi ? 0 : 0xab;
    ck_assert_msg(*reinterpret_cast<unsigned char*>(a) == want,
                  "byte at offset %zu: %u, want %u",
                  static_cast<size_t>(a - rs::addr(p)),
                  *reinterpret_cast<unsigned char*>(a), want);
  }
  ck_assert_uint_eq(g_page_heap.release(0), 0);  // nothing more to give
  // Its dirty edges keep the span from counting as zeroed (calloc).
  bool zeroed = true;
  Span* again = g_page_heap.allocate(2 * huge_pages + 1, SpanState::kLarge, 0,
                                     1, &zeroed);
  ck_assert_ptr_nonnull(again);
  ck_assert_msg(!zeroed || all_bytes(span_ptr(again), again->bytes(), 0),
                "a span with dirty pages was reported zeroed");
  g_page_heap.free(again);
  g_page_heap.free(g1);
  g_page_heap.free(g2);
  check_accounting();
  rs::g_config.thp = rs::ThpSetting::kAuto;
}

END_TEST

START_TEST(decay_zero_releases_at_once) {
  rs::g_config.decay_ms = 0;
  Span* g1 = must_allocate(1);
  Span* s = must_allocate(8);
  Span* g2 = must_allocate(1);
  unsigned char* p = static_cast<unsigned char*>(span_ptr(s));
  memset(p, 0xcd, s->bytes());
  g_page_heap.free(s);
  PageHeapStats st = g_page_heap.stats();
  ck_assert_uint_eq(st.released_bytes, st.free_bytes);
  ck_assert(all_bytes(p, 8 * kPageSize, 0));
  g_page_heap.free(g1);
  g_page_heap.free(g2);
}

END_TEST

START_TEST(decay_releases_after_the_delay) {
  rs::g_config.decay_ms = 100;
  Span* g1 = must_allocate(1);
  Span* s = must_allocate(16);
  Span* g2 = must_allocate(1);
  unsigned char* p = static_cast<unsigned char*>(span_ptr(s));
  memset(p, 0xef, s->bytes());
  g_page_heap.free(s);
  ck_assert(all_bytes(p, 16 * kPageSize, 0xef));  // too early
  usleep(250 * 1000);
  // Decay piggybacks on the next call; that call then takes one page
  // from the top of the freed span, which leaves the lower 15.
  Span* one = must_allocate(1);
  ck_assert_msg(all_bytes(p, 15 * kPageSize, 0), "not released after decay");
  PageHeapStats st = g_page_heap.stats();
  ck_assert_uint_ge(st.released_bytes, 15 * kPageSize);
  g_page_heap.free(one);
  g_page_heap.free(g1);
  g_page_heap.free(g2);
  check_accounting();
}

END_TEST

// --- misuse and failures

START_TEST(free_large_checks_the_pointer) {
  Span* s = must_allocate(4);
  char* p = static_cast<char*>(span_ptr(s));
  ck_assert(!g_page_heap.free_large(s, p + 16));
  ck_assert(!g_page_heap.free_large(s, p + kPageSize));
  ck_assert(s->state == SpanState::kLarge);  // untouched
  ck_assert_uint_eq(mislabelled_pages(s, 0), 0);
  size_t large = g_page_heap.stats().large_bytes;
  ck_assert(g_page_heap.free_large(s, p));
  ck_assert_uint_eq(g_page_heap.stats().large_bytes, large - 4 * kPageSize);
  ck_assert(!g_page_heap.free_large(s, p));  // a double free
  Span* small = must_allocate(2, SpanState::kSmall, 5);
  ck_assert(!g_page_heap.free_large(small, span_ptr(small)));
  ck_assert(small->state == SpanState::kSmall);
  check_accounting();
}

END_TEST

START_TEST(out_of_memory_returns_null) {
  Span* warm = must_allocate(3);
  memset(span_ptr(warm), 0x3c, warm->bytes());
  PageHeapStats before = g_page_heap.stats();
  // 2^49 bytes: more than the address space.
  ck_assert_ptr_null(g_page_heap.allocate(
      size_t{1} << (sizeof(size_t) == 8 ? 36 : 19), SpanState::kLarge, 0));
  // n + align - 1 overflows.
  ck_assert_ptr_null(
      g_page_heap.allocate(SIZE_MAX - 2, SpanState::kLarge, 0, 8));
  ck_assert_ptr_null(g_page_heap.allocate(SIZE_MAX, SpanState::kLarge, 0));
  ck_assert_ptr_null(
      g_page_heap.allocate(SIZE_MAX >> rs::kPageShift, SpanState::kLarge, 0));
  // Free pages may have been unmapped to make room; what is in use stays.
  PageHeapStats after = g_page_heap.stats();
  ck_assert_uint_eq(after.heap_mapped_bytes - after.free_bytes,
                    before.heap_mapped_bytes - before.free_bytes);
  ck_assert_uint_eq(after.large_bytes, before.large_bytes);
  check_accounting();
  ck_assert(warm->state == SpanState::kLarge);
  ck_assert_uint_eq(mislabelled_pages(warm, 0), 0);
  ck_assert(all_bytes(span_ptr(warm), warm->bytes(), 0x3c));
  // Still works.
  Span* s = must_allocate(2);
  ck_assert_uint_eq(mislabelled_pages(s, 0), 0);
  g_page_heap.free(s);
  g_page_heap.free(warm);
  check_accounting();
}

END_TEST

START_TEST(unmap_free_gives_address_space_back) {
  Span* keep = must_allocate(5);
  memset(span_ptr(keep), 0x6e, keep->bytes());
  Span* gone = must_allocate(7);
  uintptr_t gone_first = gone->first_page;
  char* gone_ptr = static_cast<char*>(span_ptr(gone));
  g_page_heap.free(gone);
  PageHeapStats a = g_page_heap.stats();
  ck_assert_uint_gt(a.free_bytes, 0);
  ck_assert_uint_eq(g_page_heap.unmap_free(), a.free_bytes);
  PageHeapStats b = g_page_heap.stats();
  ck_assert_uint_eq(b.free_bytes, 0);
  ck_assert_uint_eq(b.released_bytes, 0);
  ck_assert_uint_eq(b.free_spans, 0);
  ck_assert_uint_eq(b.heap_mapped_bytes, a.heap_mapped_bytes - a.free_bytes);
  check_accounting();
  // The free pages are gone from the page map and from the process.
  for (uintptr_t p = gone_first; p < gone_first + 7; p++)
    ck_assert_ptr_null(g_page_map.span_at(p));
  unsigned char vec;
  ck_assert_int_eq(mincore(gone_ptr, 4096, &vec), -1);  // a hole now
  // The span in use is untouched.
  ck_assert_uint_eq(mislabelled_pages(keep, 0), 0);
  ck_assert(all_bytes(span_ptr(keep), keep->bytes(), 0x6e));
  ck_assert_uint_eq(g_page_heap.unmap_free(), 0);
  // The heap grows again, and a span next to the hole frees cleanly.
  Span* again = must_allocate(9);
  ck_assert_uint_eq(mislabelled_pages(again, 0), 0);
  g_page_heap.free(keep);
  g_page_heap.free(again);
  check_accounting();
  PageHeapStats c = g_page_heap.stats();
  ck_assert_uint_eq(c.free_bytes, c.heap_mapped_bytes);
  ck_assert_uint_eq(c.large_bytes, 0);
}

END_TEST

START_TEST(recorded_mapping) {
  // A mapping made by the caller (as large.cc does), 8 KiB aligned.
  size_t bytes = 5 * kPageSize;
  char* raw = static_cast<char*>(mmap(nullptr, bytes + kPageSize,
                                      PROT_READ | PROT_WRITE,
                                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ck_assert(raw != MAP_FAILED);
  char* p = reinterpret_cast<char*>(rs::align_up(rs::addr(raw), kPageSize));
  PageHeapStats a = g_page_heap.stats();
  Span* s = g_page_heap.record_mapping(p, bytes);
  ck_assert_ptr_nonnull(s);
  ck_assert(s->state == SpanState::kMapped);
  ck_assert_uint_eq(s->start(), rs::addr(p));
  ck_assert_uint_eq(s->mapped_bytes, bytes);
  ck_assert_ptr_eq(g_page_map.span_of(p), s);
  ck_assert_ptr_eq(g_page_map.span_of(p + bytes - 1), s);
  ck_assert_uint_eq(g_page_map.class_of(p), 0);
  PageHeapStats b = g_page_heap.stats();
  ck_assert_uint_eq(b.mapped_large_bytes, a.mapped_large_bytes + bytes);
  ck_assert_uint_eq(b.mapped_large_count, a.mapped_large_count + 1);
  ck_assert(!g_page_heap.forget_mapping(s, p + kPageSize));
  ck_assert(!g_page_heap.free_large(s, p));  // not a heap span
  ck_assert_ptr_eq(g_page_map.span_of(p), s);
  ck_assert(g_page_heap.forget_mapping(s, p));
  ck_assert_ptr_null(g_page_map.span_of(p));
  ck_assert_ptr_null(g_page_map.span_of(p + bytes - 1));
  PageHeapStats c = g_page_heap.stats();
  ck_assert_uint_eq(c.mapped_large_bytes, a.mapped_large_bytes);
  ck_assert_uint_eq(c.mapped_large_count, a.mapped_large_count);
  munmap(raw, bytes + kPageSize);
}

END_TEST

// --- threads

namespace {

constexpr int kThreads = 4;
int g_errors;  // failures seen by worker threads (atomic)

void* heap_worker(void* arg) {
  unsigned seed = static_cast<unsigned>(reinterpret_cast<uintptr_t>(arg));
  unsigned char tag = static_cast<unsigned char>(0x10 + seed);
  Span* held[32] = {};
  for (int op = 0; op < 3000; op++) {
    unsigned r = rand_r(&seed);
    Span*& slot = held[r % 32];
    if (slot != nullptr) {
      // Nobody else wrote into it while we held it.
      const unsigned char* p =
          reinterpret_cast<const unsigned char*>(slot->start());
      if (p[0] != tag || p[slot->bytes() - 1] != tag ||
          g_page_map.span_at(slot->first_page) != slot) {
        __atomic_add_fetch(&g_errors, 1, __ATOMIC_RELAXED);
      }
      g_page_heap.free(slot);
      slot = nullptr;
    } else {
      size_t n = 1 + (r >> 8) % 40;
      size_t align = size_t{1} << ((r >> 16) % 4);
      slot = g_page_heap.allocate(n, SpanState::kLarge, 0, align);
      if (slot == nullptr || slot->first_page % align != 0) {
        __atomic_add_fetch(&g_errors, 1, __ATOMIC_RELAXED);
        slot = nullptr;
        continue;
      }
      memset(reinterpret_cast<void*>(slot->start()), tag, slot->bytes());
    }
  }
  for (Span* s : held) {
    if (s != nullptr)
      g_page_heap.free(s);
  }
  return nullptr;
}

}  // namespace

START_TEST(concurrent_allocate_and_free) {
  pthread_t t[kThreads];
  for (int i = 0; i < kThreads; i++) {
    ck_assert_int_eq(pthread_create(&t[i], nullptr, heap_worker,
                                    reinterpret_cast<void*>(uintptr_t(i + 1))),
                     0);
  }
  for (pthread_t& th : t)
    pthread_join(th, nullptr);
  ck_assert_int_eq(g_errors, 0);
  check_accounting();
  PageHeapStats st = g_page_heap.stats();
  ck_assert_uint_eq(st.large_bytes, 0);
  ck_assert_uint_eq(st.free_bytes, st.heap_mapped_bytes);
}

END_TEST

int main(void) {
  Suite* s = suite_create("page_heap");
  TCase* tc = tcase_create("allocate");
  tcase_add_checked_fixture(tc, setup, nullptr);
  tcase_add_test(tc, allocate_labels_every_page);
  tcase_add_test(tc, freed_small_span_loses_its_class);
  tcase_add_test(tc, statistics_follow_allocations);
  tcase_add_test(tc, first_chunk_grows_in_steps);
  suite_add_tcase(s, tc);
  tc = tcase_create("coalesce");
  tcase_add_checked_fixture(tc, setup, nullptr);
  tcase_add_loop_test(tc, coalesce_small_spans, 0, 6);
  tcase_add_loop_test(tc, coalesce_long_spans, 0, 6);
  suite_add_tcase(s, tc);
  tc = tcase_create("align");
  tcase_add_checked_fixture(tc, setup, nullptr);
  tcase_add_test(tc, aligned_allocation);
  tcase_add_test(tc, aligned_small_span_keeps_class);
  suite_add_tcase(s, tc);
  tc = tcase_create("release");
  tcase_add_checked_fixture(tc, setup, nullptr);
  tcase_add_test(tc, release_returns_dirty_pages);
  tcase_add_test(tc, zeroed_only_when_every_page_was_released);
  tcase_add_test(tc, huge_pages_released_whole);
  tcase_add_test(tc, decay_zero_releases_at_once);
  tcase_add_test(tc, decay_releases_after_the_delay);
  suite_add_tcase(s, tc);
  tc = tcase_create("misuse");
  tcase_add_checked_fixture(tc, setup, nullptr);
  tcase_add_test(tc, free_large_checks_the_pointer);
  tcase_add_test(tc, out_of_memory_returns_null);
  tcase_add_test(tc, unmap_free_gives_address_space_back);
  tcase_add_test(tc, recorded_mapping);
  suite_add_tcase(s, tc);
  tc = tcase_create("threads");
  tcase_add_checked_fixture(tc, setup, nullptr);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, concurrent_allocate_and_free);
  suite_add_tcase(s, tc);
  return rs_check_run(s, "test_page_heap");
}
