// SPDX-License-Identifier: MIT
// Unit tests of the radix page map (lib/page_map.h): lookups of addresses
// that are not ours, lazily mapped leaves, and ranges across leaf borders.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../check_main.h"
#include "page_map.h"
#include "size_class.h"

namespace {

using rs::PageMap;

// A private map per test: the page map stores pointers and never
// dereferences the addresses it describes, so fake page numbers and fake
// spans will do. (Its leaves are never unmapped, by design.)
PageMap* g_map;
rs::Span g_fake[3];

void setup() {
  g_map = new PageMap();  // value-initialised: every root entry empty
}

void teardown() {
  delete g_map;
  g_map = nullptr;
}

void* page_addr(uintptr_t page, size_t offset = 0) {
  return reinterpret_cast<void*>((page << rs::kPageShift) + offset);
}

constexpr uintptr_t kTopPage = (uintptr_t{1} << PageMap::kPageBits) - 1;

}  // namespace

// A leaf is reserved read-only and its entries made writable in pieces
// (64 KiB of entries on 64-bit targets, kLeafLength / 64 pages) as
// ensure() reaches them; a piece no ensure() reached still reads as empty.
// Past the eight leaves whose pieces are tracked, a leaf is made writable
// whole. A write to an entry that was not made writable would crash here.
START_TEST(leaf_pieces_writable_where_ensured) {
  const uintptr_t piece = PageMap::kLeafLength / 64;
  const uintptr_t base = uintptr_t{5} << PageMap::kLeafBits;
  const uintptr_t pages[][2] = {
      {base + 7, 1},                  // in the first piece
      {base + 10 * piece + 3, 2},     // another, far from it
      {base + 20 * piece - 1, 2},     // across a piece border
      {base + 63 * piece, piece},     // the last piece, whole
      {base + 10 * piece + 100, 50},  // again in a writable one
  };
  for (const auto& r : pages) {
    ck_assert(g_map->ensure(r[0], r[1]));
    g_map->set_range(r[0], r[1], &g_fake[0], 7);
  }
  for (const auto& r : pages) {
    ck_assert_ptr_eq(g_map->span_at(r[0]), &g_fake[0]);
    ck_assert_ptr_eq(g_map->span_at(r[0] + r[1] - 1), &g_fake[0]);
    ck_assert_uint_eq(g_map->class_of(page_addr(r[0] + r[1] - 1, 8)), 7);
  }
  // Never ensured: zeros, from a piece still read-only.
  ck_assert_ptr_null(g_map->span_at(base + 40 * piece));
  ck_assert_uint_eq(g_map->class_of(page_addr(base + 40 * piece)), 0);
  // Twelve more leaves, past the tracked ones, one page each.
  for (uintptr_t leaf = 10; leaf < 22; leaf++) {
    uintptr_t page = (leaf << PageMap::kLeafBits) + 3 * piece + leaf;
    ck_assert(g_map->ensure(page, 1));
    g_map->set_range(page, 1, &g_fake[1], 9);
    ck_assert_ptr_eq(g_map->span_at(page), &g_fake[1]);
    ck_assert(g_map->ensure(page + 30 * piece, 1));  // later, elsewhere
    g_map->set_range(page + 30 * piece, 1, &g_fake[2], 9);
    ck_assert_ptr_eq(g_map->span_at(page + 30 * piece), &g_fake[2]);
  }
}

END_TEST

START_TEST(geometry_covers_48_bits) {
  ck_assert_uint_eq(PageMap::kPageBits + rs::kPageShift, rs::kAddressBits);
  ck_assert_uint_eq(PageMap::kRootBits + PageMap::kLeafBits,
                    PageMap::kPageBits);
}

END_TEST

START_TEST(nothing_is_ours_in_an_empty_map) {
  int on_stack = 0;
  void* from_glibc = malloc(64);
  const void* probes[] = {
      nullptr,
      &on_stack,
      from_glibc,
      g_map,
      reinterpret_cast<void*>(&geometry_covers_48_bits),
      page_addr(1),
      page_addr(kTopPage, rs::kPageSize - 1),  // the last byte below 2^48
  };
  for (const void* p : probes) {
    ck_assert_uint_eq(g_map->class_of(p), 0);
    ck_assert_ptr_null(g_map->span_of(p));
  }
  free(from_glibc);
  ck_assert_uint_eq(g_map->leaf_bytes(), 0);  // lookups map nothing
}

END_TEST

