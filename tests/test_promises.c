/* SPDX-License-Identifier: MIT */
/* ABI tests of promises a broken allocator could break without any other
 * test noticing: calloc's zeros where rsmalloc skips the memset, misuse
 * through free and realloc that must abort with rsmalloc's message, and
 * statistics (mallinfo2, mallopt, the transfer caches' bytes) that follow
 * what the program does. The
 * program runs its suite once as started, then again in a child re-executed
 * with RSMALLOC_RSEQ=0, so both CPU-cache modes are judged. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/wait.h>

#include "check_main.h"
#include "misuse.h"
#include "rsmalloc.h"
#include "stats_json.h"

/* rsmalloc exports it; glibc 2.36's headers do not declare it. */
void free_sized(void* p, size_t size);

/* Report failures only: ck_assert*() in loops over many bytes is slow. */
#define EXPECT(cond, ...)        \
  do {                           \
    if (!(cond))                 \
      ck_abort_msg(__VA_ARGS__); \
  } while (0)
#define EXPECT_NONNULL(p) EXPECT((p) != NULL, "'%s' is NULL", #p)
#define EXPECT_CMP(a, op, b)                                                 \
  do {                                                                       \
    uintmax_t a_ = (uintmax_t)(a), b_ = (uintmax_t)(b);                      \
    if (!(a_ op b_))                                                         \
      ck_abort_msg("Assertion '%s %s %s' failed: %ju, %ju", #a, #op, #b, a_, \
                   b_);                                                      \
  } while (0)

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

/* Keeps the compiler from folding allocation calls with constant sizes. */
static size_t opaque(size_t n) {
  volatile size_t v = n;
  return v;
}

/* 1 when rsmalloc is the allocator (not RSMALLOC_DISABLE=1). */
static int rs_active(void) {
  return strcmp(rsmalloc_cache_mode(), "disabled") != 0;
}

/* Under valgrind every byte costs ~50 times more: fewer rounds. */
static int slow;

/* Offset of the first non-zero byte of p[0..n), or n. */
static size_t first_nonzero(const void* p, size_t n) {
  const unsigned char* c = p;
  for (size_t i = 0; i < n; i++)
    if (c[i] != 0)
      return i;
  return n;
}

/* ------------------------------------------------------------------ */
/* calloc where rsmalloc skips the memset */

/* The distinct size classes from 4 KiB (where calloc takes an object from
 * its span instead of the CPU cache on a miss) to the largest small one,
 * found through malloc_usable_size. Returns how many. */
static size_t big_classes(size_t* out, size_t max) {
  static const size_t some[] = {4 * KiB,  5 * KiB,  8 * KiB,  20 * KiB,
                                64 * KiB, 99 * KiB, 256 * KiB};
  size_t count = 0;
  if (slow || !rs_active()) {
    /* Under valgrind malloc_usable_size is the size asked for, and calloc
     * always clears; with RSMALLOC_DISABLE=1 glibc answers: a few sizes. */
    for (; count < max && count < sizeof some / sizeof some[0]; count++)
      out[count] = some[count];
    return count;
  }
  for (size_t n = 4 * KiB; n <= 256 * KiB && count < max;) {
    void* p = malloc(opaque(n));
    EXPECT_NONNULL(p);
    size_t usable = malloc_usable_size(p);
    free(p);
    EXPECT(usable >= n, "malloc_usable_size(malloc(%zu)) = %zu", n, usable);
    out[count++] = usable;
    n = usable + 1;
  }
  return count;
}

/* Objects of `size` bytes: `live` of them, filled with 0xab, every other
 * one freed (in address order, so the last ones freed, those of the
 * newest span, are the ones a full CPU cache hands back to the central
 * list); with `trim`, then malloc_trim(0), which drains every CPU cache
 * (and returns the free pages it can). Then calloc misses the CPU cache
 * and takes objects from their spans: freed dirty ones on a free list next
 * to never-used ones that read as zeros. Every calloc'd byte must be zero. */
