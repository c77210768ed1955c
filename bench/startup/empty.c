/* SPDX-License-Identifier: MIT */
/* empty: a shared library with nothing in it but one int, the baseline of
 * bench/startup-ab (what preloading any library costs). */
int rs_bench_empty_library;
