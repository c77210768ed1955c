// SPDX-License-Identifier: MIT
// Base layer: the RSMALLOC_* settings. Read once with secure_getenv (so
// setuid programs ignore them), parsed strictly: a bad value is reported
// once on stderr and the default kept.
#ifndef RS_SETTINGS_H_
#define RS_SETTINGS_H_

#include "base.h"
#include "config.h"

namespace rs {

enum class RseqSetting : uint8_t { kAuto, kOff };
/// RSMALLOC_THP: kGrown gives huge-page advice to the chunks a heap maps
/// once it has grown past 32 MiB (page_heap_huge.cc).
enum class ThpSetting : uint8_t { kAuto, kAlways, kNever, kGrown };
enum class StatsSetting : uint8_t { kOff, kText, kJson };

/// The effective settings; defaults until load_config() has run.
struct Config {
  bool disable = false;                   // RSMALLOC_DISABLE: pass all to glibc
  bool verbose = false;                   // RSMALLOC_VERBOSE: describe at start
  RseqSetting rseq = RseqSetting::kAuto;  // RSMALLOC_RSEQ
  size_t cpu_cache_bytes = 2u << 20;      // RSMALLOC_CPU_CACHE
  uint64_t decay_ms = 250;                // RSMALLOC_DECAY_MS
  ThpSetting thp = ThpSetting::kAuto;     // RSMALLOC_THP
  StatsSetting stats = StatsSetting::kOff;  // RSMALLOC_STATS
  bool background = false;  // RSMALLOC_BACKGROUND: start a purger thread
  int perturb = 0;          // MALLOC_PERTURB_, glibc's: fill byte, 0 off
  bool harden = RS_HARDEN_DEFAULT != 0;  // RSMALLOC_HARDEN: strict mode
};

extern Config g_config;

/// Reads every RSMALLOC_* variable into g_config, reporting bad values.
/// Must not allocate. Returns false if the environment was not readable yet
/// (very early in start-up), in which case the defaults stay.
bool load_config();

/// Prints the effective configuration ("rsmalloc: ..." lines) to stderr.
void print_config(const char* cache_mode);

/// Parsers, exposed for the unit tests. Each returns false on a bad value
/// and leaves *out unchanged.
bool parse_bool(const char* s, bool* out);
bool parse_size(const char* s, size_t* out);  // bytes, optional K/M/G
bool parse_u64(const char* s, uint64_t* out);

/// glibc's MALLOC_PERTURB_: a byte, 0 to 255, in decimal or 0x hex. glibc
/// ignores other values without a word, and so does rsmalloc.
bool parse_perturb(const char* s, int* out);

}  // namespace rs

#endif  // RS_SETTINGS_H_
