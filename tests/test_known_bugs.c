/* SPDX-License-Identifier: MIT */
/* KNOWN BUGS: misuse that rsmalloc does not catch yet. Every test here
 * fails today, so the program is in XFAIL_TESTS (tests/abi.mk): make check
 * reports it as an expected failure. When a fix makes every test pass, the
 * program XPASSes and make check fails: then move the tests to
 * test_promises.c and drop this program from XFAIL_TESTS.
 *
 * - A mapped large block (its own mmap, 4 MiB and up) is recorded in the
 *   page map by its first and last page only. free or realloc of a pointer
 *   further inside it looks foreign and goes to glibc's free/realloc,
 *   which read a chunk header out of the user's data (SIGSEGV, or glibc's
 *   own abort; a crafted header could make glibc munmap other memory).
 * - After free, a mapped block's page map entries are gone while the
 *   mapping is kept for reuse: a second free goes to glibc's free too.
 * - realloc of an interior pointer of a small block is not checked: it
 *   returns the pointer itself when the size fits its class, else copies
 *   and pushes the interior pointer into a CPU cache, from where it is
 *   handed out again, overlapping live blocks. */
#define _GNU_SOURCE
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "misuse.h"

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

int main(void) {
  /* Under valgrind rsmalloc leaves invalid frees to memcheck: nothing to
   * expect here (an XPASS would fail make check-valgrind). Skip. Same
   * with rsmalloc disabled. */
  const char* preload = getenv("LD_PRELOAD");
  if (preload != NULL && strstr(preload, "vgpreload") != NULL)
    return 77;
  if (strcmp(rsmalloc_cache_mode(), "disabled") == 0)
    return 77; /* RSMALLOC_DISABLE=1: glibc's checks, not rsmalloc's */
  Suite* s = suite_create("known_bugs");
  TCase* tc = tcase_create("misuse");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, free_far_inside_a_mapped_block_aborts);
  tcase_add_test(tc, realloc_far_inside_a_mapped_block_aborts);
  tcase_add_test(tc, double_free_of_a_mapped_block_aborts);
  tcase_add_test(tc, realloc_inside_a_small_block_aborts);
  suite_add_tcase(s, tc);
  return rs_check_run(s, "test_known_bugs");
}
