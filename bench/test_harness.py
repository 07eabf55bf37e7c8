"""Unit tests of the benchmark harness's own rules that a tiny run does not exercise (scripts/test runs them):
python3 -m unittest bench/test_harness.py"""

import importlib.util
import os
import subprocess
import tempfile
import unittest
from pathlib import Path

_spec = importlib.util.spec_from_file_location("harness", Path(__file__).with_name("harness.py"))
harness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(harness)


class Autogroup(unittest.TestCase):
    """The kernel setting a run turns off is put back: at the run's end, or by the next run after a kill."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.setting = Path(self.dir.name) / "sched_autogroup_enabled"
        self.saved = Path(self.dir.name) / "plystra-bench-autogroup"
        self.real = (harness.AUTOGROUP, harness.AUTOGROUP_SAVED)
        harness.AUTOGROUP, harness.AUTOGROUP_SAVED = self.setting, self.saved

    def tearDown(self):
        harness.AUTOGROUP, harness.AUTOGROUP_SAVED = self.real
        self.dir.cleanup()

    def killed_run(self, value="1"):
        """What a run killed while it measured leaves: the setting off, its value and a dead process's id saved."""
        dead = subprocess.Popen(["true"])
        dead.wait()
        self.setting.write_text("0")
        self.saved.write_text(f"{value} {dead.pid}")

    def test_a_run_turns_it_off_and_puts_it_back(self):
        self.setting.write_text("1\n")
        record, before = harness.autogroup_off(True)
        self.assertEqual(before, "1")
        self.assertEqual(self.setting.read_text(), "0")
        self.assertEqual(self.saved.read_text(), f"1 {os.getpid()}", "the value to put back is saved first")
        self.assertIn("off for the run", record["autogroup"])
        harness.autogroup_restore(before)
        self.assertEqual(self.setting.read_text(), "1")
        self.assertFalse(self.saved.exists(), "nothing is left once the value is back")

    def test_a_killed_runs_value_is_put_back_by_the_next_run_first(self):
        self.killed_run()
        recovered = harness.autogroup_recover()
        self.assertEqual(self.setting.read_text(), "1", "put back before the next run does anything else")
        self.assertFalse(self.saved.exists())
        record, before = harness.autogroup_off(True, recovered)
        self.assertEqual(before, "1")
        self.assertIn("put back 1", record["autogroup"])
        harness.autogroup_restore(before)
        self.assertEqual(self.setting.read_text(), "1")

    def test_a_run_that_keeps_the_setting_still_puts_back_a_killed_runs_value(self):
        self.killed_run()
        record, before = harness.autogroup_off(False, harness.autogroup_recover())
        self.assertIsNone(before)
        self.assertEqual(self.setting.read_text(), "1")
        self.assertIn("kept as found (1)", record["autogroup"])
        self.assertFalse(self.saved.exists())

    def test_a_live_runs_value_is_left_to_it(self):
        # Another run measuring now (this test's parent process stands in for it): its setting stays off.
        self.setting.write_text("0")
        self.saved.write_text(f"1 {os.getppid()}")
        note = harness.autogroup_recover()
        self.assertIn("another run", note)
        self.assertEqual(self.setting.read_text(), "0")
        self.assertTrue(self.saved.exists())

    def test_a_setting_found_off_is_left_alone(self):
        self.setting.write_text("0")
        record, before = harness.autogroup_off(True)
        self.assertIsNone(before)
        self.assertEqual(self.setting.read_text(), "0")
        self.assertFalse(self.saved.exists())
        self.assertIn("kept as found (0)", record["autogroup"])

    def test_a_value_that_cannot_be_saved_leaves_the_setting_on(self):
        self.setting.write_text("1")
        harness.AUTOGROUP_SAVED = Path(self.dir.name) / "missing" / "plystra-bench-autogroup"
        record, before = harness.autogroup_off(True)
        self.assertIsNone(before)
        self.assertEqual(self.setting.read_text(), "1")
        self.assertIn("could not be saved", record["autogroup"])


class FakeRunner:
    """What `Runner.warm` and `Runner.keep_median` use of a runner, with pgbench's figures given in advance."""

    def __init__(self, tps):
        self.tps = list(tps)
        self.args = type("Args", (), {"duration": 8})()
        self.c = type("Cluster", (), {"path": "/nonexistent", "port": 1})()
        self.checks = []
        self.results = []
        self.seeds = []

    def defines(self, sz):
        return {"members": 10}

    def check(self, ok, what):
        self.checks.append((ok, what))

    def sh(self, cmd, check=True, env=None, **kw):
        self.seeds.append(next(a for a in cmd if a.startswith("--random-seed=")))
        out = f"tps = {self.tps.pop(0)} (without initial connection time)\n"
        return subprocess.CompletedProcess(cmd, 0, out, "")

    def pgbench(self, name, db, script, clients, sz, **kw):
        r = {"workload": name, "clients": clients, "tps": self.tps.pop(0)}
        self.results.append(r)
        return r

    keep_median = harness.Runner.keep_median


