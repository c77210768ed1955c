// SPDX-License-Identifier: MIT
// Facade: fills the introspection block (introspect.h) with the addresses
// of the live counters of the core and of the CPU caches. Nothing here
// runs on an allocation path; the tool reads the block from outside.
#include "introspect.h"

#include <stddef.h>

#include "allocator.h"
#include "central_list.h"
#include "config.h"
#include "init.h"
#include "large.h"
#include "page_heap.h"
#include "page_map.h"
#include "settings.h"
#include "transfer_cache.h"
#include "valgrind.h"

namespace rs {
namespace {

uint64_t where(const void* p) {
  return addr(p);
}

}  // namespace

RS_STARTUP_DATA Introspection g_introspection = {};

void publish_introspection() {
  // Volatile: one store of an immediate per field. Merged, the compiler
  // loads the constants from .rodata, whose page /bin/true otherwise
  // never faults in.
  volatile Introspection& d = g_introspection;
  __atomic_store_n(&d.ready, 0, __ATOMIC_RELAXED);
  d.magic = kIntrospectMagic;
  d.layout = kIntrospectLayout;
  d.size = sizeof(Introspection);
  d.num_classes = kNumClasses;
  d.version = where(PACKAGE_VERSION);
  d.mode = where(&g_mode);
  d.disabled = where(&g_disabled);
  d.config = where(&g_config);
  d.config_size = sizeof(Config);
  d.class_info_size = sizeof(ClassInfo);
  d.class_info = where(&class_info(0));
  d.central = where(&g_central[0]);
  d.central_stride = sizeof(CentralList);
  d.central_stats = static_cast<uint32_t>(addr(g_central[0].stats_addr()) -
                                          addr(&g_central[0]));
  d.central_stats_size = sizeof(CentralStats);
  d.heap_stats_size = sizeof(PageHeapStats);
  d.heap_stats = where(g_page_heap.stats_addr());
  d.span_bytes = where(g_page_heap.span_bytes_addr());
  d.leaf_bytes = where(g_page_map.leaf_bytes_addr());
  d.mapping_bytes = where(large_cached_bytes_addr());
  d.quarantine_held = where(vg::g_quarantine.held_addr());
  d.cache_mode = static_cast<uint64_t>(g_cpu_cache.mode());
  d.num_cpus = g_cpu_cache.num_cpus();
  d.regions = where(g_cpu_cache.regions());
  d.states = where(g_cpu_cache.states());
  d.begins = where(g_cpu_cache.begins());
  d.region_shift = rseq::kRegionShift;
  d.header_size = sizeof(rseq::Header);
  d.header_current = offsetof(rseq::Header, current);
  d.state_size = sizeof(rseq::CpuState);
  d.state_initialised = offsetof(rseq::CpuState, initialised);
  d.transfer = where(&g_transfer[0]);
  d.transfer_stride = sizeof(TransferCache);
  d.transfer_bytes = where(transfer_mapped_bytes_addr());
  d.transfer_count = static_cast<uint32_t>(addr(g_transfer[0].count_addr()) -
                                           addr(&g_transfer[0]));
  // The tool reads `ready` first: everything above is in place by then.
  __atomic_store_n(&d.ready, 1, __ATOMIC_RELEASE);
}

}  // namespace rs
