/* SPDX-License-Identifier: MIT */
/* ABI tests: every C function librsmalloc exports and the rsmalloc.h
 * extensions, with glibc 2.36 semantics (errno, overflow, alignment,
 * realloc(p, 0), posix_memalign's *memptr), libc-internal allocations that
 * must reach rsmalloc, and glibc pointers that rsmalloc must pass through. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/mman.h>

#include "check_main.h"
#include "rsmalloc.h"
#include "stats_json.h"

/* Not declared by glibc 2.36's headers, exported by rsmalloc. */
void free_sized(void* ptr, size_t size);
void free_aligned_sized(void* ptr, size_t alignment, size_t size);
void cfree(void* ptr);
/* glibc's own allocator, for pointers that rsmalloc did not hand out. */
void* __libc_malloc(size_t size);
void* __libc_memalign(size_t alignment, size_t size);

/* ck_assert*() sends Check a mark point (a write to its pipe) every time it
 * passes; in loops over many blocks or bytes that dominates the run time,
 * above all under valgrind. These report failures only. */
#define EXPECT(cond, ...)        \
  do {                           \
    if (!(cond))                 \
      ck_abort_msg(__VA_ARGS__); \
  } while (0)
#define EXPECT_TRUE(cond) EXPECT(cond, "Assertion '%s' failed", #cond)
#define EXPECT_NONNULL(p) EXPECT((p) != NULL, "'%s' is NULL", #p)
#define EXPECT_PTR_NE(a, b) \
  EXPECT((a) != (b), "'%s' == '%s' == %p", #a, #b, (const void*)(a))
#define EXPECT_CMP(a, op, b)                                                 \
  do {                                                                       \
    uintmax_t a_ = (uintmax_t)(a), b_ = (uintmax_t)(b);                      \
    if (!(a_ op b_))                                                         \
      ck_abort_msg("Assertion '%s %s %s' failed: %ju, %ju", #a, #op, #b, a_, \
                   b_);                                                      \
  } while (0)
#define EXPECT_UINT_EQ(a, b) EXPECT_CMP(a, ==, b)
#define EXPECT_UINT_GE(a, b) EXPECT_CMP(a, >=, b)
#define EXPECT_INT_EQ(a, b)                                                  \
  do {                                                                       \
    intmax_t a_ = (a), b_ = (b);                                             \
    if (a_ != b_)                                                            \
      ck_abort_msg("Assertion '%s == %s' failed: %jd, %jd", #a, #b, a_, b_); \
  } while (0)

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)
#define PTRDIFF_MAX_SZ ((size_t)PTRDIFF_MAX)
/* (size_t)1 << HALF_BITS squared overflows size_t. */
#define HALF_BITS (sizeof(size_t) * 4)

/* Hides a constant from the compiler so calls are neither folded nor
 * diagnosed as "exceeds maximum object size". */
static size_t opaque(size_t n) {
  volatile size_t v = n;
  return v;
}

static int is_aligned(const void* p, size_t alignment) {
  return ((uintptr_t)p & (alignment - 1)) == 0;
}

/* 1 when rsmalloc is the allocator (not RSMALLOC_DISABLE=1). */
static int rs_active(void) {
  return strcmp(rsmalloc_cache_mode(), "disabled") != 0;
}

static int owned_ok(const void* p) {
  return rsmalloc_owns(p) == (rs_active() ? 1 : 0);
}

/* rsmalloc owns every block it hands out. Checked before anything else
 * touches a block, so a stray pointer fails here instead of aborting. */
#define assert_owned(p)                                           \
  EXPECT(owned_ok(p), "rsmalloc_owns(%p) = %d", (const void*)(p), \
         rsmalloc_owns(p))

/* Under valgrind every byte touched costs ~50 times more. The byte-heavy
 * tests then check one byte in 61 past 256 KiB and use fewer and smaller
 * blocks; the same allocator paths still run. */
static int slow;

static int under_valgrind(void) {
  const char* preload = getenv("LD_PRELOAD");
  return preload != NULL && strstr(preload, "vgpreload") != NULL;
}

/* The next byte fill() writes and first_bad() checks after byte i. */
static size_t next_byte(size_t i) {
  return i + (slow && i >= 256 * KiB ? 61 : 1);
}

static unsigned char pat(unsigned seed, size_t i) {
  return (unsigned char)(seed * 97u + i * 131u + (i >> 9) + 1u);
}

/* fill() of bytes from .. n-1 only: what first_bad() checks there, and the
 * last byte (written, so the end is known writable; not checked). */
static void fill_from(void* p, size_t from, size_t n, unsigned seed) {
  unsigned char* c = p;
  size_t i = from;
  if (slow && i > 256 * KiB)
    i = 256 * KiB + (i - 256 * KiB + 60) / 61 * 61;
  for (; i < n; i = next_byte(i))
    c[i] = pat(seed, i);
  if (n > from)
    c[n - 1] = pat(seed, n - 1);
}

static void fill(void* p, size_t n, unsigned seed) {
  fill_from(p, 0, n, seed);
}

/* Index of the first byte that does not match fill(seed), or n. */
static size_t first_bad(const void* p, size_t n, unsigned seed) {
  const unsigned char* c = p;
  for (size_t i = 0; i < n; i = next_byte(i))
    if (c[i] != pat(seed, i))
      return i;
  return n;
}

static int all_bytes(const void* p, size_t n, unsigned char b) {
  const unsigned char* c = p;
  for (size_t i = 0; i < n; i++)
    if (c[i] != b)
      return 0;
  return 1;
}

static int all_zero(const void* p, size_t n) {
  const unsigned char* c = p;
  size_t i = 0;
  for (; i < n && ((uintptr_t)(c + i) & 7); i++)
    if (c[i])
      return 0;
  for (; i + 8 <= n; i += 8)
    if (*(const uint64_t*)(const void*)(c + i))
      return 0;
  for (; i < n; i++)
    if (c[i])
      return 0;
  return 1;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void) {
  uint64_t x = rng_state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return rng_state = x;
}

/* A size spread over 1 .. max on a log scale. */
static size_t rnd_size(size_t max) {
  unsigned bits = 1;
  while (((size_t)1 << bits) < max)
    bits++;
  size_t n = (size_t)(rnd() % ((uint64_t)1 << (rnd() % bits + 1))) + 1;
  return n > max ? max : n;
}

/* Sizes that cross every kind of size boundary. */
static const size_t kSizes[] = {
    1,       2,           7,       8,           15,      16,
    17,      24,          31,      32,          33,      48,
    63,      64,          65,      100,         127,     128,
    129,     255,         256,     257,         500,     512,
    513,     1000,        1024,    1025,        2047,    2048,
    2049,    4095,        4096,    4097,        8191,    8192,
    8193,    12345,       16384,   32768,       65535,   65536,
    65537,   100000,      131072,  200000,      262143,  262144,
    262145,  300000,      524288,  1 * MiB - 1, 1 * MiB, 1 * MiB + 1,
    2 * MiB, 3 * MiB + 7, 4 * MiB, 8 * MiB + 1, 16 * MiB};
#define NSIZES (sizeof kSizes / sizeof kSizes[0])

/* Sizes no allocation can satisfy: each must give NULL and ENOMEM. */
static const size_t kImpossible[] = {
    SIZE_MAX,           SIZE_MAX - 1,
    SIZE_MAX - 4096,    SIZE_MAX / 2 + 1,
    PTRDIFF_MAX_SZ + 1, PTRDIFF_MAX_SZ,
    PTRDIFF_MAX_SZ - 1, (size_t)1 << (sizeof(size_t) == 8 ? 62 : 31),
    SIZE_MAX - 16 * MiB};
#define NIMPOSSIBLE (sizeof kImpossible / sizeof kImpossible[0])

/* ------------------------------------------------------------------ */
/* malloc */

START_TEST(malloc_sizes_usable_writable) {
  for (size_t i = 0; i < NSIZES; i++) {
    size_t n = kSizes[i];
    unsigned char* p = malloc(opaque(n));
    EXPECT(p != NULL, "malloc(%zu) failed", n);
    EXPECT(is_aligned(p, 16), "malloc(%zu) = %p", n, (void*)p);
    EXPECT_UINT_GE(malloc_usable_size(p), n);
    assert_owned(p);
    fill(p, n, (unsigned)i);
    EXPECT_UINT_EQ(first_bad(p, n, (unsigned)i), n);
    free(p);
  }
}

END_TEST

START_TEST(malloc_zero_unique) {
  enum { N = 64 };

  void* p[N];
  for (int i = 0; i < N; i++) {
    p[i] = malloc(opaque(0));
    EXPECT_NONNULL(p[i]);
    EXPECT_TRUE(is_aligned(p[i], 16));
    assert_owned(p[i]);
    for (int j = 0; j < i; j++)
      EXPECT_PTR_NE(p[i], p[j]);
  }
  for (int i = 0; i < N; i++)
    free(p[i]);
}

END_TEST

START_TEST(malloc_enomem) {
  for (size_t i = 0; i < NIMPOSSIBLE; i++) {
    errno = 0;
    void* p = malloc(opaque(kImpossible[i]));
    EXPECT(p == NULL, "malloc(%zu) = %p", kImpossible[i], p);
    EXPECT(errno == ENOMEM, "malloc(%zu): errno %d", kImpossible[i], errno);
  }
  /* The allocator still works afterwards. */
  void* q = malloc(opaque(100));
  EXPECT_NONNULL(q);
  free(q);
}

END_TEST

START_TEST(malloc_alignment_every_size) {
  static void* p[4097];
  for (size_t n = 1; n <= 4096; n++) {
    p[n] = malloc(opaque(n));
    EXPECT(p[n] != NULL, "malloc(%zu)", n);
    EXPECT(is_aligned(p[n], 16), "malloc(%zu) = %p", n, p[n]);
    ((unsigned char*)p[n])[0] = 1;
    ((unsigned char*)p[n])[n - 1] = 2;
  }
  for (size_t n = 1; n <= 4096; n++)
    free(p[n]);
  for (size_t i = 0; i < NSIZES; i++) {
    void* q = malloc(opaque(kSizes[i]));
    EXPECT_NONNULL(q);
    EXPECT(is_aligned(q, 16), "malloc(%zu) = %p", kSizes[i], q);
    free(q);
  }
}

END_TEST

/* Many live objects of mixed sizes never overlap. */
START_TEST(malloc_no_overlap) {
  enum { N = 6000 };

  static unsigned char* p[N];
  static size_t sz[N];
  rng_state = 12345;
  for (int i = 0; i < N; i++) {
    sz[i] = rnd_size(i % 100 == 0 ? 600 * KiB : 9000);
    p[i] = malloc(sz[i]);
    EXPECT_NONNULL(p[i]);
    fill(p[i], sz[i], (unsigned)i);
  }
  /* Free every third object, allocate new ones in the holes. */
  for (int i = 0; i < N; i += 3) {
    EXPECT_UINT_EQ(first_bad(p[i], sz[i], (unsigned)i), sz[i]);
    free(p[i]);
    sz[i] = rnd_size(9000);
    p[i] = malloc(sz[i]);
    EXPECT_NONNULL(p[i]);
    fill(p[i], sz[i], (unsigned)i);
  }
  for (int i = 0; i < N; i++) {
    EXPECT(first_bad(p[i], sz[i], (unsigned)i) == sz[i],
           "object %d (%zu bytes at %p) was overwritten", i, sz[i],
           (void*)p[i]);
  }
  for (int i = N - 1; i >= 0; i--)
    free(p[i]);
}

END_TEST

/* ------------------------------------------------------------------ */
/* free */

START_TEST(free_null) {
  errno = 77;
  free(NULL);
  ck_assert_int_eq(errno, 77);
}

END_TEST

START_TEST(free_keeps_errno) {
  static const size_t sizes[] = {0,      1,       100,     4096,     70000,
                                 262145, 1 * MiB, 3 * MiB, 32 * MiB, 64 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    /* Several rounds so cached and uncached frees are both covered. */
    for (int round = 0; round < 3; round++) {
      void* p = malloc(opaque(sizes[i]));
      EXPECT_NONNULL(p);
      memset(p, 0x5a, sizes[i] < 64 * KiB ? sizes[i] : 64 * KiB);
      if (sizes[i])
        ((volatile unsigned char*)p)[sizes[i] - 1] = 0x5a;
      errno = 1234;
      free(p);
      EXPECT(errno == 1234, "free of %zu bytes changed errno to %d", sizes[i],
             errno);
    }
  }
  void* a = aligned_alloc(opaque(64 * KiB), 64 * KiB);
  EXPECT_NONNULL(a);
  errno = 1234;
  free(a);
  EXPECT_INT_EQ(errno, 1234);
}

END_TEST

/* free in a different order than allocation, then the space is reused. */
START_TEST(free_then_reuse) {
  enum { N = 2000 };

  static void* p[N];
  for (int round = 0; round < 5; round++) {
    for (int i = 0; i < N; i++) {
      p[i] = malloc(opaque(16 + (size_t)(i % 50) * 16));
      EXPECT_NONNULL(p[i]);
      memset(p[i], i & 0xff, 16);
    }
    for (int i = 0; i < N; i += 2)
      free(p[i]);
    for (int i = 1; i < N; i += 2) {
      EXPECT_TRUE(all_bytes(p[i], 16, (unsigned char)(i & 0xff)));
      free(p[i]);
    }
  }
}

END_TEST

/* ------------------------------------------------------------------ */
/* calloc */

/* Dirties `count` freed blocks of n bytes, then calloc must give zeros. */
static void calloc_after_dirty(size_t n, size_t count) {
  void* p[64];
  for (size_t i = 0; i < count; i++) {
    p[i] = malloc(opaque(n));
    EXPECT_NONNULL(p[i]);
    memset(p[i], 0xa5, malloc_usable_size(p[i]));
  }
  for (size_t i = 0; i < count; i++)
    free(p[i]);
  for (size_t i = 0; i < count; i++) {
    if ((n & 7) == 0 && (i & 1))
      p[i] = calloc(opaque(n / 8), 8);
    else
      p[i] = calloc(opaque(n), 1);
    EXPECT(p[i] != NULL, "calloc(%zu)", n);
    EXPECT_TRUE(is_aligned(p[i], 16));
    EXPECT(all_zero(p[i], n), "calloc(%zu) #%zu not zeroed", n, i);
    memset(p[i], 0xa5, n);
  }
  for (size_t i = 0; i < count; i++)
    free(p[i]);
}

static size_t calloc_count(size_t n) {
  size_t budget = slow ? 256 * KiB : 4 * MiB, most = slow ? 8 : 64;
  size_t count = n ? budget / n : most;
  return count > most ? most : count < 2 ? 2 : count;
}

START_TEST(calloc_zeroed_small) {
  for (size_t n = 0; n <= 2048; n += slow ? 7 : 1)
    calloc_after_dirty(n, calloc_count(n));
}

END_TEST

START_TEST(calloc_zeroed_up_to_1mib) {
  for (size_t n = 2048; n <= 1 * MiB; n += slow ? n / 2 : n / 8) {
    calloc_after_dirty(n - 1, calloc_count(n));
    calloc_after_dirty(n, calloc_count(n));
    calloc_after_dirty(n + 1, calloc_count(n));
  }
  calloc_after_dirty(256 * KiB, 8);
  calloc_after_dirty(1 * MiB, 4);
}

END_TEST

START_TEST(calloc_zeroed_large) {
  static const size_t sizes[] = {8 * MiB, 8 * MiB + 1, 64 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    for (int round = 0; round < 2; round++) {
      size_t n = sizes[i];
      if (slow && n > 8 * MiB + 1)
        continue;
      unsigned char* p = malloc(opaque(n));
      EXPECT_NONNULL(p);
      memset(p, 0xff, n);
      free(p);
      /* calloc(1, n) the first round, calloc(n / 8, 8) the second. */
      unsigned char* q =
          round && n % 8 == 0 ? calloc(opaque(n / 8), 8) : calloc(opaque(1), n);
      EXPECT_NONNULL(q);
      EXPECT(all_zero(q, n), "calloc of %zu bytes not zeroed", n);
      memset(q, 0xff, n);
      free(q);
    }
  }
}

END_TEST

START_TEST(calloc_overflow_enomem) {
  static const size_t pairs[][2] = {
      {SIZE_MAX / 2 + 1, 2}, /* product wraps to 0 */
      {2, SIZE_MAX / 2 + 1},
      {(size_t)1 << HALF_BITS, (size_t)1 << HALF_BITS},
      {SIZE_MAX, SIZE_MAX},
      {SIZE_MAX, 2},
      {3, SIZE_MAX / 3 + 1},
      {1, PTRDIFF_MAX_SZ + 1},
      {PTRDIFF_MAX_SZ / 2 + 1, 2}, /* no overflow, > PTRDIFF_MAX */
      {1, SIZE_MAX},
      {16, (size_t)1 << (sizeof(size_t) == 8 ? 60 : 28)},
  };
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    errno = 0;
    void* p = calloc(opaque(pairs[i][0]), opaque(pairs[i][1]));
    ck_assert_msg(p == NULL, "calloc(%zu, %zu) = %p", pairs[i][0], pairs[i][1],
                  p);
    ck_assert_msg(errno == ENOMEM, "calloc(%zu, %zu): errno %d", pairs[i][0],
                  pairs[i][1], errno);
  }
}

