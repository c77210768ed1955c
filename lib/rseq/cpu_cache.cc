// SPDX-License-Identifier: MIT
// rseq layer: mode selection, region layout, slow paths and the cross-CPU
// drain of the per-CPU caches.
#include "rseq/cpu_cache.h"

#include <sched.h>
#include <string.h>

#include "log.h"
#include "moves.h"
#include "os.h"

#ifdef RS_RSEQ_INJECT
extern "C" {
volatile uint32_t rs_rseq_inject_spins[9];
volatile uint64_t rs_rseq_aborts;
}
#endif

namespace rs::rseq {
namespace {

constexpr size_t kMaxBatch = 64;

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

bool CpuCache::grow(size_t cpu, size_t cls, bool underflow) {
  Header* h = header(cpu, cls);
  const ClassLimits& lim = limits_[cls];
  CpuState& st = states_[cpu];
  size_t have = __atomic_load_n(&h->end, __ATOMIC_RELAXED) - h->begin;
  // Past one batch, a full class grows only if it also ran empty since it
  // last grew that way: a CPU that only frees objects of a class (the
  // consumer of a pipeline) would otherwise fill its cache with them up to
  // the budget, memory that nothing on this CPU allocates again. One
  // batch of room is what its drains need to go out whole.
  if (underflow) {
    st.underflowed[cls] = 1;
  } else if (have >= lim.batch) {
    if (st.underflowed[cls] == 0)
      return false;
    st.underflowed[cls] = 0;
  }
  // Slow start: one slot first, then doubling, at most a batch a step. A
  // refill brings the room there is and one object for the caller, and
  // each object it brings gets the free mark, which touches its page: a
  // class that a CPU uses for one object at a time (temporaries of one
  // size) costs two objects there, not a batch of up to 16 KiB.
  size_t step = have > 0 ? have : 1;
  if (step > lim.batch)
    step = lim.batch;
  // Out of starter slots: home first (kStarterSlots).
  if (needs_home(cpu, cls, 1) && !move_home(cpu, cls))
    return false;
  return add_room(cpu, cls, step, true) != 0;
}

bool CpuCache::move_home(size_t cpu, size_t cls) {
  Header* h = header(cpu, cls);
  Header old;
  __atomic_load(h, &old, __ATOMIC_RELAXED);
  if (old.begin != starter_[cls] || old.current < old.begin ||
      old.end < old.current)
    return false;  // stopped, or not laid out yet
  uint16_t home = begin_[cls];
  Header next;
  next.begin = home;
  next.current = static_cast<uint16_t>(home + (old.current - old.begin));
  next.end = static_cast<uint16_t>(home + (old.end - old.begin));
  next.max_end = static_cast<uint16_t>(home + limits_[cls].max_capacity);
  static_assert(kStarterSlots == 4, "rseq::relocate copies four slots");
  // The objects change slots: a search for one of them (the double-free
  // confirmation) must not conclude from not finding it (moves.h).
  MoveScope move(cls, false);  // the CPU's lock held: never waits
  if (mode_ == Mode::kRseq) {
    // A section on this CPU may use the header meanwhile: the copy and the
    // new header commit together, on this CPU only, or not at all.
    uint64_t expect, with;
    memcpy(&expect, &old, sizeof(expect));
    memcpy(&with, &next, sizeof(with));
    if (!rseq::relocate(where_, cpu, cls, expect, with, old.begin, home))
      return false;
  } else {
    // The locked caches: the lock is all there is.
    for (size_t i = 0; i < kStarterSlots; i++)
      slot(cpu, home + i) = slot(cpu, old.begin + i);
    __atomic_store(h, &next, __ATOMIC_RELEASE);
  }
  __atomic_fetch_or(&states_[cpu].at_home[cls / 64], uint64_t{1} << (cls % 64),
                    __ATOMIC_RELAXED);
  return true;
}

size_t CpuCache::add_line_room(size_t cpu, size_t cls, size_t n) {
  // The rest of a line must stay on this CPU (drained, it would go to
  // another): home first when the starter slots cannot take it.
  if (needs_home(cpu, cls, n))
    move_home(cpu, cls);
  return add_room(cpu, cls, n);
}

size_t CpuCache::add_room(size_t cpu, size_t cls, size_t n, bool first_step) {
  Header* h = header(cpu, cls);
  CpuState& st = states_[cpu];
  uint16_t end = __atomic_load_n(&h->end, __ATOMIC_RELAXED);
  if (end >= h->max_end)  // full, or stopped (max_end 0)
    return 0;
  size_t add = h->max_end - end;
  if (add > n)
    add = n;
  size_t bytes = add * limits_[cls].size;
  // A class's first step (grow's) is allowed over the budget, so that
  // every class can cache something, but only for objects of at most 1/64
  // of the budget (32 KiB by default): the classes above are few objects
  // each, and one of each of them alone is more than the budget.
  bool first_allowed =
      first_step && end == h->begin && bytes <= budget_bytes_ / 64;
  if (st.capacity_bytes + bytes > budget_bytes_ && !first_allowed)
    return 0;
  // Big objects share a part of the budget, so that the small classes,
  // many objects each, still get room once the big ones have theirs.
  bool big = big_class(cls);
  if (big && st.big_bytes + bytes > budget_bytes_ / kBigShare && !first_allowed)
    return 0;
  // Growing only adds room: a section that read the old end is still right.
  __atomic_store_n(&h->end, static_cast<uint16_t>(end + add), __ATOMIC_RELEASE);
  st.capacity_bytes += bytes;
  if (big)
    st.big_bytes += bytes;
  return add;
}

size_t CpuCache::push_batch(size_t cls, void* const* objs, size_t n) {
  if (n == 0)
    return 0;
  return rseq::push_batch(where_, cls, objs, n);
}

size_t CpuCache::pop_batch(size_t cls, void** out, size_t n) {
  return rseq::pop_batch(where_, cls, out, n);
}

void* CpuCache::pop_slow(size_t cls) {
  void* buf[kMaxBatch];
  Mode m = mode_or_start();
  if (m == Mode::kLocked)
    return pop_locked(cls);
  if (m == Mode::kNone || !thread_has_rseq()) {
    return backend_.refill(cls, buf, 1, 1) == 1 ? buf[0] : nullptr;
  }
  size_t cpu = current_cpu();
  ensure_region(cpu);
  note_activity(cpu);
  size_t want;
  {
    LockGuard guard(states_[cpu].lock);
    grow(cpu, cls, true);
    Header* h = header(cpu, cls);
    size_t end = __atomic_load_n(&h->end, __ATOMIC_RELAXED);
    size_t cur = __atomic_load_n(&h->current, __ATOMIC_RELAXED);
    // The room there is, and the caller's object. (Only the room, one
    // object fewer, touches no fewer pages here and made fastpath-1t 25%
    // slower in CPU time, pinned, for reasons not found.)
    want = (end > cur ? end - cur : 0) + 1;
  }
  if (want > limits_[cls].batch)
    want = limits_[cls].batch;
  // From the refill until the last block is pushed or drained back, the
  // batch is in buf only: a move (moves.h).
  MoveScope move(cls, true);
  int got = backend_.refill(cls, buf, static_cast<int>(want), kMaxBatch);
  if (got <= 0)
    return nullptr;
  if (static_cast<size_t>(got) > want) {
    // The rest of a cache line: room for it here, where the line's other
    // objects are (drained, they would go to another CPU).
    LockGuard guard(states_[cpu].lock);
    add_line_room(cpu, cls, static_cast<size_t>(got) - want);
  }
  size_t rest = static_cast<size_t>(got) - 1;
  RS_INJECT_MOVING(cls, buf + 1, rest);
  size_t pushed = push_batch(cls, buf + 1, rest);
  if (pushed < rest) {
    backend_.drain(cls, buf + 1 + pushed, static_cast<int>(rest - pushed));
  }
  return buf[0];
}

void CpuCache::push_slow(size_t cls, void* obj) {
  void* buf[kMaxBatch + 1];
  Mode m = mode_or_start();
  if (m == Mode::kLocked) {
    push_locked(cls, obj);
    return;
  }
  if (m == Mode::kNone || !thread_has_rseq()) {
    backend_.drain(cls, &obj, 1);
    return;
  }
  size_t cpu = current_cpu();
  ensure_region(cpu);
  note_activity(cpu);
  bool grew;
  {
    LockGuard guard(states_[cpu].lock);
    grew = grow(cpu, cls, false);
  }
  if (grew && rseq::push(where_, cls, obj))
    return;
  // Full: take a batch off this CPU's class and hand it back with obj, a
  // move (moves.h) until the backend has them all.
  MoveScope move(cls, true);
  size_t n = pop_batch(cls, buf, limits_[cls].batch);
  buf[n++] = obj;
  RS_INJECT_MOVING(cls, buf, n);
  backend_.drain(cls, buf, static_cast<int>(n));
}

void* CpuCache::pop_locked(size_t cls) {
  void* buf[kMaxBatch];
  size_t cpu = current_cpu();
  CpuState& st = states_[cpu];
  size_t want;
  {
    LockGuard guard(st.lock);
    if (!st.initialised)
      init_region(cpu);
    Header* h = header(cpu, cls);
    if (h->current > h->begin) {
      void* obj = slot(cpu, --h->current);
      slot(cpu, h->current) = nullptr;  // a leak checker must not see it here
      return obj;
    }
    grow(cpu, cls, true);
    want = static_cast<size_t>(h->end - h->current) + 1;
  }
  note_activity(cpu);  // a miss; no lock held: it may drain idle CPUs
  if (want > limits_[cls].batch)
    want = limits_[cls].batch;
  MoveScope move(cls, true);  // the batch is in buf only (moves.h)
  int got = backend_.refill(cls, buf, static_cast<int>(want), kMaxBatch);
  if (got <= 0)
    return nullptr;
  RS_INJECT_MOVING(cls, buf + 1, static_cast<size_t>(got - 1));
  int k = 1;
  {
    LockGuard guard(st.lock);
    Header* h = header(cpu, cls);
    if (static_cast<size_t>(got) > want)  // the rest of a line (pop_slow)
      add_line_room(cpu, cls, static_cast<size_t>(got) - want);
    while (k < got && h->current < h->end)
      slot(cpu, h->current++) = buf[k++];
  }
  if (k < got)
    backend_.drain(cls, buf + k, got - k);
  return buf[0];
}

void CpuCache::push_locked(size_t cls, void* obj) {
  void* buf[kMaxBatch + 1];
  size_t cpu = current_cpu();
  CpuState& st = states_[cpu];
  int n = 0;
  size_t move;  // the move's slot (moves.h)
  {
    LockGuard guard(st.lock);
    if (!st.initialised)
      init_region(cpu);
    Header* h = header(cpu, cls);
    if (h->current < h->end || (grow(cpu, cls, false) && h->current < h->end)) {
      slot(cpu, h->current++) = obj;
      return;
    }
    // A miss: the batch is in buf only until the backend has it (moves.h).
    // Begun under the lock, so it never waits.
    move = move_begin(cls);
    while (n < limits_[cls].batch && h->current > h->begin) {
      buf[n++] = slot(cpu, --h->current);
    }
  }
  note_activity(cpu);  // a miss; no lock held: it may drain idle CPUs
  buf[n++] = obj;
  RS_INJECT_MOVING(cls, buf, static_cast<size_t>(n));
  backend_.drain(cls, buf, n);
  move_end(cls, move);
}

size_t CpuCache::take_all(size_t cpu, size_t cls, bool reset_capacity) {
  // Caller holds the CPU's lock and, in rseq mode, has stopped and fenced
  // the CPU: nothing else changes this header now.
  void* buf[kMaxBatch];
  Header* h = header(cpu, cls);
  size_t begin = begin_of(cpu, cls);
  size_t cur = h->current;
  size_t total = cur - begin;
  while (cur > begin) {
    MoveScope move(cls, false);  // locks held: never waits (moves.h)
    size_t n = 0;
    while (n < kMaxBatch && cur > begin)
      buf[n++] = slot(cpu, --cur);
    backend_.drain(cls, buf, static_cast<int>(n));
  }
  if (reset_capacity && at_home(cpu, cls)) {
    // Back to the starter slots, the compact layout: a class that grows
    // again moves home again (and so do drained caches under test).
    __atomic_fetch_and(&states_[cpu].at_home[cls / 64],
                       ~(uint64_t{1} << (cls % 64)), __ATOMIC_RELAXED);
    begin = starter_[cls];
  }
  Header fresh;
  fresh.current = static_cast<uint16_t>(begin);
  fresh.begin = static_cast<uint16_t>(begin);
  fresh.end = reset_capacity ? fresh.begin : h->end;
  fresh.max_end = static_cast<uint16_t>(max_end_of(cpu, cls));
  __atomic_store(h, &fresh, __ATOMIC_RELEASE);  // restart: one store
  return total;
}

size_t CpuCache::restart_cpu(size_t cpu) {
  // The CPU's lock is held and it is stopped, but unfenced: a section may
  // still commit, so keep every object where it is and give the headers
  // back with no free room (end = current); slow paths grow them again.
  size_t bytes = 0;
  size_t big = 0;
  for (size_t cls = 1; cls < num_classes_; cls++) {
    Header* h = header(cpu, cls);
    Header fresh;
    fresh.current = __atomic_load_n(&h->current, __ATOMIC_RELAXED);
    fresh.begin = static_cast<uint16_t>(begin_of(cpu, cls));
    fresh.end = fresh.current;
    fresh.max_end = static_cast<uint16_t>(max_end_of(cpu, cls));
    __atomic_store(h, &fresh, __ATOMIC_RELEASE);
    size_t held =
        static_cast<size_t>(fresh.current - fresh.begin) * limits_[cls].size;
    bytes += held;
    if (big_class(cls))
      big += held;
  }
  states_[cpu].capacity_bytes = bytes;
  states_[cpu].big_bytes = big;
  return 0;
}

size_t CpuCache::drain_cpu(size_t cpu) {
  size_t drained = 0;
  for (size_t cls = 1; cls < num_classes_; cls++)
    drained += take_all(cpu, cls, true);
  states_[cpu].capacity_bytes = 0;
  states_[cpu].big_bytes = 0;
  return drained;
}

void CpuCache::note_activity(size_t cpu) {
  uint64_t now = os::now_ms();
  __atomic_store_n(&states_[cpu].last_active_ms, now, __ATOMIC_RELAXED);
  maybe_drain_idle(now);
}

bool CpuCache::selected(size_t cpu, uint64_t now, uint64_t idle_ms) const {
  const CpuState& st = states_[cpu];
  if (!st.initialised || st.capacity_bytes == 0)
    return false;  // never used, or already drained
  if (idle_ms == 0)
    return true;
  // Written by other threads without the lock: a time after `now` means
  // the CPU is busy right now.
  uint64_t last = __atomic_load_n(&st.last_active_ms, __ATOMIC_RELAXED);
  return last <= now && now - last >= idle_ms;
}

size_t CpuCache::drain(uint64_t idle_ms) {
  if (mode() == Mode::kNone)
    return 0;
  uint64_t now = os::now_ms();
  size_t drained = 0;
  if (mode_ == Mode::kLocked) {
    for (size_t cpu = 0; cpu < num_cpus_; cpu++) {
      LockGuard guard(states_[cpu].lock);
      if (selected(cpu, now, idle_ms))
        drained += drain_cpu(cpu);
    }
    return drained;
  }
  if (!fence_ok_)
    return 0;  // a fork child that could not re-register the fence
  // Stop the chosen CPUs, fence once, drain exactly those, and restart each
  // header with a single store. The locks keep slow paths from laying out
  // or growing a stopped header meanwhile. The choice is made once: the
  // activity times keep changing under us.
  static constexpr size_t kWordBits = 64;
  uint64_t chosen[kMaxCpus / kWordBits] = {};
  lock_all();
  bool any = false;
  for (size_t cpu = 0; cpu < num_cpus_; cpu++) {
    if (!selected(cpu, now, idle_ms))
      continue;
    chosen[cpu / kWordBits] |= uint64_t{1} << (cpu % kWordBits);
    any = true;
    for (size_t cls = 1; cls < num_classes_; cls++) {
      Header* h = header(cpu, cls);
      __atomic_store_n(&h->end, uint16_t{0}, __ATOMIC_RELAXED);
      __atomic_store_n(&h->begin, kStopped, __ATOMIC_RELAXED);
    }
  }
  // Every section running now restarts and then sees the stopped headers;
  // every section that committed before is visible to us. Without the
  // fence nothing may be taken: restart the headers as they were.
  bool fenced = any && fence();
  if (any && !fenced)
    fence_ok_ = false;
  for (size_t cpu = 0; cpu < num_cpus_; cpu++) {
    if ((chosen[cpu / kWordBits] >> (cpu % kWordBits) & 1) != 0)
      drained += fenced ? drain_cpu(cpu) : restart_cpu(cpu);
  }
  unlock_all();
  return drained;
}

void CpuCache::maybe_drain_idle(uint64_t now) {
  if (idle_ms_ == 0 ||
      now < __atomic_load_n(&next_idle_check_ms_, __ATOMIC_RELAXED))
    return;
  __atomic_store_n(&next_idle_check_ms_, now + idle_ms_, __ATOMIC_RELAXED);
  drain(idle_ms_);
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
