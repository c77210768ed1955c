// SPDX-License-Identifier: MIT
// Unit tests of the per-class central free lists (lib/central_list.h):
// batch moves, span return to the page heap, writes after free that change
// nothing, and the checks that catch double frees and invalid pointers
// (SIGABRT).
#include <algorithm>
#include <pthread.h>
#include <set>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

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
using rs::SpanState;

/// Takes n objects of class cls in batches of the class's batch size.
std::vector<void*> take(size_t cls, size_t n) {
  std::vector<void*> out(n);
  size_t got = 0;
  int batch = class_info(cls).batch;
  while (got < n) {
    int want = static_cast<int>(std::min<size_t>(batch, n - got));
    int k = g_central[cls].remove_batch(out.data() + got, want);
    ck_assert_int_eq(k, want);
    got += static_cast<size_t>(k);
  }
  return out;
}

/// Gives objs back in batches of `batch`.
void give(size_t cls, const std::vector<void*>& objs, size_t batch) {
  for (size_t i = 0; i < objs.size(); i += batch) {
    int n = static_cast<int>(std::min(batch, objs.size() - i));
    g_central[cls].insert_batch(objs.data() + i, n);
  }
}

/// Checks that every object is a distinct, aligned object of class cls in
/// a small span of that class, and that no two overlap.
void check_objects(size_t cls, const std::vector<void*>& objs) {
  size_t size = rs::class_size(cls);
  std::vector<uintptr_t> sorted;
  for (void* p : objs) {
    uintptr_t a = rs::addr(p);
    ck_assert_msg(a % rs::kMinAlign == 0, "class %zu: %p misaligned", cls, p);
    if (rs::is_pow2(size) && size <= rs::kPageSize)
      ck_assert_msg(a % size == 0, "class %zu: %p not naturally aligned", cls,
                    p);
    Span* s = g_page_map.span_of(p);
    ck_assert_ptr_nonnull(s);
    ck_assert(s->state == SpanState::kSmall);
    ck_assert_uint_eq(s->size_class, cls);
    ck_assert_uint_eq(g_page_map.class_of(p), cls);
    ck_assert_uint_eq((a - s->start()) % size, 0);
    ck_assert_uint_le((a - s->start()) / size, class_info(cls).objects - 1);
    ck_assert_uint_le(a + size, s->end());
    sorted.push_back(a);
  }
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 1; i < sorted.size(); i++) {
    ck_assert_msg(sorted[i] - sorted[i - 1] >= size,
                  "class %zu: objects %#lx and %#lx overlap", cls,
                  static_cast<unsigned long>(sorted[i - 1]),
                  static_cast<unsigned long>(sorted[i]));
  }
}

size_t spans_of(const std::vector<void*>& objs) {
  std::set<Span*> spans;
  for (void* p : objs)
    spans.insert(g_page_map.span_of(p));
  return spans.size();
}

size_t small_span_bytes() {
  return rs::g_page_heap.stats().small_span_bytes;
}

}  // namespace

// --- batches

START_TEST(remove_batch_gives_valid_objects) {
  static const size_t classes[] = {1,  2,  3,  5,  8,  9,  16, 17,
                                   32, 40, 50, 64, 80, 95, 96};
  for (size_t cls : classes) {
    const rs::ClassInfo& ci = class_info(cls);
    size_t n = std::min<size_t>(2 * ci.objects + 3, 1500);
    std::vector<void*> objs = take(cls, n);
    check_objects(cls, objs);
    // Writable, all of each object, and no object reaches another.
    for (size_t i = 0; i < n; i++)
      memset(objs[i], static_cast<int>(i & 0xff), ci.size);
    for (size_t i = 0; i < n; i++) {
      const unsigned char* c = static_cast<const unsigned char*>(objs[i]);
      ck_assert_uint_eq(c[0], i & 0xff);
      ck_assert_uint_eq(c[ci.size - 1], i & 0xff);
    }
    rs::CentralStats st = g_central[cls].stats();
    ck_assert_uint_eq(st.allocated, n);
    ck_assert_uint_eq(st.spans, spans_of(objs));
    ck_assert_uint_eq(st.spans, (n + ci.objects - 1) / ci.objects);
    ck_assert_uint_eq(st.capacity, st.spans * ci.objects);
    give(cls, objs, ci.batch);
    st = g_central[cls].stats();
    ck_assert_uint_eq(st.allocated, 0);
    ck_assert_uint_eq(st.spans, 0);
    ck_assert_uint_eq(st.capacity, 0);
  }
  ck_assert_uint_eq(small_span_bytes(), 0);
}

