/* SPDX-License-Identifier: MIT */
/* glibc's behaviours that programs and test suites rely on (issue 16):
 * errno after each failing entry point, mallopt(M_PERTURB) and
 * MALLOC_PERTURB_, the other mallopt parameters, malloc_stats's glibc
 * lines and a malloc_info that is complete whatever the heap holds.
 *
 * The errno, mallopt and malloc_stats expectations are glibc 2.36's own:
 * tests/glibc-compat.sh also runs this program with RSMALLOC_DISABLE=1,
 * where glibc answers, so the expectations are checked against glibc
 * itself. Checks of rsmalloc's own behaviour are skipped there. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "on_valgrind.h"
#include "rsmalloc.h"

/* Not declared by glibc 2.36's headers. */
void* pvalloc(size_t n);

#define MiB ((size_t)1 << 20)

static int disabled(void) {
  return strcmp(rsmalloc_cache_mode(), "disabled") == 0;
}

/* ------------------------------------------------------------------ */
/* errno after each failing entry point. */

/* The errno a failed call left; the call must have returned NULL. */
static int errno_of_null(void* result) {
  int e = errno;
  ck_assert_ptr_null(result);
  return e;
}

/* Evaluates expr with errno set to a marker first; its errno after. */
#define ERRNO_AFTER(expr) (errno = 12345, errno_of_null(expr))

START_TEST(errno_after_failures) {
  void* p = malloc(64);
  ck_assert_ptr_nonnull(p);
  void* out = &out;
  volatile size_t huge = SIZE_MAX - 4096; /* volatile: no folding */

  ck_assert_int_eq(ERRNO_AFTER(malloc(huge)), ENOMEM);
  ck_assert_int_eq(ERRNO_AFTER(calloc(huge / 2, 4)), ENOMEM); /* overflow */
  ck_assert_int_eq(ERRNO_AFTER(calloc(1, huge)), ENOMEM);
  ck_assert_int_eq(ERRNO_AFTER(realloc(NULL, huge)), ENOMEM);
  ck_assert_int_eq(ERRNO_AFTER(reallocarray(NULL, huge / 2, 4)), ENOMEM);
  ck_assert_int_eq(ERRNO_AFTER(memalign(64, huge)), ENOMEM);
  ck_assert_int_eq(ERRNO_AFTER(memalign(huge, 16)), EINVAL);
  ck_assert_int_eq(ERRNO_AFTER(aligned_alloc(64, huge)), ENOMEM);
  ck_assert_int_eq(ERRNO_AFTER(valloc(huge)), ENOMEM);
  ck_assert_int_eq(ERRNO_AFTER(pvalloc(huge)), ENOMEM);

  /* realloc and reallocarray fail leaving p alone. */
  errno = 0;
  ck_assert_ptr_null(realloc(p, huge));
  ck_assert_int_eq(errno, ENOMEM);
  errno = 0;
  ck_assert_ptr_null(reallocarray(p, huge / 2, 4));
  ck_assert_int_eq(errno, ENOMEM);

  /* posix_memalign: the result says it, errno too for ENOMEM (glibc's
   * tst-malloc-thread-fail checks it); EINVAL leaves errno alone. */
  errno = 12345;
  ck_assert_int_eq(posix_memalign(&out, 64, huge), ENOMEM);
  ck_assert_int_eq(errno, ENOMEM);
  ck_assert_ptr_eq(out, &out);
  errno = 12345;
  ck_assert_int_eq(posix_memalign(&out, 24, 16), EINVAL);
  ck_assert_int_eq(errno, 12345);
  ck_assert_ptr_eq(out, &out);

  /* Successes and free keep errno. */
  errno = 12345;
  void* q = malloc(100);
  free(q);
  free(NULL);
  ck_assert_ptr_nonnull(q);
  ck_assert_int_eq(errno, 12345);

  /* malloc_info with options returns EINVAL itself, errno untouched. */
  FILE* f = fopen("/dev/null", "w");
  ck_assert_ptr_nonnull(f);
  errno = 12345;
  ck_assert_int_eq(malloc_info(1, f), EINVAL);
  ck_assert_int_eq(errno, 12345);
  fclose(f);
  free(p);
}