END_TEST

START_TEST(calloc_zero_elements) {
  void* a = calloc(opaque(0), 0);
  void* b = calloc(opaque(0), 16);
  void* c = calloc(opaque(16), 0);
  ck_assert_ptr_nonnull(a);
  ck_assert_ptr_nonnull(b);
  ck_assert_ptr_nonnull(c);
  ck_assert_ptr_ne(a, b);
  ck_assert_ptr_ne(b, c);
  ck_assert_ptr_ne(a, c);
  assert_owned(a);
  free(a);
  free(b);
  free(c);
}

END_TEST

/* ------------------------------------------------------------------ */
/* realloc */

START_TEST(realloc_null_is_malloc) {
  for (size_t i = 0; i < NSIZES; i++) {
    size_t n = kSizes[i];
    unsigned char* p = realloc(NULL, opaque(n));
    EXPECT_NONNULL(p);
    EXPECT_TRUE(is_aligned(p, 16));
    EXPECT_UINT_GE(malloc_usable_size(p), n);
    assert_owned(p);
    fill(p, n, 3);
    EXPECT_UINT_EQ(first_bad(p, n, 3), n);
    free(p);
  }
  void* z = realloc(NULL, opaque(0));
  EXPECT_NONNULL(z);
  assert_owned(z);
  free(z);
  errno = 0;
  ck_assert_ptr_null(realloc(NULL, opaque(SIZE_MAX)));
  EXPECT_INT_EQ(errno, ENOMEM);
}