static void calloc_from_dirty_span(size_t size, size_t live, int trim) {
  static void* p[256];
  static void* q[256];
  ck_assert_uint_le(live, 254);
  malloc_trim(0);
  for (size_t i = 0; i < live; i++) {
    p[i] = malloc(opaque(size));
    EXPECT_NONNULL(p[i]);
    memset(p[i], 0xab, size);
  }
  size_t freed = 0;
  for (size_t i = 1; i < live; i += 2, freed++)
    free(p[i]);
  if (trim)
    malloc_trim(0);
  size_t want = freed + 2;
  for (size_t i = 0; i < want; i++) {
    q[i] = calloc(opaque(1), size);
    EXPECT_NONNULL(q[i]);
    size_t bad = first_nonzero(q[i], size);
    EXPECT(bad == size,
           "calloc(1, %zu) #%zu (%zu allocated, every other freed dirty%s): "
           "byte %zu is %#x",
           size, i, live, trim ? ", trimmed" : "", bad,
           ((unsigned char*)q[i])[bad]);
  }
  for (size_t i = 0; i < want; i++)
    free(q[i]);
  for (size_t i = 0; i < live; i += 2)
    free(p[i]);
}

/* Every size class from 4 KiB to 256 KiB, and span fill levels for the
 * freed objects to sit on a span that still has never-used objects (the
 * fill levels are not chosen from rsmalloc's internals: they are many). */
START_TEST(calloc_after_trim_into_dirty_span) {
  static const size_t lives[] = {2, 3, 4, 5, 6, 8, 9, 12, 16, 17, 33};
  size_t classes[64];
  size_t n = big_classes(classes, 64);
  EXPECT((slow || !rs_active() || n >= 40) && classes[n - 1] == 256 * KiB,
         "%zu classes from 4 KiB, the last %zu bytes", n, classes[n - 1]);
  for (size_t c = 0; c < n; c++) {
    for (size_t k = 0; k < sizeof lives / sizeof lives[0]; k++)
      calloc_from_dirty_span(classes[c], lives[k], 1);
  }
}

END_TEST

/* The same without malloc_trim, which returns the pages of most freed
 * objects of 8 KiB and more (they then read as zeros again): here frees of
 * twice 256 KiB overflow the CPU cache into the central lists, so the
 * freed objects stay dirty on their spans' free lists. */
START_TEST(calloc_after_cache_overflow_into_dirty_span) {
  size_t classes[64];
  size_t n = big_classes(classes, 64);
  for (size_t c = 0; c < n; c++) {
    for (size_t j = 0; j < 16; j += slow ? 5 : 1)
      calloc_from_dirty_span(classes[c], 512 * KiB / classes[c] + 8 + j, 0);
  }
}

END_TEST

/* A large block freed dirty and calloc'd again at once: the page heap
 * (below the mapping threshold) or the cache of freed mappings (above it)
 * hands back the same, dirty memory. Also larger and smaller than what was
 * freed, so a reused span or mapping is split or grown. */
START_TEST(calloc_reuses_dirty_large_blocks) {
  static const size_t sizes[][2] = {
      {300 * KiB, 300 * KiB}, {1 * MiB, 600 * KiB}, {600 * KiB, 1 * MiB},
      {40 * MiB, 40 * MiB},   {40 * MiB, 24 * MiB}, {24 * MiB, 40 * MiB},
      {6 * MiB, 6 * MiB + 1},
  };
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t dirty = sizes[i][0], clean = sizes[i][1];
    if (slow && (dirty > 8 * MiB || clean > 8 * MiB))
      continue;
    unsigned char* p = malloc(opaque(dirty));
    EXPECT_NONNULL(p);
    memset(p, 0xab, dirty);
    free(p);
    unsigned char* q = calloc(opaque(clean), 1);
    EXPECT_NONNULL(q);
    size_t bad = first_nonzero(q, clean);
    EXPECT(bad == clean, "calloc(%zu) after freeing %zu dirty: byte %zu is %#x",
           clean, dirty, bad, q[bad]);
    free(q);
  }
}

END_TEST

/* ------------------------------------------------------------------ */
/* Misuse through free and realloc: each must abort with rsmalloc's own
 * message, in a child; the same child without the misuse must live. */

static void free_heap_interior(int misuse) {
  free_interior(300 * KiB, 4096, misuse);
}

static void free_mapped_interior(int misuse) {
  free_interior(40 * MiB, 4096, misuse);
}

static void realloc_heap_interior(int misuse) {
  realloc_interior(300 * KiB, 4096, misuse);
}

static void realloc_mapped_interior(int misuse) {
  realloc_interior(40 * MiB, 4096, misuse);
}

