"""The run's summary names the missing oracle and how to install it
(tests/conftest.py's ``pytest_terminal_summary``), from skip reports as they
reach it serially and from xdist's workers."""

import pytest

from conftest import ORACLES, pytest_terminal_summary

REASON = "could not import 'torch': No module named 'torch'"


class Reporter:
    """The part of pytest's terminal reporter that the hook uses."""

    def __init__(self, skipped):
        self.stats = {"skipped": skipped}
        self.lines = []

    def write_sep(self, sep, title, **markup):
        self.lines.append(f"{sep * 3} {title}")

    def write_line(self, line, **markup):
        self.lines.append(line)


def skip(cls, nodeid, reason, as_list=False):
    longrepr = ("tests/x.py", 3, f"Skipped: {reason}")
    if cls is pytest.CollectReport:
        return pytest.CollectReport(nodeid, "skipped", list(longrepr) if as_list
                                    else longrepr, [])  # fmt: skip
    return pytest.TestReport(nodeid, ("tests/x.py", 3, nodeid), {}, "skipped",
                             list(longrepr) if as_list else longrepr, "call")  # fmt: skip


def test_the_summary_groups_skips_by_the_missing_module():
    skipped = [
        # a test file skipped on import: its test and its doctest collector
        skip(pytest.CollectReport, "tests/test_a.py", REASON),
        skip(pytest.CollectReport, "tests/test_a.py", REASON),
        # xdist hands the controller the (path, line, reason) as a list
        skip(pytest.TestReport, "tests/test_b.py::t[0]", REASON, as_list=True),
        skip(pytest.TestReport, "tests/test_b.py::t[1]", REASON),
        skip(pytest.TestReport, "tests/test_b.py::u", "could not import 'equinox'"),
        skip(pytest.TestReport, "tests/test_c.py::v", "JAX's runtime cannot run"),
    ]
    reporter = Reporter(skipped)
    pytest_terminal_summary(reporter)
    text = "\n".join(reporter.lines)
    assert reporter.lines[0] == "=== skipped for a missing module"
    assert "1 test skipped: 'equinox' is not installed." in text
    assert "2 tests and 1 whole test file (tests/test_a.py) skipped: PyTorch" in text
    assert ORACLES["torch"][1] in text
    assert "--index-url https://download.pytorch.org/whl/cpu" in text
    assert "test_c" not in text and "runtime" not in text


def test_no_summary_without_a_missing_module():
    reporter = Reporter([skip(pytest.TestReport, "tests/t.py::t", "not here")])
    pytest_terminal_summary(reporter)
    assert reporter.lines == []