class Warmup(unittest.TestCase):
    """The warm-up runs until two runs in a row agree within WARM_AGREE, at most WARM_RUNS runs, never with the
    measured runs' seed."""

    def warm(self, tps):
        runner = FakeRunner(tps)
        real = (harness.sh, harness.log)
        harness.sh, harness.log = runner.sh, lambda *a, **k: None
        try:
            done = harness.Runner.warm(runner, "bench", "check.sql", {})
        finally:
            harness.sh, harness.log = real
        return runner, done

    def test_it_stops_when_two_runs_agree(self):
        runner, done = self.warm([10000, 13000, 15000, 15500, 1, 1])
        self.assertEqual(done["runs_tps"], [10000, 13000, 15000, 15500])
        self.assertEqual(len(runner.tps), 2, "no run after the two that agreed")

    def test_it_stops_after_the_most_runs(self):
        runner, done = self.warm([1000 * 2 ** k for k in range(10)])
        self.assertEqual(len(done["runs_tps"]), harness.WARM_RUNS)

    def test_each_run_draws_other_requests_than_the_measured_runs(self):
        runner, _ = self.warm([10000, 20000, 30000, 30100])
        self.assertEqual(len(set(runner.seeds)), 4)
        self.assertNotIn(f"--random-seed={harness.PGBENCH_SEED}", runner.seeds)


class Median(unittest.TestCase):
    """A workload measured as the median of runs stands once in the results, as its median run."""

    def test_the_median_run_stands_for_the_workload(self):
        runner = FakeRunner([14000, 17000, 15000])
        r = runner.keep_median([runner.pgbench("check_off_before_skew", "bench", "check.sql", 2, {})
                                for _ in range(3)])
        self.assertEqual(r["tps"], 15000)
        self.assertEqual(r["runs_tps"], [14000, 17000, 15000])
        self.assertEqual(runner.results, [r])



class SqlRounds(unittest.TestCase):
    """The floors and the decisions in SQL alternate round by round (the floors first in each); the warm-up runs once,
    in the first round, before its decisions; every workload stands once in the results, as the median of its runs."""

    FLOORS = ["select1", "pk_lookup", "insert_jsonb"]
    DECISIONS = ["check_off", "check_off_demo", "handwritten", "allowed_off", "explain_off", "check_deny_only",
                 "check_always", "check_batch_off", "check_batch_always"]

    def test_the_floors_and_the_decisions_alternate_and_each_is_its_median(self):
        per_round = len(harness.CLIENTS) * (len(self.FLOORS) + len(self.DECISIONS))
        # Round k's runs have throughputs 1000 k + i: with three rounds a workload's runs are i, 1000 + i, 2000 + i,
        # except that the middle round is made the slowest for the floors, so that their median is the first run.
        tps = [1000 * k + i for k in range(3) for i in range(per_round)]
        for i in range(len(harness.CLIENTS) * len(self.FLOORS)):
            tps[per_round + i] = -1
        runner, events, psql = FakeRunner(tps), [], []
        measure = runner.pgbench

        def pgbench(name, db, script, clients, sz, **kw):
            events.append((name, clients))
            return measure(name, db, script, clients, sz, **kw)

        runner.pgbench = pgbench
        runner.warm = lambda db, script, sz: events.append("warm") or {"runs_tps": [1.0]}
        runner.c.psql = lambda db, sql: (psql.append(sql), events.append("settle") if "VACUUM" in sql else None,
                                          "0" if "max(seq)" in sql else "allow||5")[2]
        ctx = {}
        harness.sql_rounds(runner, {"sql_rounds": 3, "batches": 10}, {}, ctx)
        floors = [(f, c) for c in harness.CLIENTS for f in self.FLOORS]
        decisions = [(d, c) for c in harness.CLIENTS for d in self.DECISIONS]
        self.assertEqual(events, floors + ["warm"] + decisions + ["settle"] + floors + decisions + ["settle"] + floors
                         + decisions,
                         "each round: the floors, then the decisions; the warm-up once, in the first round; what a "
                         "round wrote vacuumed before the next round, not after the last")
        self.assertEqual(len(ctx["sql_rounds_settle_s"]), 2)
        self.assertEqual(len(runner.results), len(floors) + len(decisions), "each workload once")
        kept = {(r["workload"], r["clients"]): r for r in runner.results}
        check = kept[("check_off", harness.CLIENTS[0])]
        i = len(floors)
        self.assertEqual((check["tps"], check["runs_tps"]), (1000 + i, [i, 1000 + i, 2000 + i]))
        lookup = kept[("pk_lookup", harness.CLIENTS[0])]
        self.assertEqual((lookup["tps"], lookup["runs_tps"]), (1, [1, -1, 2001]))
        self.assertEqual(ctx["decision_mix"], [{"decision": "allow", "deny_code": None, "count": 5}])
        self.assertEqual(len([q for q in psql if "VACUUM" not in q]), 2,
                         "the decision mix is read around the first audited run only")

    def test_one_round_measures_each_workload_once(self):
        n = len(harness.CLIENTS) * (len(self.FLOORS) + len(self.DECISIONS))
        runner = FakeRunner(list(range(n)))
        runner.warm = lambda db, script, sz: {"runs_tps": []}
        runner.c.psql = lambda db, sql: "0" if "max(seq)" in sql else ""
        harness.sql_rounds(runner, {"sql_rounds": 1, "batches": 10}, {}, {})
        self.assertEqual(sorted(r["tps"] for r in runner.results), list(range(n)))
        self.assertFalse(any("runs_tps" in r for r in runner.results), "a single run is not a median of runs")


