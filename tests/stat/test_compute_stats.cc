// SPDX-License-Identifier: MIT
// Unit tests of compute_stats (lib/stats.h), which both collect_stats and
// `rsmalloc stat` run: exact figures from consistent counters, and no
// negative (wrapped-around) figure from counters read out of step, as a
// read from outside the process can see them.
#include <string.h>

#include "../check_main.h"
#include "stats.h"

namespace {

rs::StatsInputs g_in;

void setup() {
  memset(&g_in, 0, sizeof(g_in));
}

// No figure may be larger than everything the inputs hold: a subtraction
// that went below zero wraps around to near SIZE_MAX.
void assert_no_wrap(const rs::Stats& s) {
  const size_t kLimit = SIZE_MAX / 2;
  ck_assert_uint_lt(s.in_use_bytes, kLimit);
  ck_assert_uint_lt(s.small_in_use_bytes, kLimit);
  ck_assert_uint_lt(s.large_in_use_bytes, kLimit);
  ck_assert_uint_lt(s.cpu_cache_bytes, kLimit);
  ck_assert_uint_lt(s.central_free_bytes, kLimit);
  ck_assert_uint_lt(s.heap_free_bytes, kLimit);
  ck_assert_uint_lt(s.released_bytes, kLimit);
  for (size_t c = 1; c < rs::kNumClasses; c++) {
    ck_assert_uint_lt(s.classes[c].in_use, kLimit);
    ck_assert_uint_lt(s.classes[c].free, kLimit);
  }
}

START_TEST(consistent_counters_give_exact_figures) {
  size_t c = rs::size_class_of(48);
  g_in.central[c] = {2, 100, 340, 0};  // spans, allocated, capacity, released
  g_in.cached[c] = 30;
  g_in.heap.large_bytes = 1 << 20;
  g_in.heap.free_bytes = 64 << 10;
  g_in.heap.released_bytes = 16 << 10;
  g_in.cached_mappings = 8 << 20;
  rs::Stats s;
  rs::compute_stats(&s, g_in);
  ck_assert_uint_eq(s.classes[c].in_use, 70);
  ck_assert_uint_eq(s.classes[c].cached, 30);
  ck_assert_uint_eq(s.classes[c].free, 240);
  ck_assert_uint_eq(s.small_in_use_bytes, 70 * 48);
  ck_assert_uint_eq(s.cpu_cache_bytes, 30 * 48);
  ck_assert_uint_eq(s.large_in_use_bytes, 1 << 20);
  ck_assert_uint_eq(s.in_use_bytes, 70 * 48 + (1 << 20));
  ck_assert_uint_eq(s.heap_free_bytes, (48 << 10) + (8 << 20));
  ck_assert_uint_eq(s.released_bytes, 16 << 10);
}

END_TEST

START_TEST(counters_out_of_step_never_go_negative) {
  size_t c = rs::size_class_of(1024);
  // More cached than allocated, more allocated than capacity, more
  // released than free: each one half of an update seen without the other.
  g_in.central[c] = {1, 10, 8, 1 << 20};
  g_in.cached[c] = 50;
  size_t d = rs::size_class_of(16);
  g_in.central[d] = {1, 5, 512, 0};
  g_in.cached[d] = 9;
  g_in.heap.free_bytes = 8192;
  g_in.heap.released_bytes = 65536;
  g_in.held_large = 1 << 20;  // more than the large bytes in use (0)
  rs::Stats s;
  rs::compute_stats(&s, g_in);
  assert_no_wrap(s);
  ck_assert_uint_eq(s.classes[c].in_use, 0);
  ck_assert_uint_eq(s.classes[d].in_use, 0);
  ck_assert_uint_eq(s.large_in_use_bytes, 0);
  ck_assert_uint_eq(s.small_in_use_bytes + s.large_in_use_bytes,
                    s.in_use_bytes);
}

END_TEST

}  // namespace

int main(void) {
  Suite* s = suite_create("compute_stats");
  TCase* tc = tcase_create("compute_stats");
  tcase_add_checked_fixture(tc, setup, nullptr);
  tcase_add_test(tc, consistent_counters_give_exact_figures);
  tcase_add_test(tc, counters_out_of_step_never_go_negative);
  suite_add_tcase(s, tc);
  return rs_check_run(s, "test_compute_stats");
}
