// SPDX-License-Identifier: MIT
// rseq layer: the four restartable critical sections in AArch64 inline asm.
// Included by critical.h on __aarch64__ only; same interface, contracts,
// injection points (0..7) and rules as the x86-64 sections (docs/rseq.md,
// "AArch64"):
//  - the descriptor sits in __rseq_cs (32-byte aligned) with a pointer to
//    it in __rseq_cs_ptr_array;
//  - the abort handler is preceded by RSEQ_SIG and lives in its own section,
//    rsmalloc_rseq_abort, under a name that says which section it restarts;
//  - the index (mm_cid or cpu_id) is read inside the section;
//  - exactly one store commits (the class's `current`, a strh), and it is
//    last;
//  - no calls, no syscalls, and no write to the rseq area but rseq_cs;
//  - arm64 reorders loads, so a section does not read the header field by
//    field as x86-64 does: it reads the whole 8-byte header with one ldr.
//    An aligned 64-bit load is single-copy atomic, so it sees each 8-byte
//    store (layout, restart) whole or not at all, and a section that starts
//    after a stop's membarrier fence sees the stop (which only the restart
//    store undoes) or the restarted header, never a mix. No acquire load or
//    barrier is needed; docs/rseq.md gives the whole argument.
// Branches to the out-of-line miss stubs and to asm goto labels (which GCC
// may move to .text.unlikely) are b.cond (+-1 MiB), never tbz/tbnz
// (+-32 KiB): the cpu_id sign test is cmp + b.lt.
#ifndef RS_RSEQ_CRITICAL_AARCH64_H_
#define RS_RSEQ_CRITICAL_AARCH64_H_

#ifndef RS_RSEQ_CRITICAL_H_
#  error "include rseq/critical.h"
#endif

namespace rs::rseq {

/// Where a section finds things: the regions and the rseq area's fields as
/// offsets from the thread pointer (tpidr_el0).
struct Where {
  char* base;     // region 0; region i is base + (i << kRegionShift)
  long area_off;  // __rseq_offset: tpidr_el0 offset of the rseq area
  long idx_off;   // tpidr_el0 offset of rseq->mm_cid or rseq->cpu_id
};

}  // namespace rs::rseq

// Test builds (RS_RSEQ_INJECT) spin at numbered points inside each section
// (x16 counts down rs_rseq_inject_spins[n]); each abort bumps
// rs_rseq_aborts with an exclusive-monitor loop (x15-x17), outside the
// section. Normal builds emit nothing and clobber nothing.
#ifdef RS_RSEQ_INJECT
#  define RS_RSEQ_INJECT_POINT(n)                     \
    "adrp x16, rs_rseq_inject_spins+4*" #n            \
    "\n"                                              \
    "ldr w16, [x16, :lo12:rs_rseq_inject_spins+4*" #n \
    "]\n"                                             \
    "80" #n "%=: cbz w16, 81" #n                      \
    "%=f\n" /* spin w16 times */                      \
    "sub w16, w16, #1\n"                              \
    "b 80" #n                                         \
    "%=b\n"                                           \
    "81" #n "%=:\n"
#  define RS_RSEQ_COUNT_ABORT                                     \
    "adrp x16, rs_rseq_aborts\n"                                  \
    "add x16, x16, :lo12:rs_rseq_aborts\n"                        \
    "88: ldxr x17, [x16]\n" /* rs_rseq_aborts += 1, atomically */ \
    "add x17, x17, #1\n"                                          \
    "stxr w15, x17, [x16]\n"                                      \
    "cbnz w15, 88b\n"
#  define RS_RSEQ_INJECT_CLOBBER "x15", "x16", "x17",
#else
#  define RS_RSEQ_INJECT_POINT(n)
#  define RS_RSEQ_COUNT_ABORT
#  define RS_RSEQ_INJECT_CLOBBER
#endif

