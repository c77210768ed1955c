// SPDX-License-Identifier: MIT
// ABI layer: what the C runtime's start files would give the library.
//
// librsmalloc.so is linked without them (-nostartfiles, Makefile.am): their
// _init and _fini, the transactional-memory clone tables and __cxa_finalize
// at unload cost every process four symbol lookups (three of them through
// every loaded object, for weak symbols that are never there) and two calls
// at start and exit, on code pages at both ends of the text
// (docs/benchmarks.md, start-up). The constructors and destructors run from
// .init_array and .fini_array, which the dynamic loader walks itself.
//
// __dso_handle names the library to the C library; pthread_atfork (from
// libc_nonshared.a) passes it so that an unloaded object's fork handlers
// can be dropped. The library is linked -z nodelete, so it is never
// unloaded and its handlers never dangle (the start files' __cxa_finalize
// call at unload is what dropped them).
extern "C" {
__attribute__((visibility("hidden"))) void* __dso_handle = &__dso_handle;
}

// The start files also ended .eh_frame with a zero word (crtendS.o's
// __FRAME_END__), which unwinders that walk the section rather than its
// .eh_frame_hdr table stop at. The default linker script puts the
// .eh_frame.* input sections after every .eh_frame one.
__asm__(
    ".section .eh_frame.rs_end,\"a\"\n"
    ".balign 4\n"
    ".long 0\n"
    ".previous\n");