END_TEST

/* ------------------------------------------------------------------ */
/* mallopt. */

START_TEST(mallopt_answers_like_glibc) {
  if (!disabled()) {
    /* mallopt(3)'s documented limit (32 MiB on 64-bit), which glibc 2.36
     * itself does not enforce: rsmalloc refuses what it cannot honour. */
    ck_assert_int_eq(mallopt(M_MMAP_THRESHOLD, -1), 0);
    ck_assert_int_eq(mallopt(M_MMAP_THRESHOLD, (int)(33 * MiB)), 0);
  }
  ck_assert_int_eq(mallopt(M_MMAP_THRESHOLD, (int)(4 * MiB)), 1);
  ck_assert_int_eq(mallopt(M_MXFAST, 64), 1);
  ck_assert_int_eq(mallopt(M_MXFAST, 161), 0);
  ck_assert_int_eq(mallopt(M_ARENA_MAX, 2), 1);
  ck_assert_int_eq(mallopt(M_ARENA_TEST, 2), 1);
  ck_assert_int_eq(mallopt(M_TOP_PAD, 128 * 1024), 1);
  ck_assert_int_eq(mallopt(M_MMAP_MAX, 65536), 1);
  ck_assert_int_eq(mallopt(M_TRIM_THRESHOLD, 128 * 1024), 1);
  ck_assert_int_eq(mallopt(M_PERTURB, 0), 1);
  /* An unknown parameter: glibc says 1, rsmalloc 0 (test_abi checks it). */
}

END_TEST

/* ------------------------------------------------------------------ */
/* M_PERTURB. */

static int all_bytes(
    const void* p, size_t from, size_t to, unsigned char c, size_t* bad) {
  const unsigned char* b = p;
  for (size_t i = from; i < to; i++) {
    if (b[i] != c) {
      *bad = i;
      return 0;
    }
  }
  return 1;
}

/* Sizes from every part of the heap: small classes, a large block from the
 * page heap, one with its own mapping. */
static const size_t kPerturbSizes[] = {
    16, 24, 48, 100, 1000, 4096, 40000, 256 * 1024, 300000, 5 * 1048576};

START_TEST(perturb_fills_new_and_freed_memory) {
  if (disabled() || rs_on_valgrind())
    return; /* glibc's own perturb skips its tcache; memcheck's rules */
  ck_assert_int_eq(mallopt(M_PERTURB, 0xa5), 1);
  size_t bad = 0;
  for (size_t k = 0; k < sizeof kPerturbSizes / sizeof *kPerturbSizes; k++) {
    size_t n = kPerturbSizes[k];
    /* Twice: the second block may be a reused one. */
    for (int round = 0; round < 2; round++) {
      unsigned char* p = malloc(n);
      ck_assert_ptr_nonnull(p);
      ck_assert_msg(all_bytes(p, 0, n, 0x5a, &bad),
                    "malloc(%zu): byte %zu is %#x, not 0x5a", n, bad, p[bad]);
      memset(p, 0x11, n);
      free(p);
    }
    unsigned char* z = calloc(1, n);
    ck_assert_ptr_nonnull(z);
    ck_assert_msg(all_bytes(z, 0, n, 0, &bad), "calloc(%zu): byte %zu is %#x",
                  n, bad, z[bad]);
    free(z);
  }
  /* A freed small block holds the byte (past the first 16 bytes, where a
   * free-list link may go). Each free leaves the block in a CPU cache or a
   * central list; no page of a small span goes back this soon. */
  for (size_t n = 32; n <= 8192; n *= 2) {
    unsigned char* p = malloc(n);
    ck_assert_ptr_nonnull(p);
    memset(p, 0x11, n);
    size_t usable = malloc_usable_size(p);
    free(p);
    ck_assert_msg(all_bytes(p, 16, usable, 0xa5, &bad),
                  "freed %zu-byte block: byte %zu is %#x, not 0xa5", n, bad,
                  p[bad]);
  }
  /* realloc that moves: the new part is filled, the old part copied. */
  unsigned char* r = malloc(16);
  ck_assert_ptr_nonnull(r);
  memset(r, 0x22, 16);
  r = realloc(r, 5000);
  ck_assert_ptr_nonnull(r);
  ck_assert(all_bytes(r, 0, 16, 0x22, &bad));
  ck_assert_msg(all_bytes(r, 16, 5000, 0x5a, &bad),
                "realloc tail: byte %zu is %#x", bad, r[bad]);
  free(r);
  /* aligned allocations too. */
  void* a = NULL;
  ck_assert_int_eq(posix_memalign(&a, 256, 700), 0);
  ck_assert(all_bytes(a, 0, 700, 0x5a, &bad));
  free(a);

  /* Off again: a block that was freed with 0xa5 comes back as it was. */
  ck_assert_int_eq(mallopt(M_PERTURB, 0), 1);
  unsigned char* p = malloc(200);
  ck_assert_ptr_nonnull(p);
  memset(p, 0x33, 200);
  free(p);
  unsigned char* q = malloc(200);
  ck_assert_ptr_nonnull(q);
  ck_assert_msg(all_bytes(q, 16, 200, 0x33, &bad),
                "M_PERTURB 0 still fills: byte %zu is %#x", bad, q[bad]);
  free(q);
}

