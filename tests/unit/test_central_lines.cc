// SPDX-License-Identifier: MIT
// Unit tests of the central free lists' carves for CPU caches
// (lib/central_list.h, remove_to_line): where they end and start on pairs
// of cache lines, so that two CPUs' objects share no line.
#include <algorithm>
#include <stdint.h>
#include <vector>

#include "../check_main.h"
#include "central_list.h"
#include "size_class.h"

namespace {

using rs::class_info;
using rs::g_central;

/// A refill for a CPU cache that carves fresh objects ends them on a
/// 128-byte boundary (a pair of lines), within max; remove_batch does not.
START_TEST(remove_to_line_ends_on_a_line_pair) {
  static const size_t classes[] = {1, 3, 5, 7, 9};  // 16 to 144 bytes
  for (size_t cls : classes) {
    const rs::ClassInfo& ci = class_info(cls);
    void* out[64];
    int got = g_central[cls].remove_to_line(out, 1, 64);
    ck_assert_int_ge(got, 1);
    ck_assert_int_le(got, 8);  // sizes are multiples of 16
    uintptr_t end = 0;
    for (int i = 0; i < got; i++)
      end = std::max(end, reinterpret_cast<uintptr_t>(out[i]) + ci.size);
    ck_assert_msg(end % 128 == 0, "class %zu (%u B): %d objects end at %#lx",
                  cls, ci.size, got, static_cast<unsigned long>(end));
    // The next refill starts a fresh pair of lines.
    int more = g_central[cls].remove_to_line(out + got, 1, 1);
    ck_assert_int_eq(more, 1);
    ck_assert_uint_eq(reinterpret_cast<uintptr_t>(out[got]) % 128, 0);
    // Without room to spare (max == n) nothing more is carved.
    int one = g_central[cls].remove_batch(out + got + 1, 1);
    ck_assert_int_eq(one, 1);
    g_central[cls].insert_batch(out, got + 2);
  }
}

END_TEST

/// A CPU cache's carve after one carved alone (before the caches start, or
/// for a thread without rseq) takes the rest of that object's line pair,
/// beyond n, but hands out first an object that starts a whole pair and
/// puts the rest right after it: the bottom of the cache's stack.
START_TEST(remove_to_line_keeps_a_begun_pair_for_last) {
  static const size_t classes[] = {1, 3, 5, 7, 9};  // 16 to 144 bytes
  for (size_t cls : classes) {
    const rs::ClassInfo& ci = class_info(cls);
    void* alone = nullptr;
    ck_assert_int_eq(g_central[cls].remove_batch(&alone, 1), 1);
    uintptr_t a = reinterpret_cast<uintptr_t>(alone);
    void* out[64];
    int got = g_central[cls].remove_to_line(out, 2, 64);
    uintptr_t first = reinterpret_cast<uintptr_t>(out[0]);
    ck_assert_msg(first % 128 == 0 && first / 64 > (a + ci.size - 1) / 64,
                  "class %zu (%u B): %#lx carved alone, then %#lx first", cls,
                  ci.size, static_cast<unsigned long>(a),
                  static_cast<unsigned long>(first));
    // The begun pair's objects right after out[0], then whole pairs: at
    // least n (2) objects outside the begun pair, ending on a pair.
    int in_pair = 0;
    for (int i = 1; i < got; i++) {
      bool mine = reinterpret_cast<uintptr_t>(out[i]) / 128 == a / 128;
      ck_assert_msg(!mine || i == in_pair + 1,
                    "class %zu: object %d of the begun pair after another", cls,
                    i);
      in_pair += mine;
    }
    ck_assert_int_ge(got - in_pair, 2);
    uintptr_t end = reinterpret_cast<uintptr_t>(out[got - 1]) + ci.size;
    ck_assert_uint_eq(end % 128, 0);
    g_central[cls].insert_batch(out, got);
    g_central[cls].insert_batch(&alone, 1);
  }
}

END_TEST

/// A CPU cache hands out out[0] and pushes the rest in order, so its pops
/// take them from the end: with remove_to_line's order that is the order
/// they were taken in, lowest address first within a span: the freed
/// objects (from the span's bitmap, whatever order they were freed in),
/// then the carved ones.
START_TEST(remove_to_line_pops_in_address_order) {
  const size_t cls = 4;  // 64 B, 128 objects a span
  const rs::ClassInfo& ci = class_info(cls);
  std::vector<void*> objs(ci.objects);
  for (size_t i = 0; i < ci.objects; i += ci.batch)
    ck_assert_int_eq(g_central[cls].remove_batch(objs.data() + i, ci.batch),
                     ci.batch);
  // Free ten, scrambled, from the middle: a refill of 16 takes them, then
  // carves six from the next span.
  std::vector<void*> back;
  for (size_t i = 0; i < 10; i++)
    back.push_back(objs[40 + (i * 7) % 10]);
  g_central[cls].insert_batch(back.data(), 10);
  void* out[64];
  int got = g_central[cls].remove_to_line(out, 16, 64);
  ck_assert_int_ge(got, 16);
  std::vector<void*> popped = {out[0]};
  for (int i = got - 1; i > 0; i--)
    popped.push_back(out[i]);
  // The freed ones first, in address order; then the carved ones, in
  // address order (their span may lie below the other).
  std::sort(back.begin(), back.end());
  ck_assert_msg(std::equal(back.begin(), back.end(), popped.begin()),
                "a CPU cache would pop the freed objects out of order");
  ck_assert_msg(std::is_sorted(popped.begin() + 10, popped.end()),
                "a CPU cache would pop the carved objects out of order");
  g_central[cls].insert_batch(out, got);
  objs.erase(objs.begin() + 40, objs.begin() + 50);  // in out
  g_central[cls].insert_batch(objs.data(), static_cast<int>(objs.size()));
}

END_TEST

}  // namespace

int main(void) {
  Suite* s = suite_create("central_lines");
  TCase* tc = tcase_create("carves");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, remove_to_line_ends_on_a_line_pair);
  tcase_add_test(tc, remove_to_line_keeps_a_begun_pair_for_last);
  tcase_add_test(tc, remove_to_line_pops_in_address_order);
  suite_add_tcase(s, tc);
  return rs_check_run(s, "test_central_lines");
}
