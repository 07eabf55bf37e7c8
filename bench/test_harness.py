"""Unit tests of the benchmark harness's own rules that a tiny run does not exercise (scripts/test runs them):
python3 -m unittest bench/test_harness.py"""

import importlib.util
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
        self.saved = Path(self.dir.name) / "target" / "bench-autogroup-saved"
        self.real = (harness.AUTOGROUP, harness.AUTOGROUP_SAVED)
        harness.AUTOGROUP, harness.AUTOGROUP_SAVED = self.setting, self.saved

    def tearDown(self):
        harness.AUTOGROUP, harness.AUTOGROUP_SAVED = self.real
        self.dir.cleanup()

    def test_a_run_turns_it_off_and_puts_it_back(self):
        self.setting.write_text("1\n")
        record, before = harness.autogroup_off(True)
        self.assertEqual(before, "1")
        self.assertEqual(self.setting.read_text(), "0")
        self.assertEqual(self.saved.read_text(), "1", "the value to put back is saved before the change")
        self.assertIn("off for the run", record["autogroup"])
        harness.autogroup_restore(before)
        self.assertEqual(self.setting.read_text(), "1")
        self.assertFalse(self.saved.exists(), "nothing is left once the value is back")

    def test_a_killed_runs_value_is_put_back_by_the_next_run(self):
        # A run killed while it measured: the setting still off, its saved value left behind.
        self.setting.write_text("0")
        self.saved.parent.mkdir(parents=True)
        self.saved.write_text("1")
        record, before = harness.autogroup_off(True)
        self.assertEqual(before, "1", "the next run restores the kill's leftover first, then turns it off again")
        self.assertIn("put back 1", record["autogroup"])
        harness.autogroup_restore(before)
        self.assertEqual(self.setting.read_text(), "1")
        self.assertFalse(self.saved.exists())

    def test_a_run_that_keeps_the_setting_still_puts_back_a_killed_runs_value(self):
        self.setting.write_text("0")
        self.saved.parent.mkdir(parents=True)
        self.saved.write_text("1")
        record, before = harness.autogroup_off(False)
        self.assertIsNone(before)
        self.assertEqual(self.setting.read_text(), "1")
        self.assertIn("kept as found (1)", record["autogroup"])
        self.assertFalse(self.saved.exists())

    def test_a_setting_found_off_is_left_alone(self):
        self.setting.write_text("0")
        record, before = harness.autogroup_off(True)
        self.assertIsNone(before)
        self.assertEqual(self.setting.read_text(), "0")
        self.assertFalse(self.saved.exists())
        self.assertIn("kept as found (0)", record["autogroup"])


if __name__ == "__main__":
    unittest.main()
