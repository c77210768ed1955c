/* SPDX-License-Identifier: MIT */
/* Helpers for the rseq tests that run against the real library: a random
 * generator, stamped objects (a header with size, owner and sequence, then
 * a pattern derived from them), a "churn" worker that allocates, checks,
 * reallocates, hands objects to other threads and frees them, statistics
 * parsing and waiting for children. Header-only; one test file includes
 * it. */
#ifndef RS_TESTS_RSEQ_ALLOC_UTIL_H
#define RS_TESTS_RSEQ_ALLOC_UTIL_H

#ifndef _GNU_SOURCE
#  define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/wait.h>

#include "../emulator_stuck.h"
#include "../on_valgrind.h"
#include "rsmalloc.h"

#define KiB ((size_t)1024)

/* ------------------------------------------------------------------ */
/* Random numbers. */

typedef struct {
  uint64_t s;
} rng_t;

static inline uint64_t rnd(rng_t* r) {
  uint64_t x = r->s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  r->s = x;
  return x * 0x2545f4914f6cdd1dull;
}

static inline rng_t rng_seed(uint64_t seed) {
  rng_t r = {seed * 0x9e3779b97f4a7c15ull + 0x2545f4914f6cdd1dull};
  if (!r.s)
    r.s = 1;
  return r;
}

/* ------------------------------------------------------------------ */
/* Time. */

static inline uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline void sleep_us(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* How long the timed tests run: RSEQ_TEST_MS, else `dflt`. */
static inline long test_ms(long dflt) {
  const char* v = getenv("RSEQ_TEST_MS");
  long ms = v ? atol(v) : 0;
  return ms > 0 ? ms : dflt;
}

/* Lets the threads run for `min_ms`, then on until done(arg) holds or
 * `max_ms` (stretched under valgrind) have passed since the start: a
 * liveness count that a busy machine reaches late still passes, one that
 * never comes fails. Returns done(arg). */
static inline int run_until(int (*done)(void*),
                            void* arg,
                            long min_ms,
                            long max_ms) {
  uint64_t start = now_ms();
  uint64_t deadline = start + (uint64_t)rs_scaled_ms(max_ms);
  sleep_us(min_ms * 1000);
  while (!done(arg) && now_ms() < deadline)
    sleep_us(10000);
  return done(arg);
}

/* ------------------------------------------------------------------ */
/* Output: stderr is the test log; fd 9, when open, is make check's
 * terminal. */

__attribute__((format(printf, 1, 2))) static inline void note(const char* fmt,
                                                              ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n <= 0)
    return;
  size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
  fputs(line, stderr);
  if (fcntl(9, F_GETFD) != -1 && write(9, line, len) < 0) {
    /* Only a copy; the log has the line. */
  }
}

/* 1 when the per-CPU caches run on restartable sequences. */
static inline int mode_is_rseq(void) {
  return strncmp(rsmalloc_cache_mode(), "rseq", 4) == 0;
}

/* ------------------------------------------------------------------ */
/* Stamped objects: at least 16 bytes; a header {n, tid, seq}, then bytes
 * derived from all three. */

typedef struct {
  uint64_t n;
  uint32_t tid, seq;
} stamp_hdr_t;

#define MIN_OBJECT sizeof(stamp_hdr_t)

static inline unsigned char pat(uint32_t tid, uint32_t seq, size_t i) {
  return (unsigned char)(tid * 37u + seq * 11u + i * 7u + (i >> 8));
}

static inline void stamp(void* p, size_t n, uint32_t tid, uint32_t seq) {
  unsigned char* c = (unsigned char*)p;
  stamp_hdr_t h = {n, tid, seq};
  memcpy(c, &h, sizeof h);
  for (size_t i = sizeof h; i < n; i++)
    c[i] = pat(tid, seq, i);
}

/* 1 when the first `upto` bytes of p hold stamp(n, tid, seq): every byte
 * up to 4 KiB, then one in 61, and the last. */
static inline int stamped_prefix(
    const void* p, size_t n, uint32_t tid, uint32_t seq, size_t upto) {
  const unsigned char* c = (const unsigned char*)p;
  stamp_hdr_t h;
  memcpy(&h, c, sizeof h);
  if (h.n != n || h.tid != tid || h.seq != seq)
    return 0;
  for (size_t i = sizeof h; i < upto; i += i < 4 * KiB ? 1 : 61)
    if (c[i] != pat(tid, seq, i))
      return 0;
  if (upto > sizeof h && c[upto - 1] != pat(tid, seq, upto - 1))
    return 0;
  return 1;
}

static inline int stamped(const void* p, size_t n, uint32_t tid, uint32_t seq) {
  return stamped_prefix(p, n, tid, seq, n);
}

/* Checks an object whose owner is known only from its header (handed over
 * by another thread). */
