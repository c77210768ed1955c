/* SPDX-License-Identifier: MIT */
/* Heap misuse that rsmalloc stops by default (issue 12), one case per
 * misuse: each runs in a forked child that must die of SIGABRT after one
 * line from rsmalloc naming the call, the address and the block size, and
 * the same child without the misuse must exit normally. Double frees are
 * tried in every size class, right after the first free (the block is in
 * a CPU cache) and after malloc_trim (it is back in its span), and on
 * blocks drained to a transfer cache. A use-after-free write of an
 * attacker's address over freed blocks must never make
 * malloc return that address. A threaded random test mixes correct calls
 * with one misuse of a random kind at a random time. The program runs its
 * suite in the default mode, then again re-executed with RSMALLOC_RSEQ=0.
 * Under valgrind memcheck reports these instead (rsmalloc(7)); with
 * RSMALLOC_DISABLE=1 glibc's checks apply: the misuse halves are skipped
 * there. */
#define _GNU_SOURCE
#include <check.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/wait.h>

#include "check_main.h"
#include "misuse.h"
#include "on_valgrind.h"
#include "rsmalloc.h"

/* rsmalloc exports these; glibc 2.36's headers do not declare them. */
void free_sized(void* p, size_t size);
void cfree(void* p);
/* operator delete(void*, size_t): size_t mangles as m, or j when 32-bit. */
#if SIZE_MAX > 0xffffffffu
#  define RS_SIZED_DELETE "_ZdlPvm"
#else
#  define RS_SIZED_DELETE "_ZdlPvj"
#endif
void sized_delete(void* p, size_t size) __asm__(RS_SIZED_DELETE);
void _ZdaPv(void* p); /* operator delete[](void*) */

static volatile size_t g_opaque_one = 1;

/* n, hidden from the compiler. */
static size_t opaque(size_t n) {
  return n * g_opaque_one;
}

static int misuse_checked(void) {
  if (strcmp(rsmalloc_cache_mode(), "disabled") == 0)
    return 0;
  return !rs_on_valgrind();
}

/* In a child: tells the parent (through stderr, with write(2): no
 * allocation) which address the misuse will name. */
static void announce(const void* p) {
  char line[64];
  int n = snprintf(line, sizeof line, "address %p\n", p);
  if (write(2, line, (size_t)n) != n)
    _exit(3);
}

/* The child's output: "address 0x...\n", then rsmalloc's line. Requires
 * that line to read "rsmalloc: <call>(): <problem> <address> (<size>-byte
 * block)" (size 0: not checked) or, for invalid pointers, "rsmalloc:
 * <call>: invalid pointer <address>". */
static void expect_report(misuse_fn fn,
                          const char* call,
                          const char* problem,
                          size_t size) {
  static char out[4096];
  int status = run_child(fn, 0, out, sizeof out);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "%s without the misuse: status %#x, stderr: %s", call, status,
                out);
  if (!misuse_checked())
    return;
  status = run_child(fn, 1, out, sizeof out);
  ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
                "%s: status %#x, not SIGABRT; stderr: %s", call, status, out);
  char addr[32] = "";
  ck_assert_msg(sscanf(out, "address %31s", addr) == 1, "no address in %s",
                out);
  const char* report = strchr(out, '\n');
  ck_assert_ptr_nonnull(report);
  report++;
  char want[256];
  if (problem == NULL) {
    snprintf(want, sizeof want, "rsmalloc: %s: invalid pointer %s ", call,
             addr);
  } else if (size != 0) {
    snprintf(want, sizeof want, "rsmalloc: %s(): %s %s (%zu-byte block)\n",
             call, problem, addr, size);
  } else {
    snprintf(want, sizeof want, "rsmalloc: %s(): %s %s (", call, problem, addr);
  }
  ck_assert_msg(strncmp(report, want, strlen(want)) == 0,
                "%s: stderr is \"%s\", want \"%s...\"", call, report, want);
  ck_assert_msg(
      strchr(report, '\n') == report + strlen(report) - 1 || problem == NULL,
      "%s: more than one line: %s", call, report);
}