END_TEST

/* glibc 2.36: realloc(p, 0) with p != NULL frees p and returns NULL,
 * without touching errno. */
START_TEST(realloc_zero_frees) {
  static const size_t sizes[] = {1, 100, 4096, 300000, 2 * MiB, 20 * MiB};
  for (int round = 0; round < 50; round++) {
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      void* p = malloc(opaque(sizes[i]));
      EXPECT_NONNULL(p);
      errno = 4321;
      void* q = realloc(p, opaque(0));
      EXPECT(q == NULL, "realloc(%zu-byte block, 0) = %p", sizes[i], q);
      EXPECT_INT_EQ(errno, 4321);
    }
  }
}

END_TEST

START_TEST(realloc_failure_keeps_block) {
  static const size_t sizes[] = {1, 100, 5000, 300000, 2 * MiB, 16 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    unsigned char* p = malloc(opaque(n));
    ck_assert_ptr_nonnull(p);
    fill(p, n, 9);
    size_t usable = malloc_usable_size(p);
    for (size_t j = 0; j < NIMPOSSIBLE; j++) {
      errno = 0;
      void* q = realloc(p, opaque(kImpossible[j]));
      ck_assert_msg(q == NULL, "realloc(%zu, %zu) = %p", n, kImpossible[j], q);
      ck_assert_int_eq(errno, ENOMEM);
      ck_assert_msg(first_bad(p, n, 9) == n,
                    "failed realloc(%zu -> %zu) damaged the block", n,
                    kImpossible[j]);
      ck_assert_uint_eq(malloc_usable_size(p), usable);
      assert_owned(p);
    }
    /* The block is still alive: it can grow and be freed. */
    unsigned char* r = realloc(p, opaque(n * 2));
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(first_bad(r, n, 9), n);
    free(r);
  }
}

END_TEST

/* Walks `steps` through realloc, checking the kept prefix each time. */
static void realloc_walk(const size_t* steps, size_t nsteps) {
  unsigned char* p = NULL;
  size_t have = 0;
  for (size_t i = 0; i < nsteps; i++) {
    size_t n = steps[i];
    if (slow && n > 16 * MiB)
      n = 16 * MiB + n % 4096;
    unsigned char* q = realloc(p, opaque(n));
    EXPECT(q != NULL, "realloc(%zu -> %zu) failed", have, n);
    EXPECT_TRUE(is_aligned(q, 16));
    EXPECT_UINT_GE(malloc_usable_size(q), n);
    size_t keep = have < n ? have : n;
    EXPECT(first_bad(q, keep, 5) == keep,
           "realloc(%zu -> %zu) lost content at byte %zu", have, n,
           first_bad(q, keep, 5));
    /* The tail continues the same position-dependent pattern. */
    fill_from(q, keep, n, 5);
    p = q;
    have = n;
  }
  free(p);
}

START_TEST(realloc_grow_shrink_classes) {
  size_t steps[256];
  size_t n = 0;
  for (size_t s = 1; s <= 300 * KiB; s += s / 3 + 1)
    steps[n++] = s;
  size_t up = n;
  for (size_t i = up; i-- > 0;)
    steps[n++] = steps[i];
  realloc_walk(steps, n);
  /* By one byte around class boundaries. */
  static const size_t edge[] = {15,     16,    17,     16,     128,    129,
                                128,    1024,  1025,   1024,   8192,   8193,
                                8192,   65536, 65537,  262144, 262145, 262144,
                                262145, 1,     262145, 1,      5,      4};
  realloc_walk(edge, sizeof edge / sizeof edge[0]);
}

END_TEST

START_TEST(realloc_small_large_huge_and_back) {
  static const size_t steps[] = {10,        1000,      100 * KiB,
                                 256 * KiB, 300 * KiB, 1 * MiB,
                                 3 * MiB,   8 * MiB,   8 * MiB + 4097,
                                 32 * MiB,  64 * MiB,  64 * MiB - 1,
                                 48 * MiB,  16 * MiB,  5 * MiB,
                                 1 * MiB,   200 * KiB, 4 * KiB,
                                 24,        3 * MiB,   17,
                                 64 * MiB,  1};
  realloc_walk(steps, sizeof steps / sizeof steps[0]);
}

END_TEST

/* Growing a huge block repeatedly, as mremap would: content stays put. */
START_TEST(realloc_huge_growth) {
  size_t n = 4 * MiB;
  unsigned char* p = malloc(n);
  ck_assert_ptr_nonnull(p);
  fill(p, n, 11);
  /* Another block after it so an in-place grow is not always possible. */
  void* blocker = malloc(opaque(4 * MiB));
  ck_assert_ptr_nonnull(blocker);
  while (n < (slow ? 24 * MiB : 96 * MiB)) {
    size_t m = n + n / 2 + 4096;
    unsigned char* q = realloc(p, opaque(m));
    ck_assert_ptr_nonnull(q);
    ck_assert_msg(first_bad(q, n, 11) == n, "grow %zu -> %zu lost content", n,
                  m);
    fill_from(q, n, m, 11);
    p = q;
    n = m;
  }
  free(blocker);
  free(p);
}

END_TEST

START_TEST(realloc_aligned_block) {
  static const size_t aligns[] = {32, 64, 256, 4096, 65536, 2 * MiB};
  for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
    unsigned char* p = aligned_alloc(opaque(aligns[i]), 1000);
    ck_assert_ptr_nonnull(p);
    fill(p, 1000, 2);
    unsigned char* q = realloc(p, opaque(100000));
    ck_assert_ptr_nonnull(q);
    ck_assert_uint_eq(first_bad(q, 1000, 2), 1000);
    q = realloc(q, opaque(10));
    ck_assert_ptr_nonnull(q);
    ck_assert_uint_eq(first_bad(q, 10, 2), 10);
    free(q);
  }
}

END_TEST

START_TEST(realloc_same_size) {
  for (size_t i = 0; i < NSIZES; i++) {
    size_t n = kSizes[i];
    unsigned char* p = malloc(opaque(n));
    EXPECT_NONNULL(p);
    fill(p, n, 1);
    p = realloc(p, opaque(n));
    EXPECT_NONNULL(p);
    EXPECT_UINT_EQ(first_bad(p, n, 1), n);
    size_t u = malloc_usable_size(p);
    p = realloc(p, opaque(u));
    EXPECT_NONNULL(p);
    EXPECT_UINT_EQ(first_bad(p, n, 1), n);
    free(p);
  }
}

END_TEST

/* ------------------------------------------------------------------ */
/* reallocarray */

START_TEST(reallocarray_basic) {
  int* a = reallocarray(NULL, opaque(10), sizeof(int));
  ck_assert_ptr_nonnull(a);
  assert_owned(a);
  for (int i = 0; i < 10; i++)
    a[i] = i * 3;
  a = reallocarray(a, opaque(100000), sizeof(int));
  ck_assert_ptr_nonnull(a);
  for (int i = 0; i < 10; i++)
    ck_assert_int_eq(a[i], i * 3);
  for (int i = 0; i < 100000; i++)
    a[i] = i;
  a = reallocarray(a, opaque(5), sizeof(int));
  ck_assert_ptr_nonnull(a);
  for (int i = 0; i < 5; i++)
    ck_assert_int_eq(a[i], i);
  free(a);
  void* z = reallocarray(NULL, opaque(0), 8);
  ck_assert_ptr_nonnull(z);
  free(z);
}

END_TEST

START_TEST(reallocarray_overflow_keeps_block) {
  unsigned char* p = reallocarray(NULL, opaque(100), 10);
  ck_assert_ptr_nonnull(p);
  fill(p, 1000, 4);
  static const size_t pairs[][2] = {
      {SIZE_MAX / 2 + 1, 2}, {(size_t)1 << HALF_BITS, (size_t)1 << HALF_BITS},
      {SIZE_MAX, SIZE_MAX},  {PTRDIFF_MAX_SZ / 2 + 1, 2},
      {1, SIZE_MAX},
  };
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    errno = 0;
    void* q = reallocarray(p, opaque(pairs[i][0]), opaque(pairs[i][1]));
    ck_assert_msg(q == NULL, "reallocarray(p, %zu, %zu) = %p", pairs[i][0],
                  pairs[i][1], q);
    ck_assert_int_eq(errno, ENOMEM);
    ck_assert_uint_eq(first_bad(p, 1000, 4), 1000);
    errno = 0;
    ck_assert_ptr_null(
        reallocarray(NULL, opaque(pairs[i][0]), opaque(pairs[i][1])));
    ck_assert_int_eq(errno, ENOMEM);
  }
  free(p);
}

END_TEST

START_TEST(reallocarray_zero_frees) {
  void* p = malloc(opaque(64));
  ck_assert_ptr_nonnull(p);
  errno = 55;
  ck_assert_ptr_null(reallocarray(p, opaque(0), 8));
  ck_assert_int_eq(errno, 55);
}

END_TEST

/* ------------------------------------------------------------------ */
/* free_sized, free_aligned_sized, cfree */