START_TEST(addresses_above_48_bits_are_not_ours) {
  if (sizeof(void*) == 4)
    return;  // the map covers every 32-bit address: nothing lies above it
  // Even with every leaf that could alias them present and filled.
  ck_assert(g_map->ensure(0, 1));
  g_map->set_range(0, 1, &g_fake[0], 9);
  ck_assert(g_map->ensure(kTopPage, 1));
  g_map->set_range(kTopPage, 1, &g_fake[1], 9);
  const uintptr_t probes[] = {
#if UINTPTR_MAX > 0xffffffffu
    uintptr_t{1} << rs::kAddressBits,  // 47 bits on x86-64
    uintptr_t{1} << 48,
    (uintptr_t{1} << 48) + 8,
    (uintptr_t{1} << 48) + (kTopPage << rs::kPageShift),
    uintptr_t{1} << 56,
    uintptr_t{0xffff800000000000},  // kernel half
#endif
    UINTPTR_MAX,  // on 32-bit targets the map covers every address
  };
  for (uintptr_t a : probes) {
    const void* p = reinterpret_cast<void*>(a);
    ck_assert_msg(g_map->class_of(p) == 0, "class_of(%#lx) != 0",
                  static_cast<unsigned long>(a));
    ck_assert_msg(g_map->span_of(p) == nullptr, "span_of(%#lx) != nullptr",
                  static_cast<unsigned long>(a));
  }
  ck_assert_ptr_null(g_map->span_at(kTopPage + 1));
  ck_assert_ptr_null(g_map->span_at(UINTPTR_MAX >> rs::kPageShift));
  // The pages that were set still read back.
  ck_assert_ptr_eq(g_map->span_of(page_addr(0, 100)), &g_fake[0]);
  ck_assert_ptr_eq(g_map->span_of(page_addr(kTopPage, 100)), &g_fake[1]);
  ck_assert_uint_eq(g_map->class_of(page_addr(kTopPage)), 9);
}

END_TEST

START_TEST(global_map_does_not_claim_foreign_memory) {
  int on_stack = 0;
  void* from_glibc = malloc(100);
  ck_assert_uint_eq(rs::g_page_map.class_of(nullptr), 0);
  ck_assert_ptr_null(rs::g_page_map.span_of(nullptr));
  ck_assert_uint_eq(rs::g_page_map.class_of(&on_stack), 0);
  ck_assert_ptr_null(rs::g_page_map.span_of(&on_stack));
  ck_assert_uint_eq(rs::g_page_map.class_of(from_glibc), 0);
  ck_assert_ptr_null(rs::g_page_map.span_of(from_glibc));
  ck_assert_uint_eq(rs::g_page_map.class_of(reinterpret_cast<void*>(~0ul)), 0);
  free(from_glibc);
}

END_TEST

START_TEST(range_across_a_leaf_border) {
  const uintptr_t first = 5 * PageMap::kLeafLength - 3;
  const size_t n = 10;  // 3 pages in leaf 4, 7 in leaf 5
  ck_assert(g_map->ensure(first, n));
  ck_assert_uint_eq(g_map->leaf_bytes(), 2 * sizeof(PageMap::Leaf));
  ck_assert(g_map->ensure(first + 1, n - 2));  // already there: maps nothing
  ck_assert_uint_eq(g_map->leaf_bytes(), 2 * sizeof(PageMap::Leaf));

  g_map->set_range(first, n, &g_fake[0], 7);
  for (uintptr_t p = first; p < first + n; p++) {
    ck_assert_ptr_eq(g_map->span_at(p), &g_fake[0]);
    ck_assert_ptr_eq(g_map->span_of(page_addr(p)), &g_fake[0]);
    ck_assert_ptr_eq(g_map->span_of(page_addr(p, rs::kPageSize - 1)),
                     &g_fake[0]);
    ck_assert_uint_eq(g_map->class_of(page_addr(p, 16)), 7);
  }
  // The neighbours are in mapped leaves but were not set.
  ck_assert_ptr_null(g_map->span_at(first - 1));
  ck_assert_uint_eq(g_map->class_of(page_addr(first - 1)), 0);
  ck_assert_ptr_null(g_map->span_at(first + n));
  ck_assert_uint_eq(g_map->class_of(page_addr(first + n)), 0);

  // Overwrite a middle run that again crosses the border.
  g_map->set_range(first + 2, 3, &g_fake[1], 0);
  for (uintptr_t p = first; p < first + n; p++) {
    bool mid = p >= first + 2 && p < first + 5;
    ck_assert_ptr_eq(g_map->span_at(p), mid ? &g_fake[1] : &g_fake[0]);
    ck_assert_uint_eq(g_map->class_of(page_addr(p)), mid ? 0 : 7);
  }

  // And clear it all.
  g_map->set_range(first, n, nullptr, 0);
  for (uintptr_t p = first; p < first + n; p++) {
    ck_assert_ptr_null(g_map->span_at(p));
    ck_assert_uint_eq(g_map->class_of(page_addr(p)), 0);
  }
}