/* ------------------------------------------------------------------ */
/* Double frees. */

static size_t g_size; /* the block size a child works on */
static int g_trim;    /* trim between the two frees */

static void double_free_once_more(int misuse) {
  char* p = malloc(opaque(g_size));
  /* A neighbour keeps the span in use when the trim empties the caches:
   * the block is then on its span's free list. */
  char* neighbour = malloc(opaque(g_size));
  if (p == NULL || neighbour == NULL)
    _exit(2);
  memset(p, 0x41, g_size);
  announce(p);
  free(p);
  if (g_trim)
    malloc_trim(0);
  if (misuse)
    free(p);
  /* Never reached with the misuse: had it been let through, these two
   * would be the same block. */
  char* a = malloc(opaque(g_size));
  char* b = malloc(opaque(g_size));
  if (a == b)
    _exit(4);
  free(a);
  free(b);
  free(neighbour);
}

/* The size class sizes, read from malloc_usable_size. */
static size_t class_sizes(size_t* out, size_t max) {
  size_t n = 0;
  for (size_t want = 16; want <= 256 * 1024 && n < max;) {
    void* p = malloc(opaque(want));
    size_t usable = malloc_usable_size(p);
    free(p);
    out[n++] = usable;
    want = usable + 1;
  }
  return n;
}

START_TEST(double_free_every_class_from_a_cpu_cache) {
  size_t sizes[128];
  size_t n = class_sizes(sizes, 128);
  ck_assert_uint_ge(n, 30);
  g_trim = 0;
  for (size_t i = 0; i < n; i++) {
    g_size = sizes[i];
    /* Above 1/64 of the CPU cache's budget (32 KiB), a class gets no room
     * in a cache whose budget class_sizes() spent: the block goes back to
     * its span, and the span (of one or two blocks) to the page heap,
     * which remembers the spans it got back lately: the size is named. */
    expect_report(double_free_once_more, "free", "double free of", sizes[i]);
  }
}

END_TEST

START_TEST(double_free_every_class_after_trim) {
  size_t sizes[128];
  size_t n = class_sizes(sizes, 128);
  g_trim = 1;
  for (size_t i = 0; i < n; i++) {
    g_size = sizes[i];
    /* The block's size is named also when the trim gave its span back
     * (the largest classes have one or two blocks in a span). */
    expect_report(double_free_once_more, "free", "double free of", sizes[i]);
  }
}

END_TEST

START_TEST(double_free_of_large_blocks) {
  /* From the page heap (300 KB, 4 MB) and a mapping of its own (40 MiB):
   * the first free gives the pages back (or the mapping to the mapping
   * cache), and the report still names the block's size. */
  static const size_t sizes[] = {300000, 4000000, 40u << 20};
  g_trim = 0;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    void* p = malloc(opaque(sizes[i]));
    ck_assert_ptr_nonnull(p);
    size_t usable = malloc_usable_size(p);
    free(p);
    g_size = sizes[i];
    expect_report(double_free_once_more, "free", "double free of", usable);
  }
}

END_TEST

static void double_free_between(int misuse) {
  void* p = malloc(opaque(48));
  void* q = malloc(opaque(48));
  void* r = malloc(opaque(100));
  announce(p);
  free(p);
  free(q);
  free(r);
  if (misuse)
    free(p);
}

START_TEST(double_free_with_frees_between) {
  expect_report(double_free_between, "free", "double free of", 48);
}

END_TEST

/* Fills the CPU cache so the second free meets a full cache. */
static void double_free_many(int misuse) {
  enum { N = 3000 };

  static void* keep[N];
  for (int i = 0; i < N; i++)
    keep[i] = malloc(opaque(64));
  announce(keep[N / 2]);
  for (int i = 0; i < N; i++) {
    if (i % 64 != 1) /* one in 64 stays: its span stays in use */
      free(keep[i]);
  }
  if (misuse)
    free(keep[N / 2]);
}