END_TEST

/* Run by tests/glibc-compat.sh with MALLOC_PERTURB_ set (RS_EXPECT_FILL is
 * the fill byte expected in new memory, or "none"). */
START_TEST(malloc_perturb_env) {
  const char* expect = getenv("RS_EXPECT_FILL");
  if (expect == NULL || disabled() || rs_on_valgrind())
    return;
  size_t bad = 0;
  unsigned char* p = malloc(300);
  ck_assert_ptr_nonnull(p);
  if (strcmp(expect, "none") == 0) {
    /* A fresh span's memory reads as zero when nothing filled it, but for
     * the second word, where an allocation leaves the class tag (a filled
     * block has the fill there too: perturbation writes over it). */
    ck_assert_msg(all_bytes(p, 0, 8, 0, &bad) && all_bytes(p, 16, 300, 0, &bad),
                  "MALLOC_PERTURB_ should be ignored: byte %zu is %#x", bad,
                  p[bad]);
  } else {
    unsigned char fill = (unsigned char)strtoul(expect, NULL, 0);
    ck_assert_msg(all_bytes(p, 0, 300, fill, &bad),
                  "MALLOC_PERTURB_: byte %zu is %#x, not %#x", bad, p[bad],
                  fill);
  }
  free(p);
}

END_TEST

/* ------------------------------------------------------------------ */
/* malloc_stats and malloc_info. */

/* Runs fn with stderr (or the FILE it writes) captured into buf. */
static size_t capture_stderr(void (*fn)(void), char* buf, size_t len) {
  fflush(stderr);
  FILE* tmp = tmpfile();
  ck_assert_ptr_nonnull(tmp);
  int saved = dup(2);
  ck_assert_int_ge(saved, 0);
  ck_assert_int_ge(dup2(fileno(tmp), 2), 0);
  fn();
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  rewind(tmp);
  size_t n = fread(buf, 1, len - 1, tmp);
  buf[n] = '\0';
  fclose(tmp);
  return n;
}

/* The value on glibc's line "label = N", or -1. */
static long long stats_value(const char* text, const char* label) {
  const char* at = strstr(text, label);
  if (at == NULL)
    return -1;
  at += strlen(label);
  while (*at == ' ')
    at++;
  if (*at++ != '=')
    return -1;
  return strtoll(at, NULL, 10);
}

