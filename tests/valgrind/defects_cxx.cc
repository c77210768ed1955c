// SPDX-License-Identifier: MIT
// The C++ half of tests/valgrind/defects: every replaceable operator new
// and delete that rsmalloc exports, once, all matched ("clean"), and
// defects made with them for memcheck to find.
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <new>

#include "rsmalloc.h"

extern "C" int cxx_clean(void);
extern "C" int cxx_defect(const char* mode);

namespace {

volatile int sink;                  // keeps reads from being dropped
volatile std::size_t past_the_end;  // hides an index from bounds warnings
void* volatile leaked;              // a block whose only pointer is dropped
char* volatile stale;               // a pointer kept past its delete

int owned(const void* p) {
  return p != nullptr && rsmalloc_owns(p) ? 0 : 1;
}

// Drops the only pointer to a new[] block (307,200 bytes definitely
// lost). Out of line, followed by scrub(), so that no copy of the pointer
// stays in a register or a dead stack slot.
__attribute__((noinline)) void lose() {
  leaked = new char[300 << 10];
  leaked = nullptr;
}

__attribute__((noinline)) void scrub() {
  volatile char junk[16384];
  for (std::size_t i = 0; i < sizeof junk; i++)
    junk[i] = 0;
}

}  // namespace

extern "C" int cxx_clean(void) {
  int errors = 0;
  int* one = new int(5);
  errors += owned(one);
  delete one;
  char* many = new char[100]();
  errors += owned(many);
  delete[] many;
  char* nt = new (std::nothrow) char[300 << 10];
  errors += owned(nt);
  std::memset(nt, 1, 300 << 10);
  delete[] nt;
  void* s = ::operator new(1000);
  errors += owned(s);
  ::operator delete(s, 1000);
  void* sa = ::operator new[](2000);
  errors += owned(sa);
  ::operator delete[](sa, 2000);
  void* n1 = ::operator new(64, std::nothrow);
  errors += owned(n1);
  ::operator delete(n1, std::nothrow);
  void* n2 = ::operator new[](64, std::nothrow);
  errors += owned(n2);
  ::operator delete[](n2, std::nothrow);
  const std::align_val_t al{4096};
  void* a1 = ::operator new(5000, al);
  errors += owned(a1);
  std::memset(a1, 2, 5000);
  ::operator delete(a1, al);
  void* a2 = ::operator new[](5000, al);
  errors += owned(a2);
  ::operator delete[](a2, al);
  void* a3 = ::operator new(40 << 20, al);  // mapped
  errors += owned(a3);
  std::memset(a3, 3, 40 << 20);
  ::operator delete(a3, 40 << 20, al);
  void* a4 = ::operator new[](300 << 10, al);
  errors += owned(a4);
  ::operator delete[](a4, 300 << 10, al);
  void* a5 = ::operator new(100, al, std::nothrow);
  errors += owned(a5);
  ::operator delete(a5, al, std::nothrow);
  void* a6 = ::operator new[](100, al, std::nothrow);
  errors += owned(a6);
  ::operator delete[](a6, al, std::nothrow);
  return errors;
}

// One defect with the operators; 2 for an unknown mode.
extern "C" int cxx_defect(const char* mode) {
  if (std::strcmp(mode, "cxx-leak") == 0) {
    lose();
    scrub();
  } else if (std::strcmp(mode, "cxx-use-after-delete") == 0) {
    char* p = static_cast<char*>(::operator new (5000, std::align_val_t{4096}));
    p[7] = 1;
    stale = p;  // read back below: the compiler does not see the defect
    ::operator delete (p, std::align_val_t{4096});
    sink = stale[7];
  } else if (std::strcmp(mode, "cxx-overrun") == 0) {
    // 100 bytes past 40 MiB: the byte after the block is still mapped.
    char* p = new char[(40 << 20) + 100];
    stale = p;  // escapes: the new-expression is not elided
    past_the_end = (40 << 20) + 100;
    p[past_the_end] = 1;
    delete[] p;
  } else if (std::strcmp(mode, "cxx-double-delete") == 0) {
    int* p = new int[8];
    stale = reinterpret_cast<char*>(p);
    delete[] p;
    delete[] reinterpret_cast<int*>(stale);
  } else {
    return 2;
  }
  return 0;
}