START_TEST(free_sized_all_sizes) {
  free_sized(NULL, 0);
  free_sized(NULL, 100);
  for (int round = 0; round < 3; round++) {
    for (size_t i = 0; i < NSIZES; i++) {
      size_t n = kSizes[i];
      void* p = malloc(opaque(n));
      EXPECT_NONNULL(p);
      memset(p, 0x11, n);
      errno = 999;
      free_sized(p, n);
      EXPECT_INT_EQ(errno, 999);
    }
    void* z = malloc(opaque(0));
    EXPECT_NONNULL(z);
    free_sized(z, 0);
    /* calloc'd and realloc'd blocks are freed with the last size asked. */
    void* c = calloc(opaque(7), 9);
    EXPECT_NONNULL(c);
    free_sized(c, 63);
    void* r = malloc(opaque(10));
    EXPECT_NONNULL(r);
    r = realloc(r, opaque(70000));
    EXPECT_NONNULL(r);
    free_sized(r, 70000);
  }
  /* Many cycles of one size: the freed space is really returned. */
  for (int i = 0; i < (slow ? 5000 : 200000); i++) {
    void* p = malloc(opaque(48));
    EXPECT_NONNULL(p);
    free_sized(p, 48);
  }
}

END_TEST

START_TEST(free_aligned_sized_all) {
  free_aligned_sized(NULL, 64, 0);
  free_aligned_sized(NULL, 4096, 4096);
  for (size_t a = 1; a <= 4 * MiB; a <<= 1) {
    static const size_t mult[] = {1, 2, 3, 16};
    for (size_t m = 0; m < 4; m++) {
      size_t n = a * mult[m];
      void* p = aligned_alloc(opaque(a), opaque(n));
      EXPECT(p != NULL, "aligned_alloc(%zu, %zu)", a, n);
      EXPECT_TRUE(is_aligned(p, a));
      memset(p, 0x22, n);
      errno = 998;
      free_aligned_sized(p, a, n);
      EXPECT_INT_EQ(errno, 998);
    }
  }
}

END_TEST

START_TEST(cfree_works) {
  cfree(NULL);
  for (size_t i = 0; i < NSIZES; i++) {
    void* p = malloc(opaque(kSizes[i]));
    ck_assert_ptr_nonnull(p);
    errno = 31;
    cfree(p);
    ck_assert_int_eq(errno, 31);
  }
  void* q = calloc(opaque(10), 10);
  ck_assert_ptr_nonnull(q);
  cfree(q);
}

END_TEST

/* ------------------------------------------------------------------ */
/* posix_memalign */

START_TEST(posix_memalign_einval) {
  static const size_t bad[] = {0,
                               1,
                               2,
                               sizeof(void*) / 2, /* 4 on 64-bit targets */
                               3,
                               12,
                               24,
                               40,
                               48,
                               96,
                               sizeof(void*) * 3,
                               1000,
                               4095,
                               4097,
                               4096 + 8,
                               65536 * 3,
                               (size_t)1 << 20 | 8,
                               SIZE_MAX,
                               SIZE_MAX - 7};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    void* sentinel = (void*)(uintptr_t)0x5e5e5e50;
    void* p = sentinel;
    errno = 4242;
    int rc = posix_memalign(&p, opaque(bad[i]), 16);
    ck_assert_msg(rc == EINVAL, "posix_memalign(align %zu) returned %d", bad[i],
                  rc);
    ck_assert_msg(p == sentinel, "posix_memalign(align %zu) wrote *memptr",
                  bad[i]);
    ck_assert_msg(errno == 4242, "posix_memalign(align %zu) set errno %d",
                  bad[i], errno);
    /* Also with size 0 and with a huge size: EINVAL wins. */
    rc = posix_memalign(&p, opaque(bad[i]), opaque(0));
    ck_assert_int_eq(rc, EINVAL);
    ck_assert_ptr_eq(p, sentinel);
    rc = posix_memalign(&p, opaque(bad[i]), opaque(SIZE_MAX));
    ck_assert_int_eq(rc, EINVAL);
    ck_assert_ptr_eq(p, sentinel);
    ck_assert_int_eq(errno, 4242);
  }
}

END_TEST

START_TEST(posix_memalign_enomem) {
  static const size_t aligns[] = {sizeof(void*), 16, 64, 4096, 2 * MiB};
  for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
    for (size_t i = 0; i < NIMPOSSIBLE; i++) {
      void* sentinel = (void*)(uintptr_t)0x5e5e5e50;
      void* p = sentinel;
      int rc = posix_memalign(&p, opaque(aligns[a]), opaque(kImpossible[i]));
      EXPECT(rc == ENOMEM, "posix_memalign(%zu, %zu) returned %d", aligns[a],
             kImpossible[i], rc);
      EXPECT(p == sentinel, "posix_memalign(%zu, %zu) wrote *memptr", aligns[a],
             kImpossible[i]);
    }
  }
}

END_TEST

START_TEST(posix_memalign_ok) {
  for (size_t a = sizeof(void*); a <= 8 * MiB; a <<= 1) {
    const size_t sizes[] = {0, 1, 24, a - 1, a, a + 1, 3 * a, 100000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      size_t n = sizes[i];
      void* p = NULL;
      int rc = posix_memalign(&p, opaque(a), opaque(n));
      EXPECT(rc == 0, "posix_memalign(%zu, %zu) = %d", a, n, rc);
      EXPECT_NONNULL(p);
      EXPECT(is_aligned(p, a), "posix_memalign(%zu, %zu) = %p", a, n, p);
      EXPECT(owned_ok(p), "posix_memalign(%zu, %zu) = %p: not rsmalloc's", a, n,
             p);
      EXPECT_UINT_GE(malloc_usable_size(p), n);
      if (n) {
        fill(p, n, 6);
        EXPECT_UINT_EQ(first_bad(p, n, 6), n);
      }
      free(p);
    }
  }
}

END_TEST

/* ------------------------------------------------------------------ */
/* aligned_alloc, memalign */

typedef void* (*align_fn)(size_t alignment, size_t size);

static void* call_aligned_alloc(size_t a, size_t n) {
  return aligned_alloc(a, n);
}

static void* call_memalign(size_t a, size_t n) {
  return memalign(a, n);
}

static void* call_posix_memalign(size_t a, size_t n) {
  void* p = NULL;
  if (a < sizeof(void*))
    a = sizeof(void*);
  return posix_memalign(&p, a, n) == 0 ? p : NULL;
}

/* Every power-of-two alignment from 1 up to 1 GiB. */
static void every_alignment(align_fn fn, const char* name) {
  for (size_t a = 1; a <= 1 * GiB; a <<= 1) {
    const size_t sizes[] = {64, a < 64 ? 64 : a, a + 100};
    for (size_t i = 0; i < 3; i++) {
      size_t n = sizes[i];
      errno = 0;
      unsigned char* p = fn(opaque(a), opaque(n));
      /* With 32-bit pointers, 1 GiB at a 1 GiB boundary needs 2 GiB of
       * free address space in one piece, which a process rarely has
       * (glibc's i386 malloc fails these too): ENOMEM is right there. */
      if (sizeof(void*) == 4 && n >= 1 * GiB && p == NULL) {
        EXPECT_INT_EQ(errno, ENOMEM);
        continue;
      }
      EXPECT(p != NULL, "%s(%zu, %zu) failed", name, a, n);
      EXPECT(is_aligned(p, a), "%s(%zu, %zu) = %p", name, a, n, (void*)p);
      EXPECT(is_aligned(p, 16), "%s(%zu, %zu) = %p", name, a, n, (void*)p);
      EXPECT(owned_ok(p), "%s(%zu, %zu) = %p: not rsmalloc's", name, a, n,
             (void*)p);
      size_t usable = malloc_usable_size(p);
      EXPECT(usable >= n, "%s(%zu, %zu): usable %zu", name, a, n, usable);
      p[0] = 0x12;
      p[n - 1] = 0x34;
      p[usable - 1] = 0x56;
      EXPECT_INT_EQ(p[0], 0x12);
      if (n - 1 != usable - 1)
        EXPECT_INT_EQ(p[n - 1], 0x34);
      free(p);
    }
  }
}

START_TEST(aligned_alloc_every_alignment) {
  every_alignment(call_aligned_alloc, "aligned_alloc");
}

END_TEST

START_TEST(memalign_every_alignment) {
  every_alignment(call_memalign, "memalign");
}

END_TEST

START_TEST(posix_memalign_every_alignment) {
  every_alignment(call_posix_memalign, "posix_memalign");
}

END_TEST

/* Size 0 with every alignment: a unique, aligned, freeable block. */
START_TEST(aligned_size_zero) {
  static const align_fn fns[] = {call_aligned_alloc, call_memalign,
                                 call_posix_memalign};
  static const char* names[] = {"aligned_alloc", "memalign", "posix_memalign"};
  for (size_t f = 0; f < 3; f++) {
    for (size_t a = 1; a <= 1 * GiB; a <<= 1) {
      void* p = fns[f](opaque(a), opaque(0));
      void* q = fns[f](opaque(a), opaque(0));
      EXPECT(p != NULL && q != NULL, "%s(%zu, 0) failed", names[f], a);
      EXPECT(p != q, "%s(%zu, 0) returned %p twice", names[f], a, p);
      EXPECT(is_aligned(p, a) && is_aligned(q, a), "%s(%zu, 0) = %p, %p",
             names[f], a, p, q);
      EXPECT(owned_ok(p) && owned_ok(q), "%s(%zu, 0) = %p: not rsmalloc's",
             names[f], a, p);
      free(p);
      free(q);
    }
  }
}

END_TEST