START_TEST(double_free_after_many_frees) {
  expect_report(double_free_many, "free", "double free of", 64);
}

END_TEST

/* 64-byte blocks freed in a row by the test before the children start:
 * once the CPU cache is full, each further batch drains whole into the
 * class's transfer cache, where a second free must be seen as well. */
enum { kDrained = 2000 };

static void* g_drained[kDrained];
static size_t g_victim;

static void double_free_drained(int misuse) {
  void* p = g_drained[g_victim];
  announce(p);
  if (misuse)
    free(p);
}

START_TEST(double_free_from_a_transfer_cache) {
  for (size_t i = 0; i < kDrained; i++)
    g_drained[i] = malloc(opaque(64));
  for (size_t i = 0; i < kDrained; i++)
    free(g_drained[i]);
  for (g_victim = kDrained - 400; g_victim < kDrained - 40; g_victim += 9)
    expect_report(double_free_drained, "free", "double free of", 64);
}

END_TEST

static void double_cfree(int misuse) {
  void* p = malloc(opaque(200));
  announce(p);
  cfree(p);
  if (misuse)
    cfree(p);
}

static void double_delete(int misuse) {
  void* p = malloc(opaque(32));
  announce(p);
  _ZdaPv(p);
  if (misuse)
    sized_delete(p, 32);
}

static void double_free_sized(int misuse) {
  void* p = malloc(opaque(80));
  announce(p);
  free_sized(p, 80);
  if (misuse)
    free_sized(p, 80);
}

START_TEST(double_free_through_every_free) {
  expect_report(double_cfree, "cfree", "double free of", 208);
  expect_report(double_delete, "operator delete", "double free of", 32);
  expect_report(double_free_sized, "free_sized", "double free of", 80);
}

END_TEST

static void realloc_freed(int misuse) {
  void* p = malloc(opaque(48));
  announce(p);
  free(p);
  if (misuse) {
    void* q = realloc(p, opaque(40));
    free(q);
  }
}

START_TEST(realloc_of_a_freed_block) {
  expect_report(realloc_freed, "realloc", "freed block", 48);
}

END_TEST

/* ------------------------------------------------------------------ */
/* Invalid frees: interior pointers, wrong sizes. */

static size_t g_offset;
/* When set, the interior pointer's second word gets g_word first. */
static int g_write_word;
static uintptr_t g_word;

static void interior_free(int misuse) {
  char* p = malloc(opaque(g_size));
  if (g_write_word)
    ((uintptr_t*)(p + g_offset))[1] = g_word;
  announce(p + g_offset);
  if (misuse)
    free(p + g_offset);
  free(p);
}

START_TEST(interior_free_every_class) {
  size_t sizes[128];
  size_t n = class_sizes(sizes, 128);
  for (size_t i = 1; i < n; i++) { /* 16 bytes: p + 16 is the next block */
    g_size = sizes[i];
    g_offset = 16;
    expect_report(interior_free, "free", NULL, 0);
    g_offset = sizes[i] / 2 & ~(size_t)15;
    if (g_offset > 16)
      expect_report(interior_free, "free", NULL, 0);
  }
  /* A 300 KB block and a 40 MiB one (its own mapping), deep inside. */
  g_size = 300000;
  g_offset = 123 * 1024;
  expect_report(interior_free, "free", NULL, 0);
  g_size = 40u << 20;
  g_offset = 17u << 20;
  expect_report(interior_free, "free", NULL, 0);
}

END_TEST

/* An interior pointer whose second word holds a bare class number: free
 * pushes by the class tag only when the word is the block's tag (the free
 * mark xor the class), never by a number a program may keep there. */
START_TEST(interior_free_with_a_class_number) {
  size_t sizes[128];
  size_t classes = class_sizes(sizes, 128);
  static const size_t kSizes[] = {48, 96, 1024};
  for (size_t i = 0; i < sizeof kSizes / sizeof kSizes[0]; i++) {
    g_size = kSizes[i];
    g_offset = 16;
    g_write_word = 1;
    for (g_word = 0; g_word <= classes + 1; g_word++)
      expect_report(interior_free, "free", NULL, 0);
    g_write_word = 0;
  }
}

