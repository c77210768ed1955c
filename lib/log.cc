// SPDX-License-Identifier: MIT
// Base layer: the write(2) formatter and the fatal-error exits.
#include "log.h"

#include "os.h"

namespace rs {

Log& Log::str(const char* s, size_t n) {
  total_ += n;
  for (size_t i = 0; i < n; i++) {
    if (len_ == cap_) {
      if (fd_ < 0 && sink_ == nullptr)
        return *this;  // a caller's buffer: truncate
      flush();
    }
    out_[len_++] = s[i];
  }
  return *this;
}

Log& Log::str(const char* s) {
  size_t n = 0;
  while (s[n] != '\0') {
    n++;
    // Not a call of strlen (gcc sees the idiom): a libc symbol is a lookup
    // at load in every process.
    __asm__("" : "+r"(n));
  }
  return str(s, n);
}

Log& Log::dec(uint64_t v) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[sizeof(tmp) - ++n] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  return str(tmp + sizeof(tmp) - n, n);
}

Log& Log::sdec(int64_t v) {
  if (v < 0) {
    chr('-');
    return dec(static_cast<uint64_t>(-(v + 1)) + 1);
  }
  return dec(static_cast<uint64_t>(v));
}

Log& Log::hex(uint64_t v) {
  char tmp[18];
  size_t n = 0;
  do {
    tmp[sizeof(tmp) - ++n] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v != 0);
  str("0x");
  return str(tmp + sizeof(tmp) - n, n);
}

void Log::flush() {
  if (sink_ != nullptr) {
    if (len_ > 0)
      sink_(ctx_, buf_, len_);
    len_ = 0;
    return;
  }
  if (fd_ < 0)
    return;
  if (len_ > 0)
    os::write_all(fd_, buf_, len_);
  len_ = 0;
}

void Log::terminate() {
  if (cap_ == 0)
    return;
  out_[len_ < cap_ ? len_ : cap_ - 1] = '\0';
}

void fatal(const char* file, int line, const char* msg) {
  {
    Log log;
    log.str("rsmalloc: fatal: ").str(msg).str(" (").str(file).chr(':');
    log.dec(static_cast<uint64_t>(line)).str(")\n");
  }
  os::abort_process();
}

void fatal_pointer(const char* what, const void* ptr) {
  {
    Log log;
    log.str("rsmalloc: ").str(what).str(": invalid pointer ").ptr(ptr);
    log.str(" (heap corruption or a pointer rsmalloc did not hand out)\n");
  }
  os::abort_process();
}

void fatal_block(const char* what,
                 const char* problem,
                 const void* ptr,
                 size_t size) {
  {
    Log log;
    log.str("rsmalloc: ").str(what).str("(): ").str(problem).chr(' ');
    log.ptr(ptr);
    if (size != 0) {
      log.str(" (").dec(size).str("-byte block)\n");
    } else {
      log.str(" (the block's memory is free already)\n");
    }
  }
  os::abort_process();
}

}  // namespace rs
