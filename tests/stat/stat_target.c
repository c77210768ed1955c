// SPDX-License-Identifier: MIT
// A process for `rsmalloc stat` and `rsmalloc top` to read (tests/stat/).
// Run with rsmalloc preloaded, or without it as a process that is not on
// rsmalloc. Not linked with the library: it finds rsmalloc_stats_json with
// dlsym. Signals readiness by creating DIR/ready, then waits to be killed.
//   stat_target idle DIR      nothing more
//   stat_target pattern DIR   a known pattern of blocks; DIR/before.json and
//                             DIR/after.json are the program's own statistics
//                             before and after it, DIR/pattern lists it
//   stat_target churn DIR N   N threads allocate and free without end
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/prctl.h>

typedef size_t (*StatsJson)(char*, size_t);

static char g_dir[512];

// Writes text to DIR/name with write(2): no stdio, which would allocate.
static void put_file(const char* name, const char* text, size_t len) {
  char path[600];
  snprintf(path, sizeof(path), "%s/%s", g_dir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || write(fd, text, len) != (ssize_t)len)
    _exit(3);
  close(fd);
}

static char g_json[1 << 16];

static void own_stats(StatsJson stats_json, const char* name) {
  size_t n = stats_json(g_json, sizeof(g_json));
  if (n >= sizeof(g_json))
    _exit(4);
  g_json[n] = '\n';
  put_file(name, g_json, n + 1);
}

// N blocks of each size; every k-th one freed. Sizes are exact class
// sizes; the large ones are multiples of 64 KiB, so no rounding hides.
static const struct {
  size_t size;     // bytes
  int count;       // allocated
  int free_every;  // every such block is freed again (0: none)
} kPattern[] = {
    {48, 1000, 4},  {1024, 200, 5},    {4096, 64, 2},
    {20480, 10, 3}, {512 << 10, 4, 4}, {80 << 20, 2, 2},
};

static void* g_blocks[2000];

static void pattern(StatsJson stats_json) {
  own_stats(stats_json, "before.json");
  char text[1024];
  size_t len = 0;
  int k = 0;
  for (size_t i = 0; i < sizeof(kPattern) / sizeof(kPattern[0]); i++) {
    // All of them first, then the frees: a freed mapping then stays in
    // the mapping cache instead of serving the next request.
    int first = k;
    for (int j = 0; j < kPattern[i].count; j++) {
      g_blocks[k] = malloc(kPattern[i].size);
      if (g_blocks[k] == NULL)
        _exit(5);
      // Touch the block, but no more of it than was asked for: the 48-byte
      // blocks are smaller than 64 bytes, and writing past them would
      // overflow into the neighbour (strict mode's canaries would say so).
      size_t touch = kPattern[i].size < 64 ? kPattern[i].size : 64;
      memset(g_blocks[k++], 1, touch);
    }
    int live = kPattern[i].count;
    for (int j = 0; kPattern[i].free_every != 0 && j < kPattern[i].count;
         j += kPattern[i].free_every) {
      free(g_blocks[first + j]);
      live--;
    }
    len += (size_t)snprintf(text + len, sizeof(text) - len, "%zu %d\n",
                            kPattern[i].size, live);
  }
  own_stats(stats_json, "after.json");
  put_file("pattern", text, len);
}

static volatile int g_stop;

static void* churn(void* arg) {
  uint64_t x = (uintptr_t)arg * 0x9e3779b97f4a7c15u + 1;
  void* slots[64] = {0};
  static const size_t kSizes[] = {16, 48, 100, 256, 1000, 3000, 20000, 300000};
  while (!g_stop) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    size_t i = x % 64;
    free(slots[i]);
    size_t size = kSizes[(x >> 8) % 8];
    if ((x >> 20) % 512 == 0)
      size = 5 << 20;  // now and then a big block from the page heap
    slots[i] = malloc(size);
    if (slots[i] != NULL)
      memset(slots[i], 2, 16);
  }
  for (size_t i = 0; i < 64; i++)
    free(slots[i]);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: stat_target idle|pattern|churn DIR [N]\n");
    return 2;
  }
  snprintf(g_dir, sizeof(g_dir), "%s", argv[2]);
  // Under Yama's ptrace_scope 1 only ancestors may read a process; the
  // tool that reads this one is a sibling. (No Yama: fails, harmlessly.)
  prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
  StatsJson stats_json =
      (StatsJson)(uintptr_t)dlsym(RTLD_DEFAULT, "rsmalloc_stats_json");
  if (strcmp(argv[1], "pattern") == 0) {
    if (stats_json == NULL) {
      fprintf(stderr, "stat_target: not on rsmalloc\n");
      return 2;
    }
    pattern(stats_json);
  } else if (strcmp(argv[1], "churn") == 0) {
    int n = argc > 3 ? atoi(argv[3]) : 4;
    for (int i = 0; i < n && i < 64; i++) {
      pthread_t t;
      if (pthread_create(&t, NULL, churn, (void*)(uintptr_t)(i + 1)) != 0)
        return 3;
    }
  } else if (strcmp(argv[1], "idle") != 0) {
    return 2;
  }
  put_file("ready", "", 0);
  for (;;)
    pause();
}