// The descriptor (struct rseq_cs) for the section [1:, 2:) with abort
// handler 4:, and its entry in __rseq_cs_ptr_array.
#define RS_RSEQ_DESCRIPTOR                                               \
  ".pushsection __rseq_cs, \"aw\"\n"                                     \
  ".balign 32\n"                                                         \
  "3:\n"                                                                 \
  ".long 0, 0\n"            /* version, flags */                         \
  ".quad 1f, 2f - 1f, 4f\n" /* start_ip, post_commit_offset, abort_ip */ \
  ".popsection\n"                                                        \
  ".pushsection __rseq_cs_ptr_array, \"aw\"\n"                           \
  ".quad 3b\n"                                                           \
  ".popsection\n"

// Finds the rseq area (tp and rs stay valid across aborts: a thread's
// tpidr_el0 never changes), then arms the section: rseq->rseq_cs =
// &descriptor. Label 5: is where an abort restarts. The kernel reads
// rseq_cs on this same CPU when it preempts or signals the thread, so the
// arming store needs no barrier: a CPU sees its own stores in order. Uses
// the operands [tp], [rs] and [region] (as scratch).
#define RS_RSEQ_ARM                                   \
  "mrs %[tp], tpidr_el0\n"      /* tp = thread ptr */ \
  "add %[rs], %[tp], %[area]\n" /* rs = rseq area */  \
  "5:\n"                                              \
  "adrp %[region], 3b\n"                              \
  "add %[region], %[region], :lo12:3b\n"              \
  "str %[region], [%[rs], #8]\n" /* rseq->rseq_cs */  \
  "1:\n"                         /* start_ip */

// Finds this CPU's region and the class's header, failing (to 9:) for
// unregistered threads. The region's address depends on the index load
// and the header's on the region: these loads are ordered on any CPU.
#define RS_RSEQ_REGION                                                       \
  "ldr %w[region], [%[rs], #4]\n"                /* region = rseq->cpu_id */ \
  "cmp %w[region], #0\n"                         /* if (cpu_id < 0) */       \
  "b.lt 9f\n"                                    /*   goto miss */           \
  "ldr %w[region], [%[tp], %[idx_off]]\n"        /* = rseq->mm_cid */        \
  "add %[region], %[base], %[region], lsl #18\n" /* region */                \
  "add %[hdr], %[region], %[cls], lsl #3\n"      /* hdr = &hdr[cls] */

// A miss inside a section that returns a value: out-of-line, it sets the
// result to 0 and leaves through the section's end. No cost on a hit.
#define RS_RSEQ_MISS(result)                  \
  ".pushsection rsmalloc_rseq_miss, \"ax\"\n" \
  "9:\n"                                      \
  "mov %[" result                             \
  "], #0\n" /* result = 0 */                  \
  "b 2b\n"                                    \
  ".popsection\n"

// The abort handler, named after its section: RSEQ_SIG, then restart.
// RSEQ_SIG on arm64 is the encoding of `brk #0x45e0`, 0xd428bc00, as glibc
// (sysdeps/unix/sysv/linux/aarch64/bits/rseq.h) and the kernel selftests
// (tools/testing/selftests/rseq/rseq-arm64.h, RSEQ_SIG_CODE) define it.
// .inst emits it in instruction byte order (little-endian even on
// big-endian arm64), which is what those headers' RSEQ_SIG_DATA matches.
// Should anything ever jump to it, it traps instead of running on.
#define RS_RSEQ_ABORT(name)                    \
  ".pushsection rsmalloc_rseq_abort, \"ax\"\n" \
  ".inst 0xd428bc00\n" /* RSEQ_SIG */          \
  "rs_rseq_abort_" name                        \
  "_%=:\n"                                     \
  "4:\n" RS_RSEQ_COUNT_ABORT                   \
  "b 5b\n" /* restart from the top */          \
  ".popsection\n"

// The abort handler of a section that slow paths run with a lock held
// (relocate): in a section of its own, so that a signal handler can tell
// an interrupted fast path (rsmalloc_rseq_abort) from an interrupted slow
// path, where allocating is as undefined as in glibc's malloc.
#define RS_RSEQ_ABORT_SLOW(name)                    \
  ".pushsection rsmalloc_rseq_abort_slow, \"ax\"\n" \
  ".inst 0xd428bc00\n" /* RSEQ_SIG */               \
  "rs_rseq_abort_" name                             \
  "_%=:\n"                                          \
  "4:\n" RS_RSEQ_COUNT_ABORT                        \
  "b 5b\n" /* restart from the top */               \
  ".popsection\n"

