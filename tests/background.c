/* SPDX-License-Identifier: MIT */
/* Run by tests/background.sh: allocates and touches TOTAL_MIB MiB of
 * SIZE-byte objects, frees them all, then makes no allocator call while it
 * watches its resident size (/proc/self/statm) for WAIT_MS. Prints
 * "key value" lines: the thread count, the peak and the RSS right after
 * the frees, the lowest RSS seen, when RSS first fell under a tenth of the
 * peak (-1: never) and the RSS at the end. The shell test judges them. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/mman.h>

/* Reads a small /proc file into buf with raw calls (no allocation). */
static size_t read_file(const char* path, char* buf, size_t len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  ssize_t n = read(fd, buf, len - 1);
  close(fd);
  buf[n > 0 ? n : 0] = '\0';
  return n > 0 ? (size_t)n : 0;
}

static uint64_t rss_bytes(void) {
  char buf[256];
  if (read_file("/proc/self/statm", buf, sizeof buf) == 0)
    return 0;
  unsigned long long size = 0, resident = 0;
  if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
    return 0;
  return resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static int threads(void) {
  char buf[4096];
  read_file("/proc/self/status", buf, sizeof buf);
  const char* t = strstr(buf, "\nThreads:");
  return t != NULL ? atoi(t + 9) : -1;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    fprintf(stderr, "usage: background TOTAL_MIB SIZE WAIT_MS [KEEP]\n");
    return 2;
  }
  size_t keep = argc == 5 ? (size_t)strtoull(argv[4], NULL, 10) : 0;
  size_t total = (size_t)strtoull(argv[1], NULL, 10) << 20;
  size_t size = (size_t)strtoull(argv[2], NULL, 10);
  uint64_t wait_ms = strtoull(argv[3], NULL, 10);
  size_t count = total / size;
  /* stdio must not allocate its buffer after the frees. */
  static char out[4096];
  setvbuf(stdout, out, _IOFBF, sizeof out);
  /* The pointer array stays out of the allocator. */
  void** objs = mmap(NULL, count * sizeof(void*), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (objs == MAP_FAILED) {
    perror("mmap");
    return 2;
  }
  uint64_t t0 = now_ms();
  for (size_t i = 0; i < count; i++) {
    objs[i] = malloc(size);
    if (objs[i] == NULL) {
      fprintf(stderr, "malloc #%zu failed\n", i);
      return 2;
    }
    memset(objs[i], (int)(i & 0xff) | 1, size);
  }
  uint64_t peak = rss_bytes();
  uint64_t t1 = now_ms();
  for (size_t i = 0; i < count; i++) {
    if (keep == 0 || i % keep != 0)
      free(objs[i]);
  }
  munmap(objs, count * sizeof(void*));
  uint64_t freed_at = now_ms();
  uint64_t after_free = rss_bytes();
  int nthreads = threads();

  /* No allocator call from here on: poll, sleep, poll. */
  uint64_t lowest = after_free;
  long long under_ms = after_free * 10 < peak ? 0 : -1;
  uint64_t rss = after_free;
  for (;;) {
    uint64_t t = now_ms() - freed_at;
    rss = rss_bytes();
    if (rss < lowest)
      lowest = rss;
    if (under_ms < 0 && rss * 10 < peak)
      under_ms = (long long)t;
    if (t >= wait_ms)
      break;
    struct timespec ts = {0, 20 * 1000000};
    nanosleep(&ts, NULL);
  }
  printf("threads %d\nalloc_ms %llu\nfree_ms %llu\n", nthreads,
         (unsigned long long)(t1 - t0), (unsigned long long)(freed_at - t1));
  printf(
      "peak %llu\nafter_free %llu\nlowest %llu\nunder_tenth_ms %lld\n"
      "end %llu\n",
      (unsigned long long)peak, (unsigned long long)after_free,
      (unsigned long long)lowest, under_ms, (unsigned long long)rss);
  return 0;
}
