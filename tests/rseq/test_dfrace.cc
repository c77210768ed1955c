// SPDX-License-Identifier: MIT
// The double-free confirmation against blocks on the move (lib/moves.h),
// with the inject build of the core: rs_inject_moving parks a CPU cache's
// refill or drain while it holds its batch in its own array, where no
// search can see it, and another thread frees one of those blocks a second
// time. The confirmation must wait for the move and report the double
// free; a mark that a live block holds by coincidence must still be freed,
// quietly and quickly, also beside a busy mover and in a fork child whose
// parent had a move under way. Each case runs in both cache modes (the
// program runs itself again with RSMALLOC_RSEQ=0).
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/wait.h>

#include "../check_main.h"
#include "../on_valgrind.h"
#include "../run_child.h"
#include "allocator.h"
#include "moves.h"

namespace {

constexpr size_t kSize = 48;
constexpr int kBlocks = 4000;  // past a CPU cache's 1024 of the class

size_t g_cls;             // the class the hook parks
void* volatile g_victim;  // a block the parked mover holds
volatile int g_parked;    // the mover is in the hook
volatile int g_release;   // the hook may return
volatile int g_armed;     // the hook parks (once)
void* g_blocks[kBlocks];  // the mover's blocks

uint64_t now_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 +
         static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

void park(size_t cls, void* const* objs, size_t n) {
  if (cls != g_cls || n == 0 ||
      !__atomic_exchange_n(&g_armed, 0, __ATOMIC_SEQ_CST))
    return;
  g_victim = objs[0];
  __atomic_store_n(&g_parked, 1, __ATOMIC_SEQ_CST);
  while (!__atomic_load_n(&g_release, __ATOMIC_SEQ_CST))
    sched_yield();
}

/// Drain window: frees blocks until a CPU cache drains a batch, which the
/// hook parks.
void* drain_mover(void*) {
  for (int i = 0; i < kBlocks; i++)
    g_blocks[i] = rs::allocate(kSize);
  __atomic_store_n(&g_armed, 1, __ATOMIC_SEQ_CST);
  for (int i = 0; i < kBlocks; i++)
    rs::deallocate(g_blocks[i]);
  return nullptr;
}

/// Refill window: frees blocks, empties the caches into the central
/// lists, then allocates until a refill is parked.
void* refill_mover(void*) {
  for (int i = 0; i < kBlocks; i++)
    g_blocks[i] = rs::allocate(kSize);
  for (int i = 0; i < kBlocks; i++)
    rs::deallocate(g_blocks[i]);
  rs::trim(0);
  __atomic_store_n(&g_armed, 1, __ATOMIC_SEQ_CST);
  for (int i = 0; i < kBlocks && !g_release; i++)
    g_blocks[i] = rs::allocate(kSize);
  return nullptr;
}

void* second_free(void*) {
  rs::deallocate(g_victim);  // the block was freed once already
  return nullptr;
}

/// Starts `mover` and waits until the hook parks it; false after 5 s.
bool start_parked(void* (*mover)(void*), pthread_t* thread) {
  g_cls = rs::size_class_of(kSize);
  rs_inject_moving = park;
  if (pthread_create(thread, nullptr, mover, nullptr) != 0)
    return false;
  uint64_t until = now_ms() + 5000 * rs_time_scale();
  while (!__atomic_load_n(&g_parked, __ATOMIC_SEQ_CST)) {
    if (now_ms() > until)
      return false;
    sched_yield();
  }
  return true;
}

/// In a child: parks `mover`, frees its victim again from another thread,
/// lets the mover go 100 ms later. Exits 0 when the second free returned
/// (the double free went unnoticed), 3 when nothing was parked.
[[noreturn]] void double_free_child(void* (*mover)(void*)) {
  pthread_t m, d;
  if (!start_parked(mover, &m))
    _exit(3);
  pthread_create(&d, nullptr, second_free, nullptr);
  struct timespec ts = {0, 100 * 1000 * 1000};
  nanosleep(&ts, nullptr);  // d is in the confirmation by now
  __atomic_store_n(&g_release, 1, __ATOMIC_SEQ_CST);
  pthread_join(d, nullptr);
  pthread_join(m, nullptr);
  _exit(0);
}

/// The movers expect_double_free parks, by run_child's int.
void* (*const kMovers[])(void*) = {drain_mover, refill_mover};

void double_free_child_of(int mover) {
  double_free_child(kMovers[mover]);
}

void expect_double_free(int mover, const char* window) {
  char msg[512];
  int status = run_child(double_free_child_of, mover, msg, sizeof(msg));
  ck_assert_msg(!(WIFEXITED(status) && WEXITSTATUS(status) == 3),
                "%s: the hook never parked a mover", window);
  ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
                "%s: a second free of a block on the move went unnoticed "
                "(status %#x, stderr: %s)",
                window, status, msg);
  ck_assert_msg(strstr(msg, "rsmalloc: free(): double free of") != nullptr,
                "%s: stderr: %s", window, msg);
}

START_TEST(double_free_during_drain) {
  expect_double_free(0, "drain");
}

END_TEST

START_TEST(double_free_during_refill) {
  expect_double_free(1, "refill");
}

END_TEST

/// A live block whose second word holds the free mark (written by the
/// program, say from stale memory): freed without a report; returns how
/// long the free took.
uint64_t free_coincidence(void* p) {
  *(reinterpret_cast<uintptr_t*>(p) + 1) = rs::g_free_mark;
  uint64_t t0 = now_ms();
  rs::deallocate(p);
  return now_ms() - t0;
}