END_TEST

START_TEST(range_spanning_three_leaves) {
  const uintptr_t first = 7 * PageMap::kLeafLength + 5;
  const size_t n = 2 * PageMap::kLeafLength;  // leaves 7, 8 and 9
  ck_assert(g_map->ensure(first, n));
  ck_assert_uint_eq(g_map->leaf_bytes(), 3 * sizeof(PageMap::Leaf));
  g_map->set_range(first, n, &g_fake[2], 3);
  size_t bad = 0;
  for (uintptr_t p = first; p < first + n; p++) {
    if (g_map->span_at(p) != &g_fake[2] || g_map->class_of(page_addr(p)) != 3)
      bad++;
  }
  ck_assert_uint_eq(bad, 0);
  ck_assert_ptr_null(g_map->span_at(first - 1));
  ck_assert_ptr_null(g_map->span_at(first + n));
}

END_TEST

START_TEST(ensure_limits) {
  ck_assert(g_map->ensure(12345, 0));  // nothing to do
  ck_assert_uint_eq(g_map->leaf_bytes(), 0);
  ck_assert(!g_map->ensure(kTopPage, 2));  // runs past 2^48
  ck_assert(!g_map->ensure(kTopPage + 1, 1));
  if (UINTPTR_MAX >> rs::kPageShift > kTopPage)  // 64-bit: beyond the map
    ck_assert(!g_map->ensure(UINTPTR_MAX >> rs::kPageShift, 1));
  ck_assert_uint_eq(g_map->leaf_bytes(), 0);
  ck_assert(g_map->ensure(kTopPage, 1));  // the last page is fine
  ck_assert_uint_eq(g_map->leaf_bytes(), sizeof(PageMap::Leaf));
  g_map->set_range(kTopPage, 1, &g_fake[0], 5);
  ck_assert_ptr_eq(g_map->span_of(page_addr(kTopPage, 4000)), &g_fake[0]);
  ck_assert_uint_eq(g_map->class_of(page_addr(kTopPage, 4000)), 5);
}

END_TEST

// object_at's divisibility check for every class, every 16-byte aligned
// offset of a span (the only pointers malloc hands out are 16-byte
// aligned), with the span at the top of the address space, where p x m is
// largest, and near the bottom: true exactly at the objects' starts.
// Holds for 32-bit uintptr_t too, where p and the span start are widened
// before the multiplications.
START_TEST(object_at_every_class_and_offset) {
  const uintptr_t top_page = kTopPage + 1;  // one past the last page
  size_t wrong = 0;
  for (size_t c = 1; c < rs::kNumClasses; c++) {
    const rs::ClassInfo& ci = rs::class_info(c);
    const uintptr_t places[] = {top_page - ci.span_pages,
                                PageMap::kLeafLength - 1};
    for (uintptr_t first : places) {
      rs::Span span = {};
      span.first_page = first;
      span.num_pages = ci.span_pages;
      span.size_class = static_cast<uint8_t>(c);
      span.state = rs::SpanState::kSmall;
      ck_assert(g_map->ensure(first, span.num_pages));
      g_map->set_range(first, span.num_pages, &span, span.size_class);
      g_map->set_fast_free(&span, 2 * span.num_pages, 0, 0);
      const size_t used = size_t{ci.objects} * ci.size;
      for (size_t off = 0; off < used; off += 16) {
        size_t cls = 0;
        bool at = g_map->object_at(page_addr(first, off), &cls);
        bool want = off % ci.size == 0;
        if (at != want || (at && cls != c)) {
          if (wrong++ < 5)
            fprintf(stderr, "class %zu (%u B), offset %zu: object_at %d\n", c,
                    ci.size, off, at);
        }
        if (g_map->object_at(page_addr(first, off + 8), &cls))
          wrong++;  // never an object start
      }
      g_map->set_range(first, span.num_pages, nullptr, 0);
      size_t cls = 0;
      ck_assert(!g_map->object_at(page_addr(first), &cls));  // gone
    }
  }
  ck_assert_uint_eq(wrong, 0);
}

END_TEST