START_TEST(aligned_many_live) {
  /* Many live aligned blocks of one alignment do not overlap. */
  enum { N = 300 };

  static unsigned char* p[N];
  static const size_t aligns[] = {32, 64, 128, 512, 4096, 16384};
  for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
    for (int i = 0; i < N; i++) {
      size_t n = 1 + (size_t)i * 7;
      p[i] = aligned_alloc(opaque(aligns[a]), n);
      EXPECT_NONNULL(p[i]);
      EXPECT_TRUE(is_aligned(p[i], aligns[a]));
      fill(p[i], n, (unsigned)i);
    }
    for (int i = 0; i < N; i++) {
      size_t n = 1 + (size_t)i * 7;
      EXPECT(first_bad(p[i], n, (unsigned)i) == n,
             "aligned block %d (align %zu) overwritten", i, aligns[a]);
      free(p[i]);
    }
  }
}

END_TEST

START_TEST(aligned_alloc_enomem) {
  static const size_t aligns[] = {1, 16, 64, 4096, 1 * MiB};
  for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
    for (size_t i = 0; i < NIMPOSSIBLE; i++) {
      errno = 0;
      void* p = aligned_alloc(opaque(aligns[a]), opaque(kImpossible[i]));
      EXPECT(p == NULL, "aligned_alloc(%zu, %zu) = %p", aligns[a],
             kImpossible[i], p);
      EXPECT_INT_EQ(errno, ENOMEM);
      errno = 0;
      p = memalign(opaque(aligns[a]), opaque(kImpossible[i]));
      EXPECT(p == NULL, "memalign(%zu, %zu) = %p", aligns[a], kImpossible[i],
             p);
      EXPECT_INT_EQ(errno, ENOMEM);
    }
  }
}

END_TEST

/* glibc 2.36: memalign rounds an alignment that is not a power of two up
 * to the next one, treats a small one as malloc, and rejects one above
 * SIZE_MAX/2+1 with EINVAL. aligned_alloc may instead say EINVAL (C17,
 * glibc 2.38). */
START_TEST(memalign_odd_alignments) {
  unsigned char* p = memalign(opaque(24), 100);
  ck_assert_ptr_nonnull(p);
  ck_assert(is_aligned(p, 32));
  memset(p, 1, 100);
  free(p);
  p = memalign(opaque(3000), 5000);
  ck_assert_ptr_nonnull(p);
  ck_assert(is_aligned(p, 4096));
  memset(p, 1, 5000);
  free(p);
  p = memalign(opaque(0), 100);
  ck_assert_ptr_nonnull(p);
  ck_assert(is_aligned(p, 16));
  free(p);
  errno = 0;
  ck_assert_ptr_null(memalign(opaque(SIZE_MAX), 16));
  ck_assert_int_eq(errno, EINVAL);
  errno = 0;
  ck_assert_ptr_null(memalign(opaque(SIZE_MAX / 2 + 2), 16));
  ck_assert_int_eq(errno, EINVAL);

  errno = 0;
  p = aligned_alloc(opaque(24), 48);
  if (p == NULL) {
    ck_assert_int_eq(errno, EINVAL);
  } else {
    ck_assert(is_aligned(p, 32));
    memset(p, 1, 48);
    free(p);
  }
}

END_TEST

/* ------------------------------------------------------------------ */
/* valloc, pvalloc */

START_TEST(valloc_page_aligned) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  const size_t sizes[] = {1,        100,     page - 1,     page, page + 1,
                          3 * page, 1 * MiB, 10 * MiB + 1, 0};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    unsigned char* p = valloc(opaque(n));
    ck_assert_msg(p != NULL, "valloc(%zu)", n);
    ck_assert_msg(is_aligned(p, page), "valloc(%zu) = %p", n, (void*)p);
    ck_assert_uint_ge(malloc_usable_size(p), n);
    assert_owned(p);
    if (n) {
      fill(p, n, 8);
      ck_assert_uint_eq(first_bad(p, n, 8), n);
    }
    free(p);
  }
}

END_TEST

START_TEST(pvalloc_rounds_to_page) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  const size_t sizes[] = {1,        100,          page - 1,    page,
                          page + 1, 5 * page + 3, 1 * MiB + 1, 9 * MiB + 5};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    size_t rounded = (n + page - 1) / page * page;
    unsigned char* p = pvalloc(opaque(n));
    ck_assert_msg(p != NULL, "pvalloc(%zu)", n);
    ck_assert_msg(is_aligned(p, page), "pvalloc(%zu) = %p", n, (void*)p);
    ck_assert_msg(malloc_usable_size(p) >= rounded,
                  "pvalloc(%zu): usable %zu < %zu", n, malloc_usable_size(p),
                  rounded);
    assert_owned(p);
    /* The whole rounded size belongs to the caller. */
    fill(p, rounded, 10);
    ck_assert_uint_eq(first_bad(p, rounded, 10), rounded);
    free(p);
  }
  void* z = pvalloc(opaque(0));
  ck_assert_ptr_nonnull(z);
  ck_assert(is_aligned(z, page));
  free(z);
}

END_TEST

START_TEST(valloc_pvalloc_enomem) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  for (size_t i = 0; i < NIMPOSSIBLE; i++) {
    errno = 0;
    ck_assert_ptr_null(valloc(opaque(kImpossible[i])));
    EXPECT_INT_EQ(errno, ENOMEM);
    errno = 0;
    ck_assert_ptr_null(pvalloc(opaque(kImpossible[i])));
    EXPECT_INT_EQ(errno, ENOMEM);
  }
  /* Rounding up to a page overflows. */
  errno = 0;
  ck_assert_ptr_null(pvalloc(opaque(SIZE_MAX - page + 2)));
  EXPECT_INT_EQ(errno, ENOMEM);
}

END_TEST

/* ------------------------------------------------------------------ */
/* malloc_usable_size */

START_TEST(usable_size_null) {
  ck_assert_uint_eq(malloc_usable_size(NULL), 0);
  ck_assert_uint_eq(rsmalloc_usable_size(NULL), 0);
}

END_TEST

START_TEST(usable_size_ge_request_and_stable) {
  for (size_t n = 0; n <= 5000; n++) {
    void* p = malloc(opaque(n));
    EXPECT_NONNULL(p);
    size_t u = malloc_usable_size(p);
    EXPECT(u >= n, "malloc(%zu): usable %zu", n, u);
    EXPECT_UINT_EQ(rsmalloc_usable_size(p), u);
    free(p);
  }

  enum { N = NSIZES };

  void* p[N];
  size_t u[N];
  for (size_t i = 0; i < N; i++) {
    p[i] = malloc(opaque(kSizes[i]));
    EXPECT_NONNULL(p[i]);
    u[i] = malloc_usable_size(p[i]);
    EXPECT_UINT_GE(u[i], kSizes[i]);
    memset(p[i], 0x77, u[i]);
  }
  /* Other allocations and frees in between do not change it. */
  for (int k = 0; k < 1000; k++)
    free(malloc(opaque((size_t)k * 37)));
  for (size_t i = 0; i < N; i++) {
    EXPECT_UINT_EQ(malloc_usable_size(p[i]), u[i]);
    EXPECT_UINT_EQ(rsmalloc_usable_size(p[i]), u[i]);
    EXPECT_TRUE(all_bytes(p[i], u[i], 0x77));
  }
  for (size_t i = 0; i < N; i++)
    free(p[i]);
}

END_TEST

/* The whole usable range is the caller's: filling it leaves neighbours
 * (most likely in the same span) untouched. */
START_TEST(usable_size_range_writable) {
  static const size_t sizes[] = {1,    7,    16,    24,     100,    129,   1000,
                                 4000, 5000, 20000, 100000, 262145, 300000};

  enum { N = 32 };

  unsigned char* p[N];
  size_t u[N];
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    for (int i = 0; i < N; i++) {
      p[i] = malloc(opaque(sizes[s]));
      EXPECT_NONNULL(p[i]);
      u[i] = malloc_usable_size(p[i]);
    }
    for (int i = 0; i < N; i++)
      memset(p[i], i + 1, u[i]);
    for (int i = 0; i < N; i++) {
      EXPECT(all_bytes(p[i], u[i], (unsigned char)(i + 1)),
             "size %zu: object %d (usable %zu) overwritten", sizes[s], i, u[i]);
      EXPECT_UINT_EQ(malloc_usable_size(p[i]), u[i]);
    }
    for (int i = 0; i < N; i++)
      free(p[i]);
  }
}

END_TEST

/* DESIGN: internal waste at most 12.5% above 128 bytes for small classes. */
START_TEST(usable_size_waste_bounded) {
  for (size_t n = 129; n <= 256 * KiB; n += 1 + n / 61) {
    void* p = malloc(opaque(n));
    EXPECT_NONNULL(p);
    size_t u = malloc_usable_size(p);
    EXPECT(u <= n + n / 8 + 16, "malloc(%zu): usable %zu (waste %zu%%)", n, u,
           (u - n) * 100 / n);
    free(p);
  }
}

END_TEST

/* ------------------------------------------------------------------ */
/* malloc_trim */

/* True when rsmalloc backs its heap with huge pages (RSMALLOC_THP=always,
 * or auto and the system's THP setting is "always"): malloc_trim then
 * returns whole huge pages only. */
static int heap_on_huge_pages(void) {
  const char* thp = getenv("RSMALLOC_THP");
  if (thp != NULL && strcmp(thp, "always") == 0)
    return 1;
  if (thp != NULL && strcmp(thp, "never") == 0)
    return 0;
  char buf[128] = "";
  FILE* f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (f != NULL) {
    if (fgets(buf, sizeof buf, f) == NULL)
      buf[0] = '\0';
    fclose(f);
  }
  return strstr(buf, "[always]") != NULL;
}

