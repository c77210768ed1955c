// SPDX-License-Identifier: MIT
// Unit tests of the transfer caches (lib/transfer_cache.h): every object
// put in comes out exactly once, also with threads racing; batches stay
// whole; the capacity stays within its base until refills miss and never
// passes its max; flush gives everything back to the central list, and
// the idle flush only a cache nothing used since the previous look.
#include <algorithm>
#include <pthread.h>
#include <set>
#include <stdint.h>
#include <vector>

#include "../check_main.h"
#include "central_list.h"
#include "size_class.h"
#include "transfer_cache.h"

namespace {

using rs::g_central;
using rs::g_transfer;
using rs::TransferCache;
using rs::TransferLimits;

constexpr uint8_t kCls = 4;  // 64-byte objects

void setup() {
  for (size_t c = 1; c < rs::kNumClasses; c++)
    g_transfer[c].init(static_cast<uint8_t>(c));
}

/// n objects of class cls from the central list.
std::vector<void*> take(size_t cls, size_t n) {
  std::vector<void*> out(n);
  for (size_t got = 0; got < n;) {
    int want = static_cast<int>(std::min<size_t>(32, n - got));
    int k = g_central[cls].remove_batch(out.data() + got, want);
    ck_assert_int_eq(k, want);
    got += static_cast<size_t>(k);
  }
  return out;
}

size_t allocated(size_t cls) {
  return g_central[cls].stats().allocated;
}

}  // namespace

START_TEST(limits_are_bounded_in_bytes) {
  for (size_t c = 1; c < rs::kNumClasses; c++) {
    TransferLimits l = rs::transfer_limits(c);
    const rs::ClassInfo& ci = rs::class_info(c);
    ck_assert_uint_le(l.base, l.max);
    ck_assert_uint_le(l.max, rs::kMaxTransferObjects);
    if (ci.batch < 2) {
      ck_assert_uint_eq(l.max, 0);
      continue;
    }
    // Two drains (batch + 1 each) always fit; the bytes stay bounded.
    ck_assert_uint_ge(l.base, 2 * (ci.batch + 1u));
    ck_assert_uint_le(
        l.max * ci.size,
        std::max<size_t>(rs::kTransferMaxBytes, 2 * (ci.batch + 1u) * ci.size));
  }
  // 64-byte objects: 64 KiB at first, 512 KiB at most.
  ck_assert_uint_eq(rs::transfer_limits(kCls).base, 1024);
  ck_assert_uint_eq(rs::transfer_limits(kCls).max, 8192);
}

END_TEST

START_TEST(batches_come_out_once_last_in_first) {
  TransferCache& t = g_transfer[kCls];
  std::vector<void*> objs = take(kCls, 99);
  ck_assert(t.insert(objs.data(), 33));
  ck_assert(t.insert(objs.data() + 33, 33));
  ck_assert(t.insert(objs.data() + 66, 33));
  ck_assert_uint_eq(t.count(), 99);
  for (void* p : objs)
    ck_assert(t.holds(p));
  void* out[40];
  // The last batch in comes out first, in its order.
  ck_assert_int_eq(t.remove(out, 33), 33);
  for (int i = 0; i < 33; i++)
    ck_assert_ptr_eq(out[i], objs[66 + static_cast<size_t>(i)]);
  for (int i = 0; i < 33; i++)
    ck_assert(!t.holds(out[i]));
  std::set<void*> seen(out, out + 33);
  // Fewer than asked once it runs short, and nothing when empty.
  ck_assert_int_eq(t.remove(out, 40), 40);
  seen.insert(out, out + 40);
  ck_assert_int_eq(t.remove(out, 40), 26);
  seen.insert(out, out + 26);
  ck_assert_int_eq(t.remove(out, 40), 0);
  ck_assert_uint_eq(t.count(), 0);
  ck_assert_uint_eq(seen.size(), 99);
  ck_assert(seen == std::set<void*>(objs.begin(), objs.end()));
  g_central[kCls].insert_batch(objs.data(), 99);
}

END_TEST

START_TEST(full_cache_refuses_a_whole_batch) {
  TransferCache& t = g_transfer[kCls];
  t.init(kCls, TransferLimits{100, 100});
  std::vector<void*> objs = take(kCls, 140);
  ck_assert(t.insert(objs.data(), 66));
  // 40 do not fit in the 34 left: none go in.
  ck_assert(!t.insert(objs.data() + 66, 40));
  ck_assert_uint_eq(t.count(), 66);
  ck_assert(!t.holds(objs[66]));
  ck_assert(t.insert(objs.data() + 66, 34));
  ck_assert_uint_eq(t.count(), 100);
  ck_assert(!t.insert(objs.data() + 100, 1));
  ck_assert(!t.insert(objs.data() + 100, 101));  // more than it can ever hold
  ck_assert_uint_eq(t.count(), 100);
  ck_assert_uint_eq(t.flush(), 100);
  g_central[kCls].insert_batch(objs.data() + 100, 40);
  ck_assert_uint_eq(allocated(kCls), 0);
}