START_TEST(malloc_stats_has_glibc_lines) {
  static char text[65536];

  enum { N = 1000 };

  void* keep[N];
  for (int i = 0; i < N; i++)
    keep[i] = malloc(1000);
  void* big = malloc(80 * MiB); /* its own mapping on glibc and rsmalloc
                                     (above 32 and 64 MiB) */
  ck_assert_ptr_nonnull(big);
  capture_stderr(malloc_stats, text, sizeof text);
  static const char kStart[] = "Arena 0:\nsystem bytes     = ";
  ck_assert_msg(strncmp(text, kStart, sizeof kStart - 1) == 0,
                "malloc_stats starts: %.80s", text);
  const char* total = strstr(text, "Total (incl. mmap):\n");
  ck_assert_msg(total != NULL, "no 'Total (incl. mmap):' in %.300s", text);
  long long arena_system = stats_value(text, "system bytes");
  long long arena_in_use = stats_value(text, "in use bytes");
  long long system = stats_value(total, "system bytes");
  long long in_use = stats_value(total, "in use bytes");
  long long max_regions = stats_value(total, "max mmap regions");
  long long max_bytes = stats_value(total, "max mmap bytes");
  ck_assert_int_ge(arena_in_use, (long long)N * 1000);
  ck_assert_int_ge(arena_system, arena_in_use);
  ck_assert_int_ge(in_use, arena_in_use + (long long)(80 * MiB));
  ck_assert_int_ge(system, in_use);
  ck_assert_int_ge(max_regions, 1);
  ck_assert_int_ge(max_bytes, (long long)(80 * MiB));
  if (!disabled()) {
    /* Then rsmalloc's own section. */
    ck_assert_msg(strstr(total, "rsmalloc: statistics (cache mode ") != NULL,
                  "no rsmalloc section after glibc's lines");
  }
  /* in use goes down with the frees. */
  free(big);
  for (int i = 0; i < N; i++)
    free(keep[i]);
  capture_stderr(malloc_stats, text, sizeof text);
  total = strstr(text, "Total (incl. mmap):\n");
  ck_assert_ptr_nonnull(total);
  ck_assert_int_lt(stats_value(total, "in use bytes"),
                   in_use - (long long)(80 * MiB));
  ck_assert_int_ge(stats_value(total, "max mmap bytes"), (long long)(80 * MiB));
}

END_TEST

/* malloc_info with free objects in every size class: the whole document,
 * ending in </malloc>, with the sizes lines balanced. */
START_TEST(malloc_info_is_complete_with_every_class_free) {
  if (disabled())
    return;

  enum { SIZES = 64 };

  void* keep[SIZES * 3];
  int k = 0;
  /* Three objects of sizes spread over every class up to 256 KiB; one in
   * three is kept so each class has free objects in its span. */
  for (int i = 0; i < SIZES; i++) {
    size_t n = (size_t)16 << (i / 4);
    n += n / 4 * (size_t)(i % 4);
    if (n > 256 * 1024)
      n = 256 * 1024;
    for (int j = 0; j < 3; j++)
      keep[k++] = malloc(n);
  }
  for (int i = 0; i < k; i++) {
    if (i % 3 != 0) {
      free(keep[i]);
      keep[i] = NULL;
    }
  }
  char* buf = NULL;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(malloc_info(0, f), 0);
  ck_assert_int_eq(fclose(f), 0);
  ck_assert_uint_gt(len, 2048); /* more than the old fixed buffer */
  ck_assert_msg(strncmp(buf, "<malloc version=\"1\">\n", 21) == 0, "%.40s",
                buf);
  ck_assert_msg(len >= 10 && strcmp(buf + len - 10, "</malloc>\n") == 0,
                "malloc_info ends: %s", buf + (len > 60 ? len - 60 : 0));
  int sizes = 0;
  for (const char* s = buf; (s = strstr(s, "<size from=")) != NULL; s++)
    sizes++;
  ck_assert_int_ge(sizes, 30);
  ck_assert_ptr_nonnull(strstr(buf, "</sizes>\n"));
  ck_assert_ptr_nonnull(strstr(buf, "</heap>\n"));
  free(buf);
  for (int i = 0; i < k; i++)
    free(keep[i]);
}

END_TEST

static Suite* compat_suite(void) {
  Suite* s = suite_create("glibc_compat");
  TCase* tc = tcase_create("glibc_compat");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, errno_after_failures);
  tcase_add_test(tc, mallopt_answers_like_glibc);
  tcase_add_test(tc, perturb_fills_new_and_freed_memory);
  tcase_add_test(tc, malloc_perturb_env);
  tcase_add_test(tc, malloc_stats_has_glibc_lines);
  tcase_add_test(tc, malloc_info_is_complete_with_every_class_free);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return rs_check_run(compat_suite(), "test_glibc_compat");
}
