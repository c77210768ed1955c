// SPDX-License-Identifier: MIT
// rseq layer: the four restartable critical sections on a CPU's cache
// region, in x86-64 inline asm (AArch64: critical_aarch64.h). docs/rseq.md
// explains them; the rules:
//  - the descriptor sits in __rseq_cs (32-byte aligned) with a pointer to
//    it in __rseq_cs_ptr_array;
//  - the abort handler is preceded by RSEQ_SIG and lives in its own section,
//    rsmalloc_rseq_abort, under a name that says which section it restarts;
//  - the index (mm_cid or cpu_id) is read inside the section;
//  - exactly one store commits (the class's `current`), and it is last;
//  - no calls, no syscalls, and no write to the rseq area but rseq_cs;
//  - the header field a cross-CPU stop marks is read first (pops: begin,
//    pushes: end), so a section that starts after the stop's fence sees
//    the stop, or the header restored by one 8-byte store, never a mix.
// Region layout: Header hdr[class] at the start (8 bytes each: current, end,
// begin, max_end as uint16_t), then pointer slots indexed from the region
// start. A thread whose rseq cpu_id is negative is not registered: every
// section fails at once for it.
#ifndef RS_RSEQ_CRITICAL_H_
#define RS_RSEQ_CRITICAL_H_

#include "base.h"

#ifdef RS_RSEQ_INJECT
// Defined in cpu_cache.cc on every architecture, so the tests that set
// them build everywhere; only architectures with sections use them.
extern "C" {
extern volatile uint32_t rs_rseq_inject_spins[9];
extern volatile uint64_t rs_rseq_aborts;
}
#endif

#if defined(__x86_64__)

namespace rs::rseq {

/// Where a section finds things: the regions and the rseq area's fields as
/// offsets from the thread pointer (%fs).
struct Where {
  char* base;     // region 0; region i is base + (i << kRegionShift)
  long area_off;  // __rseq_offset: %fs offset of the rseq area
  long idx_off;   // %fs offset of rseq->mm_cid or rseq->cpu_id
};

}  // namespace rs::rseq

// Test builds (RS_RSEQ_INJECT) spin at numbered points inside each section
// for rs_rseq_inject_spins[n] iterations, so preemption, migration and
// signals land there and the abort handlers really run; each abort bumps
// rs_rseq_aborts. Normal builds emit nothing.
#  ifdef RS_RSEQ_INJECT
#    define RS_RSEQ_INJECT_POINT(n)     \
      "movl rs_rseq_inject_spins+4*" #n \
      "(%%rip), %%r11d\n"               \
      "80" #n                           \
      "%=: testl %%r11d, %%r11d\n"      \
      "jz 81" #n                        \
      "%=f\n"                           \
      "decl %%r11d\n"                   \
      "jmp 80" #n                       \
      "%=b\n"                           \
      "81" #n "%=:\n"
#    define RS_RSEQ_COUNT_ABORT "lock incq rs_rseq_aborts(%%rip)\n"
#    define RS_RSEQ_INJECT_CLOBBER "r11",
#  else
#    define RS_RSEQ_INJECT_POINT(n)
#    define RS_RSEQ_COUNT_ABORT
#    define RS_RSEQ_INJECT_CLOBBER
#  endif

// The descriptor (struct rseq_cs) for the section [1:, 2:) with abort
// handler 4:, and its entry in __rseq_cs_ptr_array.
#  define RS_RSEQ_DESCRIPTOR                                               \
    ".pushsection __rseq_cs, \"aw\"\n"                                     \
    ".balign 32\n"                                                         \
    "3:\n"                                                                 \
    ".long 0, 0\n"            /* version, flags */                         \
    ".quad 1f, 2f - 1f, 4f\n" /* start_ip, post_commit_offset, abort_ip */ \
    ".popsection\n"                                                        \
    ".pushsection __rseq_cs_ptr_array, \"aw\"\n"                           \
    ".quad 3b\n"                                                           \
    ".popsection\n"