END_TEST

START_TEST(grows_only_after_misses_and_never_past_max) {
  TransferCache& t = g_transfer[kCls];
  t.init(kCls, TransferLimits{64, 160});
  std::vector<void*> objs = take(kCls, 400);
  void* out[32];
  ck_assert(t.insert(objs.data(), 32));
  ck_assert(t.insert(objs.data() + 32, 32));
  // Full, and no refill has missed: no growth.
  ck_assert(!t.insert(objs.data() + 64, 32));
  ck_assert_uint_eq(t.capacity(), 64);
  // Refills that find too few (here: empty) allow growth, one batch each.
  ck_assert_int_eq(t.remove(out, 32), 32);
  ck_assert_int_eq(t.remove(out, 32), 32);
  ck_assert_int_eq(t.remove(out, 32), 0);  // a miss
  ck_assert_int_eq(t.remove(out, 32), 0);  // another
  size_t in = 0;
  for (; in + 32 <= 400; in += 32) {
    if (!t.insert(objs.data() + in, 32))
      break;
    ck_assert_uint_le(t.count(), t.capacity());
  }
  // 64 objects fit, then two misses grew it by two batches of 32.
  ck_assert_uint_eq(in, 128);
  ck_assert_uint_eq(t.capacity(), 128);
  // Empty it (the objects in are the ones out), then many misses: growth
  // up to the max and no further.
  std::set<void*> back;
  for (int k; (k = t.remove(out, 32)) > 0;)
    back.insert(out, out + k);
  ck_assert(back == std::set<void*>(objs.begin(), objs.begin() + 128));
  for (int i = 0; i < 20; i++)
    ck_assert_int_eq(t.remove(out, 32), 0);
  size_t held = 0;
  for (size_t k = 0; k + 32 <= 400; k += 32) {
    if (t.insert(objs.data() + k, 32)) {
      ck_assert_uint_eq(k, held);  // batches go in whole, in turn
      held += 32;
    }
    ck_assert_uint_le(t.capacity(), 160);
    ck_assert_uint_le(t.count(), 160);
  }
  ck_assert_uint_eq(held, 160);
  ck_assert_uint_eq(t.flush(), 160);
  g_central[kCls].insert_batch(objs.data() + 160, 240);
  ck_assert_uint_eq(allocated(kCls), 0);
}

END_TEST

START_TEST(flush_returns_everything_to_the_central_list) {
  TransferCache& t = g_transfer[kCls];
  std::vector<void*> objs = take(kCls, 330);
  ck_assert_uint_eq(allocated(kCls), 330);
  for (size_t i = 0; i < 330; i += 33)
    ck_assert(t.insert(objs.data() + i, 33));
  ck_assert_uint_eq(t.flush(), 330);
  ck_assert_uint_eq(t.count(), 0);
  ck_assert_uint_eq(t.flush(), 0);
  // Back in their spans, which went back to the page heap.
  rs::CentralStats st = g_central[kCls].stats();
  ck_assert_uint_eq(st.allocated, 0);
  ck_assert_uint_eq(st.spans, 0);
  // flush_transfer_caches does every class.
  std::vector<void*> a = take(kCls, 40), b = take(9, 20);
  ck_assert(g_transfer[kCls].insert(a.data(), 40));
  ck_assert(g_transfer[9].insert(b.data(), 20));
  ck_assert_uint_eq(rs::flush_transfer_caches(), 60);
  ck_assert_uint_eq(allocated(kCls) + allocated(9), 0);
}

END_TEST

START_TEST(idle_flush_waits_for_a_quiet_period) {
  TransferCache& t = g_transfer[kCls];
  t.init(kCls, TransferLimits{64, 160});
  std::vector<void*> objs = take(kCls, 128);
  void* out[32];
  t.remove(out, 32);  // a miss: it may grow
  ck_assert(t.insert(objs.data(), 64));
  ck_assert(t.insert(objs.data() + 64, 64));
  ck_assert_uint_eq(t.capacity(), 128);
  // Used since the last look: kept.
  ck_assert_uint_eq(t.flush_if_idle(), 0);
  ck_assert_uint_eq(t.count(), 128);
  // Nothing since: flushed, and back to its base size.
  ck_assert_uint_eq(t.flush_if_idle(), 128);
  ck_assert_uint_eq(t.count(), 0);
  ck_assert_uint_eq(t.capacity(), 64);
  ck_assert_uint_eq(allocated(kCls), 0);
}

END_TEST

// --- threads

namespace {

constexpr int kThreads = 4;
constexpr size_t kPerThread = 3000;

struct Worker {
  std::vector<void*> own;   // what it starts with
  std::vector<void*> held;  // what it holds at the end
  unsigned seed;
};

void* churn(void* arg) {
  Worker* w = static_cast<Worker*>(arg);
  TransferCache& t = g_transfer[kCls];
  std::vector<void*> mine = w->own;
  void* buf[40];
  for (int round = 0; round < 20000; round++) {
    w->seed = w->seed * 1103515245u + 12345u;
    int n = 1 + static_cast<int>((w->seed >> 16) % 40);
    if ((w->seed >> 8) & 1) {
      if (mine.size() >= static_cast<size_t>(n)) {
        if (t.insert(mine.data() + mine.size() - n, n))
          mine.resize(mine.size() - static_cast<size_t>(n));
      }
    } else {
      int k = t.remove(buf, n);
      mine.insert(mine.end(), buf, buf + k);
    }
  }
  w->held = mine;
  return nullptr;
}

}  // namespace

