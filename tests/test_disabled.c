/* SPDX-License-Identifier: MIT */
/* RSMALLOC_DISABLE=1 end to end (run by tests/disabled.sh with it set):
 * the library reports "disabled", owns no block from any entry point, and
 * mallopt, mallinfo2 and malloc_info give glibc's own answers, which
 * differ from rsmalloc's in ways a program can see (M_PERTURB is accepted
 * and fills new memory; freed small chunks sit in fastbins). */
#define _GNU_SOURCE
#include <check.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "rsmalloc.h"

/* Hides a constant from the compiler so calls are not folded. */
static size_t opaque(size_t n) {
  volatile size_t v = n;
  return v;
}

static void expect_not_owned(void* p, const char* what, size_t n) {
  ck_assert_msg(p != NULL, "%s(%zu) failed", what, n);
  ck_assert_msg(rsmalloc_owns(p) == 0, "rsmalloc owns %s(%zu) = %p", what, n,
                p);
  ck_assert_msg(rsmalloc_usable_size(p) == malloc_usable_size(p),
                "%s(%zu): usable sizes differ", what, n);
}

START_TEST(mode_is_disabled) {
  ck_assert_str_eq(rsmalloc_cache_mode(), "disabled");
  free(malloc(opaque(10)));
  ck_assert_str_eq(rsmalloc_cache_mode(), "disabled");
}

END_TEST

START_TEST(no_block_is_owned) {
  static const size_t sizes[] = {0,      1,       16,      100,
                                 1000,   4096,    65536,   262144,
                                 300000, 1 << 20, 4 << 20, 40 << 20};
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    size_t n = opaque(sizes[i]);
    void* p = malloc(n);
    expect_not_owned(p, "malloc", n);
    p = realloc(p, n + 100);
    expect_not_owned(p, "realloc", n + 100);
    free(p);
    p = calloc(1, n + 1);
    expect_not_owned(p, "calloc", n + 1);
    free(p);
    p = reallocarray(NULL, 2, n + 1);
    expect_not_owned(p, "reallocarray", 2 * (n + 1));
    free(p);
    p = aligned_alloc(64, n + 64);
    expect_not_owned(p, "aligned_alloc", n + 64);
    free(p);
    p = NULL;
    ck_assert_int_eq(posix_memalign(&p, 4096, n + 1), 0);
    expect_not_owned(p, "posix_memalign", n + 1);
    free(p);
    p = memalign(256, n + 1);
    expect_not_owned(p, "memalign", n + 1);
    free(p);
    p = valloc(n + 1);
    expect_not_owned(p, "valloc", n + 1);
    free(p);
    p = pvalloc(n + 1);
    expect_not_owned(p, "pvalloc", n + 1);
    free(p);
  }

  /* Many live blocks at once, as a program holds them. */
  enum { kLive = 5000 };

  static void* live[kLive];
  for (int i = 0; i < kLive; i++) {
    live[i] = malloc(opaque((size_t)(i % 500) * 8 + 1));
    ck_assert_ptr_nonnull(live[i]);
  }
  int owned = 0;
  for (int i = 0; i < kLive; i++)
    owned += rsmalloc_owns(live[i]);
  ck_assert_int_eq(owned, 0);
  for (int i = 0; i < kLive; i++)
    free(live[i]);
}

END_TEST

START_TEST(mallopt_is_glibcs) {
  /* rsmalloc refuses M_PERTURB (0); glibc accepts it and then fills every
   * block it carves with the byte's complement. */
  ck_assert_int_eq(mallopt(M_PERTURB, 0x5a), 1);
  size_t n = opaque(12345); /* a size nothing cached */
  unsigned char* p = malloc(n);
  ck_assert_ptr_nonnull(p);
  size_t wrong = 0;
  for (size_t i = 0; i < n; i++)
    wrong += p[i] != 0xa5;
  ck_assert_msg(wrong == 0, "%zu of %zu bytes are not 0xa5 after M_PERTURB",
                wrong, n);
  free(p);
  ck_assert_int_eq(mallopt(M_PERTURB, 0), 1);
  /* glibc 2.36 accepts (and ignores) a threshold above its 32 MiB cap,
   * where rsmalloc returns 0. */
  ck_assert_int_eq(mallopt(M_TOP_PAD, 1 << 20), 1);
  ck_assert_int_eq(mallopt(M_MMAP_THRESHOLD, 64 << 20), 1);
}