static void double_free_heap(int misuse) {
  double_free(300 * KiB, misuse);
}

START_TEST(free_interior_of_large_aborts) {
  expect_abort(free_heap_interior, "free");
  expect_abort(free_mapped_interior, "free");
}

END_TEST

START_TEST(realloc_interior_of_large_aborts) {
  expect_abort(realloc_heap_interior, "realloc");
  expect_abort(realloc_mapped_interior, "realloc");
}

END_TEST

START_TEST(double_free_of_large_aborts) {
  expect_abort(double_free_heap, "free");
}

END_TEST

/* ------------------------------------------------------------------ */
/* Statistics */

/* Misuse deep inside mapped blocks and of small interior pointers
 * through realloc (once known bugs, fixed with issue 12). */
static void free_deep_mapped_interior(int misuse) {
  free_interior(40u << 20, 1u << 20, misuse);
}

static void realloc_deep_mapped_interior(int misuse) {
  realloc_interior(40u << 20, 1u << 20, misuse);
}

static void double_free_mapped(int misuse) {
  double_free(40u << 20, misuse);
}

static void realloc_small_interior_in_class(int misuse) {
  char* p = malloc(misuse_opaque(100));
  if (p == NULL)
    _exit(2);
  char* q = realloc(misuse ? p + 16 : p, misuse_opaque(90));
  if (q == NULL)
    _exit(3);
  free(misuse ? p : q);
}

static void realloc_small_interior_grow(int misuse) {
  realloc_interior(4096, 16, misuse);
}

START_TEST(free_far_inside_a_mapped_block_aborts) {
  expect_abort(free_deep_mapped_interior, "free");
}

END_TEST

START_TEST(realloc_far_inside_a_mapped_block_aborts) {
  expect_abort(realloc_deep_mapped_interior, "realloc");
}

END_TEST

START_TEST(double_free_of_a_mapped_block_aborts) {
  expect_abort(double_free_mapped, "free");
}

END_TEST

START_TEST(realloc_inside_a_small_block_aborts) {
  expect_abort(realloc_small_interior_in_class, "realloc");
  expect_abort(realloc_small_interior_grow, "realloc");
}

END_TEST

START_TEST(mallinfo2_falls_when_memory_is_freed) {
  enum { N = 3000, SZ = 1000 };

  static void* p[N];
  for (int i = 0; i < N; i++) {
    p[i] = malloc(opaque(SZ));
    EXPECT_NONNULL(p[i]);
    memset(p[i], 1, SZ);
  }
  void* big = malloc(opaque(80 * MiB));
  EXPECT_NONNULL(big);
  memset(big, 1, 80 * MiB);
  struct mallinfo2 held = mallinfo2();
  free(big);
  struct mallinfo2 no_big = mallinfo2();
  /* A block with its own mapping: counted in hblks and hblkhd, gone when
   * freed (even if the mapping is kept for reuse, it is no longer held). */
  EXPECT_CMP(no_big.hblks + 1, <=, held.hblks);
  EXPECT_CMP(no_big.hblkhd + 80 * MiB, <=, held.hblkhd);
  EXPECT_CMP(no_big.uordblks, <=, held.uordblks);
  malloc_trim(0); /* the freed mapping is not cached below */
  no_big = mallinfo2();
  for (int i = 0; i < N; i++)
    free(p[i]);
  struct mallinfo2 freed = mallinfo2();
  /* Freed small blocks are no longer in use, wherever they wait. */
  EXPECT_CMP(freed.uordblks + (size_t)N * SZ, <=, no_big.uordblks);
  EXPECT_CMP(freed.hblks, ==, no_big.hblks);
  if (!rs_active())
    return; /* glibc's fields mean other things */
  size_t released = rs_stat_bytes("released_bytes");
  malloc_trim(0);
  struct mallinfo2 trimmed = mallinfo2();
  /* What trim returned to the OS is no longer free and held. */
  size_t newly = rs_stat_bytes("released_bytes") - released;
  EXPECT_CMP(newly, >, 0);
  EXPECT_CMP(trimmed.fordblks + newly, <=, freed.fordblks);
  EXPECT_CMP(trimmed.fsmblks, ==, 0); /* every CPU cache drained */
}

END_TEST