END_TEST

START_TEST(one_call_fills_a_large_request) {
  const size_t cls = 7;
  const rs::ClassInfo& ci = class_info(cls);
  int n = static_cast<int>(ci.objects) * 3 + 1;  // crosses four spans
  std::vector<void*> objs(static_cast<size_t>(n));
  ck_assert_int_eq(g_central[cls].remove_batch(objs.data(), n), n);
  check_objects(cls, objs);
  ck_assert_uint_eq(g_central[cls].stats().spans, 4);
  g_central[cls].insert_batch(objs.data(), n);
  ck_assert_uint_eq(g_central[cls].stats().spans, 0);
}

END_TEST

START_TEST(insert_returns_spans_to_the_heap) {
  const size_t cls = 12;
  const rs::ClassInfo& ci = class_info(cls);
  size_t before = small_span_bytes();
  std::vector<void*> objs = take(cls, 3 * ci.objects);
  ck_assert_uint_eq(small_span_bytes(),
                    before + 3 * ci.span_pages * rs::kPageSize);
  // Shuffled, in uneven batches: every span still goes back.
  unsigned seed = 7;
  for (size_t i = objs.size() - 1; i > 0; i--)
    std::swap(objs[i], objs[rand_r(&seed) % (i + 1)]);
  size_t i = 0;
  while (i < objs.size()) {
    size_t n = std::min<size_t>(1 + rand_r(&seed) % 50, objs.size() - i);
    g_central[cls].insert_batch(objs.data() + i, static_cast<int>(n));
    i += n;
  }
  rs::CentralStats st = g_central[cls].stats();
  ck_assert_uint_eq(st.spans, 0);
  ck_assert_uint_eq(st.allocated, 0);
  ck_assert_uint_eq(small_span_bytes(), before);
  // The pages are free in the heap and no longer labelled with the class.
  for (void* p : objs) {
    ck_assert_uint_eq(g_page_map.class_of(p), 0);
    Span* s = g_page_map.span_of(p);
    ck_assert_ptr_nonnull(s);
    ck_assert(s->state == SpanState::kFree);
  }
}

END_TEST

START_TEST(many_spans_emptied_by_one_insert) {
  // One object per span: a single insert empties more spans than its
  // internal batch of 64 holds.
  const size_t cls = rs::kNumClasses - 1;
  ck_assert_uint_eq(class_info(cls).objects, 1);
  size_t before = small_span_bytes();
  std::vector<void*> objs = take(cls, 70);
  ck_assert_uint_eq(g_central[cls].stats().spans, 70);
  g_central[cls].insert_batch(objs.data(), 70);
  ck_assert_uint_eq(g_central[cls].stats().spans, 0);
  ck_assert_uint_eq(small_span_bytes(), before);
}

END_TEST

START_TEST(freed_objects_are_reused) {
  const size_t cls = 3;
  std::vector<void*> objs = take(cls, 10);
  std::vector<void*> back;
  for (size_t i = 0; i < 10; i += 2)
    back.push_back(objs[i]);
  give(cls, back, back.size());
  ck_assert_uint_eq(g_central[cls].stats().allocated, 5);
  std::vector<void*> again = take(cls, 5);
  std::set<void*> a(back.begin(), back.end()), b(again.begin(), again.end());
  ck_assert_msg(a == b, "the freed objects did not come back");
  // Then the span's never-used objects.
  std::vector<void*> fresh = take(cls, 1);
  ck_assert(std::find(objs.begin(), objs.end(), fresh[0]) == objs.end());
  check_objects(cls, {objs[1], objs[3], fresh[0]});
}

END_TEST