END_TEST

enum { kFast = 40, kFastSize = 72 };

/* Frees kFast chunks of one fastbin size: the first seven go to the
 * tcache, the rest to glibc's fastbins, which rsmalloc does not have. */
static void fill_fastbins(void) {
  void* p[kFast];
  for (int i = 0; i < kFast; i++) {
    p[i] = malloc(opaque(kFastSize));
    ck_assert_ptr_nonnull(p[i]);
  }
  for (int i = 0; i < kFast; i++)
    free(p[i]);
}

START_TEST(mallinfo2_is_glibcs) {
  struct mallinfo2 before = mallinfo2();

  enum { kBlocks = 1000, kSize = 1000 };

  void* held[kBlocks];
  for (int i = 0; i < kBlocks; i++) {
    held[i] = malloc(opaque(kSize));
    ck_assert_ptr_nonnull(held[i]);
  }
  struct mallinfo2 during = mallinfo2();
  ck_assert_uint_ge(during.uordblks, before.uordblks + kBlocks * kSize);
  ck_assert_uint_ge(during.arena, during.uordblks);
  for (int i = 0; i < kBlocks; i++)
    free(held[i]);
  fill_fastbins();
  struct mallinfo2 after = mallinfo2();
  ck_assert_msg(after.smblks >= kFast / 2,
                "mallinfo2().smblks = %zu: no fastbin chunks, not glibc's",
                after.smblks);
  ck_assert_uint_ge(after.fsmblks, (size_t)(kFast / 2) * kFastSize);
}

END_TEST

START_TEST(malloc_info_is_glibcs) {
  /* The stream first: its 8 KiB buffer is a large request, and glibc
   * consolidates its fastbins on those. */
  char* text = NULL;
  size_t len = 0;
  FILE* f = open_memstream(&text, &len);
  ck_assert_ptr_nonnull(f);
  fill_fastbins();
  ck_assert_int_eq(malloc_info(0, f), 0);
  ck_assert_int_eq(fclose(f), 0);
  ck_assert_ptr_nonnull(text);
  ck_assert_msg(
      strncmp(text, "<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n", 43) ==
          0,
      "malloc_info starts: %.80s", text);
  /* glibc lists its fastbin chunks as sizes and counts them as "fast". */
  ck_assert_msg(strstr(text, "  <size from=\"65\" to=\"80\" total=\"") != NULL,
                "no fastbin size line for 72-byte chunks:\n%s", text);
  const char* fast = strstr(text, "<total type=\"fast\" count=\"");
  ck_assert_ptr_nonnull(fast);
  long count = strtol(fast + strlen("<total type=\"fast\" count=\""), NULL, 10);
  /* rsmalloc's document always says 0 here; how many of the chunks glibc
   * keeps in fastbins rather than elsewhere depends on its state. */
  ck_assert_msg(count >= kFast / 2, "fast count %ld:\n%s", count, text);
  ck_assert_ptr_nonnull(strstr(text, "</heap>\n"));
  ck_assert_ptr_nonnull(strstr(text, "</malloc>\n"));
  free(text);
}

END_TEST

int main(void) {
  const char* d = getenv("RSMALLOC_DISABLE");
  if (d == NULL || strcmp(d, "1") != 0) {
    printf("test_disabled: run with RSMALLOC_DISABLE=1 (tests/disabled.sh)\n");
    return 77;
  }
  Suite* s = suite_create("disabled");
  TCase* tc = tcase_create("glibc");
  tcase_add_test(tc, mode_is_disabled);
  tcase_add_test(tc, no_block_is_owned);
  tcase_add_test(tc, mallopt_is_glibcs);
  tcase_add_test(tc, mallinfo2_is_glibcs);
  tcase_add_test(tc, malloc_info_is_glibcs);
  suite_add_tcase(s, tc);
  return rs_check_run(s, "test_disabled");
}
