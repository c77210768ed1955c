// SPDX-License-Identifier: MIT
// rseq layer: mode selection, region layout, what the caches hold, and
// fork. The slow paths that make room and refill are in
// cpu_cache_refill.cc, the drains in cpu_cache_drain.cc.
#include "rseq/cpu_cache.h"

#include <sched.h>

#include "log.h"
#include "os.h"

#ifdef RS_RSEQ_INJECT
extern "C" {
volatile uint32_t rs_rseq_inject_spins[9];
volatile uint64_t rs_rseq_aborts;
}
#endif

namespace rs::rseq {
namespace {

/// Parses a CPU list such as "0-3,8,10-11" and returns the highest CPU + 1,
/// or 0 if it is malformed.
size_t parse_cpu_list(const char* s, size_t len) {
  size_t highest = 0, value = 0;
  bool have = false;
  for (size_t i = 0; i <= len; i++) {
    char c = i < len ? s[i] : '\n';
    if (c >= '0' && c <= '9') {
      value = value * 10 + static_cast<size_t>(c - '0');
      if (value >= kMaxCpus)
        return 0;
      have = true;
    } else if (c == '-' || c == ',' || c == '\n') {
      if (have && value + 1 > highest)
        highest = value + 1;
      value = 0;
      have = false;
      if (c == '\n')
        break;
    } else {
      return 0;
    }
  }
  return highest;
}

}  // namespace

size_t possible_cpus() {
  char buf[256];
  int fd = os::open_read("/sys/devices/system/cpu/possible");
  if (fd < 0)
    return 0;
  long n = os::read(fd, buf, sizeof(buf));
  os::close(fd);
  return n > 0 ? parse_cpu_list(buf, static_cast<size_t>(n)) : 0;
}

size_t possible_cpus_fallback() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (os::affinity(&set, sizeof(set)) > 0) {
    for (size_t cpu = CPU_SETSIZE; cpu > 0; cpu--) {
      if (CPU_ISSET(cpu - 1, &set))
        return cpu;
    }
  }
  return 1;
}

bool CpuCache::map_regions() {
  // One mapping, the states, then the regions. Reserved (os.h), not mapped
  // writable: under vm.overcommit_memory=2 every process would be charged
  // 256 KiB per possible CPU (16 MiB on 64 CPUs) whatever it used. The
  // states and region 0 (mm_cid's first index) are made writable at once,
  // in one call; other regions when their CPU is first laid out.
  size_t regions_bytes = num_cpus_ << kRegionShift;
  size_t states_bytes = align_up(num_cpus_ * sizeof(CpuState), kPageSize);
  // Regions are touched sparsely; a huge page would make RSS lie.
  char* mem =
      static_cast<char*>(os::reserve(states_bytes + regions_bytes, true));
  if (mem == nullptr)
    return false;
  if (!os::protect(mem, states_bytes + kRegionBytes, true)) {
    os::unmap(mem, states_bytes + regions_bytes);
    return false;
  }
  states_ = ptr_at<CpuState>(addr(mem));
  regions_ = mem + states_bytes;
  states_[0].writable = true;
  return true;
}

void CpuCache::init(const ClassLimits* limits,
                    size_t num_classes,
                    Backend backend,
                    size_t budget_bytes,
                    bool want_rseq) {
  configure(backend, budget_bytes, want_rseq);
  set_limits(limits, num_classes);
  if (backend.start == nullptr)
    start();
}

void CpuCache::configure(Backend backend, size_t budget_bytes, bool want_rseq) {
  backend_ = backend;  // even without caches, operations reach the backend
  budget_bytes_ = budget_bytes;
  want_rseq_ = want_rseq;
  support_ = probe();
  if (support_.usable) {
    // The offsets now, the base when the caches start: a thread that sees
    // the base has seen them for a long time (they never change).
    long idx = support_.index == Index::kMmCid ? kMmCidOffset : kCpuIdOffset;
    where_.area_off = fast_.area_off = support_.area_offset;
    where_.idx_off = fast_.idx_off = support_.area_offset + idx;
  }
  description_ = "none yet: caches start at the 16th call or the first thread";
}

