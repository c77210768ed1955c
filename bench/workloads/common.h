/* SPDX-License-Identifier: MIT */
/* common.h: what every benchmark workload shares.
 *
 * Each workload is one small C file and one process. It takes its parameters
 * as name=value words (seed=1 threads=4 scale=0.1), is deterministic for a
 * given seed (each thread draws from its own generator), and ends by printing
 * one line that the runner parses:
 *
 *   RESULT workload=NAME threads=N ops=N seconds=S ops_per_sec=R [key=value]
 *
 * "seconds" is the timed phase only (not process start-up or set-up). The
 * workloads never link an allocator: the runner picks one with LD_PRELOAD. */
#ifndef RS_BENCH_COMMON_H
#define RS_BENCH_COMMON_H

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- errors ---- */

static inline void die(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("bench: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(2);
}

static inline void* xmalloc(size_t n) {
  void* p = malloc(n);
  if (p == NULL)
    die("malloc(%zu) failed", n);
  return p;
}

static inline void* xrealloc(void* old, size_t n) {
  void* p = realloc(old, n);
  if (p == NULL)
    die("realloc(%zu) failed", n);
  return p;
}

/* Keeps the compiler from eliding a malloc/free pair or a store into it. */
static inline void escape(void* p) {
  __asm__ volatile("" : : "r"(p) : "memory");
}

/* ---- parameters: name=value words on the command line ---- */

static int bench_argc;
static char** bench_argv;
static unsigned long bench_arg_used;

static inline void bench_args(int argc, char** argv) {
  if (argc > 64)
    die("too many arguments");
  bench_argc = argc;
  bench_argv = argv;
  for (int i = 1; i < argc; i++) {
    if (strchr(argv[i], '=') == NULL)
      die("argument '%s' is not name=value", argv[i]);
  }
}

static inline const char* arg_str(const char* name, const char* def) {
  size_t n = strlen(name);
  for (int i = 1; i < bench_argc; i++) {
    const char* a = bench_argv[i];
    if (a[0] == '-' && a[1] == '-')
      a += 2;
    if (strncmp(a, name, n) == 0 && a[n] == '=') {
      bench_arg_used |= 1ul << i;
      return a + n + 1;
    }
  }
  return def;
}

static inline double arg_double(const char* name, double def) {
  const char* s = arg_str(name, NULL);
  if (s == NULL)
    return def;
  char* end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0')
    die("bad %s=%s", name, s);
  return v;
}

static inline long arg_long(const char* name, long def) {
  const char* s = arg_str(name, NULL);
  if (s == NULL)
    return def;
  char* end;
  errno = 0;
  long v = strtol(s, &end, 0);
  if (errno != 0 || end == s || *end != '\0')
    die("bad %s=%s", name, s);
  return v;
}

/* A count scaled by scale=F (the runner's --quick passes a small F). */
static inline long arg_scaled(const char* name, long def) {
  long v = arg_long(name, -1);
  if (v >= 0)
    return v;
  double scaled = (double)def * arg_double("scale", 1.0);
  return scaled < 1.0 ? 1 : (long)scaled;
}

/* Call after reading every parameter: rejects the ones nobody asked for. */
static inline void bench_args_done(void) {
  arg_double("scale", 1.0);
  for (int i = 1; i < bench_argc; i++) {
    if (!(bench_arg_used & (1ul << i)))
      die("unknown argument '%s'", bench_argv[i]);
  }
}

static inline long ncpus(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? n : 1;
}

/* The CPUs this process may run on (its affinity mask), in order: at most
 * `max` of them into `out`. Returns how many. */
static inline int allowed_cpus(int* out, int max) {
  cpu_set_t set;
  int n = 0;
  if (sched_getaffinity(0, sizeof(set), &set) != 0)
    die("sched_getaffinity failed");
  for (int c = 0; c < CPU_SETSIZE && n < max; c++) {
    if (CPU_ISSET(c, &set))
      out[n++] = c;
  }
  return n;
}

/* threads=0 (or absent, with def 0) means one per online CPU. */
static inline long arg_threads(long def) {
  long t = arg_long("threads", def);
  if (t <= 0)
    t = ncpus();
  if (t > 4096)
    die("threads=%ld is too many", t);
  return t;
}

/* ---- deterministic random numbers (splitmix64) ---- */

typedef struct {
  uint64_t s;
} rng_t;

static inline rng_t rng_make(uint64_t seed, uint64_t stream) {
  rng_t r = {seed * 0x9e3779b97f4a7c15ull + stream * 0xbf58476d1ce4e5b9ull + 1};
  return r;
}

static inline uint64_t rng_next(rng_t* r) {
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in [0, n). */
static inline uint64_t rng_below(rng_t* r, uint64_t n) {
  return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

/* Uniform in [0, 1). */
static inline double rng_unit(rng_t* r) {
  return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Log-uniform in [lo, hi]: each power of two gets the same share. */
static inline size_t rng_log_size(rng_t* r, size_t lo, size_t hi) {
  double lg_lo = __builtin_log2((double)lo);
  double lg_hi = __builtin_log2((double)hi);
  double v = __builtin_exp2(lg_lo + rng_unit(r) * (lg_hi - lg_lo));
  size_t s = (size_t)v;
  return s < lo ? lo : s > hi ? hi : s;
}

/* 8 B to 8 KiB, skewed small: power-of-two band k (8 << k) has share
 * sqrt((k+1)/10) - sqrt(k/10), so a third are 8-15 B and one in twenty is
 * 4-8 KiB; mean size about 700 B. */
static inline size_t rng_server_size(rng_t* r) {
  double u = rng_unit(r);
  unsigned band = (unsigned)(10.0 * u * u);
  size_t base = (size_t)8 << band;
  return base + rng_below(r, base);
}

/* ---- time and memory ---- */

static inline double now_sec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Resident set size now, in KiB, from /proc/self/statm. */
static inline long rss_kb(void) {
  FILE* f = fopen("/proc/self/statm", "r");
  long size = 0, resident = 0;
  if (f == NULL)
    return -1;
  if (fscanf(f, "%ld %ld", &size, &resident) != 2)
    resident = -1;
  fclose(f);
  return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* ---- threads ---- */

/* Starts n threads running fn(arg + i * stride) and waits for them all. */
static inline void run_threads(long n,
                               void* (*fn)(void*),
                               void* arg,
                               size_t stride) {
  pthread_t* tids = xmalloc((size_t)n * sizeof(pthread_t));
  for (long i = 0; i < n; i++) {
    int err =
        pthread_create(&tids[i], NULL, fn, (char*)arg + (size_t)i * stride);
    if (err != 0)
      die("pthread_create: %s", strerror(err));
  }
  for (long i = 0; i < n; i++)
    pthread_join(tids[i], NULL);
  free(tids);
}

/* The common part of every result line; the caller appends its own keys
 * and the newline. */
static inline void result_begin(const char* workload,
                                long threads,
                                double ops,
                                double seconds) {
  printf(
      "RESULT workload=%s threads=%ld ops=%.0f seconds=%.6f ops_per_sec=%.0f",
      workload, threads, ops, seconds, seconds > 0 ? ops / seconds : 0.0);
}

#endif /* RS_BENCH_COMMON_H */