class NoisyNeighbours(unittest.TestCase):
    """Before and after the skew alternate round by round (the skew applied, measured, taken away again but in the
    last round), and each side stands once in the results, as the median of its runs."""

    def test_before_and_after_alternate_and_each_side_is_its_median(self):
        # In the order the runs are made: before at 2 and 16 clients, then after at 2 and 16, round by round.
        runner = FakeRunner([14, 20, 11, 27, 10, 22, 15, 21, 12, 24, 13, 23])
        events = []
        measure = runner.pgbench

        def pgbench(name, db, script, clients, sz, **kw):
            events.append((name, clients))
            return measure(name, db, script, clients, sz, **kw)

        runner.pgbench = pgbench
        real = (harness.apply_skew, harness.remove_skew)
        harness.apply_skew = lambda run, db, sz: events.append("apply") or {"members": 3, "grants_each": 5,
                                                                           "seconds": 1.5}
        harness.remove_skew = lambda run, db: events.append("remove") or 0.5
        try:
            skew = harness.noisy_neighbours(runner, "bench", {}, [2, 16])
        finally:
            harness.apply_skew, harness.remove_skew = real
        before, after = "check_off_before_skew", "check_off_after_skew"
        one_round = [(before, 2), (before, 16), "apply", (after, 2), (after, 16)]
        self.assertEqual(events, one_round + ["remove"] + one_round + ["remove"] + one_round,
                         "before and after alternate; the last round leaves the skew in place")
        kept = {(r["workload"], r["clients"]): (r["tps"], r["runs_tps"]) for r in runner.results}
        self.assertEqual(kept, {(before, 2): (12, [14, 10, 12]), (before, 16): (22, [20, 22, 24]),
                                (after, 2): (13, [11, 15, 13]), (after, 16): (23, [27, 21, 23])})
        self.assertEqual(len(runner.results), 4, "each side once")
        self.assertEqual((skew["rounds"], skew["applied_s"], skew["removed_s"]), (3, [1.5] * 3, [0.5] * 2))



class HttpRounds(unittest.TestCase):
    """The front and Cerbos alternate round by round; Cerbos's policy and bodies are made (and agreed) in the first
    round only; every wrk workload stands once, as the median of its runs; a side that fails is not run again."""

    def rounds(self, front_fails_in=None):
        runner, calls = FakeRunner([]), []
        tps = iter([30, 10, 20, 11, 12, 9])   # front, Cerbos, round after round

        def run_http(run, binary, sz):
            calls.append(("front", None))
            if len(calls) // 2 + 1 == front_fails_in:
                return None, "did not start", {}
            r = {"workload": "http_check", "clients": 2, "tool": "wrk", "tps": next(tps)}
            run.results.append(r)
            return [r], None, {"binary": binary}

        def run_cerbos(run, binary, sz, facts=None):
            calls.append(("peer", facts))
            r = {"workload": "cerbos_off", "clients": 2, "tool": "wrk", "tps": next(tps)}
            run.results.append(r)
            return [r], None, facts or {"policy": "made"}

        real = (harness.run_http, harness.run_cerbos)
        harness.run_http, harness.run_cerbos = run_http, run_cerbos
        ctx = {"http": {"measured": False, "reason": None}, "cerbos": {"measured": False, "reason": None}}
        try:
            harness.http_rounds(runner, {}, "front", "cerbos", ctx)
        finally:
            harness.run_http, harness.run_cerbos = real
        return runner, calls, ctx

    def test_the_sides_alternate_and_each_workload_is_its_median(self):
        runner, calls, ctx = self.rounds()
        self.assertEqual([who for who, _ in calls], ["front", "peer"] * harness.HTTP_ROUNDS)
        self.assertEqual([f for who, f in calls if who == "peer"], [None] + [{"policy": "made"}] * 2,
                         "the policy and bodies of the first round serve the later ones")
        kept = {r["workload"]: (r["tps"], r["runs_tps"]) for r in runner.results}
        self.assertEqual(kept, {"http_check": (20, [30, 20, 12]), "cerbos_off": (10, [10, 11, 9])})
        self.assertEqual((ctx["http"]["rounds"], ctx["cerbos"]["rounds"]), (3, 3))
        self.assertTrue(ctx["http"]["measured"] and ctx["cerbos"]["measured"])

    def test_a_side_that_fails_is_not_run_again(self):
        runner, calls, ctx = self.rounds(front_fails_in=2)
        self.assertEqual([who for who, _ in calls], ["front", "peer", "front", "peer", "peer"])
        self.assertEqual(ctx["http"]["reason"], "did not start")
        self.assertTrue(ctx["http"]["measured"], "what the first round measured stands")


if __name__ == "__main__":
    unittest.main()
