// SPDX-License-Identifier: MIT
// Unit tests of CentralList::release_free_pages (lib/central_list.h): the
// system pages of partly used spans that hold only free objects go back to
// the OS, the objects on them stay free and come back when the span needs
// them, nothing else is touched, and a double free of such an object is
// still caught.
#include <algorithm>
#include <set>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <vector>

#include <sys/mman.h>

#include "../check_main.h"
#include "central_list.h"
#include "page_heap.h"
#include "page_map.h"
#include "size_class.h"

namespace {

using rs::class_info;
using rs::g_central;
using rs::g_page_map;
using rs::Span;

const size_t kSysPage = 4096;

void setup() {
  rs::set_system_page_size(kSysPage);
}

/// The first class whose objects are at least `bytes` long.
size_t class_at_least(size_t bytes) {
  size_t c = 1;
  while (rs::class_size(c) < bytes)
    c++;
  return c;
}

std::vector<void*> take(size_t cls, size_t n) {
  std::vector<void*> out(n);
  size_t got = 0;
  while (got < n) {
    int want =
        static_cast<int>(std::min<size_t>(class_info(cls).batch, n - got));
    ck_assert_int_eq(g_central[cls].remove_batch(out.data() + got, want), want);
    got += static_cast<size_t>(want);
  }
  return out;
}

void give(size_t cls, const std::vector<void*>& objs) {
  for (size_t i = 0; i < objs.size(); i += 16) {
    int n = static_cast<int>(std::min<size_t>(16, objs.size() - i));
    g_central[cls].insert_batch(objs.data() + i, n);
  }
}

/// Fills `spans` spans of class cls and frees every object but the first of
/// each; returns the kept ones.
std::vector<void*> keep_first_of_each_span(size_t cls, size_t spans) {
  size_t per_span = class_info(cls).objects;
  std::vector<void*> objs = take(cls, spans * per_span);
  std::vector<void*> kept, freed;
  for (size_t i = 0; i < objs.size(); i++)
    (i % per_span == 0 ? kept : freed).push_back(objs[i]);
  give(cls, freed);
  return kept;
}

/// Whether the system page holding p is resident.
bool resident(const void* p) {
  unsigned char vec = 0;
  uintptr_t page = rs::addr(p) & ~(kSysPage - 1);
  ck_assert_int_eq(mincore(reinterpret_cast<void*>(page), kSysPage, &vec), 0);
  return (vec & 1) != 0;
}

/// A byte pattern that names object i of a test.
unsigned char mark(size_t i) {
  return static_cast<unsigned char>(0x5a ^ (i * 7));
}

void fill(const std::vector<void*>& objs, size_t size) {
  for (size_t i = 0; i < objs.size(); i++)
    memset(objs[i], mark(i), size);
}

void check_filled(const std::vector<void*>& objs, size_t size) {
  for (size_t i = 0; i < objs.size(); i++) {
    const unsigned char* c = static_cast<const unsigned char*>(objs[i]);
    size_t k = 0;
    while (k < size && c[k] == mark(i))
      k++;
    // One assertion per object: Check records each one, which is slow
    // under valgrind.
    ck_assert_msg(k == size, "object %zu byte %zu changed to %#x", i, k,
                  k < size ? c[k] : 0);
  }
}

}  // namespace

START_TEST(free_page_of_a_used_span_goes_back) {
  // 256-byte objects: one 8 KiB span of two system pages.
  const size_t cls = class_at_least(256);
  const rs::ClassInfo& ci = class_info(cls);
  ck_assert_uint_eq(ci.span_pages, 1);
  std::vector<void*> objs = take(cls, ci.objects);
  fill(objs, ci.size);
  Span* span = g_page_map.span_of(objs[0]);
  // Keep the first object (on the first system page), free the others.
  std::vector<void*> kept(objs.begin(), objs.begin() + 1);
  std::vector<void*> freed(objs.begin() + 1, objs.end());
  give(cls, freed);
  void* second_page = rs::ptr_at<void>(span->start() + kSysPage);
  ck_assert(resident(second_page));
  ck_assert_uint_eq(g_central[cls].release_free_pages(), kSysPage);
  ck_assert(!resident(second_page));
  ck_assert(resident(objs[0]));
  ck_assert_uint_eq(g_central[cls].stats().released, kSysPage);
  ck_assert_uint_eq(span->released_mask, 2);
  check_filled(kept, ci.size);
  // Nothing more to release the second time.
  ck_assert_uint_eq(g_central[cls].release_free_pages(), 0);

  // Every freed object comes back, from the same span, and none twice.
  std::vector<void*> again = take(cls, freed.size());
  ck_assert_uint_eq(g_central[cls].stats().spans, 1);
  std::set<void*> a(freed.begin(), freed.end()), b(again.begin(), again.end());
  ck_assert_msg(a == b, "the freed objects did not all come back");
  ck_assert_uint_eq(span->released_mask, 0);
  ck_assert_uint_eq(g_central[cls].stats().released, 0);
  check_filled(kept, ci.size);
  again.push_back(objs[0]);
  give(cls, again);
  ck_assert_uint_eq(g_central[cls].stats().spans, 0);
}