START_TEST(malloc_trim_result_and_live_data) {
  /* Under RSMALLOC_DISABLE=1 glibc answers: its result means other things. */
  int active = rs_active();
  int huge = heap_on_huge_pages(); /* before: fopen allocates */
  malloc_trim(0);
  /* Moved only: blocks freed into a CPU cache, their span still in use. */
  void* keep = malloc(opaque(64));
  void* gone = malloc(opaque(64));
  EXPECT_NONNULL(keep);
  EXPECT_NONNULL(gone);
  free(gone);
  int rc = malloc_trim(0);
  if (active)
    EXPECT(rc == 1, "malloc_trim(0) = %d with a block in a CPU cache", rc);
  /* Released only: a freed mapping kept for reuse (RSMALLOC_DECAY_MS=0
   * unmaps it at once), nothing in any CPU cache. */
  void* map = malloc(opaque(40 * MiB));
  EXPECT_NONNULL(map);
  memset(map, 1, 40 * MiB);
  free(map);
  rc = malloc_trim(0);
  if (active && getenv("RSMALLOC_DECAY_MS") == NULL)
    EXPECT(rc == 1, "malloc_trim(0) = %d after freeing 40 MiB", rc);
  free(keep);

  enum { N = 4000 };

  static unsigned char* p[N];
  for (int i = 0; i < N; i++) {
    size_t n = 100 + (size_t)(i % 40) * 1000;
    p[i] = malloc(opaque(n));
    EXPECT_NONNULL(p[i]);
    fill(p[i], n, (unsigned)i);
  }
  /* A dirty block with its own mapping (kept for reuse when freed), and a
   * dirty 1 MiB block from the page heap. */
  void* big = malloc(opaque(40 * MiB));
  EXPECT_NONNULL(big);
  memset(big, 1, 40 * MiB);
  void* mid = malloc(opaque(1 * MiB));
  EXPECT_NONNULL(mid);
  memset(mid, 1, 1 * MiB);
  size_t released = active ? rs_stat_bytes("released_bytes") : 0;
  free(big);
  free(mid);
  for (int i = 0; i < N; i += 2)
    free(p[i]);
  rc = malloc_trim(0);
  if (active) {
    EXPECT(rc == 1, "malloc_trim(0) = %d after freeing 41 MiB", rc);
    /* Every CPU cache drained, the freed 1 MiB returned to the OS. */
    EXPECT_UINT_EQ(rs_stat_bytes("cpu_cache_bytes"), 0);
    /* No free page of the heap stays resident, no freed mapping cached
     * (on huge pages, only whole huge pages go back). */
    if (!huge) {
      EXPECT_UINT_GE(rs_stat_bytes("released_bytes"), released + 1 * MiB);
      EXPECT_UINT_EQ(rs_stat_bytes("heap_free_bytes"), 0);
    }
  }
  /* Nothing was freed since: nothing left to release. */
  rc = malloc_trim(0);
  if (active)
    EXPECT(rc == 0, "a second malloc_trim(0) = %d", rc);
  rc = malloc_trim(1 * MiB);
  if (active)
    EXPECT(rc == 0, "malloc_trim(1 MiB) after malloc_trim(0) = %d", rc);
  /* Trimming never touches live objects. */
  for (int i = 1; i < N; i += 2) {
    size_t n = 100 + (size_t)(i % 40) * 1000;
    EXPECT(first_bad(p[i], n, (unsigned)i) == n,
           "live object %d damaged by malloc_trim", i);
  }
  /* And the heap works afterwards. */
  for (int i = 0; i < N; i += 2) {
    size_t n = 100 + (size_t)(i % 40) * 1000;
    p[i] = malloc(opaque(n));
    EXPECT_NONNULL(p[i]);
    fill(p[i], n, (unsigned)i);
  }
  for (int i = 0; i < N; i++) {
    size_t n = 100 + (size_t)(i % 40) * 1000;
    EXPECT_UINT_EQ(first_bad(p[i], n, (unsigned)i), n);
    free(p[i]);
  }
  /* Freed blocks sit in the CPU caches: there is work again. */
  rc = malloc_trim(0);
  if (active)
    EXPECT(rc == 1, "malloc_trim(0) = %d after freeing %d blocks", rc, N);
}

END_TEST

/* ------------------------------------------------------------------ */
/* mallinfo, mallinfo2 */

START_TEST(mallinfo2_counts_held_objects) {
  enum { N = 3000, SZ = 1000 };

  static void* p[N];
  struct mallinfo2 before = mallinfo2();
  for (int i = 0; i < N; i++) {
    p[i] = malloc(opaque(SZ));
    EXPECT_NONNULL(p[i]);
    memset(p[i], 1, SZ);
  }
  struct mallinfo2 after = mallinfo2();
  EXPECT(after.uordblks >= before.uordblks + (size_t)N * SZ,
         "uordblks %zu -> %zu after %d x %d bytes", before.uordblks,
         after.uordblks, N, SZ);
  /* One huge block: counted in uordblks or hblkhd. */
  void* big = malloc(opaque(32 * MiB));
  EXPECT_NONNULL(big);
  struct mallinfo2 with_big = mallinfo2();
  EXPECT(with_big.uordblks + with_big.hblkhd >=
             after.uordblks + after.hblkhd + 32 * MiB,
         "uordblks+hblkhd %zu -> %zu after 32 MiB",
         after.uordblks + after.hblkhd, with_big.uordblks + with_big.hblkhd);
  free(big);
  for (int i = 0; i < N; i++)
    free(p[i]);
}

END_TEST

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

START_TEST(mallinfo_counts_held_objects) {
  enum { N = 2000, SZ = 500 };

  static void* p[N];
  struct mallinfo before = mallinfo();
  for (int i = 0; i < N; i++) {
    p[i] = malloc(opaque(SZ));
    EXPECT_NONNULL(p[i]);
  }
  struct mallinfo after = mallinfo();
  EXPECT((long)after.uordblks >= (long)before.uordblks + (long)N * SZ,
         "uordblks %d -> %d after %d x %d bytes", before.uordblks,
         after.uordblks, N, SZ);
  for (int i = 0; i < N; i++)
    free(p[i]);
}

END_TEST
#pragma GCC diagnostic pop

/* ------------------------------------------------------------------ */
/* malloc_stats, malloc_info */

static size_t read_all(FILE* f, char* buf, size_t len) {
  rewind(f);
  size_t n = fread(buf, 1, len - 1, f);
  buf[n] = '\0';
  return n;
}

START_TEST(malloc_stats_writes_stderr) {
  void* keep = malloc(opaque(1000));
  ck_assert_ptr_nonnull(keep);
  fflush(stdout);
  fflush(stderr);
  FILE* err = tmpfile();
  FILE* out = tmpfile();
  ck_assert_ptr_nonnull(err);
  ck_assert_ptr_nonnull(out);
  int saved_err = dup(2), saved_out = dup(1);
  ck_assert_int_ge(saved_err, 0);
  ck_assert_int_ge(saved_out, 0);
  ck_assert_int_eq(dup2(fileno(err), 2), 2);
  ck_assert_int_eq(dup2(fileno(out), 1), 1);
  malloc_stats();
  fflush(stderr);
  fflush(stdout);
  dup2(saved_err, 2);
  dup2(saved_out, 1);
  close(saved_err);
  close(saved_out);
  static char buf[1 << 16];
  size_t n = read_all(err, buf, sizeof buf);
  ck_assert_msg(n > 0, "malloc_stats wrote nothing to stderr");
  ck_assert_uint_eq(read_all(out, buf, sizeof buf), 0);
  fclose(err);
  fclose(out);
  free(keep);
}

END_TEST

/* glibc 2.36 returns EINVAL itself; malloc_info(3) says -1 with errno
 * EINVAL. Either way the call fails with EINVAL. */
static int info_fails_einval(int options, FILE* f) {
  errno = 0;
  int rc = malloc_info(options, f);
  return rc == EINVAL || (rc == -1 && errno == EINVAL);
}

START_TEST(malloc_info_xml) {
  FILE* f = tmpfile();
  ck_assert_ptr_nonnull(f);
  errno = 0;
  ck_assert_int_eq(malloc_info(0, f), 0);
  fflush(f);
  static char buf[1 << 20];
  size_t n = read_all(f, buf, sizeof buf);
  ck_assert_uint_gt(n, 0);
  ck_assert_msg(strncmp(buf, "<malloc", 7) == 0, "malloc_info wrote: %.60s",
                buf);
  ck_assert_msg(strstr(buf, "</malloc>") != NULL,
                "malloc_info output has no </malloc>");
  fclose(f);

  f = tmpfile();
  ck_assert_ptr_nonnull(f);
  ck_assert_msg(info_fails_einval(1, f), "malloc_info(1, f) did not fail");
  ck_assert_msg(info_fails_einval(12345, f), "malloc_info(12345, f) worked");
  fflush(f);
  ck_assert_uint_eq(read_all(f, buf, sizeof buf), 0);
  fclose(f);
}

END_TEST

/* ------------------------------------------------------------------ */
/* mallopt */

