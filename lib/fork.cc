// SPDX-License-Identifier: MIT
// Facade: fork handling. The child must get a consistent heap, and fork()
// must never hang.
//
// The lock order, from outermost: stdio's list lock (_IO_list_lock), the
// start-up lock, every CPU lock, the transfer caches' locks (never held
// while taking another), the class locks, the page heap, the
// leaves (mapping cache, valgrind's tables). glibc's fork() takes the list
// lock itself, but only after the prepare handlers have run; a thread that
// holds a FILE lock (inside getline) and calls malloc, while another holds
// the list lock and waits for that FILE (fflush(NULL)), would otherwise
// close a cycle with a forking thread that holds rsmalloc's locks and waits
// for the list lock (glibc's bug 19431). So the prepare handler takes the
// list lock first, the order glibc's own malloc uses inside fork(). The
// list lock is recursive, so fork() takes it again without waiting.
//
// A process with one thread takes no lock at all, as glibc does: nobody
// else can hold them, and a fork() from a signal handler while the thread
// is already inside fork() (POSIX lists fork as async-signal-safe) must
// not wait for itself.
#include <pthread.h>

#include "allocator.h"
#include "central_list.h"
#include "guarded.h"
#include "init.h"
#include "large.h"
#include "moves.h"
#include "page_heap.h"
#include "transfer_cache.h"
#include "valgrind.h"

// glibc's stdio list lock, and its single-thread flag (glibc 2.32 and
// later). Weak: without them rsmalloc still loads, and locks as before.
extern "C" {
void _IO_list_lock(void) __attribute__((weak));
void _IO_list_unlock(void) __attribute__((weak));
void _IO_list_resetlock(void) __attribute__((weak));
}

namespace rs {
namespace {

/// Set by the prepare handler once it holds every lock, cleared by the
/// parent and child handlers. Read and written only with the locks held,
/// so concurrent forks in different threads see their own value.
bool g_fork_locked = false;

/// Whether stdio's list lock is among the locks taken.
bool have_list_lock() {
  return _IO_list_lock != nullptr && _IO_list_unlock != nullptr &&
         _IO_list_resetlock != nullptr;
}

void fork_prepare() {
  if (single_threaded(false))
    return;
  if (have_list_lock())
    _IO_list_lock();
  g_init_lock.lock();
  g_cpu_cache.lock_all();
  for (size_t c = 1; c < kNumClasses; c++)
    g_transfer[c].lock().lock();
  for (size_t c = 1; c < kNumClasses; c++)
    g_central[c].lock().lock();
  g_page_heap.lock().lock();
  large_cache_lock().lock();  // leaves: taken last
  guarded_lock().lock();
  vg::g_sizes.lock().lock();
  vg::g_quarantine.lock().lock();
  g_fork_locked = true;
}

void fork_parent() {
  if (!g_fork_locked)
    return;
  g_fork_locked = false;
  vg::g_quarantine.lock().unlock();
  vg::g_sizes.lock().unlock();
  guarded_lock().unlock();
  large_cache_lock().unlock();
  g_page_heap.lock().unlock();
  for (size_t c = kNumClasses - 1; c >= 1; c--)
    g_central[c].lock().unlock();
  for (size_t c = kNumClasses - 1; c >= 1; c--)
    g_transfer[c].lock().unlock();
  g_cpu_cache.unlock_all();
  g_init_lock.unlock();
  if (have_list_lock())
    _IO_list_unlock();
}

void fork_child() {
  // The child has one thread: whatever the parent's other threads held is
  // free now. Without g_fork_locked no lock was taken; resetting them is
  // then harmless, and the fence must be registered again either way.
  bool locked = g_fork_locked;
  g_fork_locked = false;
  vg::g_quarantine.lock().reset();
  vg::g_sizes.lock().reset();
  guarded_lock().reset();
  large_cache_lock().reset();
  g_page_heap.lock().reset();
  for (size_t c = 1; c < kNumClasses; c++)
    g_central[c].lock().reset();
  for (size_t c = 1; c < kNumClasses; c++)
    g_transfer[c].lock().reset();
  g_cpu_cache.after_fork_child();
  moves_after_fork_child();
  g_init_lock.reset();
  // glibc's fork() resets the list lock in a multi-threaded child; ours was
  // a second, recursive hold of it.
  if (locked && have_list_lock())
    _IO_list_resetlock();
}

}  // namespace

void install_fork_handlers() {
  pthread_atfork(fork_prepare, fork_parent, fork_child);
}

}  // namespace rs
