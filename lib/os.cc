// SPDX-License-Identifier: MIT
// Base layer: raw Linux system calls (x86-64 inline asm, syscall(2) on
// other architectures, where errno is saved and restored).
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/futex.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

namespace rs::os {
namespace {

#if defined(__x86_64__)
long sys(long n,
         long a = 0,
         long b = 0,
         long c = 0,
         long d = 0,
         long e = 0,
         long f = 0) {
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#else
long sys(long n,
         long a = 0,
         long b = 0,
         long c = 0,
         long d = 0,
         long e = 0,
         long f = 0) {
  int saved = errno;
  long ret = syscall(n, a, b, c, d, e, f);
  if (ret == -1)
    ret = -errno;
  errno = saved;
  return ret;
}
#endif

bool failed(long ret) {
  return ret < 0 && ret > -4096;
}

long L(const void* p) {
  return static_cast<long>(addr(p));
}

}  // namespace

namespace {

// 1: the kernel marks MAP_STACK mappings VM_NOHUGEPAGE (6.7 and later);
// 2: it does not; 0: not asked yet.
int g_stack_refuses_huge = 0;

bool stack_refuses_huge() {
  int known = __atomic_load_n(&g_stack_refuses_huge, __ATOMIC_RELAXED);
  if (known == 0) {
    struct utsname u;
    long major = 0, minor = 0;
    if (!failed(sys(SYS_uname, L(&u)))) {
      const char* s = u.release;
      for (; *s >= '0' && *s <= '9'; s++)
        major = major * 10 + (*s - '0');
      if (*s == '.') {
        for (s++; *s >= '0' && *s <= '9'; s++)
          minor = minor * 10 + (*s - '0');
      }
    }
    known = major > 6 || (major == 6 && minor >= 7) ? 1 : 2;
    __atomic_store_n(&g_stack_refuses_huge, known, __ATOMIC_RELAXED);
  }
  return known == 1;
}

}  // namespace

namespace {

void* map_with(size_t size, bool no_huge, int prot) {
  // MAP_STACK: since Linux 6.7 it marks the mapping VM_NOHUGEPAGE (and
  // nothing else), at no cost; before, it does nothing, and the mapping
  // gets MADV_NOHUGEPAGE instead (a system call).
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
  if (no_huge)
    flags |= MAP_STACK;
#if defined(__x86_64__)
  long ret = sys(SYS_mmap, 0, static_cast<long>(size), prot, flags, -1, 0);
  void* p = failed(ret) ? nullptr : ptr_at<void>(static_cast<uintptr_t>(ret));
#else
  // Not SYS_mmap: on i386 and s390x it is old_mmap, which takes a pointer
  // to its arguments, and 32-bit ARM has only mmap2. glibc's mmap picks
  // the right call and does not allocate; errno is kept as sys() keeps it.
  int saved = errno;
  void* p = ::mmap(nullptr, size, prot, flags, -1, 0);
  errno = saved;
  if (p == MAP_FAILED)
    p = nullptr;
#endif
  if (p != nullptr && no_huge && !stack_refuses_huge())
    advise_hugepage(p, size, false);
  return p;
}

}  // namespace

void* map(size_t size, bool no_huge) {
  return map_with(size, no_huge, PROT_READ | PROT_WRITE);
}

void* reserve(size_t size, bool no_huge) {
  return map_with(size, no_huge, PROT_READ);
}

namespace {

// Whether a mapping of a multiple of `align` bytes came aligned last time
// (Linux 6.7 and later align anonymous mappings of whole huge pages): then
// one mmap does, without the munmap of an over-sized mapping's ends.
bool g_exact_maps_align = true;

void* map_aligned_with(size_t size, size_t align, bool no_huge, int prot) {
  if (size + align < size)
    return nullptr;
  if (align > kPageSize && size % align == 0 &&
      __atomic_load_n(&g_exact_maps_align, __ATOMIC_RELAXED)) {
    void* p = map_with(size, no_huge, prot);
    if (p == nullptr || (addr(p) & (align - 1)) == 0)
      return p;
    unmap(p, size);
    __atomic_store_n(&g_exact_maps_align, false, __ATOMIC_RELAXED);
  }
  char* raw = static_cast<char*>(map_with(size + align, no_huge, prot));
  if (raw == nullptr)
    return nullptr;
  uintptr_t start = align_up(addr(raw), align);
  size_t head = start - addr(raw);
  size_t tail = align - head;
  if (head != 0)
    unmap(raw, head);
  if (tail != 0)
    unmap(ptr_at<void>(start + size), tail);
  return ptr_at<void>(start);
}

}  // namespace

void* map_aligned(size_t size, size_t align, bool no_huge) {
  return map_aligned_with(size, align, no_huge, PROT_READ | PROT_WRITE);
}

void* reserve_aligned(size_t size, size_t align, bool no_huge) {
  return map_aligned_with(size, align, no_huge, PROT_READ);
}

void unmap(void* p, size_t size) {
  sys(SYS_munmap, L(p), static_cast<long>(size));
}

bool remap_in_place(void* p, size_t old_size, size_t new_size) {
  return !failed(sys(SYS_mremap, L(p), static_cast<long>(old_size),
                     static_cast<long>(new_size), 0, 0));
}

bool remap_to(void* p, size_t old_size, size_t new_size, void* target) {
  return !failed(sys(SYS_mremap, L(p), static_cast<long>(old_size),
                     static_cast<long>(new_size), MREMAP_MAYMOVE | MREMAP_FIXED,
                     L(target)));
}

bool release(void* p, size_t size) {
  return !failed(
      sys(SYS_madvise, L(p), static_cast<long>(size), MADV_DONTNEED));
}

bool protect(void* p, size_t size, bool access) {
  return !failed(sys(SYS_mprotect, L(p), static_cast<long>(size),
                     access ? PROT_READ | PROT_WRITE : PROT_NONE));
}

void advise_hugepage(void* p, size_t size, bool want) {
  sys(SYS_madvise, L(p), static_cast<long>(size),
      want ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
}

long futex_wait(int* word, int expected) {
  return sys(SYS_futex, L(word), FUTEX_WAIT_PRIVATE, expected, 0);
}

long futex_wake(int* word, int count) {
  return sys(SYS_futex, L(word), FUTEX_WAKE_PRIVATE, count);
}

long membarrier(int cmd) {
  return sys(SYS_membarrier, cmd, 0, 0);
}

void write_all(int fd, const char* buf, size_t len) {
  while (len > 0) {
    long n = sys(SYS_write, fd, L(buf), static_cast<long>(len));
    if (n == -EINTR)
      continue;
    if (n <= 0)
      return;
    buf += n;
    len -= static_cast<size_t>(n);
  }
}

int open_read(const char* path) {
  long ret;
  do {
    ret = sys(SYS_openat, AT_FDCWD, L(path), O_RDONLY | O_CLOEXEC);
  } while (ret == -EINTR);
  return static_cast<int>(ret);
}

long read(int fd, void* buf, size_t len) {
  long ret;
  do {
    ret = sys(SYS_read, fd, L(buf), static_cast<long>(len));
  } while (ret == -EINTR);
  return ret;
}

void close(int fd) {
  sys(SYS_close, fd);
}

long pid() {
  return sys(SYS_getpid);
}

void yield() {
  sys(SYS_sched_yield);
}

void sleep_ms(uint64_t ms) {
  struct timespec ts = {static_cast<time_t>(ms / 1000),
                        static_cast<long>(ms % 1000) * 1000000};
  sys(SYS_nanosleep, L(&ts), 0);
}

long affinity(void* mask, size_t bytes) {
  return sys(SYS_sched_getaffinity, 0, static_cast<long>(bytes), L(mask));
}

bool random_bytes(void* buf, size_t len) {
  long ret = sys(SYS_getrandom, L(buf), static_cast<long>(len), GRND_NONBLOCK);
  return ret == static_cast<long>(len);
}

namespace {

// The clock starts late (os.h). Before it starts, now_ms() is kClockBase;
// from then on kClockBase plus the milliseconds since it started, so a
// stamp taken before counts as taken at the start. kClockBase (about 35
// years) keeps 0, the "never" of the callers' timers, far in the past as
// the system's clock did; g_clock_offset is 0 until the start and then
// the system's milliseconds at the start minus kClockBase (0 only after
// 35 years of uptime, when the clock would merely stay held).
constexpr uint64_t kClockBase = uint64_t{1} << 40;
RS_STARTUP_DATA bool g_clock_held = false;
RS_STARTUP_DATA uint64_t g_clock_offset = 0;

uint64_t system_ms() {
  struct timespec ts;
  // clock_gettime goes through the vDSO and neither allocates nor fails for
  // this clock; it is the one libc call here, for speed.
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 +
         static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

}  // namespace

void hold_clock() {
  __atomic_store_n(&g_clock_held, true, __ATOMIC_RELAXED);
}

void start_clock() {
  if (__atomic_load_n(&g_clock_offset, __ATOMIC_RELAXED) != 0)
    return;
  uint64_t none = 0;
  __atomic_compare_exchange_n(&g_clock_offset, &none, system_ms() - kClockBase,
                              false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

uint64_t now_ms() {
  uint64_t offset = __atomic_load_n(&g_clock_offset, __ATOMIC_RELAXED);
  if (RS_UNLIKELY(offset == 0)) {
    if (__atomic_load_n(&g_clock_held, __ATOMIC_RELAXED))
      return kClockBase;
    start_clock();
    offset = __atomic_load_n(&g_clock_offset, __ATOMIC_RELAXED);
  }
  // Never before the start: another thread's start may have read the
  // coarse clock a tick later than this thread's read.
  uint64_t t = system_ms() - offset;
  return t > kClockBase ? t : kClockBase;
}

SystemThp system_thp() {
  char buf[128];
  int fd = open_read("/sys/kernel/mm/transparent_hugepage/enabled");
  if (fd < 0)
    return SystemThp::kNever;
  long n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0)
    return SystemThp::kNever;
  static const char kAlways[] = "[always]";
  static const char kMadvise[] = "[madvise]";
  for (long i = 0; i + 8 <= n; i++) {
    if (memcmp(buf + i, kAlways, 8) == 0)
      return SystemThp::kAlways;
    if (i + 9 <= n && memcmp(buf + i, kMadvise, 9) == 0)
      return SystemThp::kMadvise;
  }
  return SystemThp::kNever;
}

size_t system_page_size() {
  unsigned long sz = getauxval(AT_PAGESZ);
  return sz != 0 ? sz : 4096;
}

void abort_process() {
  // glibc's abort() neither allocates nor flushes stdio (since 2.27), and it
  // makes sure SIGABRT is delivered even if the program blocks or handles it.
  abort();
}

}  // namespace rs::os
