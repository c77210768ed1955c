/* SPDX-License-Identifier: MIT */
/* Signal storms during allocation-heavy multi-threaded work with the real
 * library: a process-wide ITIMER_REAL at 20 us and per-thread timers at
 * 30 us, with a handler that itself mallocs, writes and frees, also on top
 * of threads interrupted inside rseq critical sections, which must restart.
 * Every live object's content is checked; nothing may crash. */
#define _GNU_SOURCE
#include <check.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <sys/time.h>

#include "../check_main.h"
#include "alloc_util.h"

/* Where the signal interrupted the thread, for each architecture's
 * mcontext_t; 0 where it is not known (then no interruption is counted as
 * inside a section or the program). */
static uintptr_t interrupted_ip(void* ctx) {
  const mcontext_t* mc = &((ucontext_t*)ctx)->uc_mcontext;
#if defined(__x86_64__)
  return (uintptr_t)mc->gregs[REG_RIP];
#elif defined(__i386__)
  return (uintptr_t)mc->gregs[REG_EIP];
#elif defined(__aarch64__)
  return (uintptr_t)mc->pc;
#elif defined(__arm__)
  return (uintptr_t)mc->arm_pc;
#elif defined(__powerpc64__)
  return (uintptr_t)mc->gp_regs[32]; /* PT_NIP */
#elif defined(__s390x__)
  return (uintptr_t)mc->psw.addr;
#elif defined(__riscv)
  return (uintptr_t)mc->__gregs[0]; /* REG_PC */
#else
  (void)mc;
  return 0;
#endif
}

#ifndef sigev_notify_thread_id
#  define sigev_notify_thread_id _sigev_un._tid
#endif

/* CHURN workers allocate sizes up to 300 KiB and check every byte; HAMMER
 * workers spend most of their time in malloc and free of small blocks, so
 * that many signals land inside critical sections. */
enum { CHURN = 6, HAMMER = 2, WORKERS = CHURN + HAMMER, HANDLER_SIZE = 40 };

/* The handler allocates only when the interrupted thread cannot hold an
 * allocator lock, or it could wait for its own thread (a test bug, not an
 * allocator one): when the thread was in this program's code (allocator
 * code and the libc and vDSO functions it calls are elsewhere), or in
 * librsmalloc's rsmalloc_rseq_abort section. The kernel moves a thread
 * interrupted inside a critical section to the section's abort handler
 * before the signal handler runs, and no lock is held around a section, so
 * that case is both safe and the one this test is about. */
typedef struct {
  uintptr_t lo, hi;
} range_t;

static range_t g_program_text, g_abort_section;

static int in_range(const range_t* r, uintptr_t ip) {
  return ip >= r->lo && ip < r->hi;
}

/* Finds the section `name` of the ELF file `path` loaded at `bias`. */
static range_t find_section(const char* path,
                            uintptr_t bias,
                            const char* name) {
  range_t r = {0, 0};
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return r;
  Elf64_Ehdr eh;
  Elf64_Shdr* sh = NULL;
  char* names = NULL;
  if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh ||
      memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
      eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shstrndx >= eh.e_shnum)
    goto out;
  sh = calloc(eh.e_shnum, sizeof *sh);
  size_t sh_bytes = eh.e_shnum * sizeof *sh;
  if (sh == NULL ||
      pread(fd, sh, sh_bytes, (off_t)eh.e_shoff) != (ssize_t)sh_bytes)
    goto out;
  const Elf64_Shdr* strs = &sh[eh.e_shstrndx];
  names = malloc(strs->sh_size + 1);
  if (names == NULL || pread(fd, names, strs->sh_size,
                             (off_t)strs->sh_offset) != (ssize_t)strs->sh_size)
    goto out;
  names[strs->sh_size] = '\0';
  for (unsigned i = 0; i < eh.e_shnum; i++) {
    if (sh[i].sh_name < strs->sh_size &&
        strcmp(names + sh[i].sh_name, name) == 0) {
      r.lo = bias + sh[i].sh_addr;
      r.hi = r.lo + sh[i].sh_size;
      break;
    }
  }
