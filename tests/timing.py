"""A table at the end of every run: the time each test folder took (setup, call and teardown), so
that growth shows where it happens."""

from __future__ import annotations

from collections import defaultdict

import pytest

_SECONDS: defaultdict[str, float] = defaultdict(float)
_TESTS: defaultdict[str, set[str]] = defaultdict(set)


def _folder(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    parts = path.split("/")
    return "/".join(parts[:2]) if len(parts) > 2 else path


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    folder = _folder(report.nodeid)
    _SECONDS[folder] += report.duration
    _TESTS[folder].add(report.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _SECONDS:
        return
    total = sum(_SECONDS.values())
    width = max(len(folder) for folder in _SECONDS)
    write = terminalreporter.write_line
    terminalreporter.section("time per test folder")
    write(f"{'folder':<{width}}  {'tests':>6}  {'seconds':>8}  {'share':>6}")
    for folder, seconds in sorted(_SECONDS.items(), key=lambda item: -item[1]):
        write(f"{folder:<{width}}  {len(_TESTS[folder]):>6}  {seconds:>8.1f}  {seconds / total:>6.1%}")
    write(f"{'total':<{width}}  {sum(map(len, _TESTS.values())):>6}  {total:>8.1f}")