START_TEST(remove_one_knows_untouched_objects) {
  // Two objects a span (from 64 KiB a span holds one).
  const size_t cls = rs::size_class_of(32 * 1024);
  const rs::ClassInfo& ci = class_info(cls);
  ck_assert_uint_ge(ci.objects, 2);
  // A fresh span: every object past the bump pointer reads as zeros.
  std::vector<void*> objs;
  for (size_t i = 0; i < ci.objects; i++) {
    bool zeroed = false;
    void* p = g_central[cls].remove_one(&zeroed);
    ck_assert_ptr_nonnull(p);
    ck_assert_msg(zeroed, "object %zu of a fresh span not known as zero", i);
    const unsigned char* c = static_cast<const unsigned char*>(p);
    unsigned char any = 0;
    for (size_t k = 0; k < ci.size; k++)
      any |= c[k];
    ck_assert_uint_eq(any, 0);
    memset(p, 0xab, ci.size);
    objs.push_back(p);
  }
  check_objects(cls, objs);
  // A freed object comes back dirty, and is not called zeroed.
  give(cls, {objs[1]}, 1);
  bool zeroed = true;
  ck_assert_ptr_eq(g_central[cls].remove_one(&zeroed), objs[1]);
  ck_assert(!zeroed);
  ck_assert_uint_eq(g_central[cls].stats().allocated, ci.objects);
  give(cls, objs, ci.batch);
  ck_assert_uint_eq(g_central[cls].stats().spans, 0);
}

END_TEST

// The object a freed one was, with the span's bump pointer not at its end:
// the free list comes first, and that object is dirty. (Taking every
// object first, as above, hides a zeroed flag that forgets the free list.)
START_TEST(remove_one_after_a_free_is_not_zeroed) {
  const size_t cls = rs::size_class_of(12 * 1024);
  const rs::ClassInfo& ci = class_info(cls);
  ck_assert_uint_ge(ci.objects, 3);
  bool zeroed = false;
  void* a = g_central[cls].remove_one(&zeroed);
  ck_assert_ptr_nonnull(a);
  ck_assert(zeroed);
  void* b = g_central[cls].remove_one(&zeroed);
  ck_assert_ptr_nonnull(b);
  ck_assert(zeroed);
  memset(a, 0xab, ci.size);
  memset(b, 0xab, ci.size);
  give(cls, {b}, 1);
  zeroed = true;
  ck_assert_ptr_eq(g_central[cls].remove_one(&zeroed), b);
  ck_assert_msg(!zeroed, "a freed, dirty object was reported zeroed");
  // The next one is past the bump pointer again: untouched.
  zeroed = false;
  void* c = g_central[cls].remove_one(&zeroed);
  ck_assert_ptr_nonnull(c);
  ck_assert(c != a && c != b);
  ck_assert(zeroed);
  give(cls, {a, b, c}, 3);
  ck_assert_uint_eq(g_central[cls].stats().spans, 0);
}

END_TEST

// --- use after free: a span's free objects are bits in its descriptor,
// so writes into freed objects change nothing a refill hands out

namespace {

// Values a use-after-free write might leave in a freed object.
const unsigned char kGarbage[] = {0x41, 0x00, 0xff, 0x01, 0x10};

}  // namespace

START_TEST(use_after_free_writes_do_not_steer_remove) {
  const size_t cls = 4;  // 64 B
  const size_t size = class_info(cls).size;
  void* objs[12];
  ck_assert_int_eq(g_central[cls].remove_batch(objs, 12), 12);
  // Every other object back, then the whole of each overwritten (where a
  // list threaded through them would keep its links).
  void* back[6];
  for (size_t i = 0; i < 6; i++)
    back[i] = objs[2 * i];
  g_central[cls].insert_batch(back, 6);
  for (void* p : back)
    memset(p, kGarbage[_i], size);
  void* out[6];
  ck_assert_int_eq(g_central[cls].remove_batch(out, 6), 6);
  std::set<void*> a(back, back + 6), b(out, out + 6);
  ck_assert_msg(a == b, "a refill handed out something not freed");
  check_objects(cls, std::vector<void*>(objs, objs + 12));
}

END_TEST