// Arms the section: rseq->rseq_cs = &descriptor. Label 5: is where an
// abort restarts. Uses scratch as a temporary.
#  define RS_RSEQ_ARM(scratch)                          \
    "5:\n"                                              \
    "leaq 3b(%%rip), %" scratch                         \
    "\n" /* scratch = &descriptor */                    \
    "movq %" scratch                                    \
    ", %%fs:8(%[area])\n" /* rseq->rseq_cs = scratch */ \
    "1:\n"                /* start_ip */

// Finds this CPU's region, failing for unregistered threads.
#  define RS_RSEQ_REGION(miss)                                           \
    "cmpl $0, %%fs:4(%[area])\n" /* if (rseq->cpu_id < 0) */             \
    "jl " miss                                                           \
    "\n"                                   /*   goto miss */             \
    "movl %%fs:(%[idx_off]), %k[region]\n" /* region = rseq->mm_cid */   \
    "shlq $18, %[region]\n"                /* region <<= kRegionShift */ \
    "addq %[base], %[region]\n"            /* region += base */

// A miss inside a section that returns a value: out-of-line, it sets the
// result to 0 and leaves through the section's end. No cost on a hit.
#  define RS_RSEQ_MISS(result)                  \
    ".pushsection rsmalloc_rseq_miss, \"ax\"\n" \
    "9:\n"                                      \
    "xorl %k[" result "], %k[" result           \
    "]\n" /* result = 0 */                      \
    "jmp 2b\n"                                  \
    ".popsection\n"

// The abort handler, named after its section: RSEQ_SIG, then restart.
#  define RS_RSEQ_ABORT(name)                    \
    ".pushsection rsmalloc_rseq_abort, \"ax\"\n" \
    ".long 0x53053053\n" /* RSEQ_SIG */          \
    "rs_rseq_abort_" name                        \
    "_%=:\n"                                     \
    "4:\n" RS_RSEQ_COUNT_ABORT                   \
    "jmp 5b\n" /* restart from the top */        \
    ".popsection\n"

// The abort handler of a section that slow paths run with a lock held
// (relocate): in a section of its own, so that a signal handler can tell
// an interrupted fast path (rsmalloc_rseq_abort) from an interrupted slow
// path, where allocating is as undefined as in glibc's malloc.
#  define RS_RSEQ_ABORT_SLOW(name)                    \
    ".pushsection rsmalloc_rseq_abort_slow, \"ax\"\n" \
    ".long 0x53053053\n" /* RSEQ_SIG */               \
    "rs_rseq_abort_" name                             \
    "_%=:\n"                                          \
    "4:\n" RS_RSEQ_COUNT_ABORT                        \
    "jmp 5b\n" /* restart from the top */             \
    ".popsection\n"

#  define RS_RSEQ_INPUTS(w) \
    [base] "r"((w).base), [area] "r"((w).area_off), [idx_off] "r"((w).idx_off)

