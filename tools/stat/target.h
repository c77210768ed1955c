// SPDX-License-Identifier: MIT
// rsmalloc-stat: one process read from outside. Finds librsmalloc in
// /proc/PID/maps, the introspection block (lib/introspect.h) through the
// library file's dynamic symbol table, and reads the live counters with
// process_vm_readv into the inputs of the library's own compute_stats.
#ifndef RS_TOOLS_STAT_TARGET_H_
#define RS_TOOLS_STAT_TARGET_H_

#include <sys/types.h>

#include "introspect.h"
#include "rseq/cpu_cache.h"
#include "settings.h"
#include "stats.h"

namespace rs::inspect {

/// Why a process could not be read; each has its own one-line message.
enum class Error {
  kNone,
  kNoProcess,    // no such PID
  kPermission,   // ptrace rules refuse access
  kNotRsmalloc,  // no librsmalloc mapped
  kNoBlock,      // an rsmalloc without the introspection block
  kLayout,       // another layout of the block
  kExited,       // exited (or exec'd) while being read
  kNotReady,     // rsmalloc loaded but not initialised yet
  kDisabled,     // RSMALLOC_DISABLE=1: glibc serves it
  kOther,        // anything else (the message says what)
};

/// The short form of an error, for `rsmalloc top`'s table.
const char* short_error(Error e);

/// What one read of a process gives.
struct Snapshot {
  rs::Stats stats;                       // the figures, as collect_stats gives
  rs::Config config;                     // the settings in force
  char version[64];                      // the library's version
  char mode[128];                        // its cache mode
  size_t num_cpus;                       // CPU cache regions
  size_t cpu_bytes[rs::rseq::kMaxCpus];  // cached bytes per CPU
  bool cpu_used[rs::rseq::kMaxCpus];     // region laid out
};

/// A process being read. Every failure records an Error and a message.
class Target {
 public:
  explicit Target(pid_t pid) : pid_(pid) {}

  Error error() const { return error_; }

  const char* message() const { return message_; }

  pid_t pid() const { return pid_; }

  /// Finds the library and the block, and reads a consistent snapshot.
  bool snapshot(Snapshot* out);

  /// Finds librsmalloc in the maps: its path and load address. False with
  /// kNotRsmalloc when there is none.
  bool find_library();

 private:
  bool fail(Error e, const char* fmt, ...)
      __attribute__((format(printf, 3, 4)));
  bool read(uint64_t where, void* buf, size_t len);
  bool read_stable(uint64_t where, void* buf, size_t len);
  bool read_string(uint64_t where, char* buf, size_t len);
  bool lookup_symbol(const char* name, uint64_t* value);
  bool check_layout(const Introspection& d);
  bool read_caches(const Introspection& d, rs::StatsInputs* in, Snapshot* out);
  bool gone() const;

  pid_t pid_;                   // the process
  Error error_ = Error::kNone;  // why the last step failed
  char message_[512] = {};      // and its one-line message
  char path_[4096] = {};        // the library file, as the maps name it
  uint64_t base_ = 0;           // where its first page is mapped
};

}  // namespace rs::inspect

#endif  // RS_TOOLS_STAT_TARGET_H_
