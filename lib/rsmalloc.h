/* SPDX-License-Identifier: MIT */
/* rsmalloc.h: the rsmalloc extension API.
 *
 * The standard functions (malloc, free, ...) keep their usual declarations in
 * <stdlib.h> and <malloc.h>; this header adds what only rsmalloc offers.
 * Every function here is safe to call whether or not rsmalloc is the
 * process's allocator (for example with RSMALLOC_DISABLE=1). */
#ifndef RSMALLOC_H
#define RSMALLOC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RSMALLOC_VERSION_MAJOR 0
#define RSMALLOC_VERSION_MINOR 1
#define RSMALLOC_VERSION_PATCH 0

/* The library's version as "MAJOR.MINOR.PATCH"; a static string. */
const char* rsmalloc_version(void);

/* Bytes usable at ptr (at least what was requested), or 0 for NULL.
 * Same as malloc_usable_size. */
size_t rsmalloc_usable_size(const void* ptr);

/* How the per-CPU caches are reached, as a static string:
 * "rseq/mm_cid", "rseq/cpu_id", "fallback: <reason>", or "disabled" when
 * RSMALLOC_DISABLE=1 passes every call to glibc. */
const char* rsmalloc_cache_mode(void);

/* 1 when ptr is the start of a live block that rsmalloc handed out,
 * 0 otherwise (NULL, foreign pointers such as glibc's). */
int rsmalloc_owns(const void* ptr);

/* Writes the allocator's statistics as one JSON object, NUL-terminated,
 * into buf (at most len bytes). Returns the length the whole object needs,
 * not counting the NUL, like snprintf; a result >= len means it was cut. */
size_t rsmalloc_stats_json(char* buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* RSMALLOC_H */
