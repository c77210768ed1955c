// SPDX-License-Identifier: MIT
// Forced aborts of the rseq critical sections: with rs_rseq_inject_spins
// holding each section open at its injection points, affinity flips, a
// concurrent drain_all() and a SIGALRM storm preempt, migrate and signal
// threads inside sections. The abort handlers must run (rs_rseq_aborts > 0)
// and the standalone CpuCache must still conserve every object.
#include "cache_harness.h"

namespace {

// ~0.8 ns per spin: points 0-3 hold pop and push open ~16 us; points 4
// and 5 spin per object of a batch (up to 32), so less, or a batch section
// would rarely get through a 50 us signal storm. Points 0, 2, 6 and 7 sit
// between a section's two header loads; point 8 holds relocate open
// between its copies, as long as pop and push.
constexpr uint32_t kSpins[9] = {20000, 20000, 20000, 20000, 2000,
                                2000,  5000,  5000,  20000};

RunConfig inject_config(const char* name) {
  RunConfig cfg = {};
  cfg.name = name;
  cfg.want_rseq = !rseq_forced_off();
  cfg.workers = 24;
  cfg.millis = 1200;
  cfg.flip_affinity = true;
  cfg.drainer = true;
  memcpy(cfg.spins, kSpins, sizeof(kSpins));
  return cfg;
}

/// The rseq-only checks, skipped (with a note) when rseq_forced_off().
/// Returns false when skipped.
bool expect_aborts(const RunConfig& cfg, const RunResult& res) {
  expect_mode(cfg, res);
  if (!cfg.want_rseq) {
    fprintf(stderr,
            "%s: rseq off (RSMALLOC_RSEQ=0, valgrind, or none here), locked "
            "mode: abort checks skipped\n",
            cfg.name);
    return false;
  }
  // repeat.sh adds these lines up.
  fprintf(stderr, "%s: %llu rseq aborts in %llu operations (%llu SIGALRM)\n",
          cfg.name, static_cast<unsigned long long>(res.aborts),
          static_cast<unsigned long long>(res.ops),
          static_cast<unsigned long long>(res.signals));
  ck_assert_msg(res.aborts > 0, "%s: no rseq abort despite the injection",
                cfg.name);
  return true;
}

void note_aborts(const RunConfig& cfg, const RunResult& res) {
  if (expect_aborts(cfg, res)) {
    note("rseq/test_inject: %s: %llu rseq aborts, %llu operations\n", cfg.name,
         static_cast<unsigned long long>(res.aborts),
         static_cast<unsigned long long>(res.ops));
  } else {
    note("rseq/test_inject: %s: locked mode (RSMALLOC_RSEQ=0)\n", cfg.name);
  }
}

START_TEST(spins_with_migration_and_drain) {
  RunConfig cfg = inject_config("inject+migrate+drain");
  RunResult res;
  run(cfg, &res);
  note_aborts(cfg, res);
  ck_assert_uint_gt(res.flips, at_least(10));
  ck_assert_uint_gt(res.drains, at_least(5));
}

END_TEST

START_TEST(spins_with_signal_storm) {
  RunConfig cfg = inject_config("inject+SIGALRM/50us");
  cfg.signal_us = 50;
  RunResult res;
  run(cfg, &res);
  note_aborts(cfg, res);
  ck_assert_uint_gt(res.signals, at_least(100));
}

END_TEST

// A drain stops a CPU's headers, fences, empties them and restarts each
// with one store; a section that starts after the fence must see the stop
// or the restarted header whole. Spinning between every section's two
// header loads while drain_all() runs catches one that reads a field
// before the restart and the other after (pop once read current before
// begin, and so popped objects the drain had already taken).
START_TEST(spins_between_header_loads_with_drain) {
  RunConfig cfg = inject_config("inject header loads+drain");
  memset(cfg.spins, 0, sizeof(cfg.spins));
  cfg.spins[0] = cfg.spins[2] = cfg.spins[6] = cfg.spins[7] = 20000;
  cfg.flip_affinity = false;
  RunResult res;
  run(cfg, &res);
  note_aborts(cfg, res);
  ck_assert_uint_gt(res.drains, at_least(5));
  ck_assert_uint_gt(res.drained_by_drainer, 0);
}

END_TEST

// One injection point at a time, so each of the five sections (pop: 0, 1;
// push: 2, 3; pop_batch: 6, 4; push_batch: 7, 5; relocate: 8) is held
// open alone. A class moves from its starter slots to its home slots
// (relocate) once per CPU until a drain sends it back: point 8 runs with
// the drainer, so that it moves again and again.
START_TEST(each_injection_point) {
  static const char* const kNames[9] = {
      "inject point 0 (pop)",       "inject point 1 (pop)",
      "inject point 2 (push)",      "inject point 3 (push)",
      "inject point 4 (pop_batch)", "inject point 5 (push_batch)",
      "inject point 6 (pop_batch)", "inject point 7 (push_batch)",
      "inject point 8 (relocate)",
  };
  if (rs_on_valgrind()) {
    // No rseq there, so no injection point is ever reached; the other
    // cases still check conservation in the locked mode.
    note("rseq/test_inject: one point at a time: skipped under valgrind\n");
    return;
  }
  RunConfig cfg = inject_config("");
  cfg.millis = 500;
  cfg.signal_us = 100;
  cfg.drainer = false;
  RunResult res;
  uint32_t spins[9] = {};
  memcpy(spins, cfg.spins, sizeof(spins));
  unsigned long long aborts[9] = {};
  bool checked = false;
  for (int point = 0; point < 9; point++) {
    cfg.name = kNames[point];
    cfg.drainer = point == 8;
    memset(cfg.spins, 0, sizeof(cfg.spins));
    // Alone, the batch points can spin longer: no storm of other spins.
    cfg.spins[point] =
        point < 4 || point == 8 ? spins[point] : 4 * spins[point];
    run(cfg, &res);
    checked = expect_aborts(cfg, res);
    aborts[point] = res.aborts;
  }
  if (checked) {
    note(
        "rseq/test_inject: one point at a time, rseq aborts: %llu %llu %llu "
        "%llu %llu %llu %llu %llu %llu\n",
        aborts[0], aborts[1], aborts[2], aborts[3], aborts[4], aborts[5],
        aborts[6], aborts[7], aborts[8]);
  }
}

END_TEST

}  // namespace

int main() {
  Suite* s = suite_create("rseq_inject");
  TCase* tc = tcase_create("inject");
  tcase_set_timeout(tc, 90);
  tcase_add_test(tc, spins_with_migration_and_drain);
  tcase_add_test(tc, spins_with_signal_storm);
  tcase_add_test(tc, spins_between_header_loads_with_drain);
  tcase_add_test(tc, each_injection_point);
  suite_add_tcase(s, tc);
  return rs_check_run(s, "rseq/test_inject");
}