// A refill takes a span's free objects lowest address first, whatever
// order they were freed in.
START_TEST(refills_come_in_address_order) {
  const size_t cls = 2;  // 32 B, 256 objects a span: four bitmap words
  const rs::ClassInfo& ci = class_info(cls);
  std::vector<void*> objs = take(cls, ci.objects);
  std::sort(objs.begin(), objs.end());
  ck_assert(g_page_map.span_of(objs.front()) ==
            g_page_map.span_of(objs.back()));
  // Free all but the first, in a scrambled order: every word of the
  // bitmap gets bits, and the span stays.
  std::vector<void*> back(objs.begin() + 1, objs.end());
  for (size_t i = 0; i < back.size(); i++)
    std::swap(back[i], back[(i * 97 + 13) % back.size()]);
  give(cls, back, ci.batch);
  std::vector<void*> again = take(cls, back.size());
  ck_assert(std::is_sorted(again.begin(), again.end()));
  ck_assert(again.front() == objs[1] && again.back() == objs.back());
  check_objects(cls, objs);
}

END_TEST

// --- misuse: each of these must abort

START_TEST(double_insert_of_the_last_object_aborts) {
  const size_t cls = 6;
  void* a;
  ck_assert_int_eq(g_central[cls].remove_batch(&a, 1), 1);
  g_central[cls].insert_batch(&a, 1);
  g_central[cls].insert_batch(&a, 1);
}

END_TEST

START_TEST(double_insert_aborts) {
  // Another object of the span is still out, so the span stays.
  const size_t cls = 6;
  void* objs[2];
  ck_assert_int_eq(g_central[cls].remove_batch(objs, 2), 2);
  g_central[cls].insert_batch(&objs[0], 1);
  g_central[cls].insert_batch(&objs[0], 1);
}

END_TEST

// Not the object freed last: the bitmap knows every free object.
START_TEST(double_insert_of_an_older_free_object_aborts) {
  const size_t cls = 6;
  void* objs[4];
  ck_assert_int_eq(g_central[cls].remove_batch(objs, 4), 4);
  g_central[cls].insert_batch(objs, 3);
  g_central[cls].insert_batch(&objs[0], 1);
}

END_TEST

START_TEST(double_insert_in_one_batch_aborts) {
  const size_t cls = 6;
  void* objs[3];
  ck_assert_int_eq(g_central[cls].remove_batch(objs, 3), 3);
  void* twice[2] = {objs[1], objs[1]};
  g_central[cls].insert_batch(twice, 2);
}

END_TEST

START_TEST(interior_pointer_aborts) {
  const size_t cls = 3;  // 48 B
  void* objs[2];
  ck_assert_int_eq(g_central[cls].remove_batch(objs, 2), 2);
  void* inside = static_cast<char*>(objs[0]) + 16;
  g_central[cls].insert_batch(&inside, 1);
}

END_TEST

START_TEST(wrong_class_aborts) {
  void* obj;
  ck_assert_int_eq(g_central[2].remove_batch(&obj, 1), 1);
  void* keep;
  ck_assert_int_eq(g_central[1].remove_batch(&keep, 1), 1);
  g_central[1].insert_batch(&obj, 1);  // a 32 B object into the 16 B list
}

END_TEST

START_TEST(foreign_pointer_aborts) {
  void* keep;
  ck_assert_int_eq(g_central[1].remove_batch(&keep, 1), 1);
  void* glibc = malloc(16);
  g_central[1].insert_batch(&glibc, 1);
}

END_TEST

START_TEST(null_pointer_aborts) {
  void* keep;
  ck_assert_int_eq(g_central[1].remove_batch(&keep, 1), 1);
  void* null = nullptr;
  g_central[1].insert_batch(&null, 1);
}

END_TEST

START_TEST(large_span_pointer_aborts) {
  void* keep;
  ck_assert_int_eq(g_central[1].remove_batch(&keep, 1), 1);
  Span* s = rs::g_page_heap.allocate(2, SpanState::kLarge, 0);
  ck_assert_ptr_nonnull(s);
  void* p = reinterpret_cast<void*>(s->start());
  g_central[1].insert_batch(&p, 1);
}

END_TEST