out:
  free(names);
  free(sh);
  close(fd);
  return r;
}

static int find_ranges(struct dl_phdr_info* info, size_t size, void* arg) {
  (void)size;
  (void)arg;
  if (info->dlpi_name == NULL || info->dlpi_name[0] == '\0') {
    /* The program itself: its executable segment. */
    for (int i = 0; i < info->dlpi_phnum; i++) {
      const ElfW(Phdr)* ph = &info->dlpi_phdr[i];
      if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) &&
          g_program_text.hi == 0) {
        g_program_text.lo = info->dlpi_addr + ph->p_vaddr;
        g_program_text.hi = g_program_text.lo + ph->p_memsz;
      }
    }
  } else if (strstr(info->dlpi_name, "librsmalloc")) {
    g_abort_section =
        find_section(info->dlpi_name, info->dlpi_addr, "rsmalloc_rseq_abort");
  }
  return 0;
}

static uint64_t g_signals, g_handler_mallocs, g_in_section, g_handler_bad,
    g_handler_null;
static int g_use_thread_timers;
static long g_thread_timer_us;
static timer_t g_timers[WORKERS];
static int g_ready;

static void check_fill(const unsigned char* p, unsigned char v) {
  for (size_t i = 0; i < HANDLER_SIZE; i++) {
    if (p[i] != v) {
      __atomic_add_fetch(&g_handler_bad, 1, __ATOMIC_RELAXED);
      return;
    }
  }
}

static void on_signal(int sig, siginfo_t* si, void* ctx) {
  (void)sig;
  (void)si;
  int saved = errno;
  uint64_t k = __atomic_add_fetch(&g_signals, 1, __ATOMIC_RELAXED);
  uintptr_t ip = interrupted_ip(ctx);
  int in_section = in_range(&g_abort_section, ip);
  if (in_section)
    __atomic_add_fetch(&g_in_section, 1, __ATOMIC_RELAXED);
  if (in_section || in_range(&g_program_text, ip)) {
    unsigned char* p = malloc(HANDLER_SIZE);
    unsigned char* q = malloc(HANDLER_SIZE);
    if (p == NULL || q == NULL || p == q) {
      __atomic_add_fetch(&g_handler_null, 1, __ATOMIC_RELAXED);
    } else {
      unsigned char v = (unsigned char)(k * 131u + 7u);
      memset(p, v, HANDLER_SIZE);
      memset(q, (unsigned char)~v, HANDLER_SIZE);
      check_fill(p, v);
      check_fill(q, (unsigned char)~v);
      __atomic_add_fetch(&g_handler_mallocs, 1, __ATOMIC_RELAXED);
    }
    free(q);
    free(p);
  }
  errno = saved;
}

