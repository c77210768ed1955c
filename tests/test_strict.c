/* SPDX-License-Identifier: MIT */
/* Strict mode (RSMALLOC_HARDEN=1, run so by tests/strict.sh): each misuse
 * runs in a forked child that must die of SIGABRT with rsmalloc's line,
 * and the same child without the misuse must exit normally. A write after
 * free is found when the block leaves the quarantine; an overflow past a
 * small block's end when the block is freed; a freed block is not the next
 * one handed out; a double free of a quarantined block is caught. Large
 * blocks have guard pages: an overflow past their end, or an underflow
 * past the head of their first page, dies of SIGSEGV at the access, in a
 * forked child; an underflow into the head aborts at the free; sized
 * frees accept sizes up to the usable size and abort above it. */
#define _GNU_SOURCE
#include <check.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "misuse.h"
#include "rsmalloc.h"
#include "stats_json.h"

void free_sized(void* p, size_t size);

static volatile size_t g_one = 1;

static size_t opaque(size_t n) {
  return n * g_one;
}

/* -1, which the compiler cannot see (an index before a malloc'd block). */
static volatile long g_minus_one = -1;

static void write_after_free(int misuse) {
  char* p = malloc(opaque(100));
  memset(p, 1, 100);
  free(p);
  if (misuse)
    p[50] = 2;    /* a stale pointer's write */
  malloc_trim(0); /* the quarantine empties, each block checked */
}

static void overflow(int misuse) {
  char* p = malloc(opaque(100));
  size_t usable = malloc_usable_size(p);
  memset(p, 1, usable);
  if (misuse)
    p[usable] = 2; /* one byte past what the block may hold */
  free(p);
}

static void overflow_sized_array(int misuse) {
  /* The same through a C++-style array of 10 ints written 11 times. */
  int* a = malloc(opaque(10 * sizeof(int)));
  size_t n = malloc_usable_size(a) / sizeof(int);
  for (size_t i = 0; i < n + (misuse ? 2 : 0); i++)
    a[i] = (int)i;
  free(a);
}

static void double_free_quarantined(int misuse) {
  void* p = malloc(opaque(48));
  free(p);
  if (misuse)
    free(p);
}

/* fn(1) must die of SIGSEGV (a guard page), fn(0) must exit normally. */
static void expect_fault(misuse_fn fn, const char* what) {
  static char msg[4096];
  int status = run_child(fn, 0, msg, sizeof msg);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "%s without the misuse: status %#x, stderr: %s", what, status,
                msg);
  status = run_child(fn, 1, msg, sizeof msg);
  ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
                "%s: status %#x, not SIGSEGV; stderr: %s", what, status, msg);
}

static size_t sys_page(void) {
  return (size_t)sysconf(_SC_PAGESIZE);
}

/* A large block of n bytes, all of it written. */
static volatile char* large_block(size_t n) {
  char* p = malloc(opaque(n));
  if (p == NULL)
    _exit(2);
  memset(p, 1, malloc_usable_size(p));
  return p;
}

static void past_end(size_t n, int misuse) {
  volatile char* p = large_block(n);
  if (misuse)
    p[malloc_usable_size((void*)p)] = 2; /* one byte past the block */
  free((void*)p);
}

static void past_end_300k(int misuse) {
  past_end(300000, misuse);
}

static void past_end_512k(int misuse) {
  past_end(512 * 1024, misuse);
}

/* One byte before the block: for a size that is a multiple of the system
 * page the block starts a page and the byte is in the guard. */
static void before_start_512k(int misuse) {
  volatile char* p = large_block(512 * 1024);
  if (misuse)
    p[g_minus_one] = 2;
  free((void*)p);
}

/* 300000 bytes end at the guard, so they start inside a page: one byte
 * before the head of that page is in the leading guard. */
static void before_head_300k(int misuse) {
  volatile char* p = large_block(300000);
  size_t head = (uintptr_t)p % sys_page();
  if (misuse)
    p[g_minus_one * (long)head + g_minus_one] = 2;
  free((void*)p);
}

/* The head itself (between the page start and the block) is checked when
 * the block is freed. */
static void into_head_300k(int misuse) {
  volatile char* p = large_block(300000);
  if (misuse)
    p[g_minus_one] = 2;
  free((void*)p);
}

static void use_after_free_large(int misuse) {
  volatile char* p = large_block(300000);
  free((void*)p);
  if (misuse)
    p[1000] = 2; /* the freed block stays mapped, inaccessible */
}