static inline int stamped_self(const void* p, size_t max_n) {
  stamp_hdr_t h;
  memcpy(&h, p, sizeof h);
  if (h.n < MIN_OBJECT || h.n > max_n)
    return 0;
  return stamped(p, (size_t)h.n, h.tid, h.seq);
}

/* ------------------------------------------------------------------ */
/* The churn worker. */

#define CHURN_SLOTS 256
#define CHURN_XCHG 64
#define CHURN_MAX_SIZE (300 * KiB)

typedef struct churn churn_t;

struct churn {
  uint32_t id;
  pthread_t thread;
  void (*on_start)(churn_t*); /* optional, in the worker, first */
  void (*on_end)(churn_t*);   /* optional, in the worker, last */
  uint64_t ops, bad, nulls, handed;
};

static volatile int churn_stop;
/* Sizes in [churn_avoid_lo, churn_avoid_hi] are left to the test. */
static size_t churn_avoid_lo = 1, churn_avoid_hi = 0;
/* Objects in transit between workers. */
static void* churn_xchg[CHURN_XCHG];

static inline size_t churn_size(rng_t* r) {
  uint64_t x = rnd(r);
  size_t n;
  switch (x % 100) {
    case 0:
      n = 64 * KiB + (size_t)(x >> 8) % (CHURN_MAX_SIZE - 64 * KiB);
      break;
    case 1:
    case 2:
    case 3:
    case 4:
      n = 8 * KiB + (size_t)(x >> 8) % (56 * KiB);
      break;
    default:
      n = (x >> 8) % 4 == 0 ? 512 + (size_t)(x >> 16) % (7680)
                            : (size_t)(x >> 16) % 512;
      break;
  }
  if (n < MIN_OBJECT)
    n = MIN_OBJECT;
  if (n >= churn_avoid_lo && n <= churn_avoid_hi)
    n = churn_avoid_hi + 1 + n % 16;
  return n;
}

/* Checks and frees an object taken from the exchange. */
static inline void churn_free_foreign(churn_t* c, void* p) {
  if (!stamped_self(p, CHURN_MAX_SIZE + 64 * KiB))
    c->bad++;
  free(p);
}

static inline void* churn_main(void* arg) {
  churn_t* c = (churn_t*)arg;
  rng_t r = rng_seed(c->id * 7919u + 17u);
  void* slot[CHURN_SLOTS] = {0};
  size_t size[CHURN_SLOTS] = {0};
  uint32_t seqs[CHURN_SLOTS] = {0};
  uint32_t seq = 0;
  if (c->on_start)
    c->on_start(c);
  while (!__atomic_load_n(&churn_stop, __ATOMIC_RELAXED)) {
    uint64_t x = rnd(&r);
    size_t i = (size_t)(x % CHURN_SLOTS);
    __atomic_store_n(&c->ops, c->ops + 1,
                     __ATOMIC_RELAXED); /* read by others */
    if (slot[i] == NULL) {
      size_t n = churn_size(&r);
      int zeroed = (x >> 40) % 8 == 0;
      unsigned char* p = zeroed ? calloc(1, n) : malloc(n);
      if (p == NULL) {
        c->nulls++;
        continue;
      }
      if (zeroed) {
        for (size_t k = 0; k < n; k += k < 4 * KiB ? 1 : 61)
          if (p[k] != 0) {
            c->bad++;
            break;
          }
      }
      stamp(p, n, c->id, ++seq);
      slot[i] = p;
      size[i] = n;
      seqs[i] = seq;
      continue;
    }
    if (!stamped(slot[i], size[i], c->id, seqs[i]))
      c->bad++;
    switch ((x >> 40) % 16) {
      case 0: { /* realloc: the common prefix survives */
        size_t m = churn_size(&r);
        void* g = realloc(slot[i], m);
        if (g == NULL) {
          c->nulls++;
          break;
        }
        if (!stamped_prefix(g, size[i], c->id, seqs[i],
                            m < size[i] ? m : size[i]))
          c->bad++;
        stamp(g, m, c->id, ++seq);
        slot[i] = g;
        size[i] = m;
        seqs[i] = seq;
        break;
      }
      case 1:
      case 2: { /* hand it to whichever thread looks next */
        size_t k = (size_t)(x >> 48) % CHURN_XCHG;
        void* old =
            __atomic_exchange_n(&churn_xchg[k], slot[i], __ATOMIC_ACQ_REL);
        c->handed++;
        if (old != NULL)
          churn_free_foreign(c, old);
        slot[i] = NULL;
        break;
      }
      default:
        free(slot[i]);
        slot[i] = NULL;
        break;
    }
  }
  for (size_t i = 0; i < CHURN_SLOTS; i++) {
    if (slot[i] == NULL)
      continue;
    if (!stamped(slot[i], size[i], c->id, seqs[i]))
      c->bad++;
    free(slot[i]);
  }
  if (c->on_end)
    c->on_end(c);
  return NULL;
}