START_TEST(mark_coincidence_is_freed) {
  void* p = rs::allocate(kSize);
  ck_assert_ptr_nonnull(p);
  uint64_t ms = free_coincidence(p);
  ck_assert_uint_lt(ms, 500);
  // It went back to this CPU's cache (or the backend): it is handed out
  // again, and a normal free of it afterwards is no double free either.
  void* q = rs::allocate(kSize);
  ck_assert_ptr_nonnull(q);
  rs::deallocate(q);
}

END_TEST

// A program that ends an 8-character string in a 16-byte block writes a 0
// over the class tag's low byte, and other programs write other single
// bytes there: none of that may leave the free mark, or every such free
// takes the slow confirmation of a suspected double free (perl's
// perl_destruct did, scanning every move slot: 16 page faults).
START_TEST(string_end_over_a_tag_is_no_mark) {
  for (size_t n = 9; n <= 300; n += 13) {
    char* p = static_cast<char*>(rs::allocate(n));
    ck_assert_ptr_nonnull(p);
    memcpy(p, "abcdefgh", 9);
    uintptr_t word;
    memcpy(&word, p + 8, sizeof(word));
    ck_assert_uint_ne(word, rs::g_free_mark);
    rs::deallocate(p);
  }
  for (size_t cls = 1; cls < rs::kNumClasses; cls++) {
    for (uintptr_t byte = 0; byte < 256; byte++) {
      uintptr_t word = (rs::tag_of(cls) & ~uintptr_t{0xff}) | byte;
      if (byte != rs::kMarkByte)
        ck_assert_uint_ne(word, rs::g_free_mark);
    }
  }
}

END_TEST

volatile int g_stop;

void* churn(void*) {
  static void* b[3000];
  while (!__atomic_load_n(&g_stop, __ATOMIC_RELAXED)) {
    for (int i = 0; i < 3000; i++)
      b[i] = rs::allocate(kSize);
    for (int i = 0; i < 3000; i++)
      rs::deallocate(b[i]);
  }
  return nullptr;
}

// Beside a thread whose refills and drains of the same class never stop,
// the confirmation still gets its quiet moment (the movers yield to it).
START_TEST(mark_coincidence_beside_moves) {
  g_cls = rs::size_class_of(kSize);
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, nullptr, churn, nullptr), 0);
  uint64_t worst = 0, total = 0;
  uint32_t moves0 = rs::moves_started(g_cls);
  uint64_t until = now_ms() + 5000;
  while (rs::moves_started(g_cls) - moves0 < 10 && now_ms() < until)
    sched_yield();  // the churn is under way
  for (int i = 0; i < 2000; i++) {
    void* p = rs::allocate(kSize);
    ck_assert_ptr_nonnull(p);
    uint64_t ms = free_coincidence(p);
    total += ms;
    worst = ms > worst ? ms : worst;
  }
  uint32_t moves = rs::moves_started(g_cls) - moves0;
  __atomic_store_n(&g_stop, 1, __ATOMIC_RELAXED);
  pthread_join(t, nullptr);
  fprintf(stderr,
          "rseq/test_dfrace: 2000 coincidences beside %u moves: %llu ms in "
          "all, worst %llu ms\n",
          moves, static_cast<unsigned long long>(total),
          static_cast<unsigned long long>(worst));
  ck_assert_uint_gt(moves, 0);
  // Under the library's 1 s best-effort limit: the movers yielded. Not
  // under an emulator, where everything is many times slower.
  if (!rs_on_emulator())
    ck_assert_uint_lt(worst, 900);
}

END_TEST

// A fork while another thread is in a move: that move never ends in the
// child, whose confirmations must not wait for it.
START_TEST(fork_child_forgets_moves) {
  void* p = rs::allocate(kSize);
  ck_assert_ptr_nonnull(p);
  pthread_t m;
  ck_assert_msg(start_parked(drain_mover, &m), "the hook never parked");
  fflush(nullptr);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0)  // well under the 1 s a confirmation waits at most
    _exit(free_coincidence(p) < 500 || rs_on_emulator() ? 0 : 1);
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  __atomic_store_n(&g_release, 1, __ATOMIC_SEQ_CST);
  pthread_join(m, nullptr);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "the child's confirmation waited for its parent's move "
                "(status %#x)",
                status);
}

END_TEST

}  // namespace

int main(int, char** argv) {
  if (rs_on_valgrind()) {
    // Under memcheck the core sends every free to valgrind's paths: no
    // free mark, no confirmation; memcheck reports double frees itself.
    fprintf(stderr, "rseq/test_dfrace: skipped under valgrind\n");
    return 77;
  }
  Suite* s = suite_create("rseq_dfrace");
  TCase* tc = tcase_create("dfrace");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, double_free_during_drain);
  tcase_add_test(tc, double_free_during_refill);
  tcase_add_test(tc, mark_coincidence_is_freed);
  tcase_add_test(tc, string_end_over_a_tag_is_no_mark);
  tcase_add_test(tc, mark_coincidence_beside_moves);
  tcase_add_test(tc, fork_child_forgets_moves);
  suite_add_tcase(s, tc);
  // Both cache modes; without an rseq area (qemu-user, which cannot exec
  // the rerun either) the first run was the locked mode already.
  return rs_check_run_both_modes(s, "rseq/test_dfrace", argv);
}