static void double_free_large(int misuse) {
  void* p = (void*)large_block(300000);
  free(p);
  if (misuse)
    free(p);
}

/* realloc keeps the contents and gives the new block its guards. */
static void realloc_then_past_end(size_t from, size_t to, int misuse) {
  unsigned char* p = malloc(opaque(from));
  if (p == NULL)
    _exit(2);
  for (size_t i = 0; i < from; i++)
    p[i] = (unsigned char)(i * 7);
  volatile unsigned char* q = realloc(p, opaque(to));
  if (q == NULL)
    _exit(3);
  size_t keep = from < to ? from : to;
  for (size_t i = 0; i < keep; i++) {
    if (q[i] != (unsigned char)(i * 7))
      _exit(4);
  }
  size_t usable = malloc_usable_size((void*)q);
  if (usable < to || usable - to >= 16)
    _exit(5);
  memset((void*)q, 3, usable);
  if (misuse)
    q[usable] = 2;
  free((void*)q);
}

/* A page-multiple block starts a page: the byte before it is the guard,
 * also after realloc has grown it far (never mremap past its guard). */
static void realloc_grow_far_then_before(int misuse) {
  size_t from = 512 * 1024, to = 3 * 1024 * 1024;
  unsigned char* p = malloc(opaque(from));
  if (p == NULL)
    _exit(2);
  for (size_t i = 0; i < from; i++)
    p[i] = (unsigned char)(i * 7);
  volatile unsigned char* q = realloc(p, opaque(to));
  if (q == NULL)
    _exit(3);
  for (size_t i = 0; i < from; i++) {
    if (q[i] != (unsigned char)(i * 7))
      _exit(4);
  }
  if (malloc_usable_size((void*)q) != to)
    _exit(5);
  if (misuse)
    q[g_minus_one] = 2;
  free((void*)q);
}

static void realloc_grow(int misuse) {
  realloc_then_past_end(300000, 700000, misuse);
}

static void realloc_shrink(int misuse) {
  realloc_then_past_end(700000, 280000, misuse);
}

static void realloc_from_small(int misuse) {
  realloc_then_past_end(1000, 300000, misuse);
}

static void realloc_grow_a_little(int misuse) {
  realloc_then_past_end(300000, 300008, misuse);
}

/* posix_memalign keeps its alignment; the end is as close to the guard as
 * the alignment allows: within the alignment, or a system page for
 * alignments of a page and more. */
static size_t g_align;

static void aligned_past_end(int misuse) {
  static const size_t sizes[] = {300000, 512 * 1024, 700001};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    void* v;
    if (posix_memalign(&v, g_align, opaque(n)) != 0)
      _exit(2);
    volatile char* p = v;
    if ((uintptr_t)p % g_align != 0)
      _exit(3);
    size_t usable = malloc_usable_size(v);
    size_t grain = g_align < sys_page() ? g_align : sys_page();
    if (usable < n || usable - n >= grain)
      _exit(4);
    memset(v, 1, usable);
    if (misuse && i == 1)
      p[usable] = 2;
    free(v);
  }
}

/* Strict mode's frees all take the slow path: an interior pointer is
 * still named as such (not taken for a block with a broken canary). */
static void interior_free_small(int misuse) {
  free_interior(48, 16, misuse);
}

static void interior_free_large(int misuse) {
  free_interior(300000, 8192, misuse);
}

static void sized_free_large(int misuse) {
  void* p = (void*)large_block(300000);
  free_sized(p, misuse ? 300001 : 300000);
}

/* Strict mode's small blocks hold usable_size bytes (the class size less
 * the canary): a sized free may say that much, no more. */
static void sized_free_small(int misuse) {
  void* p = malloc(opaque(48));
  size_t usable = malloc_usable_size(p); /* 56: 64-byte class */
  free_sized(p, misuse ? usable + 1 : usable);
}

static void sized_free_small_class_size(int misuse) {
  void* p = malloc(opaque(100)); /* usable 104, class 112 */
  free_sized(p, misuse ? 112 : 100);
}

START_TEST(large_blocks_have_guards) {
  expect_fault(past_end_300k, "one byte past a 300000-byte block");
  expect_fault(past_end_512k, "one byte past a 512 KiB block");
  expect_fault(before_start_512k, "one byte before a 512 KiB block");
  expect_fault(before_head_300k, "one byte before a 300000-byte block's page");
  expect_fault(use_after_free_large, "a write to a freed 300000-byte block");
  expect_abort(into_head_300k, "free(): underflow before the start of");
  expect_abort(double_free_large, "free(): double free of");
}

