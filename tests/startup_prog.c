/* SPDX-License-Identifier: MIT */
/* startup_prog: allocations between marker system calls, for
 * tests/startup.sh, which runs it preloaded under strace. Not linked with
 * rsmalloc. The markers are close() of fds that cannot exist:
 *
 *   close(-101)  one malloc(32) and its free: the process's first
 *   close(-102)  12 more calls (6 malloc(48) and free): still before the
 *                caches start (the 16th call of the slow paths)
 *   close(-103)  200 more: the caches have started
 *   close(-104)
 *
 * startup_prog faults: prints the minor page faults that the process's
 * first malloc(32) and its free take in data (getrusage around them), for
 * the bound in tests/startup.sh. Code and read-only data are faulted in
 * first (but for the allocator's constants, see touch_read_only): how many
 * faults they take varies with the load address and the kernel's
 * fault-around, not with the allocator's data layout. */
#define _GNU_SOURCE
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/resource.h>

static void escape(void* p) {
  __asm__ volatile("" : : "r"(p) : "memory");
}

static int pairs(int n, size_t size) {
  for (int i = 0; i < n; i++) {
    void* p = malloc(size);
    if (p == NULL)
      return 1;
    escape(p);
    free(p);
  }
  return 0;
}

static long minflt(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

/* The stack the allocator's first call may use, faulted in beforehand
 * (its faults are not the allocator's). */
static __attribute__((noinline)) void touch_stack(void) {
  volatile char stack[64 * 1024];
  memset((char*)stack, 1, sizeof(stack));
}

/* Reads a byte of every page of every read-only segment (code, constants)
 * of every loaded object, the preloaded allocator's among them, except the
 * allocator's constants (.rodata, .eh_frame): the first malloc is to read
 * none of them. Its first segment (ELF headers, dynamic symbols,
 * relocations: the dynamic loader reads them anyway) holds the size-class
 * table (lib/early.ld). */
static int touch_read_only(struct dl_phdr_info* info, size_t size, void* arg) {
  (void)size;
  volatile unsigned char* sum = arg;
  long page = sysconf(_SC_PAGESIZE);
  int allocator = strstr(info->dlpi_name, "rsmalloc") != NULL;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr)* ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W) || ph->p_memsz == 0)
      continue;
    if (allocator && !(ph->p_flags & PF_X) && ph->p_offset != 0)
      continue;
    uintptr_t start = info->dlpi_addr + ph->p_vaddr;
    uintptr_t end = start + ph->p_memsz;
    for (uintptr_t a = start & ~(uintptr_t)(page - 1); a < end; a += page)
      *sum += *(volatile const unsigned char*)a;
  }
  return 0;
}

static int first_faults(void) {
  touch_stack();
  unsigned char sum = 0;
  dl_iterate_phdr(touch_read_only, &sum);
  /* Not the vDSO's data page: the first calls read no clock (the decay's
   * clock starts with the CPU caches), and a read would fault it in. */
  long before = minflt();
  void* p = malloc(32);
  escape(p);
  free(p);
  long after = minflt();
  printf("%ld\n", after - before);
  return p == NULL;
}

int main(int argc, char** argv) {
  int bad = 0;
  if (argc > 1 && strcmp(argv[1], "faults") == 0)
    return first_faults();
  close(-101);
  bad |= pairs(1, 32);
  close(-102);
  bad |= pairs(6, 48);
  close(-103);
  bad |= pairs(100, 64);
  close(-104);
  return bad;
}