END_TEST

// A span with every object handed out and its free ones on released
// pages has none left in its bitmap: the next object comes from those
// pages, with its free mark written into it again (reclaim), so it is not
// zero. calloc skips its memset only for objects past the bump pointer.
START_TEST(reclaimed_objects_are_not_zeroed) {
  const size_t cls = class_at_least(kSysPage);
  const rs::ClassInfo& ci = class_info(cls);
  ck_assert_uint_ge(ci.objects, 2);
  std::vector<void*> objs = take(cls, ci.objects);
  fill(objs, ci.size);
  std::vector<void*> freed(objs.begin() + 1, objs.end());
  give(cls, freed);
  ck_assert_uint_gt(g_central[cls].release_free_pages(), 0);
  Span* span = g_page_map.span_of(objs[0]);
  ck_assert_ptr_nonnull(span);
  ck_assert_uint_eq(span->num_free, 0);
  bool zeroed = true;
  void* p = g_central[cls].remove_one(&zeroed);
  ck_assert(std::find(freed.begin(), freed.end(), p) != freed.end());
  const unsigned char* c = static_cast<const unsigned char*>(p);
  size_t k = 0;
  while (k < ci.size && c[k] == 0)
    k++;
  ck_assert_msg(!zeroed || k == ci.size,
                "reported zeroed, but byte %zu of the object is %#x", k,
                k < ci.size ? c[k] : 0);
  std::vector<void*> back = {objs[0], p};
  give(cls, back);
  ck_assert_uint_eq(g_central[cls].stats().allocated, 0);
  ck_assert_uint_eq(g_central[cls].stats().spans, 0);
}

END_TEST

START_TEST(random_frees_conserve_objects) {
  // Small, odd-sized, page-sized and multi-page objects; spans of 1 to 36
  // rsmalloc pages (the last class has more than 64 system pages, so it
  // releases in larger units).
  const size_t sizes[] = {16, 48, 112, 1024, 4096, 5120, 9000, 140000};
  unsigned seed = static_cast<unsigned>(_i) + 11;
  for (size_t want : sizes) {
    const size_t cls = class_at_least(want);
    const rs::ClassInfo& ci = class_info(cls);
    size_t n = std::min<size_t>(ci.objects * 6, 3000);
    std::vector<void*> objs = take(cls, n);
    size_t spans = g_central[cls].stats().spans;
    std::vector<void*> kept, freed;
    for (void* p : objs)
      (rand_r(&seed) % 8 == 0 ? kept : freed).push_back(p);
    fill(kept, ci.size);
    give(cls, freed);
    size_t released = g_central[cls].release_free_pages();
    ck_assert_uint_eq(g_central[cls].stats().released, released);
    check_filled(kept, ci.size);
    // Take back as many as were freed: no new span is needed, every object
    // is distinct from the others and from the kept ones, and each freed
    // object of a span still in use comes back (a span emptied completely
    // went to the page heap and may come back at another address).
    std::vector<void*> again = take(cls, freed.size());
    ck_assert_uint_eq(g_central[cls].stats().spans, spans);
    std::set<void*> all(again.begin(), again.end());
    all.insert(kept.begin(), kept.end());
    ck_assert_uint_eq(all.size(), again.size() + kept.size());
    std::set<Span*> used;
    for (void* p : kept)
      used.insert(g_page_map.span_of(p));
    for (void* p : freed) {
      if (used.count(g_page_map.span_of(p)) != 0)
        ck_assert_msg(all.count(p) != 0, "class %zu: object %p lost", cls, p);
    }
    check_filled(kept, ci.size);
    // The objects that came back from released pages are usable.
    fill(again, ci.size);
    check_filled(again, ci.size);
    give(cls, again);
    give(cls, kept);
    rs::CentralStats st = g_central[cls].stats();
    ck_assert_uint_eq(st.spans, 0);
    ck_assert_uint_eq(st.released, 0);
  }
  ck_assert_uint_eq(rs::g_page_heap.stats().small_span_bytes, 0);
}

END_TEST