#define RS_RSEQ_INPUTS(w) \
  [base] "r"((w).base), [area] "r"((w).area_off), [idx_off] "r"((w).idx_off)

// asm goto is used only without outputs (see critical.h).
namespace rs::rseq {

/// a == b, as a compare and a branch the compiler cannot see through (see
/// critical.h). Not a section.
RS_FAST_PATH bool same_word(uintptr_t a, uintptr_t b) {
  __asm__ goto("cmp %0, %1\n\tb.ne %l[other]"
               :
               : "r"(a), "r"(b)
               : "cc"
               : other);
  return true;
other:
  return false;
}

/// Pops an object of class cls from this CPU's region; nullptr when the
/// class is empty (or the thread has no rseq). One restartable section.
RS_FAST_PATH void* pop(const Where& w, size_t cls) {
  void* obj;
  uintptr_t tp, rs, region, hdr, h, cur, begin;
  __asm__ volatile(
      RS_RSEQ_DESCRIPTOR
      RS_RSEQ_ARM
      RS_RSEQ_REGION
      // The whole header in one single-copy-atomic load: begin and current
      // come from the same moment, so a stop (begin = 0xffff) is seen, or
      // a restarted or laid-out header whole.
      "ldr %[h], [%[hdr]]\n"                    // h = hdr[cls], all 8 bytes
      RS_RSEQ_INJECT_POINT(0)
      "ubfx %[begin], %[h], #32, #16\n"         // begin = h.begin
      "and %[cur], %[h], #0xffff\n"             // cur = h.current
      "cmp %[cur], %[begin]\n"                  // if (cur <= begin)
      "b.ls 9f\n"                               //   goto miss (obj = 0)
      "sub %[cur], %[cur], #1\n"                // cur -= 1
      "ldr %[obj], [%[region], %[cur], lsl #3]\n" // obj = slot[cur]
      RS_RSEQ_INJECT_POINT(1)
      "strh %w[cur], [%[hdr]]\n"                // hdr[cls].current = cur
      "2:\n"                                    // post-commit
      RS_RSEQ_ABORT("pop")
      RS_RSEQ_MISS("obj")
      : [obj] "=&r"(obj), [tp] "=&r"(tp), [rs] "=&r"(rs),
        [region] "=&r"(region), [hdr] "=&r"(hdr), [h] "=&r"(h),
        [cur] "=&r"(cur), [begin] "=&r"(begin)
      : RS_RSEQ_INPUTS(w), [cls] "r"(cls)
      : RS_RSEQ_INJECT_CLOBBER "memory", "cc");
  return obj;
}

/// Pushes obj of class cls onto this CPU's region; false when the class is
/// full (or uninitialised, stopped, or the thread has no rseq). Scratch
/// registers (x9: tp, x10: rseq area, x11: region, x12: &hdr[cls], x13: the
/// header, x14: cur) are clobbers, so the asm goto has no outputs.
RS_FAST_PATH bool push(const Where& w, size_t cls, void* obj) {
  __asm__ volatile goto(
      RS_RSEQ_DESCRIPTOR
      "mrs x9, tpidr_el0\n"                    // x9 = thread pointer
      "add x10, x9, %[area]\n"                 // x10 = rseq area
      "5:\n"
      "adrp x11, 3b\n"
      "add x11, x11, :lo12:3b\n"               // x11 = &descriptor
      "str x11, [x10, #8]\n"                   // rseq->rseq_cs = x11
      "1:\n"                                   // start_ip
      "ldr w11, [x10, #4]\n"                   // if (rseq->cpu_id < 0)
      "cmp w11, #0\n"
      "b.lt %l[full]\n"                        //   goto full
      "ldr w11, [x9, %[idx_off]]\n"            // region = rseq->mm_cid
      "add x11, %[base], x11, lsl #18\n"       // region = base + idx << 18
      "add x12, x11, %[cls], lsl #3\n"         // x12 = &hdr[cls]
      // end and current from one load: a header being laid out, stopped
      // or restarted by another CPU is seen all old or all new.
      "ldr x13, [x12]\n"                       // h = hdr[cls], all 8 bytes
      RS_RSEQ_INJECT_POINT(2)
      "and w14, w13, #0xffff\n"                // cur = h.current
      "cmp w14, w13, lsr #16\n"                // if (cur >= h.end)
      "b.hs %l[full]\n"                        //   goto full
      "str %[obj], [x11, x14, lsl #3]\n"       // slot[cur] = obj
      RS_RSEQ_INJECT_POINT(3)
      "add w14, w14, #1\n"                     // cur += 1
      "strh w14, [x12]\n"                      // hdr[cls].current = cur
      "2:\n"                                   // post-commit
      RS_RSEQ_ABORT("push")
      :
      : RS_RSEQ_INPUTS(w), [cls] "r"(cls), [obj] "r"(obj)
      : RS_RSEQ_INJECT_CLOBBER "x9", "x10", "x11", "x12", "x13", "x14",
        "memory", "cc"
      : full);
  return true;
full:
  return false;
}

/// Moves class cls of CPU `index` from its starter slots to its home slots
/// in one section (critical.h's x86-64 relocate says what and why).
/// Scratch registers as in push, and x7, x8 for the copied slots.
RS_FAST_PATH bool relocate(const Where& w,
                           size_t index,
                           size_t cls,
                           uint64_t expect,
                           uint64_t next,
                           size_t from,
                           size_t to) {
  __asm__ volatile goto(
      RS_RSEQ_DESCRIPTOR
      "mrs x9, tpidr_el0\n"                    // x9 = thread pointer
      "add x10, x9, %[area]\n"                 // x10 = rseq area
      "5:\n"
      "adrp x11, 3b\n"
      "add x11, x11, :lo12:3b\n"               // x11 = &descriptor
      "str x11, [x10, #8]\n"                   // rseq->rseq_cs = x11
      "1:\n"                                   // start_ip
      "ldr w11, [x10, #4]\n"                   // if (rseq->cpu_id < 0)
      "cmp w11, #0\n"
      "b.lt %l[changed]\n"                     //   goto changed
      "ldr w11, [x9, %[idx_off]]\n"            // x11 = rseq->mm_cid
      "cmp x11, %[index]\n"                    // if (x11 != index)
      "b.ne %l[changed]\n"                     //   goto changed
      "add x11, %[base], x11, lsl #18\n"       // region = base + idx << 18
      "add x12, x11, %[cls], lsl #3\n"         // x12 = &hdr[cls]
      "ldr x13, [x12]\n"                       // if (hdr[cls] != expect)
      "cmp x13, %[expect]\n"
      "b.ne %l[changed]\n"                     //   goto changed
      "add x13, x11, %[from], lsl #3\n"        // x13 = &slot[from]
      "add x14, x11, %[to], lsl #3\n"          // x14 = &slot[to]
      "ldp x7, x8, [x13]\n"                    // slot[to..+1] = slot[from..+1]
      "stp x7, x8, [x14]\n"
      RS_RSEQ_INJECT_POINT(8)
      "ldp x7, x8, [x13, #16]\n"               // slot[to+2..+3] = ...
      "stp x7, x8, [x14, #16]\n"
      "str %[next], [x12]\n"                   // hdr[cls] = next
      "2:\n"                                   // post-commit
      RS_RSEQ_ABORT_SLOW("relocate")
      :
      : RS_RSEQ_INPUTS(w), [index] "r"(index), [cls] "r"(cls),
        [expect] "r"(expect), [next] "r"(next), [from] "r"(from),
        [to] "r"(to)
      : RS_RSEQ_INJECT_CLOBBER "x7", "x8", "x9", "x10", "x11", "x12", "x13",
        "x14", "memory", "cc"
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
  uintptr_t tp, rs, region, hdr, h, cur, begin;
  size_t i;
  __asm__ volatile(
      RS_RSEQ_DESCRIPTOR
      RS_RSEQ_ARM
      RS_RSEQ_REGION
      "ldr %[h], [%[hdr]]\n"                    // h = hdr[cls], all 8 bytes
      RS_RSEQ_INJECT_POINT(6)
      "ubfx %[begin], %[h], #32, #16\n"         // begin = h.begin
      "and %[cur], %[h], #0xffff\n"             // cur = h.current
      "cmp %[cur], %[begin]\n"                  // if (cur <= begin)
      "b.ls 9f\n"                               //   goto none (i = 0)
      "mov %[i], #0\n"                          // i = 0
      "6:\n"                                    // do {
      "sub %[cur], %[cur], #1\n"                //   cur -= 1
      "ldr %[h], [%[region], %[cur], lsl #3]\n" //   h = slot[cur]
      "str %[h], [%[out], %[i], lsl #3]\n"      //   out[i] = h
      "add %[i], %[i], #1\n"                    //   i += 1
      RS_RSEQ_INJECT_POINT(4)
      "cmp %[i], %[n]\n"                        //   if (i == n) break
      "b.hs 7f\n"
      "cmp %[cur], %[begin]\n"                  // } while (cur > begin)
      "b.hi 6b\n"
      "7:\n"
      "strh %w[cur], [%[hdr]]\n"                // hdr[cls].current = cur
      "2:\n"                                    // post-commit
      RS_RSEQ_ABORT("pop_batch")
      RS_RSEQ_MISS("i")
      : [tp] "=&r"(tp), [rs] "=&r"(rs), [region] "=&r"(region),
        [hdr] "=&r"(hdr), [h] "=&r"(h), [cur] "=&r"(cur),
        [begin] "=&r"(begin), [i] "=&r"(i)
      : RS_RSEQ_INPUTS(w), [cls] "r"(cls), [out] "r"(out), [n] "r"(n)
      : RS_RSEQ_INJECT_CLOBBER "memory", "cc");
  return i;
}

/// Pushes up to n (>= 1) objects of class cls from objs; returns how many.
RS_FAST_PATH size_t push_batch(const Where& w,
                               size_t cls,
                               void* const* objs,
                               size_t n) {
  uintptr_t tp, rs, region, hdr, h, cur, end;
  size_t i;
  __asm__ volatile(
      RS_RSEQ_DESCRIPTOR
      RS_RSEQ_ARM
      RS_RSEQ_REGION
      "ldr %[h], [%[hdr]]\n"                    // h = hdr[cls], all 8 bytes
      RS_RSEQ_INJECT_POINT(7)
      "ubfx %[end], %[h], #16, #16\n"           // end = h.end
      "and %[cur], %[h], #0xffff\n"             // cur = h.current
      "cmp %[cur], %[end]\n"                    // if (cur >= end)
      "b.hs 9f\n"                               //   goto none (i = 0)
      "mov %[i], #0\n"                          // i = 0
      "6:\n"                                    // do {
      "ldr %[h], [%[objs], %[i], lsl #3]\n"     //   h = objs[i]
      "str %[h], [%[region], %[cur], lsl #3]\n" //   slot[cur] = h
      "add %[cur], %[cur], #1\n"                //   cur += 1
      "add %[i], %[i], #1\n"                    //   i += 1
      RS_RSEQ_INJECT_POINT(5)
      "cmp %[i], %[n]\n"                        //   if (i == n) break
      "b.hs 7f\n"
      "cmp %[cur], %[end]\n"                    // } while (cur < end)
      "b.lo 6b\n"
      "7:\n"
      "strh %w[cur], [%[hdr]]\n"                // hdr[cls].current = cur
      "2:\n"                                    // post-commit
      RS_RSEQ_ABORT("push_batch")
      RS_RSEQ_MISS("i")
      : [tp] "=&r"(tp), [rs] "=&r"(rs), [region] "=&r"(region),
        [hdr] "=&r"(hdr), [h] "=&r"(h), [cur] "=&r"(cur), [end] "=&r"(end),
        [i] "=&r"(i)
      : RS_RSEQ_INPUTS(w), [cls] "r"(cls), [objs] "r"(objs), [n] "r"(n)
      : RS_RSEQ_INJECT_CLOBBER "memory", "cc");
  return i;
}

}  // namespace rs::rseq

#endif  // RS_RSEQ_CRITICAL_AARCH64_H_