START_TEST(mallopt_params) {
  static const int params[][2] = {
      {M_MMAP_THRESHOLD, 256 * 1024},
      {M_TRIM_THRESHOLD, 256 * 1024},
      {M_TOP_PAD, 64 * 1024},
      {M_ARENA_MAX, 4},
      {M_ARENA_TEST, 8},
      {M_MMAP_MAX, 65536},
      {M_MXFAST, 64},
      {M_CHECK_ACTION, 3},
  };
  for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
    ck_assert_msg(mallopt(params[i][0], params[i][1]) == 1,
                  "mallopt(%d, %d) != 1", params[i][0], params[i][1]);
  }
  /* Unlike glibc 2.36 (which returns 1), rsmalloc rejects an unknown
   * parameter number; with RSMALLOC_DISABLE=1 glibc answers. */
  if (rs_active()) {
    ck_assert_int_eq(mallopt(12345, 1), 0);
    ck_assert_int_eq(mallopt(-12345, 1), 0);
  }
  /* The allocator still works. */
  for (size_t i = 0; i < NSIZES; i++) {
    void* p = malloc(opaque(kSizes[i]));
    ck_assert_ptr_nonnull(p);
    memset(p, 3, kSizes[i]);
    free(p);
  }
}

END_TEST

/* ------------------------------------------------------------------ */
/* rsmalloc.h extensions */

START_TEST(ext_version) {
  const char* v = rsmalloc_version();
  ck_assert_ptr_nonnull(v);
  unsigned maj, min, pat_;
  char tail;
  ck_assert_msg(sscanf(v, "%u.%u.%u%c", &maj, &min, &pat_, &tail) == 3,
                "rsmalloc_version() = \"%s\"", v);
  ck_assert_uint_eq(maj, RSMALLOC_VERSION_MAJOR);
  ck_assert_uint_eq(min, RSMALLOC_VERSION_MINOR);
  ck_assert_uint_eq(pat_, RSMALLOC_VERSION_PATCH);
  for (const char* c = v; *c; c++)
    ck_assert(*c == '.' || (*c >= '0' && *c <= '9'));
  /* A static string: the same pointer each time. */
  ck_assert_ptr_eq(rsmalloc_version(), v);
}

END_TEST

START_TEST(ext_cache_mode) {
  /* The mode rsmalloc must pick here, worked out without it (as
   * tests/expected_mode.c does; declared in here to keep this test
   * self-contained): __rseq_size is what glibc registered (0: none, as
   * with glibc.pthread.rseq=0 or valgrind), AT_RSEQ_FEATURE_SIZE (27)
   * whether the kernel fills mm_cid (bytes 24-27), and membarrier's
   * query (syscall 324 on x86-64, 283 on arm64, command 0) must offer
   * PRIVATE_EXPEDITED_RSEQ (1 << 7). */
  extern const unsigned int __rseq_size __attribute__((weak));
  extern unsigned long getauxval(unsigned long type);
  const char* disable = getenv("RSMALLOC_DISABLE");
  const char* rseq = getenv("RSMALLOC_RSEQ");
  const char* want = "rseq/cpu_id";
  const char* why = "";
  if (disable != NULL && strcmp(disable, "1") == 0) {
    want = "disabled";
  } else if (rseq != NULL && strcmp(rseq, "0") == 0) {
    want = "fallback: RSMALLOC_RSEQ=0";
  } else {
#if defined(__x86_64__) || defined(__aarch64__)
#  if defined(__x86_64__)
    long cmds = syscall(324, 0, 0, 0);
#  else
    long cmds = syscall(283, 0, 0, 0);
#  endif
    const char* preload = getenv("LD_PRELOAD");
    if (&__rseq_size == NULL || __rseq_size == 0)
      why = "glibc registered no rseq area";
    else if (preload != NULL && strstr(preload, "vgpreload") != NULL)
      why = "valgrind";
    else if (cmds < 0 || (cmds & (1 << 7)) == 0)
      why = "membarrier(PRIVATE_EXPEDITED_RSEQ) not offered";
    else if (access("/sys/devices/system/cpu/possible", R_OK) != 0)
      why = "no /sys/devices/system/cpu/possible";
    else if (getauxval(27) >= 28)
      want = "rseq/mm_cid";
#else
    (void)&__rseq_size; /* used on x86-64 and aarch64 only */
    why = "no rseq sections for this architecture";
#endif
    if (why[0] != '\0')
      want = "fallback";
  }
  const char* allow = getenv("RSMALLOC_TEST_ALLOW_FALLBACK");
  int may_fall_back = strncmp(want, "rseq/", 5) == 0 && allow != NULL &&
                      strcmp(allow, "1") == 0;

  for (int round = 0; round < 2; round++) {
    const char* m = rsmalloc_cache_mode();
    ck_assert_ptr_nonnull(m);
    int is_fallback = strncmp(m, "fallback: ", 10) == 0 && m[10] != '\0';
    int ok = strcmp(want, "fallback") == 0
                 ? is_fallback
                 : strcmp(m, want) == 0 || (may_fall_back && is_fallback);
    ck_assert_msg(ok, "rsmalloc_cache_mode() = \"%s\", expected \"%s\"%s%s%s",
                  m, want, why[0] != '\0' ? " (" : "", why,
                  why[0] != '\0' ? ")" : "");
    /* After allocating (initialised for sure) it is still the same. */
    free(malloc(opaque(10)));
  }
}

END_TEST

START_TEST(ext_usable_size) {
  for (size_t i = 0; i < NSIZES; i++) {
    void* p = malloc(opaque(kSizes[i]));
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(rsmalloc_usable_size(p), malloc_usable_size(p));
    ck_assert_uint_ge(rsmalloc_usable_size(p), kSizes[i]);
    free(p);
  }
  void* a = aligned_alloc(opaque(4096), 10);
  ck_assert_ptr_nonnull(a);
  ck_assert_uint_eq(rsmalloc_usable_size(a), malloc_usable_size(a));
  free(a);
}

END_TEST

static int global_object;