END_TEST

START_TEST(large_realloc_keeps_guards) {
  expect_fault(realloc_grow, "realloc 300000 -> 700000, then past the end");
  expect_fault(realloc_shrink, "realloc 700000 -> 280000, then past the end");
  expect_fault(realloc_from_small, "realloc 1000 -> 300000, then past the end");
  expect_fault(realloc_grow_far_then_before,
               "realloc 512 KiB -> 3 MiB, then one byte before");
  expect_fault(realloc_grow_a_little,
               "realloc 300000 -> 300008, then past the end");
}

END_TEST

START_TEST(large_aligned_blocks) {
  static const size_t aligns[] = {32, 4096, 8192, 65536, 2 * 1024 * 1024};
  for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
    g_align = aligns[i];
    expect_fault(aligned_past_end, "past the end of an aligned block");
  }
}

END_TEST

START_TEST(sized_frees_up_to_usable) {
  expect_abort(sized_free_large, "free_sized(): size 300001 given for");
  expect_abort(sized_free_small, "free_sized(): size 57 given for");
  expect_abort(sized_free_small_class_size, "free_sized(): size 112 given for");
}

END_TEST

START_TEST(large_blocks_counted) {
  size_t bytes = rs_stat_bytes("mapped_large_bytes");
  size_t count = rs_stat_bytes("mapped_large_count");
  char* p = calloc(1, opaque(300000));
  ck_assert_ptr_nonnull(p);
  for (size_t i = 0; i < 300000; i++)
    ck_assert(p[i] == 0);
  ck_assert_uint_eq(malloc_usable_size(p), 300000);
  ck_assert_uint_eq(rs_stat_bytes("mapped_large_count"), count + 1);
  size_t with = rs_stat_bytes("mapped_large_bytes");
  ck_assert_uint_ge(with, bytes + 300000);
  ck_assert_uint_le(with, bytes + 300000 + 3 * 8192);
  free(p);
  ck_assert_uint_eq(rs_stat_bytes("mapped_large_count"), count);
  ck_assert_uint_eq(rs_stat_bytes("mapped_large_bytes"), bytes);
}

END_TEST

START_TEST(misuse_is_stopped) {
  expect_abort(write_after_free, "malloc_trim(): write after free to");
  expect_abort(overflow, "free(): overflow past the end of");
  expect_abort(overflow_sized_array, "free(): overflow past the end of");
  expect_abort(double_free_quarantined, "free(): double free of");
  expect_abort(interior_free_small, "free: invalid pointer");
  expect_abort(interior_free_large, "free: invalid pointer");
}

END_TEST

START_TEST(freed_blocks_wait) {
  /* The next blocks of the same size are never the one just freed. */
  for (int round = 0; round < 100; round++) {
    void* p = malloc(opaque(64));
    free(p);
    void* q = malloc(opaque(64));
    void* r = malloc(opaque(64));
    ck_assert_ptr_ne(p, q);
    ck_assert_ptr_ne(p, r);
    free(q);
    free(r);
  }
}

END_TEST

START_TEST(strict_mode_is_on) {
  char* p = malloc(opaque(48));
  /* The canary takes the last 8 bytes: 48 bytes need the 64-byte class. */
  ck_assert_uint_eq(malloc_usable_size(p), 56);
  free(p);
  void* c = calloc(1, opaque(5000));
  ck_assert_ptr_nonnull(c);
  for (size_t i = 0; i < 5000; i++)
    ck_assert(((unsigned char*)c)[i] == 0);
  free(c);
}

END_TEST

int main(void) {
  Suite* s = suite_create("strict");
  TCase* tc = tcase_create("strict");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, strict_mode_is_on);
  tcase_add_test(tc, misuse_is_stopped);
  tcase_add_test(tc, freed_blocks_wait);
  tcase_add_test(tc, large_blocks_have_guards);
  tcase_add_test(tc, large_realloc_keeps_guards);
  tcase_add_test(tc, large_aligned_blocks);
  tcase_add_test(tc, sized_frees_up_to_usable);
  tcase_add_test(tc, large_blocks_counted);
  suite_add_tcase(s, tc);
  return rs_check_run(s, "test_strict");
}