/* Starts n churn workers (ids from id0). */
static inline int churn_start(churn_t* w, int n, uint32_t id0) {
  __atomic_store_n(&churn_stop, 0, __ATOMIC_RELAXED);
  for (int i = 0; i < n; i++) {
    w[i].id = id0 + (uint32_t)i;
    w[i].ops = w[i].bad = w[i].nulls = w[i].handed = 0;
    if (pthread_create(&w[i].thread, NULL, churn_main, &w[i]) != 0)
      return -1;
  }
  return 0;
}

/* Stops and joins them, then checks and frees what is in transit; returns
 * the number of bad objects seen (content or calloc zeroing). */
static inline uint64_t churn_finish(churn_t* w, int n, uint64_t* ops) {
  __atomic_store_n(&churn_stop, 1, __ATOMIC_RELAXED);
  uint64_t bad = 0, total = 0;
  for (int i = 0; i < n; i++) {
    pthread_join(w[i].thread, NULL);
    bad += w[i].bad + w[i].nulls;
    total += w[i].ops;
  }
  for (size_t k = 0; k < CHURN_XCHG; k++) {
    void* p = churn_xchg[k];
    churn_xchg[k] = NULL;
    if (p != NULL) {
      if (!stamped_self(p, CHURN_MAX_SIZE + 64 * KiB))
        bad++;
      free(p);
    }
  }
  if (ops)
    *ops = total;
  return bad;
}

/* ------------------------------------------------------------------ */
/* Statistics: the "in_use" and "cached" of the class whose size is
 * class_size, from rsmalloc_stats_json. 0 when the class is not listed
 * (no spans, nothing cached); -1 when the JSON cannot be read. */

static inline int class_stats(size_t class_size, long* in_use, long* cached) {
  static char buf[64 * 1024];
  size_t need = rsmalloc_stats_json(buf, sizeof buf);
  if (need >= sizeof buf)
    return -1;
  *in_use = 0;
  *cached = 0;
  char key[48];
  snprintf(key, sizeof key, "\"size\": %zu,", class_size);
  const char* at = strstr(buf, key);
  if (at == NULL)
    return strstr(buf, "\"classes\": [") ? 0 : -1;
  const char* end = strchr(at, '}');
  const char* u = strstr(at, "\"in_use\": ");
  const char* k = strstr(at, "\"cached\": ");
  if (u == NULL || k == NULL || end == NULL || u > end || k > end)
    return -1;
  *in_use = strtol(u + strlen("\"in_use\": "), NULL, 10);
  *cached = strtol(k + strlen("\"cached\": "), NULL, 10);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Children. */

/* wait_with_timeout()'s result for a child proven stuck on a lock of
 * qemu-user's own (../emulator_stuck.h), with what was seen in
 * g_emulator_stuck_why. */
enum { RS_CHILD_IN_EMULATOR = -3 };

static char g_emulator_stuck_why[640];

/* Waits up to timeout_ms for pid: 0 when it ended (status set), -1 when
 * it did not and was killed, RS_CHILD_IN_EMULATOR when it did not because
 * it is stuck in the emulator (then killed), -2 when waitpid failed. */
static inline int wait_with_timeout(pid_t pid, int* status, long timeout_ms) {
  uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    pid_t w = waitpid(pid, status, WNOHANG);
    if (w == pid)
      return 0;
    if (w < 0 && errno != EINTR)
      return -2;
    if (now_ms() > deadline)
      break;
    sleep_us(500);
  }
  int stuck = rs_stuck_in_emulator(pid, g_emulator_stuck_why,
                                   sizeof g_emulator_stuck_why);
  kill(pid, SIGKILL);
  waitpid(pid, status, 0);
  return stuck ? RS_CHILD_IN_EMULATOR : -1;
}

/* Describes a child's end into buf; returns 1 when it exited with 0. A
 * child stuck in the emulator is a failure here too: a test that knows
 * the emulator's bug checks for RS_CHILD_IN_EMULATOR first. */
static inline int child_ok(int rc, int status, char* buf, size_t len) {
  if (rc == -1) {
    snprintf(buf, len, "hung (killed after the timeout: deadlock?)");
    return 0;
  }
  if (rc == RS_CHILD_IN_EMULATOR) {
    snprintf(buf, len, "hung in the emulator's own lock: %s",
             g_emulator_stuck_why);
    return 0;
  }
  if (rc != 0) {
    snprintf(buf, len, "waitpid failed");
    return 0;
  }
  if (WIFSIGNALED(status)) {
    snprintf(buf, len, "killed by signal %d%s", WTERMSIG(status),
             WTERMSIG(status) == SIGALRM ? " (its alarm: deadlock?)" : "");
    return 0;
  }
  if (WEXITSTATUS(status) != 0) {
    snprintf(buf, len, "exited with %d", WEXITSTATUS(status));
    return 0;
  }
  snprintf(buf, len, "ok");
  return 1;
}

#endif