START_TEST(threads_racing_lose_and_duplicate_nothing) {
  TransferCache& t = g_transfer[kCls];
  t.init(kCls, TransferLimits{256, 2048});
  Worker w[kThreads];
  std::set<void*> all;
  for (int i = 0; i < kThreads; i++) {
    w[i].own = take(kCls, kPerThread);
    w[i].seed = static_cast<unsigned>(i + 1);
    all.insert(w[i].own.begin(), w[i].own.end());
  }
  ck_assert_uint_eq(all.size(), kThreads * kPerThread);
  pthread_t tid[kThreads];
  for (int i = 0; i < kThreads; i++)
    ck_assert_int_eq(pthread_create(&tid[i], nullptr, churn, &w[i]), 0);
  for (int i = 0; i < kThreads; i++)
    pthread_join(tid[i], nullptr);
  std::vector<void*> out;
  void* buf[64];
  for (int k; (k = t.remove(buf, 64)) > 0;)
    out.insert(out.end(), buf, buf + k);
  for (int i = 0; i < kThreads; i++)
    out.insert(out.end(), w[i].held.begin(), w[i].held.end());
  ck_assert_uint_eq(out.size(), all.size());
  ck_assert(std::set<void*>(out.begin(), out.end()) == all);
  g_central[kCls].insert_batch(out.data(), static_cast<int>(out.size()));
  ck_assert_uint_eq(allocated(kCls), 0);
}

END_TEST

namespace {

struct Shrinker {
  bool stop;
  size_t flushed;
};

void* shrink_often(void* arg) {
  Shrinker* sh = static_cast<Shrinker*>(arg);
  while (!__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE))
    sh->flushed += g_transfer[kCls].flush_if_idle();
  return nullptr;
}

}  // namespace

START_TEST(idle_flush_racing_a_grown_cache_keeps_the_bounds) {
  // A cache grown past its base is shrunk by an idle flush while another
  // thread keeps filling it: it must never hold more than its max.
  TransferCache& t = g_transfer[kCls];
  t.init(kCls, TransferLimits{64, 160});
  std::vector<void*> objs = take(kCls, 160);
  Shrinker sh = {false, 0};
  pthread_t tid;
  ck_assert_int_eq(pthread_create(&tid, nullptr, shrink_often, &sh), 0);
  void* out[32];
  size_t worst = 0;
  for (int round = 0; round < 20000; round++) {
    // Fill it as far as it goes (misses below let it grow past its base).
    size_t in = 0;
    for (; in + 32 <= objs.size(); in += 32) {
      if (!t.insert(objs.data() + in, 32))
        break;
      worst = std::max(worst, t.count());
    }
    // Take back what is there (then a miss), and from the central list as
    // many as the idle flush sent there, so every round has 160.
    std::vector<void*> have(objs.begin() + static_cast<long>(in), objs.end());
    for (int k; (k = t.remove(out, 32)) > 0;)
      have.insert(have.end(), out, out + k);
    if (have.size() < 160) {
      std::vector<void*> more = take(kCls, 160 - have.size());
      have.insert(have.end(), more.begin(), more.end());
    }
    objs = have;
  }
  __atomic_store_n(&sh.stop, true, __ATOMIC_RELEASE);
  pthread_join(tid, nullptr);
  // Whether a flush came between a shrink and an insert is up to the
  // scheduler: this is a stress test, not a proof.
  ck_assert_uint_le(worst, 160);
  g_central[kCls].insert_batch(objs.data(), 160);
  ck_assert_uint_eq(allocated(kCls), 0);
}

END_TEST

int main() {
  Suite* s = suite_create("transfer_cache");
  TCase* tc = tcase_create("batches");
  tcase_add_checked_fixture(tc, setup, nullptr);
  tcase_add_test(tc, limits_are_bounded_in_bytes);
  tcase_add_test(tc, batches_come_out_once_last_in_first);
  tcase_add_test(tc, full_cache_refuses_a_whole_batch);
  tcase_add_test(tc, grows_only_after_misses_and_never_past_max);
  tcase_add_test(tc, flush_returns_everything_to_the_central_list);
  tcase_add_test(tc, idle_flush_waits_for_a_quiet_period);
  suite_add_tcase(s, tc);
  tc = tcase_create("threads");
  tcase_add_checked_fixture(tc, setup, nullptr);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, threads_racing_lose_and_duplicate_nothing);
  tcase_add_test(tc, idle_flush_racing_a_grown_cache_keeps_the_bounds);
  suite_add_tcase(s, tc);
  return rs_check_run(s, "test_transfer_cache");
}
