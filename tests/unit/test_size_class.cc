// SPDX-License-Identifier: MIT
// Unit tests of the size-class table (lib/size_class.h): every request maps
// to the smallest class that fits, alignment, waste, span geometry, division.
#include <stdio.h>

#include "../check_main.h"
#include "rseq/cpu_cache.h"
#include "size_class.h"

namespace {

using rs::class_info;
using rs::class_size;
using rs::kNumClasses;
using rs::size_class_of;

size_t span_bytes(size_t cls) {
  return size_t{class_info(cls).span_pages} * rs::kPageSize;
}

}  // namespace

// Loops below count failures and assert once: every ck_assert writes to
// Check's pipe, far too slow for millions of checks.

START_TEST(every_request_gets_a_class_that_fits) {
  size_t bad = 0, first_bad = SIZE_MAX;
  for (size_t n = 0; n <= rs::kMaxSmallSize; n++) {
    size_t cls = size_class_of(n);
    if (cls == 0 || cls >= kNumClasses || class_size(cls) < n) {
      if (bad++ == 0)
        first_bad = n;
    }
  }
  ck_assert_msg(bad == 0, "%zu requests get a class too small, first %zu", bad,
                first_bad);
}

END_TEST

START_TEST(every_request_gets_the_smallest_class) {
  size_t bad = 0, first_bad = SIZE_MAX;
  for (size_t n = 0; n <= rs::kMaxSmallSize; n++) {
    size_t cls = size_class_of(n);
    // The class below must be too small (or there is none).
    if (cls > 1 && cls < kNumClasses && class_size(cls - 1) >= n) {
      if (bad++ == 0)
        first_bad = n;
    }
  }
  ck_assert_msg(bad == 0, "%zu requests skip a fitting class, first %zu", bad,
                first_bad);
  ck_assert_uint_eq(size_class_of(0), 1);
  ck_assert_uint_eq(size_class_of(1), 1);
  ck_assert_uint_eq(class_size(1), 16);
  ck_assert_uint_eq(size_class_of(rs::kMaxSmallSize), kNumClasses - 1);
  ck_assert_uint_eq(class_size(kNumClasses - 1), rs::kMaxSmallSize);
}

END_TEST

START_TEST(class_sizes_sorted_and_16_aligned) {
  ck_assert_uint_eq(class_size(0), 0);  // class 0: not a small object
  for (size_t c = 1; c < kNumClasses; c++) {
    ck_assert_msg(class_size(c) % rs::kMinAlign == 0, "class %zu: size %zu", c,
                  class_size(c));
    if (c > 1)
      ck_assert_uint_gt(class_size(c), class_size(c - 1));
  }
}

END_TEST

START_TEST(waste_at_most_one_eighth_above_128) {
  size_t bad = 0, first_bad = SIZE_MAX;
  for (size_t n = 129; n <= rs::kMaxSmallSize; n++) {
    size_t size = class_size(size_class_of(n));
    if ((size - n) * 8 > size) {
      if (bad++ == 0)
        first_bad = n;
    }
  }
  ck_assert_msg(bad == 0, "%zu requests waste > 12.5%%, first %zu", bad,
                first_bad);
}

END_TEST

START_TEST(power_of_two_classes_up_to_a_page) {
  for (size_t p = 16; p <= rs::kPageSize; p *= 2) {
    size_t cls = size_class_of(p);
    ck_assert_msg(class_size(cls) == p, "no class of exactly %zu bytes", p);
    // Spans start on a page, so objects are naturally aligned when they
    // tile the span exactly.
    ck_assert_uint_eq(span_bytes(cls) % p, 0);
  }
}

END_TEST