START_TEST(transfer_caches_are_counted_and_trimmed) {
  if (!rs_active())
    return;

  enum { N = 2000 };

  static void* p[N];
  for (int i = 0; i < N; i++) {
    p[i] = malloc(opaque(64));
    EXPECT_NONNULL(p[i]);
  }
  size_t in_use = rs_stat_bytes("small_in_use_bytes");
  /* More than a CPU cache holds of the class: the rest drains in batches
   * to its transfer cache, counted there, no longer in use. */
  for (int i = 0; i < N; i++)
    free(p[i]);
  size_t held = rs_stat_bytes("transfer_cache_bytes");
  EXPECT_CMP(held, >, 0);
  EXPECT_CMP(rs_stat_bytes("small_in_use_bytes") + (size_t)N * 64, <=, in_use);
  struct mallinfo2 mi = mallinfo2();
  EXPECT_CMP(mi.fsmblks, >=, held);
  malloc_trim(0);
  EXPECT_CMP(rs_stat_bytes("transfer_cache_bytes"), ==, 0);
}

END_TEST

/* hblks after a block of n bytes is allocated, minus before. */
static size_t hblks_for(size_t n) {
  size_t before = mallinfo2().hblks;
  void* p = malloc(opaque(n));
  EXPECT_NONNULL(p);
  memset(p, 1, n);
  size_t with = mallinfo2().hblks;
  free(p);
  return with - before;
}

START_TEST(mallopt_mmap_threshold) {
  if (!rs_active())
    return; /* glibc's threshold works otherwise (dynamic, 32 MiB cap) */
  /* Default (lib/large.cc): 64 MiB; a 40 MiB block comes from the heap. */
  EXPECT_CMP(hblks_for(2 * MiB), ==, 0);
  EXPECT_CMP(hblks_for(40 * MiB), ==, 0);
  EXPECT_CMP(hblks_for(64 * MiB), ==, 1);
  /* glibc's limits: above 32 MiB and negative values are refused, and
   * change nothing. */
  ck_assert_int_eq(mallopt(M_MMAP_THRESHOLD, 33 * 1024 * 1024), 0);
  ck_assert_int_eq(mallopt(M_MMAP_THRESHOLD, -1), 0);
  EXPECT_CMP(hblks_for(40 * MiB), ==, 0);
  EXPECT_CMP(hblks_for(64 * MiB), ==, 1);
  /* 1 MiB: a 2 MiB block now has a mapping of its own. */
  ck_assert_int_eq(mallopt(M_MMAP_THRESHOLD, 1024 * 1024), 1);
  EXPECT_CMP(hblks_for(2 * MiB), ==, 1);
  EXPECT_CMP(hblks_for(600 * KiB), ==, 0);
  ck_assert_int_eq(mallopt(M_MMAP_THRESHOLD, 33 * 1024 * 1024), 0);
  EXPECT_CMP(hblks_for(2 * MiB), ==, 1);
  /* 32 MiB, the largest accepted: 8 MiB comes from the heap. */
  ck_assert_int_eq(mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024), 1);
  EXPECT_CMP(hblks_for(8 * MiB), ==, 0);
  EXPECT_CMP(hblks_for(32 * MiB), ==, 1);
  ck_assert_int_eq(mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024), 1);
  EXPECT_CMP(hblks_for(2 * MiB), ==, 0);
  EXPECT_CMP(hblks_for(4 * MiB), ==, 1);
}

END_TEST

/* The rerun with RSMALLOC_RSEQ=0 really runs the locked fallback. */
/* ------------------------------------------------------------------ */
/* The class tag: free pushes a small block by the class malloc left in
 * its second word (the free mark xor the class: docs/benchmarks.md, "The
 * class tag"), and a sized free by its size's class, but only when they
 * agree with the page map. A program that left another number there (a
 * bare class number, or the tag of another class), or passed a smaller
 * size, must never get the block back from a larger or another class. */

/* Keeps this thread on one CPU, so that what it frees into its CPU's
 * cache is what its next mallocs take. */
static void stay_on_this_cpu(void) {
  int cpu = sched_getcpu();
  if (cpu < 0)
    return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof set, &set);
}