// asm goto is used only without outputs: GCC 12 miscompiles asm goto
// whose outputs meet another value at the target label.
namespace rs::rseq {

/// a == b, as a compare and a branch the compiler cannot see through: it
/// neither goes on with b's register once it knows the two are equal
/// (clang would) nor turns a choice between them into a conditional move,
/// which waits for both. Not a section; free uses it to take the class for
/// its push from the block's tag (lib/allocator.h, same_class).
RS_FAST_PATH bool same_word(uintptr_t a, uintptr_t b) {
  __asm__ goto("cmp %1, %0\n\tjne %l[other]" : : "r"(a), "r"(b) : "cc" : other);
  return true;
other:
  return false;
}

/// Pops an object of class cls from this CPU's region; nullptr when the
/// class is empty (or the thread has no rseq). One restartable section.
RS_FAST_PATH void* pop(const Where& w, size_t cls) {
  void* obj;
  uintptr_t region, cur, begin;
  __asm__ volatile(
      RS_RSEQ_DESCRIPTOR
      RS_RSEQ_ARM("[region]")
      RS_RSEQ_REGION("9f")
      // begin before current: a section that starts while the header is
      // stopped sees the stop, or else the restored header whole.
      "movzwl 4(%[region], %[cls], 8), %k[begin]\n" // begin = hdr[cls].begin
      RS_RSEQ_INJECT_POINT(0)
      "movzwl (%[region], %[cls], 8), %k[cur]\n"    // cur = hdr[cls].current
      "cmpl %k[begin], %k[cur]\n"                   // if (cur <= begin)
      "jbe 9f\n"                                    //   goto miss (obj = 0)
      "movq -8(%[region], %[cur], 8), %[obj]\n"   // obj = slot[cur - 1]
      RS_RSEQ_INJECT_POINT(1)
      "decl %k[cur]\n"                            // cur -= 1
      "movw %w[cur], (%[region], %[cls], 8)\n"    // hdr[cls].current = cur
      "2:\n"                                      // post-commit
      RS_RSEQ_ABORT("pop")
      RS_RSEQ_MISS("obj")
      : [obj] "=&a"(obj), [region] "=&r"(region), [cur] "=&r"(cur),
        [begin] "=&r"(begin)
      : RS_RSEQ_INPUTS(w), [cls] "r"(cls)
      : RS_RSEQ_INJECT_CLOBBER "memory", "cc");
  return obj;
}

/// Pushes obj of class cls onto this CPU's region; false when the class is
/// full (or uninitialised, stopped, or the thread has no rseq). Scratch
/// registers are clobbers, so the asm goto has no outputs.
RS_FAST_PATH bool push(const Where& w, size_t cls, void* obj) {
  __asm__ volatile goto(
      RS_RSEQ_DESCRIPTOR
      "5:\n"
      "leaq 3b(%%rip), %%r8\n"                 // r8 = &descriptor
      "movq %%r8, %%fs:8(%[area])\n"           // rseq->rseq_cs = r8
      "1:\n"                                   // start_ip
      "cmpl $0, %%fs:4(%[area])\n"             // if (rseq->cpu_id < 0)
      "jl %l[full]\n"                          //   goto full
      "movl %%fs:(%[idx_off]), %%r8d\n"        // region = rseq->mm_cid
      "shlq $18, %%r8\n"                       // region <<= kRegionShift
      "addq %[base], %%r8\n"                   // region += base
      // end before current: a header being laid out, stopped or restarted
      // by another CPU is seen all old (end 0) or all new.
      "movzwl 2(%%r8, %[cls], 8), %%r10d\n"    // end = hdr[cls].end
      RS_RSEQ_INJECT_POINT(2)
      "movzwl (%%r8, %[cls], 8), %%r9d\n"      // cur = hdr[cls].current
      "cmpl %%r10d, %%r9d\n"                   // if (cur >= end)
      "jae %l[full]\n"                         //   goto full
      "movq %[obj], (%%r8, %%r9, 8)\n"         // slot[cur] = obj
      RS_RSEQ_INJECT_POINT(3)
      "incl %%r9d\n"                           // cur += 1
      "movw %%r9w, (%%r8, %[cls], 8)\n"        // hdr[cls].current = cur
      "2:\n"                                   // post-commit
      RS_RSEQ_ABORT("push")
      :
      : RS_RSEQ_INPUTS(w), [cls] "r"(cls), [obj] "r"(obj)
      : RS_RSEQ_INJECT_CLOBBER "r8", "r9", "r10", "memory", "cc"
      : full);
  return true;
full:
  return false;
}

/// Moves class cls of CPU `index` from its starter slots to its home slots
/// (cpu_cache.h, kStarterSlots) in one section: when the thread runs on
/// that index and the header still reads `expect`, copies slots [from,
/// from + 4) to [to, to + 4) and stores `next` as the header, the commit;
/// false otherwise (the header changed, the thread moved, no rseq). Four
/// slots whatever the count: past the count both sides are free room.
RS_FAST_PATH bool relocate(const Where& w,
                           size_t index,
                           size_t cls,
                           uint64_t expect,
                           uint64_t next,
                           size_t from,
                           size_t to) {
  __asm__ volatile goto(
      RS_RSEQ_DESCRIPTOR
      "5:\n"
      "leaq 3b(%%rip), %%r8\n"                 // r8 = &descriptor
      "movq %%r8, %%fs:8(%[area])\n"           // rseq->rseq_cs = r8
      "1:\n"                                   // start_ip
      "cmpl $0, %%fs:4(%[area])\n"             // if (rseq->cpu_id < 0)
      "jl %l[changed]\n"                       //   goto changed
      "movl %%fs:(%[idx_off]), %%r8d\n"        // r8 = rseq->mm_cid
      "cmpq %[index], %%r8\n"                  // if (r8 != index)
      "jne %l[changed]\n"                      //   goto changed
      "shlq $18, %%r8\n"                       // region = r8 << kRegionShift
      "addq %[base], %%r8\n"                   // region += base
      "cmpq %[expect], (%%r8, %[cls], 8)\n"    // if (hdr[cls] != expect)
      "jne %l[changed]\n"                      //   goto changed
      "movq (%%r8, %[from], 8), %%r9\n"        // slot[to] = slot[from]
      "movq %%r9, (%%r8, %[to], 8)\n"
      "movq 8(%%r8, %[from], 8), %%r9\n"       // ... + 1
      "movq %%r9, 8(%%r8, %[to], 8)\n"
      RS_RSEQ_INJECT_POINT(8)
      "movq 16(%%r8, %[from], 8), %%r9\n"      // ... + 2
      "movq %%r9, 16(%%r8, %[to], 8)\n"
      "movq 24(%%r8, %[from], 8), %%r9\n"      // ... + 3
      "movq %%r9, 24(%%r8, %[to], 8)\n"
      "movq %[next], (%%r8, %[cls], 8)\n"      // hdr[cls] = next
      "2:\n"                                   // post-commit
      RS_RSEQ_ABORT_SLOW("relocate")
      :
      : RS_RSEQ_INPUTS(w), [index] "r"(index), [cls] "r"(cls),
        [expect] "r"(expect), [next] "r"(next), [from] "r"(from),
        [to] "r"(to)
      : RS_RSEQ_INJECT_CLOBBER "r8", "r9", "memory", "cc"
      : changed);
  return true;
changed:
  return false;
}

/// Pops up to n (>= 1) objects of class cls into out; returns how many.
RS_FAST_PATH size_t pop_batch(const Where& w,
                              size_t cls,
                              void** out,
                              size_t n) {
  uintptr_t region, cur, begin, tmp;
  size_t i;
  __asm__ volatile(
      RS_RSEQ_DESCRIPTOR
      RS_RSEQ_ARM("[region]")
      RS_RSEQ_REGION("9f")
      "movzwl 4(%[region], %[cls], 8), %k[begin]\n" // begin = hdr[cls].begin
      RS_RSEQ_INJECT_POINT(6)
      "movzwl (%[region], %[cls], 8), %k[cur]\n"    // cur = hdr[cls].current
      "cmpl %k[begin], %k[cur]\n"                   // if (cur <= begin)
      "jbe 9f\n"                                    //   goto none (i = 0)
      "xorl %k[i], %k[i]\n"                         // i = 0
      "6:\n"                                        // do {
      "decl %k[cur]\n"                              //   cur -= 1
      "movq (%[region], %[cur], 8), %[tmp]\n"       //   tmp = slot[cur]
      "movq %[tmp], (%[out], %[i], 8)\n"            //   out[i] = tmp
      "incq %[i]\n"                                 //   i += 1
      RS_RSEQ_INJECT_POINT(4)
      "cmpq %[n], %[i]\n"                           //   if (i == n) break
      "jae 7f\n"
      "cmpl %k[begin], %k[cur]\n"                   // } while (cur > begin)
      "ja 6b\n"
      "7:\n"
      "movw %w[cur], (%[region], %[cls], 8)\n"      // hdr[cls].current = cur
      "2:\n"                                        // post-commit
      RS_RSEQ_ABORT("pop_batch")
      RS_RSEQ_MISS("i")
      : [region] "=&r"(region), [cur] "=&r"(cur), [begin] "=&r"(begin),
        [tmp] "=&r"(tmp), [i] "=&r"(i)
      : RS_RSEQ_INPUTS(w), [cls] "r"(cls), [out] "r"(out), [n] "r"(n)
      : RS_RSEQ_INJECT_CLOBBER "memory", "cc");
  return i;
}

/// Pushes up to n (>= 1) objects of class cls from objs; returns how many.
RS_FAST_PATH size_t push_batch(const Where& w,
                               size_t cls,
                               void* const* objs,
                               size_t n) {
  uintptr_t region, cur, end, tmp;
  size_t i;
  __asm__ volatile(
      RS_RSEQ_DESCRIPTOR
      RS_RSEQ_ARM("[region]")
      RS_RSEQ_REGION("9f")
      "movzwl 2(%[region], %[cls], 8), %k[end]\n"   // end = hdr[cls].end
      RS_RSEQ_INJECT_POINT(7)
      "movzwl (%[region], %[cls], 8), %k[cur]\n"    // cur = hdr[cls].current
      "cmpl %k[end], %k[cur]\n"                     // if (cur >= end)
      "jae 9f\n"                                    //   goto none (i = 0)
      "xorl %k[i], %k[i]\n"                         // i = 0
      "6:\n"                                        // do {
      "movq (%[objs], %[i], 8), %[tmp]\n"           //   tmp = objs[i]
      "movq %[tmp], (%[region], %[cur], 8)\n"       //   slot[cur] = tmp
      "incl %k[cur]\n"                              //   cur += 1
      "incq %[i]\n"                                 //   i += 1
      RS_RSEQ_INJECT_POINT(5)
      "cmpq %[n], %[i]\n"                           //   if (i == n) break
      "jae 7f\n"
      "cmpl %k[end], %k[cur]\n"                     // } while (cur < end)
      "jb 6b\n"
      "7:\n"
      "movw %w[cur], (%[region], %[cls], 8)\n"      // hdr[cls].current = cur
      "2:\n"                                        // post-commit
      RS_RSEQ_ABORT("push_batch")
      RS_RSEQ_MISS("i")
      : [region] "=&r"(region), [cur] "=&r"(cur), [end] "=&r"(end),
        [tmp] "=&r"(tmp), [i] "=&r"(i)
      : RS_RSEQ_INPUTS(w), [cls] "r"(cls), [objs] "r"(objs), [n] "r"(n)
      : RS_RSEQ_INJECT_CLOBBER "memory", "cc");
  return i;
}

}  // namespace rs::rseq

#elif defined(__aarch64__)

#  include "rseq/critical_aarch64.h"

#else  // neither: no sections; rseq::probe() reports rseq unusable.

namespace rs::rseq {

struct Where {
  char* base;     // always nullptr here
  long area_off;  // unused
  long idx_off;   // unused
};

RS_FAST_PATH bool same_word(uintptr_t a, uintptr_t b) {
  return a == b;
}

RS_FAST_PATH void* pop(const Where&, size_t) {
  return nullptr;
}

RS_FAST_PATH bool push(const Where&, size_t, void*) {
  return false;
}

RS_FAST_PATH bool relocate(
    const Where&, size_t, size_t, uint64_t, uint64_t, size_t, size_t) {
  return false;
}

RS_FAST_PATH size_t pop_batch(const Where&, size_t, void**, size_t) {
  return 0;
}

RS_FAST_PATH size_t push_batch(const Where&, size_t, void* const*, size_t) {
  return 0;
}

}  // namespace rs::rseq

#endif  // __x86_64__, __aarch64__

#endif  // RS_RSEQ_CRITICAL_H_