START_TEST(pointer_past_the_last_object_aborts) {
  // A class whose span has a tail too small for one more object: the
  // address right after the last object is aligned to the class size but
  // is not an object (an object there would cross the span's end).
  size_t cls = 0;
  for (size_t c = 1; c < rs::kNumClasses && cls == 0; c++) {
    const rs::ClassInfo& ci = class_info(c);
    if (size_t{ci.objects} * ci.size < size_t{ci.span_pages} * rs::kPageSize)
      cls = c;
  }
  ck_assert_uint_ne(cls, 0);
  void* obj;
  ck_assert_int_eq(g_central[cls].remove_batch(&obj, 1), 1);
  Span* s = g_page_map.span_of(obj);
  ck_assert_ptr_nonnull(s);
  void* tail = reinterpret_cast<void*>(
      s->start() + size_t{class_info(cls).objects} * class_info(cls).size);
  ck_assert_ptr_eq(g_page_map.span_of(tail), s);
  g_central[cls].insert_batch(&tail, 1);
}

END_TEST

// --- free's fast check, started late (as when the CPU caches start)

namespace {

constexpr uintptr_t kMark = static_cast<uintptr_t>(0x6d61726b6d61726bull) | 1;

/// A class whose spans hold a few objects (a full span is off its list).
size_t few_objects_class() {
  for (size_t c = rs::kNumClasses - 1; c >= 1; c--) {
    uint32_t n = class_info(c).objects;
    if (n >= 4 && n <= 16)
      return c;
  }
  return 0;
}

}  // namespace

START_TEST(checks_start_for_spans_carved_before) {
  rs::set_free_mark(kMark);
  size_t cls = 3;  // 48 B: marks ahead, many objects a page
  size_t size = rs::class_size(cls);
  void* obj;
  ck_assert_int_eq(g_central[cls].remove_batch(&obj, 1), 1);
  size_t got = 0;
  ck_assert(!g_page_map.object_at(obj, &got));  // not started: off
  // The next slot, never carved: no mark yet (nothing wrote it).
  const uintptr_t* next =
      reinterpret_cast<const uintptr_t*>(static_cast<const char*>(obj) + size);
  ck_assert_uint_eq(next[1], 0);

  rs::start_fast_free_checks();
  ck_assert(g_page_map.object_at(obj, &got));
  ck_assert_uint_eq(got, cls);
  // Its page is on, so its uncarved slots carry the mark (a free of one
  // then fails the CPU cache's mark check).
  ck_assert(g_page_map.object_at(next, &got));
  ck_assert_uint_eq(next[1], kMark);
  // Carving on from there keeps the checks in step.
  void* more[8];
  ck_assert_int_eq(g_central[cls].remove_batch(more, 8), 8);
  for (void* p : more)
    ck_assert(g_page_map.object_at(p, &got));
}

END_TEST

START_TEST(checks_start_for_full_spans_when_relinked) {
  size_t cls = few_objects_class();
  ck_assert_uint_ne(cls, 0);
  size_t n = class_info(cls).objects;
  std::vector<void*> objs = take(cls, n);  // one span, full: off its list
  Span* s = g_page_map.span_of(objs[0]);
  ck_assert_ptr_eq(g_page_map.span_of(objs[n - 1]), s);
  size_t got = 0;
  rs::start_fast_free_checks();
  ck_assert(!g_page_map.object_at(objs[0], &got));  // not walked: off
  // A free puts the span back on its list: its checks start.
  g_central[cls].insert_batch(&objs[n - 1], 1);
  for (size_t i = 0; i + 1 < n; i++) {
    ck_assert(g_page_map.object_at(objs[i], &got));
    ck_assert_uint_eq(got, cls);
  }
}

END_TEST

// --- threads