START_TEST(free_ignores_a_forged_class_tag) {
  if (!rs_active())
    return;
  stay_on_this_cpu();

  enum { kForged = 130 }; /* every class number there is, and more */

  /* Half the blocks get a bare number, half the tag of that class: a
   * fresh block's second word is its own tag, the mark xor its class, so
   * tag ^ v runs through the tags of all classes. */
  static void* p[2 * kForged];
  static void* q[2048];
  for (uintptr_t v = 0; v < kForged; v++) {
    p[v] = malloc(opaque(16));
    p[kForged + v] = malloc(opaque(16));
    EXPECT_NONNULL(p[v]);
    EXPECT_NONNULL(p[kForged + v]);
    ((uintptr_t*)p[v])[1] = v;
    uintptr_t* tagged = (uintptr_t*)p[kForged + v] + 1;
    *tagged ^= v;
  }
  for (uintptr_t v = 0; v < 2 * kForged; v++)
    free(p[v]);
  /* Every small class, twice: had a tag been believed, one of them would
   * hand out a 16-byte block. */
  size_t count = 0;
  for (size_t n = 17; n <= 256 * KiB && count < 2048;
       n += n < 256 ? 16 : n / 16) {
    for (int k = 0; k < 2; k++) {
      void* b = malloc(opaque(n));
      EXPECT_NONNULL(b);
      size_t usable = malloc_usable_size(b);
      EXPECT(usable >= n,
             "malloc(%zu) gave a block of %zu bytes after 16-byte blocks "
             "were freed with other class numbers in their second word",
             n, usable);
      for (uintptr_t v = 0; v < 2 * kForged; v++)
        EXPECT(b != p[v], "malloc(%zu) gave a freed 16-byte block", n);
      q[count++] = b;
    }
  }
  for (size_t i = 0; i < count; i++)
    free(q[i]);
}

END_TEST

START_TEST(sized_free_files_by_the_block_not_the_size) {
  if (!rs_active())
    return;
  stay_on_this_cpu();

  enum { kBlocks = 64 };

  static void* p[kBlocks];
  static void* q[4 * kBlocks];
  for (int i = 0; i < kBlocks; i++) {
    p[i] = malloc(opaque(48));
    EXPECT_NONNULL(p[i]);
    memset(p[i], 0x5c, 48); /* no class tag left */
  }
  /* Smaller than the block: not a wrong size rsmalloc stops, but the
   * block must go back as a 48-byte one, not as a block of 16's or 32's
   * class. */
  for (int i = 0; i < kBlocks; i++)
    free_sized(p[i], opaque(i % 2 ? 16 : 20));
  for (int i = 0; i < 4 * kBlocks; i++) {
    q[i] = malloc(opaque(i % 2 ? 16 : 20));
    EXPECT_NONNULL(q[i]);
    for (int k = 0; k < kBlocks; k++)
      EXPECT(q[i] != p[k],
             "malloc(%d) gave a 48-byte block freed by free_sized(p, %d)",
             i % 2 ? 16 : 20, k % 2 ? 16 : 20);
  }
  for (int i = 0; i < 4 * kBlocks; i++)
    free(q[i]);
}

END_TEST

START_TEST(cache_mode_follows_rsmalloc_rseq) {
  const char* env = getenv("RSMALLOC_RSEQ");
  const char* mode = rsmalloc_cache_mode();
  if (env != NULL && strcmp(env, "0") == 0 && rs_active())
    ck_assert_msg(strncmp(mode, "fallback", 8) == 0,
                  "RSMALLOC_RSEQ=0 but cache mode \"%s\"", mode);
}

END_TEST

/* ------------------------------------------------------------------ */

/* realloc grows a block in small steps by at least a quarter at a time
 * (above 128 B, within the small sizes), so that a list appended to or a
 * string built piece by piece is not copied at every size class; below
 * 128 B, shrinking, and sizes past the small ones it takes what was asked. */
