// SPDX-License-Identifier: MIT
// Facade: the start-up state the facade's files share (allocator*.cc,
// init.cc, fork.cc, release.cc, report.cc), and the hooks between them.
// Not for lib/abi/, which goes through allocator.h.
#ifndef RS_INIT_H_
#define RS_INIT_H_

#include "base.h"
#include "lock.h"

namespace rs {

// Start-up state: an int so that __atomic builtins take it (clang refuses
// enums).
inline constexpr int kInitNone = 0;
inline constexpr int kInitReady = 1;

extern Lock g_init_lock;    // start-up; taken first by the fork handlers
extern int g_state;         // kInitNone, then kInitReady
extern bool g_disabled;     // RSMALLOC_DISABLE=1: glibc serves new requests
extern bool g_valgrind;     // running under valgrind: annotate every block
extern const char* g_mode;  // the cache mode, as cache_mode() reports it
extern bool g_harden;       // strict mode (RSMALLOC_HARDEN=1)

/// Start-up: the core, the settings and the CPU caches. Tolerates re-entry
/// and being called from several threads; the first call wins.
RS_SLOW_PATH void init();

RS_FAST_PATH void ensure_init() {
  if (RS_UNLIKELY(__atomic_load_n(&g_state, __ATOMIC_ACQUIRE) != kInitReady)) {
    init();
  }
}

/// Registers the fork handlers (fork.cc). Called once, with no lock held:
/// pthread_atfork may allocate.
void install_fork_handlers();

/// A CPU cache with no slow path for this long is drained.
uint64_t idle_cache_ms();

/// Turns strict mode (RSMALLOC_HARDEN) on or off (allocator_strict.cc).
/// On only before the first block is handed out: blocks without a canary
/// would look overflowed.
void set_harden(bool on);

/// Applies mallopt(M_PERTURB) or MALLOC_PERTURB_: 0 turns it off
/// (allocator.cc).
void set_perturb(int value);

}  // namespace rs

#endif  // RS_INIT_H_