END_TEST

static void interior_realloc(int misuse) {
  char* p = malloc(opaque(g_size));
  announce(p + 16);
  if (misuse) {
    char* q = realloc(p + 16, opaque(g_size / 2 + 1));
    free(q);
  }
  free(p);
}

static void interior_usable_size(int misuse) {
  char* p = malloc(opaque(g_size));
  announce(p + 32);
  if (misuse && malloc_usable_size(p + 32) == 0)
    _exit(5);
  free(p);
}

START_TEST(interior_realloc_and_usable_size) {
  g_size = 100;
  expect_report(interior_realloc, "realloc", NULL, 0);
  expect_report(interior_usable_size, "malloc_usable_size", NULL, 0);
  g_size = 40u << 20;
  expect_report(interior_realloc, "realloc", NULL, 0);
}

END_TEST

/* A free of the last slot of a span that malloc has not carved that far
 * (one refill carves 32 objects of 208 bytes; a span holds 39). */
static void uncarved_free(int misuse) {
  char* p = malloc(opaque(200)); /* the 208-byte class */
  uintptr_t span = (uintptr_t)p & ~(uintptr_t)8191;
  char* last = (char*)(span + 38 * 208);
  if (misuse && last != p)
    free(last);
  free(p);
}

START_TEST(free_of_a_slot_never_handed_out) {
  /* The slot may have been carved by earlier activity in this process:
   * then it is free in a cache and this is a double free. Either way
   * rsmalloc must stop it. */
  expect_abort(uncarved_free, "free");
}

END_TEST

/* A free of the room after a span's last slot (the 208-byte class: 39
 * slots in 8 KiB, 80 bytes after them, at a multiple of 208) once the
 * span is carved whole: free's fast check is on for that page, and only
 * the mark carving writes there sends the free to the slow check. */
static void tail_free(int misuse) {
  enum { N = 100 };

  static char* p[N];
  for (int i = 0; i < N; i++) { /* 61 carved after p[0]: its span is full */
    p[i] = malloc(opaque(200));
    if (p[i] == NULL)
      _exit(2);
  }
  uintptr_t span = (uintptr_t)p[0] & ~(uintptr_t)8191;
  char* tail = (char*)(span + 39 * 208);
  if (misuse)
    free(tail);
  for (int i = 0; i < N; i++)
    free(p[i]);
}

START_TEST(free_of_a_span_tail) {
  expect_abort(tail_free, "free");
}

END_TEST

static void wrong_size_free(int misuse) {
  void* p = malloc(opaque(48));
  announce(p);
  free_sized(p, misuse ? 1000 : 48);
}

static void wrong_size_delete(int misuse) {
  void* p = malloc(opaque(100));
  announce(p);
  sized_delete(p, misuse ? 5000 : 100);
}

static void wrong_size_large(int misuse) {
  void* p = malloc(opaque(300000));
  announce(p);
  free_sized(p, misuse ? 400000 : 300000);
}

/* Correct sized frees of every class, of blocks from malloc and from
 * calloc (which carves one object at a time, so many sit in pages whose
 * frees take the slow path), then one wrong size. */
static void sized_frees_every_class(int misuse) {
  enum { PER = 8 };

  static void* p[2 * PER];
  for (size_t want = 16; want <= 256 * 1024;) {
    void* probe = malloc(opaque(want));
    size_t n = malloc_usable_size(probe);
    free(probe);
    for (int i = 0; i < PER; i++) {
      p[2 * i] = malloc(opaque(n));
      p[2 * i + 1] = calloc(1, opaque(n));
      if (p[2 * i] == NULL || p[2 * i + 1] == NULL)
        _exit(2);
    }
    for (int i = 0; i < 2 * PER; i++)
      free_sized(p[i], n);
    want = n + 1;
  }
  void* q = malloc(opaque(5000));
  announce(q);
  free_sized(q, misuse ? 9000 : 5000);
}