static void set_blocked(int blocked) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGALRM);
  pthread_sigmask(blocked ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

static void worker_start(churn_t* c) {
  /* The signal is still blocked (inherited from the main thread). */
  if (g_use_thread_timers) {
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGALRM;
    sev.sigev_notify_thread_id = gettid();
    if (timer_create(CLOCK_MONOTONIC, &sev, &g_timers[c->id]) != 0) {
      c->bad++;
    } else {
      struct itimerspec its = {{0, g_thread_timer_us * 1000},
                               {0, g_thread_timer_us * 1000}};
      if (timer_settime(g_timers[c->id], 0, &its, NULL) != 0)
        c->bad++;
    }
  }
  __atomic_add_fetch(&g_ready, 1, __ATOMIC_RELEASE);
  set_blocked(0);
}

static void worker_end(churn_t* c) {
  set_blocked(1);
  if (g_use_thread_timers)
    timer_delete(g_timers[c->id]);
}

static void* hammer_main(void* arg) {
  churn_t* c = (churn_t*)arg;

  enum { RING = 64 };

  void* ring[RING] = {0};
  size_t size[RING] = {0};
  uint32_t seqs[RING] = {0}, seq = 0;
  rng_t r = rng_seed(c->id * 31u + 5u);
  worker_start(c);
  while (!__atomic_load_n(&churn_stop, __ATOMIC_RELAXED)) {
    uint64_t x = rnd(&r);
    size_t i = (size_t)(x % RING);
    if (ring[i] != NULL) {
      if (!stamped(ring[i], size[i], c->id, seqs[i]))
        c->bad++;
      free(ring[i]);
    }
    size_t n = MIN_OBJECT + (size_t)(x >> 32) % 240;
    ring[i] = malloc(n);
    if (ring[i] == NULL) {
      c->nulls++;
      continue;
    }
    stamp(ring[i], n, c->id, ++seq);
    size[i] = n;
    seqs[i] = seq;
    c->ops++;
  }
  for (size_t i = 0; i < RING; i++) {
    if (ring[i] != NULL && !stamped(ring[i], size[i], c->id, seqs[i]))
      c->bad++;
    free(ring[i]);
  }
  worker_end(c);
  return NULL;
}

static churn_t* g_storm_workers;
static int g_storm_rseq;

/* The storm has shown what it is for: enough signals, every worker made
 * progress, a handler allocated, and (with rseq) a signal landed inside a
 * critical section. How soon depends on the scheduler, so the storm runs
 * until this holds or a deadline passes; under valgrind too, whose
 * scheduler gets there more slowly (the deadline is stretched), so the
 * minimums are not waived there. */
static int storm_did_enough(void* arg) {
  (void)arg;
  if (__atomic_load_n(&g_signals, __ATOMIC_RELAXED) <= 50 ||
      __atomic_load_n(&g_handler_mallocs, __ATOMIC_RELAXED) < 1)
    return 0;
  for (int i = 0; i < WORKERS; i++)
    if (__atomic_load_n(&g_storm_workers[i].ops, __ATOMIC_RELAXED) <= 10)
      return 0;
  return !g_storm_rseq || __atomic_load_n(&g_in_section, __ATOMIC_RELAXED) > 0;
}

/* Runs the storm; the process-wide timer when interval_us > 0, else one
 * timer per worker at thread_us. Reports name it by `timer` and the
 * interval it ran at. */
static void storm(const char* timer, long interval_us, long thread_us) {
  /* Under qemu-user every signal costs the emulator far more than a real
   * CPU: a 20 us timer there starves the threads it interrupts (i686 under
   * qemu-i386 never finished). Ten times slower is still a storm. */
  if (rs_on_emulator()) {
    interval_us *= 10;
    thread_us *= 10;
  }
  char name[64];
  snprintf(name, sizeof(name), "%s/%ldus", timer,
           interval_us > 0 ? interval_us : thread_us);
  const char* mode = rsmalloc_cache_mode();
  int rseq = mode_is_rseq();
  g_signals = g_handler_mallocs = g_in_section = 0;
  g_handler_bad = g_handler_null = 0;
  g_use_thread_timers = interval_us == 0;
  g_thread_timer_us = thread_us;
  g_ready = 0;
  if (g_program_text.hi == 0)
    dl_iterate_phdr(find_ranges, NULL);
  ck_assert_uint_gt(g_program_text.hi, g_program_text.lo);
  if (rseq)
    ck_assert_msg(g_abort_section.hi > g_abort_section.lo,
                  "no rsmalloc_rseq_abort section in librsmalloc");
  /* Bind memset now, not in a handler. */
  unsigned char scratch[HANDLER_SIZE];
  memset(scratch, 1, sizeof scratch);
  check_fill(scratch, 1);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_signal;
  sa.sa_flags = SA_RESTART | SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
  set_blocked(1); /* the workers unblock it */

  churn_t w[WORKERS];
  memset(w, 0, sizeof w);
  for (int i = 0; i < CHURN; i++) {
    w[i].on_start = worker_start;
    w[i].on_end = worker_end;
  }
  ck_assert_int_eq(churn_start(w, CHURN, 0), 0);
  for (int i = CHURN; i < WORKERS; i++) {
    w[i].id = (uint32_t)i;
    ck_assert_int_eq(pthread_create(&w[i].thread, NULL, hammer_main, &w[i]), 0);
  }
  while (__atomic_load_n(&g_ready, __ATOMIC_ACQUIRE) < WORKERS)
    sleep_us(100);
  if (interval_us > 0) {
    struct itimerval it = {{0, interval_us}, {0, interval_us}};
    ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
  }
  g_storm_workers = w;
  g_storm_rseq = rseq;
  run_until(storm_did_enough, NULL, test_ms(1500), 30000);
  uint64_t ops;
  uint64_t bad = churn_finish(w, CHURN, &ops);
  for (int i = CHURN; i < WORKERS; i++) {
    pthread_join(w[i].thread, NULL);
    bad += w[i].bad + w[i].nulls;
    ops += w[i].ops;
  }
  if (interval_us > 0) {
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
  }
  note(
      "rseq/test_signals: %s: mode %s, %llu operations, %llu signals, "
      "%llu handler malloc pairs, %llu on a restarted critical section\n",
      name, mode, (unsigned long long)ops, (unsigned long long)g_signals,
      (unsigned long long)g_handler_mallocs, (unsigned long long)g_in_section);
  ck_assert_msg(bad == 0, "%s: %llu objects lost their content (or failed)",
                name, (unsigned long long)bad);
  ck_assert_msg(g_handler_bad == 0 && g_handler_null == 0,
                "%s: handler objects: %llu corrupted, %llu failed", name,
                (unsigned long long)g_handler_bad,
                (unsigned long long)g_handler_null);
  /* Few: SIGALRMs coalesce while one is pending on a thread that waits
   * for a CPU. Enough to show the storm ran. */
  ck_assert_msg(g_signals > 50, "%s: only %llu signals", name,
                (unsigned long long)g_signals);
  for (int i = 0; i < WORKERS; i++)
    ck_assert_msg(w[i].ops > 10, "%s: worker %d did %llu operations", name, i,
                  (unsigned long long)w[i].ops);
  ck_assert_uint_ge(g_handler_mallocs, 1);
  if (rseq) {
    /* Signals landed inside critical sections, which the kernel sent to
     * their abort handlers, and the handler allocated on top of them. */
    ck_assert_msg(g_in_section > 0,
                  "%s: no signal interrupted a critical section", name);
  } else {
    ck_assert_uint_eq(g_in_section, 0);
  }
}

START_TEST(process_timer_storm) {
  storm("ITIMER_REAL", 20, 0);
}

END_TEST

START_TEST(per_thread_timer_storm) {
  storm("per-thread timers", 0, 30);
}

END_TEST

/* The mode is what the environment asked for. */
START_TEST(cache_mode_as_configured) {
  const char* mode = rsmalloc_cache_mode();
  const char* rs = getenv("RSMALLOC_RSEQ");
  const char* tun = getenv("GLIBC_TUNABLES");
  int want_fallback = (rs && strcmp(rs, "0") == 0) ||
                      (tun && strstr(tun, "glibc.pthread.rseq=0"));
  if (want_fallback) {
    ck_assert_msg(strncmp(mode, "fallback: ", 10) == 0,
                  "fallback requested, mode is %s", mode);
  } else if (!mode_is_rseq()) {
    note("rseq/test_signals: mode %s: rseq unavailable, rseq checks skipped\n",
         mode);
  } else {
    ck_assert_msg(
        strcmp(mode, "rseq/mm_cid") == 0 || strcmp(mode, "rseq/cpu_id") == 0,
        "mode %s", mode);
  }
}

END_TEST

int main(void) {
  Suite* s = suite_create("rseq_signals");
  TCase* tc = tcase_create("storm");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, cache_mode_as_configured);
  tcase_add_test(tc, process_timer_storm);
  tcase_add_test(tc, per_thread_timer_storm);
  suite_add_tcase(s, tc);
  return rs_check_run(s, "rseq/test_signals");
}