void CpuCache::set_limits(const ClassLimits* limits, size_t num_classes) {
  if (num_classes > kMaxClasses || started_)
    return;
  // The headers take the first slots' room: one slot each with 64-bit
  // pointers, two with 32-bit ones (a Header is 8 bytes everywhere). The
  // starter slots follow them, then the home slots of the classes that
  // may hold more than kStarterSlots.
  size_t slots =
      (num_classes * sizeof(Header) + sizeof(void*) - 1) / sizeof(void*);
  for (size_t c = 1; c < num_classes; c++) {
    limits_[c] = limits[c];
    starter_[c] = static_cast<uint16_t>(slots);
    slots += limits[c].max_capacity < kStarterSlots ? limits[c].max_capacity
                                                    : kStarterSlots;
  }
  for (size_t c = 1; c < num_classes; c++) {
    begin_[c] = starter_[c];
    if (limits[c].max_capacity > kStarterSlots) {
      begin_[c] = static_cast<uint16_t>(slots);
      slots += limits[c].max_capacity;
    }
  }
  if (slots * sizeof(void*) > kRegionBytes || slots > UINT16_MAX)
    return;
  num_classes_ = num_classes;
}

bool CpuCache::start() {
  if (__atomic_load_n(&started_, __ATOMIC_RELAXED))
    return false;
  __atomic_store_n(&started_, true, __ATOMIC_RELAXED);
  if (num_classes_ == 0) {
    description_ = "fallback: too many classes for the per-CPU caches";
    return true;
  }
  Support rs = support_;
  bool want_rseq = want_rseq_;
  size_t cpus = possible_cpus();
  if (want_rseq && rs.usable && cpus == 0) {
    rs.usable = false;
    rs.reason = "cannot read /sys/devices/system/cpu/possible";
  }
  if (want_rseq && rs.usable && !register_fence()) {
    rs.usable = false;
    rs.reason = "membarrier(PRIVATE_EXPEDITED_RSEQ) refused";
  }
  num_cpus_ = cpus != 0 ? cpus : possible_cpus_fallback();
  if (!map_regions()) {
    description_ = "fallback: no memory for per-CPU caches";
    return true;
  }
  // Everything the other modes read is in place before mode_ (release;
  // mode() acquires).
  if (!want_rseq) {
    description_ = "fallback: RSMALLOC_RSEQ=0";
    publish_mode(Mode::kLocked);
    return true;
  }
  if (!rs.usable) {
    Log text(reason_buf_, sizeof(reason_buf_));
    text.str("fallback: ").str(rs.reason);
    text.terminate();
    description_ = reason_buf_;
    publish_mode(Mode::kLocked);
    return true;
  }
  index_ = rs.index;
  fence_ok_ = true;
  description_ = rs.index == Index::kMmCid ? "rseq/mm_cid" : "rseq/cpu_id";
  // The slow paths' base before the mode (pop_slow's sections use where_
  // once they see kRseq), the fast path's last, as set_fast_path chose.
  LockGuard guard(switch_lock_);
  __atomic_store_n(&where_.base, regions_, __ATOMIC_RELEASE);
  publish_mode(Mode::kRseq);
  __atomic_store_n(&fast_.base, fast_on_ ? regions_ : nullptr,
                   __ATOMIC_RELEASE);
  return true;
}

Mode CpuCache::mode_or_start() {
  Mode m = mode();
  if (RS_LIKELY(m != Mode::kNone) ||
      __atomic_load_n(&started_, __ATOMIC_RELAXED))
    return m;
  // At the kStartAfter-th call, or as soon as glibc says a thread is being
  // made (pthread_create allocates the new thread's TLS before the clone):
  // the fence's registration in a process with other threads waits for an
  // RCU grace period.
  uint32_t n = __atomic_add_fetch(&slow_calls_, 1, __ATOMIC_RELAXED);
  if (n < kStartAfter && single_threaded(true))
    return m;
  // One thread starts them; the others go on with the backend meanwhile
  // rather than wait for the start-up lock.
  bool idle = false;
  if (!__atomic_compare_exchange_n(&starting_, &idle, true, false,
                                   __ATOMIC_RELAXED, __ATOMIC_RELAXED))
    return m;
  if (backend_.start != nullptr)
    backend_.start();
  else
    start();  // init() refused before it could start them (no backend hook)
  return mode();
}

size_t CpuCache::current_cpu() const {
  size_t c;
  if (mode_ == Mode::kRseq) {
    c = thread_index(where_.area_off, index_);
  } else if (single_index_) {
    return 0;
  } else {
    int cpu = sched_getcpu();  // glibc reads rseq's cpu_id or the vDSO
    c = cpu < 0 ? 0 : static_cast<size_t>(cpu);
  }
  return RS_LIKELY(c < num_cpus_) ? c : c % num_cpus_;
}