START_TEST(span_holds_its_objects) {
  for (size_t c = 1; c < kNumClasses; c++) {
    const rs::ClassInfo& ci = class_info(c);
    size_t bytes = span_bytes(c);
    ck_assert_uint_ge(ci.span_pages, 1);
    ck_assert_uint_ge(ci.objects, 1);
    // objects is exactly how many fit: one more would not.
    ck_assert_msg(size_t{ci.objects} * ci.size <= bytes, "class %zu", c);
    ck_assert_msg(size_t{ci.objects + 1u} * ci.size > bytes, "class %zu", c);
    // The tail of the span wastes at most 1/8 of it.
    ck_assert_msg((bytes - size_t{ci.objects} * ci.size) * 8 <= bytes,
                  "class %zu wastes %zu of %zu span bytes", c,
                  bytes - size_t{ci.objects} * ci.size, bytes);
    // Below 16 KiB the tail is shorter than a 4 KiB system page, so the
    // page its free mark lands on also holds the last object.
    if (ci.size < 16 * 1024) {
      ck_assert_msg(bytes - size_t{ci.objects} * ci.size < 4096,
                    "class %zu (%u bytes): a tail of %zu bytes", c, ci.size,
                    bytes - size_t{ci.objects} * ci.size);
    }
  }
}

END_TEST

START_TEST(large_classes_have_spans_of_one_or_two_objects) {
  // A span's free objects stay resident while any of its objects is in
  // use: from 16 KiB, where a class has few objects in use, a span holds
  // at most two, from 64 KiB one (and below 16 KiB, at least eight when
  // they fit in 256 KiB).
  for (size_t c = 1; c < kNumClasses; c++) {
    const rs::ClassInfo& ci = class_info(c);
    if (ci.size >= 64 * 1024) {
      ck_assert_msg(ci.objects == 1, "class %zu (%u bytes): %u objects", c,
                    ci.size, ci.objects);
    } else if (ci.size >= 16 * 1024) {
      ck_assert_msg(ci.objects <= 2, "class %zu (%u bytes): %u objects", c,
                    ci.size, ci.objects);
    } else if (size_t{ci.size} * 8 <= 256 * 1024) {
      ck_assert_msg(ci.objects >= 8, "class %zu (%u bytes): %u objects", c,
                    ci.size, ci.objects);
    }
  }
}

END_TEST

START_TEST(class_divide_matches_division) {
  // Every offset inside a span of every class.
  size_t bad = 0, checked = 0;
  char first[128] = "";
  for (size_t c = 1; c < kNumClasses; c++) {
    size_t size = class_size(c);
    size_t bytes = span_bytes(c);
    for (size_t off = 0; off < bytes; off++) {
      checked++;
      if (rs::class_divide(c, off) != off / size) {
        if (bad++ == 0) {
          snprintf(first, sizeof first, "class %zu offset %zu: %zu != %zu", c,
                   off, rs::class_divide(c, off), off / size);
        }
      }
    }
  }
  ck_assert_msg(bad == 0, "%zu of %zu divisions wrong, first %s", bad, checked,
                first);
}

END_TEST

START_TEST(batch_within_capacity) {
  for (size_t c = 1; c < kNumClasses; c++) {
    const rs::ClassInfo& ci = class_info(c);
    ck_assert_msg(ci.batch >= 1 && ci.batch <= ci.max_capacity,
                  "class %zu: batch %u, max_capacity %u", c, ci.batch,
                  ci.max_capacity);
  }
  // The per-CPU cache needs a header per class plus every class's slots
  // in one region (rseq::CpuCache::init refuses otherwise).
  ck_assert_uint_le(kNumClasses, rs::rseq::kMaxClasses);
  ck_assert_uint_le((rs::total_max_capacity() + kNumClasses) * sizeof(void*),
                    rs::rseq::kRegionBytes);
}

END_TEST

int main(void) {
  Suite* s = suite_create("size_class");
  TCase* tc = tcase_create("lookup");
  tcase_add_test(tc, every_request_gets_a_class_that_fits);
  tcase_add_test(tc, every_request_gets_the_smallest_class);
  suite_add_tcase(s, tc);
  tc = tcase_create("table");
  tcase_add_test(tc, class_sizes_sorted_and_16_aligned);
  tcase_add_test(tc, waste_at_most_one_eighth_above_128);
  tcase_add_test(tc, power_of_two_classes_up_to_a_page);
  tcase_add_test(tc, span_holds_its_objects);
  tcase_add_test(tc, large_classes_have_spans_of_one_or_two_objects);
  tcase_add_test(tc, batch_within_capacity);
  suite_add_tcase(s, tc);
  tc = tcase_create("divide");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, class_divide_matches_division);
  suite_add_tcase(s, tc);
  return rs_check_run(s, "test_size_class");
}