START_TEST(sized_free_with_a_wrong_size) {
  size_t usable;
  {
    void* probe = malloc(opaque(5000));
    usable = malloc_usable_size(probe);
    free(probe);
  }
  expect_report(sized_frees_every_class, "free_sized", "size 9000 given for",
                usable);
  expect_report(wrong_size_free, "free_sized", "size 1000 given for", 48);
  expect_report(wrong_size_delete, "operator delete", "size 5000 given for",
                112);
  expect_report(wrong_size_large, "free_sized", "size 400000 given for", 0);
}

END_TEST

/* ------------------------------------------------------------------ */
/* A use-after-free write over freed blocks cannot steer malloc. */

static char g_target[4096];

static void poison_freed(int misuse) {
  enum { N = 2000 };

  static void* p[N];
  for (int i = 0; i < N; i++)
    p[i] = malloc(opaque(48));
  announce(p[0]);
  for (int i = 0; i < N; i++)
    free(p[i]);
  if (misuse >= 0) {
    /* Some went back to their spans (the caches hold only so many): the
     * links there are the first words. Overwrite every word of every
     * freed block with the target's address. */
    for (int i = 0; i < N; i++) {
      uintptr_t* w = p[i];
      for (int k = 0; k < 6; k++)
        w[k] = (uintptr_t)g_target;
    }
  }
  for (int i = 0; i < 2 * N; i++) {
    char* q = malloc(opaque(48));
    if (q == NULL || (q >= g_target && q < g_target + sizeof g_target) ||
        !rsmalloc_owns(q))
      _exit(6);
  }
  _exit(0);
}

START_TEST(freed_blocks_overwritten_cannot_steer_malloc) {
  if (!misuse_checked())
    return;
  static char out[4096];
  int status = run_child(poison_freed, 1, out, sizeof out);
  /* Either every malloc stayed inside rsmalloc's spans, or rsmalloc saw
   * the corrupted link and stopped the program. */
  if (WIFEXITED(status)) {
    ck_assert_msg(WEXITSTATUS(status) == 0,
                  "malloc returned the attacker's address (exit %d): %s",
                  WEXITSTATUS(status), out);
  } else {
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT &&
                      strstr(out, "rsmalloc: ") != NULL,
                  "status %#x: %s", status, out);
  }
}

END_TEST

/* ------------------------------------------------------------------ */
/* Random interleavings: several threads allocate and free correctly; at a
 * random moment one of them commits one misuse. */

enum { KIND_DOUBLE, KIND_INTERIOR, KIND_SIZED, KIND_REALLOC, KINDS };

enum { MISUSE_SIZE = 3000 }; /* the other operations stay below 2016 */

static const char* const kKindCall[KINDS] = {"free", "free", "free_sized",
                                             "realloc"};

typedef struct {
  uint64_t seed;
  int misuse_kind; /* -1: none */
  int misuse_at;   /* operation index of the misuse */
} fuzz_arg;

