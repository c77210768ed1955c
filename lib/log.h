// SPDX-License-Identifier: MIT
// Base layer: a tiny formatter that writes to a file descriptor with
// write(2). The allocator never calls stdio, which can allocate.
#ifndef RS_LOG_H_
#define RS_LOG_H_

#include "base.h"

namespace rs {

/// Builds one message in a fixed buffer and writes it with a single write(2)
/// (so concurrent messages do not interleave), or formats into a caller's
/// buffer, truncating and counting what did not fit, or hands the text to a
/// sink piece by piece, with no limit on its length. Never allocates
/// itself.
class Log {
 public:
  /// Takes each full buffer, and the rest at flush().
  using Sink = void (*)(void* ctx, const char* text, size_t len);

  explicit Log(int fd = 2) : fd_(fd), out_(buf_), cap_(sizeof(buf_)) {}

  /// Formats into a buffer of its own and gives it to sink(ctx, ...).
  Log(Sink sink, void* ctx)
      : fd_(-1), out_(buf_), cap_(sizeof(buf_)), sink_(sink), ctx_(ctx) {}

  /// Formats into out[0, cap); total() tells how much the whole text needs.
  Log(char* out, size_t cap) : fd_(-1), out_(out), cap_(cap) {}

  ~Log() { flush(); }

  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;

  Log& str(const char* s);
  Log& str(const char* s, size_t n);
  Log& dec(uint64_t v);
  Log& sdec(int64_t v);
  Log& hex(uint64_t v);  // 0x-prefixed

  Log& ptr(const void* p) { return hex(addr(p)); }

  Log& chr(char c) { return str(&c, 1); }

  /// Writes what is buffered and empties the buffer.
  void flush();

  /// Bytes the whole text needs, including any that did not fit.
  size_t total() const { return total_; }

  /// NUL-terminates a caller's buffer (cutting the last byte if full).
  void terminate();

 private:
  int fd_;               // where flush() writes; -1: a buffer or a sink
  char* out_;            // buf_ or the caller's buffer
  size_t cap_;           // capacity of out_
  size_t len_ = 0;       // bytes used in out_
  size_t total_ = 0;     // bytes formatted in all
  Sink sink_ = nullptr;  // takes the output instead of fd_
  void* ctx_ = nullptr;  // the sink's argument
  char buf_[1024];       // pending output for fd_ or sink_
};

}  // namespace rs

#endif  // RS_LOG_H_
