// SPDX-License-Identifier: MIT
// rseq layer: region layout, slow paths and cross-CPU operations of the
// per-CPU caches. In this version every access takes the CPU's lock (the
// fallback mode); the rseq primitives replace pop/push where available.
#include "rseq/cpu_cache.h"

#include <sched.h>

#include "os.h"

namespace rs::rseq {
namespace {

constexpr size_t kMaxCpus = 8192;
constexpr int kMaxBatch = 64;

/// Parses a CPU list such as "0-3,8,10-11" and returns the highest CPU + 1.
size_t parse_cpu_list(const char* s, size_t len) {
  size_t highest = 0, value = 0;
  bool have = false;
  for (size_t i = 0; i <= len; i++) {
    char c = i < len ? s[i] : '\n';
    if (c >= '0' && c <= '9') {
      value = value * 10 + static_cast<size_t>(c - '0');
      if (value > kMaxCpus)
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
  if (fd >= 0) {
    long n = os::read(fd, buf, sizeof(buf));
    os::close(fd);
    if (n > 0) {
      size_t cpus = parse_cpu_list(buf, static_cast<size_t>(n));
      if (cpus > 0)
        return cpus;
    }
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (size_t cpu = CPU_SETSIZE; cpu > 0; cpu--) {
      if (CPU_ISSET(cpu - 1, &set))
        return cpu;
    }
  }
  return 1;
}

bool CpuCache::init(const ClassLimits* limits,
                    size_t num_classes,
                    Backend backend,
                    size_t budget_bytes) {
  if (num_classes > kMaxClasses)
    return false;
  size_t slots = num_classes;  // the headers take the first slots' room
  for (size_t c = 1; c < num_classes; c++)
    slots += limits[c].max_capacity;
  if (slots * sizeof(void*) > kRegionBytes || slots > UINT16_MAX)
    return false;

  size_t cpus = possible_cpus();
  void* states = os::map(align_up(cpus * sizeof(CpuState), kPageSize));
  if (states == nullptr)
    return false;
  void* regions = os::map(cpus << kRegionShift);
  if (regions == nullptr) {
    os::unmap(states, align_up(cpus * sizeof(CpuState), kPageSize));
    return false;
  }
  for (size_t c = 0; c < num_classes; c++)
    limits_[c] = limits[c];
  num_classes_ = num_classes;
  backend_ = backend;
  budget_bytes_ = budget_bytes;
  num_cpus_ = cpus;
  states_ = static_cast<CpuState*>(states);
  __atomic_store_n(&regions_, static_cast<char*>(regions), __ATOMIC_RELEASE);
  return true;
}

void CpuCache::init_region(size_t cpu) {
  uint16_t index = static_cast<uint16_t>(num_classes_);
  for (size_t c = 1; c < num_classes_; c++) {
    Header h;
    h.current = h.end = h.begin = index;
    index = static_cast<uint16_t>(index + limits_[c].max_capacity);
    h.max_end = index;
    // One 8-byte store, so a reader never sees half a header.
    __atomic_store(header(cpu, c), &h, __ATOMIC_RELEASE);
  }
  states_[cpu].initialised = true;
}

bool CpuCache::grow(size_t cpu, size_t cls) {
  Header* h = header(cpu, cls);
  const ClassLimits& lim = limits_[cls];
  if (h->end >= h->max_end)
    return false;
  size_t add = h->max_end - h->end;
  if (add > lim.batch)
    add = lim.batch;
  size_t bytes = add * lim.size;
  CpuState& st = states_[cpu];
  if (st.capacity_bytes + bytes > budget_bytes_ && h->end > h->begin)
    return false;
  h->end = static_cast<uint16_t>(h->end + add);
  st.capacity_bytes += bytes;
  return true;
}

void* CpuCache::pop_slow(size_t cls) {
  void* buf[kMaxBatch];
  if (regions_ == nullptr)
    return backend_.refill(cls, buf, 1) == 1 ? buf[0] : nullptr;
  size_t cpu = current_cpu();
  CpuState& st = states_[cpu];
  st.lock.lock();
  if (!st.initialised)
    init_region(cpu);
  Header* h = header(cpu, cls);
  if (h->current > h->begin) {  // another thread refilled it meanwhile
    void* obj = slot(cpu, --h->current);
    st.lock.unlock();
    return obj;
  }
  grow(cpu, cls);
  size_t want = static_cast<size_t>(h->end - h->current) + 1;
  st.lock.unlock();

  if (want > limits_[cls].batch)
    want = limits_[cls].batch;
  int got = backend_.refill(cls, buf, static_cast<int>(want));
  if (got <= 0)
    return nullptr;
  int pushed = push_batch(cls, buf + 1, got - 1);
  if (pushed < got - 1)
    backend_.drain(cls, buf + 1 + pushed, got - 1 - pushed);
  return buf[0];
}

int CpuCache::push_batch(size_t cls, void* const* objs, int n) {
  if (n == 0)
    return 0;
  size_t cpu = current_cpu();
  CpuState& st = states_[cpu];
  st.lock.lock();
  if (!st.initialised)
    init_region(cpu);
  Header* h = header(cpu, cls);
  int k = 0;
  while (k < n && h->current < h->end)
    slot(cpu, h->current++) = objs[k++];
  st.lock.unlock();
  return k;
}

void CpuCache::push_slow(size_t cls, void* obj) {
  void* buf[kMaxBatch + 1];
  if (regions_ == nullptr) {
    backend_.drain(cls, &obj, 1);
    return;
  }
  size_t cpu = current_cpu();
  CpuState& st = states_[cpu];
  st.lock.lock();
  if (!st.initialised)
    init_region(cpu);
  Header* h = header(cpu, cls);
  if (h->current < h->end || (grow(cpu, cls) && h->current < h->end)) {
    slot(cpu, h->current++) = obj;
    st.lock.unlock();
    return;
  }
  // Full, and the budget allows no more: hand a batch to the backend.
  int n = pop_batch(cpu, cls, buf, limits_[cls].batch);
  st.lock.unlock();
  buf[n++] = obj;
  backend_.drain(cls, buf, n);
}

int CpuCache::pop_batch(size_t cpu, size_t cls, void** out, int n) {
  Header* h = header(cpu, cls);
  int k = 0;
  while (k < n && h->current > h->begin)
    out[k++] = slot(cpu, --h->current);
  return k;
}

size_t CpuCache::drain_all() {
  if (regions_ == nullptr)
    return 0;
  size_t drained = 0;
  void* buf[kMaxBatch];
  for (size_t cpu = 0; cpu < num_cpus_; cpu++) {
    CpuState& st = states_[cpu];
    st.lock.lock();
    if (st.initialised) {
      for (size_t cls = 1; cls < num_classes_; cls++) {
        int n;
        while ((n = pop_batch(cpu, cls, buf, kMaxBatch)) > 0) {
          backend_.drain(cls, buf, n);
          drained += static_cast<size_t>(n);
        }
        Header* h = header(cpu, cls);
        h->end = h->begin;  // give the capacity back too
      }
      st.capacity_bytes = 0;
    }
    st.lock.unlock();
  }
  return drained;
}

size_t CpuCache::cached_objects(size_t cls) const {
  if (regions_ == nullptr)
    return 0;
  size_t total = 0;
  for (size_t cpu = 0; cpu < num_cpus_; cpu++) {
    if (!__atomic_load_n(&states_[cpu].initialised, __ATOMIC_ACQUIRE))
      continue;
    Header h;
    __atomic_load(header(cpu, cls), &h, __ATOMIC_RELAXED);
    if (h.current > h.begin)
      total += h.current - h.begin;
  }
  return total;
}

void CpuCache::lock_all() {
  for (size_t cpu = 0; cpu < num_cpus_; cpu++)
    states_[cpu].lock.lock();
}

void CpuCache::unlock_all() {
  for (size_t cpu = 0; cpu < num_cpus_; cpu++)
    states_[cpu].lock.unlock();
}

void CpuCache::reset_locks() {
  for (size_t cpu = 0; cpu < num_cpus_; cpu++)
    states_[cpu].lock.reset();
}

}  // namespace rs::rseq