START_TEST(ext_owns) {
  int active = rs_active();
  EXPECT_INT_EQ(rsmalloc_owns(NULL), 0);
  int on_stack = 0;
  EXPECT_INT_EQ(rsmalloc_owns(&on_stack), 0);
  EXPECT_INT_EQ(rsmalloc_owns(&global_object), 0);
  EXPECT_INT_EQ(rsmalloc_owns((const void*)(uintptr_t)ext_owns), 0);
  EXPECT_INT_EQ(rsmalloc_owns((const void*)(uintptr_t)16), 0);
  EXPECT_INT_EQ(rsmalloc_owns((const void*)(uintptr_t)0x7ff000000000ull), 0);
  EXPECT_INT_EQ(rsmalloc_owns((const void*)~(uintptr_t)15), 0);
  void* m = mmap(NULL, 1 * MiB, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  EXPECT_TRUE(m != MAP_FAILED);
  EXPECT_INT_EQ(rsmalloc_owns(m), 0);
  munmap(m, 1 * MiB);
  for (size_t i = 0; i < NSIZES; i++) {
    unsigned char* p = malloc(opaque(kSizes[i]));
    EXPECT_NONNULL(p);
    EXPECT(rsmalloc_owns(p) == active, "rsmalloc_owns(malloc(%zu))", kSizes[i]);
    /* Only the start of a block counts. */
    if (kSizes[i] > 1)
      EXPECT(rsmalloc_owns(p + 1) == 0, "rsmalloc_owns(malloc(%zu)+1)",
             kSizes[i]);
    free(p);
  }
  void *c = calloc(opaque(3), 100), *a = aligned_alloc(opaque(256), 256);
  void* v = valloc(opaque(100));
  EXPECT_INT_EQ(rsmalloc_owns(c), active);
  EXPECT_INT_EQ(rsmalloc_owns(a), active);
  EXPECT_INT_EQ(rsmalloc_owns(v), active);
  free(c);
  free(a);
  free(v);
}

END_TEST

/* A small strict JSON checker: value grammar, strings, numbers. */
static const char* json_value(const char* s, int depth);

static const char* json_ws(const char* s) {
  while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')
    s++;
  return s;
}

static const char* json_string(const char* s) {
  if (*s++ != '"')
    return NULL;
  while (*s != '"') {
    if ((unsigned char)*s < 0x20)
      return NULL;
    if (*s == '\\') {
      s++;
      if (*s == 'u') {
        for (int i = 1; i <= 4; i++)
          if (!strchr("0123456789abcdefABCDEF", s[i]) || !s[i])
            return NULL;
        s += 4;
      } else if (!*s || !strchr("\"\\/bfnrt", *s)) {
        return NULL;
      }
    }
    s++;
  }
  return s + 1;
}

static const char* json_number(const char* s) {
  const char* start = s;
  if (*s == '-')
    s++;
  if (*s == '0') {
    s++;
  } else if (*s >= '1' && *s <= '9') {
    while (*s >= '0' && *s <= '9')
      s++;
  } else {
    return NULL;
  }
  if (*s == '.') {
    s++;
    if (!(*s >= '0' && *s <= '9'))
      return NULL;
    while (*s >= '0' && *s <= '9')
      s++;
  }
  if (*s == 'e' || *s == 'E') {
    s++;
    if (*s == '+' || *s == '-')
      s++;
    if (!(*s >= '0' && *s <= '9'))
      return NULL;
    while (*s >= '0' && *s <= '9')
      s++;
  }
  return s > start ? s : NULL;
}

static const char* json_value(const char* s, int depth) {
  if (depth > 32)
    return NULL;
  s = json_ws(s);
  if (*s == '{' || *s == '[') {
    char close = *s == '{' ? '}' : ']';
    int object = *s == '{';
    s = json_ws(s + 1);
    if (*s == close)
      return s + 1;
    for (;;) {
      if (object) {
        s = json_string(json_ws(s));
        if (!s)
          return NULL;
        s = json_ws(s);
        if (*s++ != ':')
          return NULL;
      }
      s = json_value(s, depth + 1);
      if (!s)
        return NULL;
      s = json_ws(s);
      if (*s == ',') {
        s++;
        continue;
      }
      if (*s == close)
        return s + 1;
      return NULL;
    }
  }
  if (*s == '"')
    return json_string(s);
  if (!strncmp(s, "true", 4))
    return s + 4;
  if (!strncmp(s, "false", 5))
    return s + 5;
  if (!strncmp(s, "null", 4))
    return s + 4;
  return json_number(s);
}

START_TEST(ext_stats_json) {
  void* keep = malloc(opaque(5000));
  ck_assert_ptr_nonnull(keep);
  static char big[1 << 20], small[8], again[1 << 20];
  size_t n = rsmalloc_stats_json(big, sizeof big);
  ck_assert_uint_gt(n, 1);
  ck_assert_uint_lt(n, sizeof big);
  ck_assert_uint_eq(strlen(big), n);
  ck_assert_msg(big[0] == '{' && big[n - 1] == '}', "stats json: %.80s", big);
  const char* end = json_value(big, 0);
  ck_assert_msg(end != NULL && *json_ws(end) == '\0',
                "rsmalloc_stats_json is not one JSON object: %.200s", big);

  /* Too small a buffer: the full length, cut and NUL-terminated. */
  memset(small, 'X', sizeof small);
  size_t m = rsmalloc_stats_json(small, sizeof small);
  size_t n2 = rsmalloc_stats_json(again, sizeof again);
  ck_assert_msg(m == n || m == n2, "tiny buffer: %zu, full: %zu / %zu", m, n,
                n2);
  ck_assert_uint_ge(m, sizeof small);
  ck_assert_int_eq(small[sizeof small - 1], '\0');
  ck_assert_uint_eq(strlen(small), sizeof small - 1);
  ck_assert(strncmp(small, again, sizeof small - 1) == 0 ||
            strncmp(small, big, sizeof small - 1) == 0);

  /* len 1: only the NUL; len 0 (snprintf-like): nothing written. */
  memset(small, 'X', sizeof small);
  ck_assert_uint_ge(rsmalloc_stats_json(small, 1), sizeof small);
  ck_assert_int_eq(small[0], '\0');
  ck_assert_int_eq(small[1], 'X');
  memset(small, 'X', sizeof small);
  ck_assert_uint_ge(rsmalloc_stats_json(small, 0), sizeof small);
  ck_assert_int_eq(small[0], 'X');
  ck_assert_uint_ge(rsmalloc_stats_json(NULL, 0), sizeof small);
  free(keep);
}

END_TEST

/* ------------------------------------------------------------------ */
/* libc's own allocations reach rsmalloc; glibc's pointers pass through. */

START_TEST(libc_internal_allocations) {
  char* s = strdup("hello, rsmalloc");
  ck_assert_ptr_nonnull(s);
  assert_owned(s);
  free(s);
  char* a = NULL;
  ck_assert_int_gt(asprintf(&a, "%d-%s", 42, "x"), 0);
  assert_owned(a);
  ck_assert_str_eq(a, "42-x");
  free(a);
  char* buf = NULL;
  size_t len = 0;
  FILE* ms = open_memstream(&buf, &len);
  ck_assert_ptr_nonnull(ms);
  for (int i = 0; i < 20000; i++)
    fprintf(ms, "%d,", i);
  fclose(ms);
  ck_assert_ptr_nonnull(buf);
  ck_assert_uint_gt(len, 20000);
  assert_owned(buf);
  ck_assert(strncmp(buf, "0,1,2,3,", 8) == 0);
  free(buf);
}

END_TEST

START_TEST(foreign_glibc_pointers) {
  /* Memory from glibc's allocator, as when rsmalloc is loaded late. */
  unsigned char* p = __libc_malloc(opaque(1000));
  ck_assert_ptr_nonnull(p);
  if (rs_active())
    ck_assert_int_eq(rsmalloc_owns(p), 0);
  ck_assert_uint_ge(malloc_usable_size(p), 1000);
  fill(p, 1000, 12);
  unsigned char* q = realloc(p, opaque(50000));
  ck_assert_ptr_nonnull(q);
  ck_assert_uint_eq(first_bad(q, 1000, 12), 1000);
  free(q);

  p = __libc_malloc(opaque(64));
  ck_assert_ptr_nonnull(p);
  errno = 17;
  free(p);
  ck_assert_int_eq(errno, 17);
  p = __libc_malloc(opaque(64));
  ck_assert_ptr_nonnull(p);
  free_sized(p, 64);
  p = __libc_memalign(opaque(256), 300);
  ck_assert_ptr_nonnull(p);
  free_aligned_sized(p, 256, 300);
  p = __libc_malloc(opaque(200));
  ck_assert_ptr_nonnull(p);
  ck_assert_ptr_null(realloc(p, opaque(0)));
}

END_TEST

/* ------------------------------------------------------------------ */

static TCase* tcase(Suite* s, const char* name, int timeout) {
  TCase* tc = tcase_create(name);
  tcase_set_timeout(tc, timeout);
  suite_add_tcase(s, tc);
  return tc;
}

int main(void) {
  slow = under_valgrind();
  Suite* s = suite_create("abi");
  TCase* tc;

  tc = tcase(s, "malloc", 30);
  tcase_add_test(tc, malloc_sizes_usable_writable);
  tcase_add_test(tc, malloc_zero_unique);
  tcase_add_test(tc, malloc_enomem);
  tcase_add_test(tc, malloc_alignment_every_size);
  tcase_add_test(tc, malloc_no_overlap);

  tc = tcase(s, "free", 30);
  tcase_add_test(tc, free_null);
  tcase_add_test(tc, free_keeps_errno);
  tcase_add_test(tc, free_then_reuse);

  tc = tcase(s, "calloc", 60);
  tcase_add_test(tc, calloc_zeroed_small);
  tcase_add_test(tc, calloc_zeroed_up_to_1mib);
  tcase_add_test(tc, calloc_zeroed_large);
  tcase_add_test(tc, calloc_overflow_enomem);
  tcase_add_test(tc, calloc_zero_elements);

  tc = tcase(s, "realloc", 60);
  tcase_add_test(tc, realloc_null_is_malloc);
  tcase_add_test(tc, realloc_zero_frees);
  tcase_add_test(tc, realloc_failure_keeps_block);
  tcase_add_test(tc, realloc_grow_shrink_classes);
  tcase_add_test(tc, realloc_small_large_huge_and_back);
  tcase_add_test(tc, realloc_huge_growth);
  tcase_add_test(tc, realloc_aligned_block);
  tcase_add_test(tc, realloc_same_size);

  tc = tcase(s, "reallocarray", 10);
  tcase_add_test(tc, reallocarray_basic);
  tcase_add_test(tc, reallocarray_overflow_keeps_block);
  tcase_add_test(tc, reallocarray_zero_frees);

  tc = tcase(s, "free_sized", 30);
  tcase_add_test(tc, free_sized_all_sizes);
  tcase_add_test(tc, free_aligned_sized_all);
  tcase_add_test(tc, cfree_works);

  tc = tcase(s, "posix_memalign", 30);
  tcase_add_test(tc, posix_memalign_einval);
  tcase_add_test(tc, posix_memalign_enomem);
  tcase_add_test(tc, posix_memalign_ok);
  tcase_add_test(tc, posix_memalign_every_alignment);

  tc = tcase(s, "aligned_alloc", 30);
  tcase_add_test(tc, aligned_alloc_every_alignment);
  tcase_add_test(tc, memalign_every_alignment);
  tcase_add_test(tc, aligned_size_zero);
  tcase_add_test(tc, aligned_many_live);
  tcase_add_test(tc, aligned_alloc_enomem);
  tcase_add_test(tc, memalign_odd_alignments);

  tc = tcase(s, "valloc", 30);
  tcase_add_test(tc, valloc_page_aligned);
  tcase_add_test(tc, pvalloc_rounds_to_page);
  tcase_add_test(tc, valloc_pvalloc_enomem);

  tc = tcase(s, "malloc_usable_size", 30);
  tcase_add_test(tc, usable_size_null);
  tcase_add_test(tc, usable_size_ge_request_and_stable);
  tcase_add_test(tc, usable_size_range_writable);
  tcase_add_test(tc, usable_size_waste_bounded);

  tc = tcase(s, "malloc_trim", 30);
  tcase_add_test(tc, malloc_trim_result_and_live_data);

  tc = tcase(s, "mallinfo", 30);
  tcase_add_test(tc, mallinfo2_counts_held_objects);
  tcase_add_test(tc, mallinfo_counts_held_objects);

  tc = tcase(s, "malloc_stats_info", 10);
  tcase_add_test(tc, malloc_stats_writes_stderr);
  tcase_add_test(tc, malloc_info_xml);

  tc = tcase(s, "mallopt", 10);
  tcase_add_test(tc, mallopt_params);

  tc = tcase(s, "extensions", 10);
  tcase_add_test(tc, ext_version);
  tcase_add_test(tc, ext_cache_mode);
  tcase_add_test(tc, ext_usable_size);
  tcase_add_test(tc, ext_owns);
  tcase_add_test(tc, ext_stats_json);

  tc = tcase(s, "interposition", 10);
  tcase_add_test(tc, libc_internal_allocations);
  tcase_add_test(tc, foreign_glibc_pointers);

  return rs_check_run(s, "test_abi");
}
