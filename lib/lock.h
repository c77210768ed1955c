// SPDX-License-Identifier: MIT
// Base layer: the allocator's mutex. Zero-initialised means unlocked, so
// locks can live in static storage and in freshly mapped memory.
#ifndef RS_LOCK_H_
#define RS_LOCK_H_

#include "base.h"
#include "os.h"

namespace rs {

/// A futex mutex (0 free, 1 locked, 2 locked with waiters) that spins
/// briefly before sleeping. Never allocates.
class Lock {
 public:
  void lock() {
    int expected = 0;
    if (RS_LIKELY(__atomic_compare_exchange_n(
            &word_, &expected, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))) {
      return;
    }
    lock_slow();
  }

  bool try_lock() {
    int expected = 0;
    return __atomic_compare_exchange_n(&word_, &expected, 1, false,
                                       __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
  }

  void unlock() {
    if (RS_UNLIKELY(__atomic_exchange_n(&word_, 0, __ATOMIC_RELEASE) == 2)) {
      os::futex_wake(&word_, 1);
    }
  }

  /// In a fork child: the lock was held by the thread that forked; free it.
  void reset() { __atomic_store_n(&word_, 0, __ATOMIC_RELAXED); }

 private:
  RS_NOINLINE void lock_slow() {
    for (int i = 0; i < 100; i++) {
      if (__atomic_load_n(&word_, __ATOMIC_RELAXED) == 0 && try_lock())
        return;
      cpu_relax();
    }
    while (__atomic_exchange_n(&word_, 2, __ATOMIC_ACQUIRE) != 0) {
      os::futex_wait(&word_, 2);
    }
  }

  // 0 free, 1 locked, 2 locked and contended. No initialiser: locks live
  // only in static storage or fresh mappings, both zero, and a trivial
  // constructor keeps the globals that hold one out of the start-up code
  // (no constructor runs, no page of .bss is written at load time).
  int word_;
};

/// Holds a Lock for the scope.
class LockGuard {
 public:
  explicit LockGuard(Lock& lock) : lock_(lock) { lock_.lock(); }

  ~LockGuard() { lock_.unlock(); }

  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  Lock& lock_;  // the lock held
};

}  // namespace rs

#endif  // RS_LOCK_H_
