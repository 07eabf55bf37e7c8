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


if __name__ == "__main__":
    unittest.main()
