// SPDX-License-Identifier: MIT
// Core layer: the introspection block, a versioned, self-describing
// descriptor of where the live counters are, so that `rsmalloc stat`
// (tools/) can read a running process's statistics with process_vm_readv:
// no signal, no stop, no code run in the target. Filled by the facade
// (introspect.cc); lib/abi/ exports a pointer to it.
#ifndef RS_INTROSPECT_H_
#define RS_INTROSPECT_H_

#include "base.h"

namespace rs {

/// "rsmalloc" read as a little-endian word: the block's first field.
inline constexpr uint64_t kIntrospectMagic = 0x636f6c6c616d7372u;

/// Bumped whenever the block or a structure it points to changes shape;
/// the tool refuses a process whose block has another layout.
inline constexpr uint32_t kIntrospectLayout = 2;

/// Addresses are the target's; every field has a fixed width so that the
/// block reads the same in any build of the tool. The sizes and offsets
/// let the tool check that it knows these structures.
struct Introspection {
  uint64_t magic;               // kIntrospectMagic
  uint32_t layout;              // kIntrospectLayout
  uint32_t size;                // sizeof(Introspection)
  uint32_t ready;               // 1 once the fields below are filled
  uint32_t num_classes;         // kNumClasses, class 0 included
  uint64_t version;             // address of the version string (NUL-ended)
  uint64_t mode;                // address of g_mode, a const char*
  uint64_t disabled;            // address of g_disabled, a bool
  uint64_t config;              // address of g_config, a Config
  uint32_t config_size;         // sizeof(Config)
  uint32_t class_info_size;     // sizeof(ClassInfo)
  uint64_t class_info;          // address of the ClassInfo table
  uint64_t central;             // address of g_central[0]
  uint32_t central_stride;      // sizeof(CentralList)
  uint32_t central_stats;       // offset of its CentralStats
  uint32_t central_stats_size;  // sizeof(CentralStats)
  uint32_t heap_stats_size;     // sizeof(PageHeapStats)
  uint64_t heap_stats;          // address of the page heap's PageHeapStats
  uint64_t span_bytes;          // address of the span arena's mapped bytes
  uint64_t leaf_bytes;          // address of the page map's leaf bytes
  uint64_t mapping_bytes;       // address of the mapping cache's bytes
  uint64_t quarantine_held;     // address of the quarantine's size_t[256]
  uint64_t cache_mode;          // rseq::Mode of the CPU caches
  uint64_t num_cpus;            // CPU cache regions
  uint64_t regions;             // address of region 0
  uint64_t states;              // address of CpuState[num_cpus]
  uint64_t begins;              // address of the classes' uint16_t begin
  uint32_t region_shift;        // region i is at regions + (i << shift)
  uint32_t header_size;         // sizeof(rseq::Header), class c's at c *
  uint32_t header_current;      // offset of its uint16_t current
  uint32_t state_size;          // sizeof(rseq::CpuState)
  uint32_t state_initialised;   // offset of its bool initialised
  uint32_t reserved;            // zero
  uint64_t transfer;            // address of g_transfer[0] (layout 2)
  uint32_t transfer_stride;     // sizeof(TransferCache)
  uint32_t transfer_count;      // offset of its uint32_t count of objects
  uint64_t transfer_bytes;      // address of the bytes mapped for them
};

/// The process's block (introspect.cc, facade layer).
extern Introspection g_introspection;

/// Fills g_introspection from the live allocator; called at the end of
/// init and whenever the settings or the cache mode change. Must not
/// allocate.
void publish_introspection();

}  // namespace rs

#endif  // RS_INTROSPECT_H_