START_TEST(realloc_growth_takes_a_quarter_more) {
  if (slow || getenv("RSMALLOC_HARDEN") != NULL)
    return; /* valgrind's and strict mode's realloc take exactly n */
  unsigned char* p = malloc(opaque(1000));
  ck_assert_ptr_nonnull(p);
  memset(p, 0x6b, 1000);
  size_t had = malloc_usable_size(p);
  p = realloc(p, opaque(had + 1));
  ck_assert_ptr_nonnull(p);
  ck_assert_uint_ge(malloc_usable_size(p), had + had / 4);
  for (size_t i = 0; i < 1000; i++)
    ck_assert_uint_eq(p[i], 0x6b);
  /* Growth by a quarter or more gets the class of what was asked. */
  size_t big = malloc_usable_size(p) * 2;
  p = realloc(p, opaque(big));
  ck_assert_ptr_nonnull(p);
  ck_assert_uint_lt(malloc_usable_size(p), big + big / 8 + 1);
  free(p);
  /* Small blocks: the next class, no more. */
  p = malloc(opaque(64));
  ck_assert_ptr_nonnull(p);
  p = realloc(p, opaque(65));
  ck_assert_ptr_nonnull(p);
  ck_assert_uint_eq(malloc_usable_size(p), 80);
  free(p);
}

END_TEST

/* A 4 KiB page and its header (sqlite's page cache asks 4368 bytes) has a
 * class of 4480 bytes, not the regular spacing's 4608; a block that grows
 * through it by realloc skips it (it would leave a span of that class
 * behind), so growth from 3584 bytes still gets 4608. */
START_TEST(page_and_header_class) {
  if (slow || getenv("RSMALLOC_HARDEN") != NULL)
    return; /* valgrind's and strict mode's sizes differ */
  void* p = malloc(opaque(4368));
  ck_assert_ptr_nonnull(p);
  ck_assert_uint_eq(malloc_usable_size(p), 4480);
  free(p);
  p = malloc(opaque(4481));
  ck_assert_ptr_nonnull(p);
  ck_assert_uint_eq(malloc_usable_size(p), 4608);
  free(p);
  unsigned char* q = malloc(opaque(3500));
  ck_assert_ptr_nonnull(q);
  ck_assert_uint_eq(malloc_usable_size(q), 3584);
  memset(q, 0x5a, 3500);
  q = realloc(q, opaque(3700));
  ck_assert_ptr_nonnull(q);
  ck_assert_uint_eq(malloc_usable_size(q), 4608);
  for (size_t i = 0; i < 3500; i++)
    ck_assert_uint_eq(q[i], 0x5a);
  free(q);
}

END_TEST

static TCase* tcase(Suite* s, const char* name, int timeout) {
  TCase* tc = tcase_create(name);
  tcase_set_timeout(tc, timeout);
  suite_add_tcase(s, tc);
  return tc;
}

static Suite* make_suite(void) {
  Suite* s = suite_create("promises");
  TCase* tc = tcase(s, "calloc", 120);
  tcase_add_test(tc, calloc_after_trim_into_dirty_span);
  tcase_add_test(tc, calloc_after_cache_overflow_into_dirty_span);
  tcase_add_test(tc, calloc_reuses_dirty_large_blocks);
  tc = tcase(s, "realloc", 30);
  tcase_add_test(tc, realloc_growth_takes_a_quarter_more);
  tcase_add_test(tc, page_and_header_class);
  tc = tcase(s, "misuse", 30);
  tcase_add_test(tc, free_interior_of_large_aborts);
  tcase_add_test(tc, realloc_interior_of_large_aborts);
  tcase_add_test(tc, double_free_of_large_aborts);
  tcase_add_test(tc, free_far_inside_a_mapped_block_aborts);
  tcase_add_test(tc, realloc_far_inside_a_mapped_block_aborts);
  tcase_add_test(tc, double_free_of_a_mapped_block_aborts);
  tcase_add_test(tc, realloc_inside_a_small_block_aborts);
  tc = tcase(s, "stats", 30);
  tcase_add_test(tc, mallinfo2_falls_when_memory_is_freed);
  tcase_add_test(tc, transfer_caches_are_counted_and_trimmed);
  tcase_add_test(tc, mallopt_mmap_threshold);
  tcase_add_test(tc, cache_mode_follows_rsmalloc_rseq);
  tc = tcase(s, "class tag", 30);
  tcase_add_test(tc, free_ignores_a_forged_class_tag);
  tcase_add_test(tc, sized_free_files_by_the_block_not_the_size);
  return s;
}

int main(int argc, char** argv) {
  (void)argc;
  const char* preload = getenv("LD_PRELOAD");
  slow = preload != NULL && strstr(preload, "vgpreload") != NULL;
  if (slow) /* valgrind has no rseq: one run is both modes */
    return rs_check_run(make_suite(), "test_promises");
  return rs_check_run_both_modes(make_suite(), "test_promises", argv);
}
