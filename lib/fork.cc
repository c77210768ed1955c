// SPDX-License-Identifier: MIT
// Facade: fork handling. The child must get a consistent heap, and fork()
// must never hang.
#include <pthread.h>

#include "allocator.h"
#include "central_list.h"
#include "init.h"
#include "large.h"
#include "page_heap.h"
#include "valgrind.h"

namespace rs {
namespace {

void fork_prepare() {
  g_init_lock.lock();
  g_cpu_cache.lock_all();
  for (size_t c = 1; c < kNumClasses; c++)
    g_central[c].lock().lock();
  g_page_heap.lock().lock();
  large_cache_lock().lock();  // leaves: taken last
  vg::g_sizes.lock().lock();
  vg::g_quarantine.lock().lock();
}

void fork_parent() {
  vg::g_quarantine.lock().unlock();
  vg::g_sizes.lock().unlock();
  large_cache_lock().unlock();
  g_page_heap.lock().unlock();
  for (size_t c = kNumClasses - 1; c >= 1; c--)
    g_central[c].lock().unlock();
  g_cpu_cache.unlock_all();
  g_init_lock.unlock();
}

void fork_child() {
  vg::g_quarantine.lock().reset();
  vg::g_sizes.lock().reset();
  large_cache_lock().reset();
  g_page_heap.lock().reset();
  for (size_t c = 1; c < kNumClasses; c++)
    g_central[c].lock().reset();
  g_cpu_cache.after_fork_child();
  g_init_lock.reset();
}
}  // namespace

void install_fork_handlers() {
  pthread_atfork(fork_prepare, fork_parent, fork_child);
}

}  // namespace rs