/// free's split lookup: class_at, then starts_slot only when the class tag
/// did not vouch for the pointer. starts_slot agrees with object_at, and a
/// class read before the page's span was reused for another class never
/// passes with the new span's check.
START_TEST(starts_slot_agrees_and_sees_reuse) {
  size_t a = 3, b = 5;  // 48 and 80 bytes: different slot grids
  const rs::ClassInfo& ca = rs::class_info(a);
  const uintptr_t first = 1000;
  rs::Span span = {};
  span.first_page = first;
  span.num_pages = ca.span_pages;
  span.size_class = static_cast<uint8_t>(a);
  span.state = rs::SpanState::kSmall;
  ck_assert(g_map->ensure(first, 64));
  g_map->set_range(first, span.num_pages, &span, span.size_class);
  g_map->set_fast_free(&span, 2 * span.num_pages, 0, 0);
  size_t wrong = 0;
  for (size_t off = 0; off < 4096; off += 16) {
    PageMap::Entry e;
    size_t cls = g_map->class_at(page_addr(first, off), &e);
    size_t want_cls = 0;
    bool want = g_map->object_at(page_addr(first, off), &want_cls);
    if (cls != a || PageMap::starts_slot(page_addr(first, off), e, cls) != want)
      wrong++;
  }
  ck_assert_uint_eq(wrong, 0);

  // 160 is a slot start in b's grid (2 x 80) but not in a's (48).
  PageMap::Entry e;
  void* p = page_addr(first, 160);
  ck_assert_uint_eq(g_map->class_at(p, &e), a);
  ck_assert(!PageMap::starts_slot(p, e, a));
  // 480 is a slot start in both: read with class a, then the span is
  // reused for class b before the slot check.
  void* q = page_addr(first, 480);
  PageMap::Entry eq;
  ck_assert_uint_eq(g_map->class_at(q, &eq), a);
  ck_assert(PageMap::starts_slot(q, eq, a));
  rs::Span reused = span;
  reused.size_class = static_cast<uint8_t>(b);
  g_map->set_range(first, reused.num_pages, &reused, reused.size_class);
  g_map->set_fast_free(&reused, 2 * reused.num_pages, 0, 0);
  ck_assert(!PageMap::starts_slot(q, eq, a));  // stale class: refused
  ck_assert(PageMap::starts_slot(q, eq, b));
  g_map->set_range(first, reused.num_pages, nullptr, 0);
  ck_assert(!PageMap::starts_slot(q, eq, b));  // check off with the span
}

END_TEST

/// A page on for its first half only (an odd count of half pages: the
/// span's carving has not reached the page's second half, whose slots
/// carry no free mark yet): slots that start in the first half pass, those
/// that start in the second never do, and every slot passes once the count
/// covers the whole page. Every class below 4 KiB (the classes whose
/// carving marks ahead), every count, every 16-byte offset.
START_TEST(half_pages_pass_only_their_first_half) {
  size_t wrong = 0, half_pages = 0;
  for (size_t c = 1; c < rs::kNumClasses; c++) {
    const rs::ClassInfo& ci = rs::class_info(c);
    if (ci.size >= 4096)
      continue;
    const uintptr_t first = 3000;
    rs::Span span = {};
    span.first_page = first;
    span.num_pages = ci.span_pages;
    span.size_class = static_cast<uint8_t>(c);
    span.state = rs::SpanState::kSmall;
    ck_assert(g_map->ensure(first, span.num_pages));
    g_map->set_range(first, span.num_pages, &span, span.size_class);
    const size_t used = size_t{ci.objects} * ci.size;
    for (size_t halves = 0; halves <= 2 * span.num_pages; halves++) {
      g_map->set_fast_free(&span, halves, 0, 0);
      half_pages += halves % 2;
      for (size_t off = 0; off < used; off += 16) {
        size_t cls = 0;
        bool at = g_map->object_at(page_addr(first, off), &cls);
        bool want = off % ci.size == 0 && (off >> PageMap::kHalfShift) < halves;
        if (at != want && wrong++ < 5)
          fprintf(stderr, "class %zu (%u B), %zu halves, offset %zu: %d\n", c,
                  ci.size, halves, off, at);
      }
    }
    g_map->set_range(first, span.num_pages, nullptr, 0);
  }
  ck_assert_uint_eq(wrong, 0);
  ck_assert_uint_gt(half_pages, 0);
}

END_TEST

int main(void) {
  Suite* s = suite_create("page_map");
  TCase* tc = tcase_create("lookup");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, geometry_covers_48_bits);
  tcase_add_test(tc, nothing_is_ours_in_an_empty_map);
  tcase_add_test(tc, addresses_above_48_bits_are_not_ours);
  tcase_add_test(tc, global_map_does_not_claim_foreign_memory);
  suite_add_tcase(s, tc);
  tc = tcase_create("ranges");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, range_across_a_leaf_border);
  tcase_add_test(tc, leaf_pieces_writable_where_ensured);
  tcase_add_test(tc, range_spanning_three_leaves);
  tcase_add_test(tc, half_pages_pass_only_their_first_half);
  tcase_add_test(tc, ensure_limits);
  tcase_add_test(tc, object_at_every_class_and_offset);
  tcase_add_test(tc, starts_slot_agrees_and_sees_reuse);
  suite_add_tcase(s, tc);
  return rs_check_run(s, "test_page_map");
}
