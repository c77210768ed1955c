/* SPDX-License-Identifier: MIT */
/* Strict mode (RSMALLOC_HARDEN=1, run so by tests/strict.sh): each misuse
 * runs in a forked child that must die of SIGABRT with rsmalloc's line,
 * and the same child without the misuse must exit normally. A write after
 * free is found when the block leaves the quarantine; an overflow past a
 * small block's end when the block is freed; a freed block is not the next
 * one handed out; a double free of a quarantined block is caught. */
#define _GNU_SOURCE
#include <check.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "misuse.h"
#include "rsmalloc.h"

static volatile size_t g_one = 1;

static size_t opaque(size_t n) {
  return n * g_one;
}

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

START_TEST(misuse_is_stopped) {
  expect_abort(write_after_free, "malloc_trim(): write after free to");
  expect_abort(overflow, "free(): overflow past the end of");
  expect_abort(overflow_sized_array, "free(): overflow past the end of");
  expect_abort(double_free_quarantined, "free(): double free of");
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
  suite_add_tcase(s, tc);
  return rs_check_run(s, "test_strict");
}