bool CpuCache::thread_has_rseq() const {
  return thread_cpu_id(where_.area_off) >= 0;
}

void CpuCache::init_region(size_t cpu) {
  CpuState& st = states_[cpu];
  if (!st.writable) {
    if (!os::protect(region(cpu), kRegionBytes, true)) {
      // Refused (the commit limit): the headers stay all zero, which
      // every section reads as a stopped class (no room, max_end 0), and
      // nothing grows them: this CPU's operations go to the backend.
      __atomic_store_n(&st.initialised, true, __ATOMIC_RELEASE);
      return;
    }
    st.writable = true;
  }
  if (mode_ == Mode::kRseq) {
    // A section on this CPU may be reading these headers now. Pops read
    // begin before current, so going from all zero straight to the layout
    // could show one a begin of 0 and the new current. Stop the headers
    // first (current still 0; max_end 0, so nothing grows them), fence,
    // then lay out. Without the fence they stay stopped: every operation
    // on this CPU takes the slow path to the central lists.
    Header stopped = {0, 0, kStopped, 0};
    for (size_t c = 1; c < num_classes_; c++)
      __atomic_store(header(cpu, c), &stopped, __ATOMIC_RELAXED);
    if (!fence_ok_ || !fence()) {
      __atomic_store_n(&states_[cpu].initialised, true, __ATOMIC_RELEASE);
      return;
    }
  }
  for (size_t w = 0; w < kMaxClasses / 64; w++)
    __atomic_store_n(&st.at_home[w], uint64_t{0}, __ATOMIC_RELAXED);
  for (size_t c = 1; c < num_classes_; c++) {
    Header h;
    h.current = h.end = h.begin = static_cast<uint16_t>(begin_of(cpu, c));
    h.max_end = static_cast<uint16_t>(max_end_of(cpu, c));
    // One 8-byte store: a section on the owning CPU sees all or nothing.
    __atomic_store(header(cpu, c), &h, __ATOMIC_RELEASE);
  }
  __atomic_store_n(&states_[cpu].initialised, true, __ATOMIC_RELEASE);
}

void CpuCache::ensure_region(size_t cpu) {
  CpuState& st = states_[cpu];
  if (__atomic_load_n(&st.initialised, __ATOMIC_ACQUIRE))
    return;
  LockGuard guard(st.lock);
  if (!st.initialised)
    init_region(cpu);
}

bool CpuCache::holds(size_t cls, const void* obj) const {
  if (mode() == Mode::kNone || cls >= num_classes_)
    return false;
  for (size_t cpu = 0; cpu < num_cpus_; cpu++) {
    if (!__atomic_load_n(&states_[cpu].initialised, __ATOMIC_ACQUIRE))
      continue;
    size_t cur = __atomic_load_n(&header(cpu, cls)->current, __ATOMIC_RELAXED);
    size_t max = max_end_of(cpu, cls);
    for (size_t i = begin_of(cpu, cls); i < cur && i < max; i++) {
      if (__atomic_load_n(&slot(cpu, i), __ATOMIC_RELAXED) == obj)
        return true;
    }
  }
  return false;
}

size_t CpuCache::cached_objects(size_t cls) const {
  if (mode() == Mode::kNone)
    return 0;
  size_t total = 0;
  for (size_t cpu = 0; cpu < num_cpus_; cpu++) {
    if (!__atomic_load_n(&states_[cpu].initialised, __ATOMIC_ACQUIRE))
      continue;
    uint16_t cur =
        __atomic_load_n(&header(cpu, cls)->current, __ATOMIC_RELAXED);
    size_t begin = begin_of(cpu, cls);
    if (cur > begin)
      total += cur - begin;
  }
  return total;
}

void CpuCache::lock_all() {
  switch_lock_.lock();
  for (size_t cpu = 0; cpu < num_cpus_; cpu++)
    states_[cpu].lock.lock();
}

void CpuCache::unlock_all() {
  for (size_t cpu = 0; cpu < num_cpus_; cpu++)
    states_[cpu].lock.unlock();
  switch_lock_.unlock();
}

void CpuCache::after_fork_child() {
  for (size_t cpu = 0; cpu < num_cpus_; cpu++)
    states_[cpu].lock.reset();
  switch_lock_.reset();
  // A thread of the parent may have been about to start the caches.
  __atomic_store_n(&starting_, false, __ATOMIC_RELAXED);
  if (mode_ == Mode::kRseq)
    fence_ok_ = register_fence();
}

}  // namespace rs::rseq