static uint64_t next_rand(uint64_t* s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static void* fuzz_thread(void* arg) {
  fuzz_arg* a = arg;

  enum { SLOTS = 512, OPS = 20000 };

  void* slot[SLOTS] = {0};
  size_t size[SLOTS] = {0};
  uint64_t s = a->seed;
  for (int op = 0; op < OPS; op++) {
    size_t i = next_rand(&s) % SLOTS;
    if (op == a->misuse_at && a->misuse_kind >= 0) {
      /* A size no other thread uses, so no other thread can take the
       * block between the two halves of a misuse. */
      char* p = malloc(opaque(MISUSE_SIZE));
      switch (a->misuse_kind) {
        case KIND_DOUBLE:
          free(p);
          announce(p);
          free(p);
          break;
        case KIND_INTERIOR:
          announce(p + 16);
          free(p + 16);
          break;
        case KIND_SIZED:
          announce(p);
          free_sized(p, MISUSE_SIZE + 4096);
          break;
        default:
          free(p);
          announce(p);
          p = realloc(p, 1);
          break;
      }
      _exit(7); /* the misuse was let through */
    }
    if (slot[i] != NULL) {
      if (((unsigned char*)slot[i])[0] != (unsigned char)size[i])
        _exit(8); /* another thread wrote into this block */
      if (next_rand(&s) % 4 == 0)
        free_sized(slot[i], size[i]);
      else
        free(slot[i]);
      slot[i] = NULL;
    } else {
      size[i] = 16 + next_rand(&s) % 2000;
      slot[i] = malloc(size[i]);
      if (slot[i] == NULL)
        _exit(9);
      memset(slot[i], (unsigned char)size[i], size[i]);
    }
  }
  for (size_t i = 0; i < SLOTS; i++)
    free(slot[i]);
  return NULL;
}

static int g_fuzz_kind;
static uint64_t g_fuzz_seed;

static void fuzz_child(int misuse) {
  enum { THREADS = 4 };

  fuzz_arg args[THREADS];
  pthread_t t[THREADS];
  for (int k = 0; k < THREADS; k++) {
    args[k].seed = g_fuzz_seed * 7919 + (uint64_t)k + 1;
    args[k].misuse_kind = misuse && k == 1 ? g_fuzz_kind : -1;
    args[k].misuse_at = (int)(g_fuzz_seed % 15000) + 1000;
  }
  for (int k = 0; k < THREADS; k++)
    pthread_create(&t[k], NULL, fuzz_thread, &args[k]);
  for (int k = 0; k < THREADS; k++)
    pthread_join(t[k], NULL);
}

START_TEST(random_misuse_among_threads) {
  int runs = rs_on_valgrind() ? 2 : 16;
  void* probe = malloc(opaque(MISUSE_SIZE));
  size_t block = malloc_usable_size(probe);
  free(probe);
  char sized[64];
  snprintf(sized, sizeof sized, "size %d given for", MISUSE_SIZE + 4096);
  for (int r = 0; r < runs; r++) {
    g_fuzz_seed = 0x9e3779b97f4a7c15u * (uint64_t)(r + 1);
    g_fuzz_kind = r % KINDS;
    const char* problem = g_fuzz_kind == KIND_DOUBLE    ? "double free of"
                          : g_fuzz_kind == KIND_SIZED   ? sized
                          : g_fuzz_kind == KIND_REALLOC ? "freed block"
                                                        : NULL;
    expect_report(fuzz_child, kKindCall[g_fuzz_kind], problem,
                  problem != NULL ? block : 0);
  }
}

END_TEST

static Suite* hardening_suite(void) {
  Suite* s = suite_create("hardening");
  TCase* tc = tcase_create("hardening");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, double_free_every_class_from_a_cpu_cache);
  tcase_add_test(tc, double_free_every_class_after_trim);
  tcase_add_test(tc, double_free_of_large_blocks);
  tcase_add_test(tc, double_free_with_frees_between);
  tcase_add_test(tc, double_free_after_many_frees);
  tcase_add_test(tc, double_free_from_a_transfer_cache);
  tcase_add_test(tc, double_free_through_every_free);
  tcase_add_test(tc, realloc_of_a_freed_block);
  tcase_add_test(tc, interior_free_every_class);
  tcase_add_test(tc, interior_free_with_a_class_number);
  tcase_add_test(tc, interior_realloc_and_usable_size);
  tcase_add_test(tc, sized_free_with_a_wrong_size);
  tcase_add_test(tc, free_of_a_slot_never_handed_out);
  tcase_add_test(tc, free_of_a_span_tail);
  tcase_add_test(tc, freed_blocks_overwritten_cannot_steer_malloc);
  tcase_add_test(tc, random_misuse_among_threads);
  suite_add_tcase(s, tc);
  return s;
}

int main(int argc, char** argv) {
  (void)argc;
  if (rs_on_valgrind()) /* valgrind has no rseq: one run is both modes */
    return rs_check_run(hardening_suite(), "test_hardening");
  return rs_check_run_both_modes(hardening_suite(), "test_hardening", argv);
}