namespace {

constexpr int kThreads = 4;
constexpr size_t kThreadClass = 5;  // 80 B
int g_errors;                       // failures seen by workers (atomic)

void* central_worker(void* arg) {
  uintptr_t id = reinterpret_cast<uintptr_t>(arg);
  unsigned seed = static_cast<unsigned>(id);
  std::vector<void*> held;
  void* buf[64];
  uint64_t seq = 0;
  for (int round = 0; round < 2000; round++) {
    unsigned r = rand_r(&seed);
    if (held.size() < 512 && (r & 1)) {
      int n = 1 + static_cast<int>((r >> 1) % 64);
      int got = g_central[kThreadClass].remove_batch(buf, n);
      if (got != n)
        __atomic_add_fetch(&g_errors, 1, __ATOMIC_RELAXED);
      for (int i = 0; i < got; i++) {
        // Tag it: if another thread holds it too, one tag is lost.
        uint64_t* w = static_cast<uint64_t*>(buf[i]);
        w[0] = id;
        w[1] = ++seq;
        w[9] = seq;
        held.push_back(buf[i]);
      }
    } else if (!held.empty()) {
      int n = 1 + static_cast<int>((r >> 1) % 64);
      if (static_cast<size_t>(n) > held.size())
        n = static_cast<int>(held.size());
      for (int i = 0; i < n; i++) {
        void* p = held.back();
        held.pop_back();
        const uint64_t* w = static_cast<const uint64_t*>(p);
        if (w[0] != id || w[1] != w[9])
          __atomic_add_fetch(&g_errors, 1, __ATOMIC_RELAXED);
        buf[i] = p;
      }
      g_central[kThreadClass].insert_batch(buf, n);
    }
  }
  for (size_t i = 0; i < held.size(); i += 64) {
    int n = static_cast<int>(std::min<size_t>(64, held.size() - i));
    g_central[kThreadClass].insert_batch(held.data() + i, n);
  }
  return nullptr;
}

}  // namespace

START_TEST(concurrent_batches) {
  pthread_t t[kThreads];
  for (int i = 0; i < kThreads; i++) {
    ck_assert_int_eq(
        pthread_create(&t[i], nullptr, central_worker,
                       reinterpret_cast<void*>(static_cast<uintptr_t>(i + 1))),
        0);
  }
  for (pthread_t& th : t)
    pthread_join(th, nullptr);
  ck_assert_int_eq(g_errors, 0);
  rs::CentralStats st = g_central[kThreadClass].stats();
  ck_assert_uint_eq(st.allocated, 0);
  ck_assert_uint_eq(st.spans, 0);
  ck_assert_uint_eq(small_span_bytes(), 0);
}

END_TEST

int main(void) {
  Suite* s = suite_create("central_list");
  TCase* tc = tcase_create("batches");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, remove_batch_gives_valid_objects);
  tcase_add_test(tc, one_call_fills_a_large_request);
  tcase_add_test(tc, insert_returns_spans_to_the_heap);
  tcase_add_test(tc, many_spans_emptied_by_one_insert);
  tcase_add_test(tc, freed_objects_are_reused);
  tcase_add_test(tc, remove_one_knows_untouched_objects);
  tcase_add_test(tc, remove_one_after_a_free_is_not_zeroed);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, refills_come_in_address_order);
  tcase_add_loop_test(tc, use_after_free_writes_do_not_steer_remove, 0,
                      sizeof(kGarbage));
  suite_add_tcase(s, tc);
  tc = tcase_create("invalid_free");
  tcase_add_test_raise_signal(tc, double_insert_of_the_last_object_aborts,
                              SIGABRT);
  tcase_add_test_raise_signal(tc, double_insert_aborts, SIGABRT);
  tcase_add_test_raise_signal(tc, double_insert_of_an_older_free_object_aborts,
                              SIGABRT);
  tcase_add_test_raise_signal(tc, double_insert_in_one_batch_aborts, SIGABRT);
  tcase_add_test_raise_signal(tc, interior_pointer_aborts, SIGABRT);
  tcase_add_test_raise_signal(tc, wrong_class_aborts, SIGABRT);
  tcase_add_test_raise_signal(tc, foreign_pointer_aborts, SIGABRT);
  tcase_add_test_raise_signal(tc, null_pointer_aborts, SIGABRT);
  tcase_add_test_raise_signal(tc, large_span_pointer_aborts, SIGABRT);
  tcase_add_test_raise_signal(tc, pointer_past_the_last_object_aborts, SIGABRT);
  suite_add_tcase(s, tc);
  tc = tcase_create("late_checks");
  tcase_add_test(tc, checks_start_for_spans_carved_before);
  tcase_add_test(tc, checks_start_for_full_spans_when_relinked);
  suite_add_tcase(s, tc);
  tc = tcase_create("threads");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, concurrent_batches);
  suite_add_tcase(s, tc);
  return rs_check_run(s, "test_central_list");
}
