// SPDX-License-Identifier: MIT
// Core layer: large allocations (above 256 KiB, or aligned beyond what a
// size class gives). Below the map threshold (64 MiB) they are page-heap
// spans, which reuse freed pages still resident before others; from it on
// each has its own mapping, resized in place with mremap.
#ifndef RS_LARGE_H_
#define RS_LARGE_H_

#include "base.h"
#include "lock.h"
#include "span.h"

namespace rs {

/// Bytes from which a large allocation gets its own mapping
/// (mallopt M_MMAP_THRESHOLD adjusts it).
extern size_t g_map_threshold;

/// n bytes aligned to align (a power of two); nullptr when out of memory.
/// zeroed is set when the memory is known to read as zero.
void* large_allocate(size_t n, size_t align, bool* zeroed);

/// Frees a large allocation whose span is span; aborts on a pointer that is
/// not the start of a live large allocation.
void large_free(Span* span, void* p);

/// Unmaps cached free mappings older than age_ms (all for 0); returns the
/// bytes unmapped. Recently freed mappings are kept for reuse.
size_t large_trim_mappings(uint64_t age_ms);

/// For a pointer the page map does not know, before it goes to glibc:
/// aborts naming `what` when p lies in a freed mapping rsmalloc keeps for
/// reuse (a double free when p is its start, else an invalid pointer).
void check_not_cached(const void* p, const char* what);

/// Bytes of freed mappings kept for reuse.
size_t large_cached_bytes();

/// Where large_cached_bytes() lives, for the introspection block.
const size_t* large_cached_bytes_addr();

/// The mapping cache's lock (a leaf: nothing else is taken under it), for
/// the fork handlers.
Lock& large_cache_lock();

/// Bytes usable at p, the start of a live large allocation in span.
size_t large_usable_size(const Span* span);

/// Resizes the large allocation p in place when possible (mremap for
/// mapped ones, or when the new size still fits the span); returns the
/// new address, or nullptr when the caller must allocate and copy.
void* large_resize_in_place(Span* span, void* p, size_t n);

}  // namespace rs

#endif  // RS_LARGE_H_