START_TEST(released_pages_count_once_across_calls) {
  // Free more of the span between two calls: the second call releases
  // only the new pages, and the released objects still come back.
  const size_t cls = class_at_least(4096);  // 4 KiB objects, 32 KiB spans
  const rs::ClassInfo& ci = class_info(cls);
  std::vector<void*> objs = take(cls, ci.objects);
  give(cls, {objs.begin() + 1, objs.begin() + 4});
  size_t first = g_central[cls].release_free_pages();
  ck_assert_uint_eq(first, 3 * ci.size);
  give(cls, {objs.begin() + 4, objs.begin() + 6});
  size_t second = g_central[cls].release_free_pages();
  ck_assert_uint_eq(second, 2 * ci.size);
  ck_assert_uint_eq(g_central[cls].stats().released, first + second);
  std::vector<void*> again = take(cls, 5);
  std::set<void*> a(objs.begin() + 1, objs.begin() + 6);
  ck_assert_msg(a == std::set<void*>(again.begin(), again.end()),
                "released objects did not come back");
  again.push_back(objs[0]);
  again.insert(again.end(), objs.begin() + 6, objs.end());
  give(cls, again);
  ck_assert_uint_eq(g_central[cls].stats().spans, 0);
}

END_TEST

START_TEST(budget_and_idle_time_limit_a_pass) {
  // Three spans of 4 KiB objects, each with all but its first object free.
  const size_t cls = class_at_least(4096);
  const rs::ClassInfo& ci = class_info(cls);
  std::vector<void*> kept = keep_first_of_each_span(cls, 3);
  size_t per_span = (ci.objects - 1) * ci.size;
  // Nothing is a minute old yet.
  size_t budget = 10;
  ck_assert_uint_eq(g_central[cls].release_free_pages(60000, &budget), 0);
  ck_assert_uint_eq(budget, 10);
  // One span per unit of budget; the next call goes on with the others.
  budget = 1;
  ck_assert_uint_eq(g_central[cls].release_free_pages(0, &budget), per_span);
  ck_assert_uint_eq(budget, 0);
  budget = 5;
  ck_assert_uint_eq(g_central[cls].release_free_pages(0, &budget),
                    2 * per_span);
  ck_assert_uint_eq(budget, 3);
  // Looked at and untouched since: not looked at again.
  ck_assert_uint_eq(g_central[cls].release_free_pages(0, &budget), 0);
  ck_assert_uint_eq(budget, 3);
  give(cls, kept);
  ck_assert_uint_eq(g_central[cls].stats().spans, 0);
}

END_TEST

START_TEST(double_free_on_a_released_page_aborts) {
  const size_t cls = class_at_least(4096);
  std::vector<void*> kept = keep_first_of_each_span(cls, 1);
  ck_assert_uint_gt(g_central[cls].release_free_pages(), 0);
  void* freed = rs::ptr_at<void>(rs::addr(kept[0]) + 3 * rs::class_size(cls));
  g_central[cls].insert_batch(&freed, 1);  // freed already: must abort
}

END_TEST

// Writes into freed objects (where a list threaded through them would
// keep its links) change nothing a release or the refills after it do.
START_TEST(use_after_free_writes_do_not_confuse_release) {
  const size_t cls = class_at_least(64);
  const rs::ClassInfo& ci = class_info(cls);
  std::vector<void*> kept = keep_first_of_each_span(cls, 1);
  std::vector<void*> freed;
  for (size_t i = 1; i < ci.objects; i++)
    freed.push_back(rs::ptr_at<void>(rs::addr(kept[0]) + i * ci.size));
  for (void* p : freed)
    memset(p, 0x41, ci.size);
  size_t released = g_central[cls].release_free_pages();
  ck_assert_uint_ge(released, ci.size);
  std::vector<void*> again = take(cls, freed.size());
  ck_assert_msg(std::set<void*>(again.begin(), again.end()) ==
                    std::set<void*>(freed.begin(), freed.end()),
                "the refills after the release handed out other objects");
  ck_assert_uint_eq(g_central[cls].stats().spans, 1);
  give(cls, again);
  give(cls, kept);
  ck_assert_uint_eq(g_central[cls].stats().spans, 0);
}

END_TEST

int main(void) {
  Suite* s = suite_create("span_release");
  TCase* tc = tcase_create("release");
  tcase_add_checked_fixture(tc, setup, nullptr);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, free_page_of_a_used_span_goes_back);
  tcase_add_test(tc, reclaimed_objects_are_not_zeroed);
  tcase_add_loop_test(tc, random_frees_conserve_objects, 0, 4);
  tcase_add_test(tc, released_pages_count_once_across_calls);
  tcase_add_test(tc, budget_and_idle_time_limit_a_pass);
  tcase_add_test(tc, use_after_free_writes_do_not_confuse_release);
  suite_add_tcase(s, tc);
  tc = tcase_create("misuse");
  tcase_add_checked_fixture(tc, setup, nullptr);
  tcase_add_test_raise_signal(tc, double_free_on_a_released_page_aborts,
                              SIGABRT);
  suite_add_tcase(s, tc);
  return rs_check_run(s, "test_span_release");
}
