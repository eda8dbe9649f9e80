"""Zero warnings means zero (a pytest plugin of this suite, loaded by conftest.py).

pyproject's `filterwarnings = ["error", ...]` turns a warning inside a test into its failure. This plugin covers
the rest: a warning printed outside any test (at collection, at the session's end) fails the run too, and a worker's
last garbage is collected while it still reports, so what that finds — an unclosed socket, an exception nobody could
raise — is reported and fails the run instead of being printed after it."""

from __future__ import annotations

import gc
import warnings

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    # Once an xdist worker says it has finished, the controller ends its gateway, and execnet gives the worker's main
    # thread 5 s before it sends the worker a SIGINT (execnet's gateway_base._terminate_execution). What pytest still
    # does by then is five full garbage collections (its unraisable-exception cleanup, at unconfigure); on a busy
    # machine, over the heap a long run leaves, they can take longer, and the SIGINT lands in one of them: a
    # KeyboardInterrupt raised inside hypothesis's gc callback, a PytestUnraisableExceptionWarning after a green run.
    # Collected here, where an unraisable is still reported (below), and frozen, those collections find nothing to walk.
    for _ in range(3):  # as pytest's cleanup does (5): a cycle freed can free another
        gc.collect()
    try:
        from _pytest.unraisableexception import collect_unraisable
    except ImportError:  # pragma: no cover - another pytest: its own cleanup reports them, in this process only
        collect_unraisable = None
    if collect_unraisable is not None:
        # Recorded as warnings, not raised: an xdist worker's exception here ends the worker after it has reported
        # (lost), while a recorded warning reaches the controller, whose summary fails the run (below).
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                collect_unraisable(session.config)
            except Exception as exc:  # noqa: BLE001 - the hook itself failed: that is reported too
                warnings.warn(pytest.PytestUnraisableExceptionWarning(f"{type(exc).__name__}: {exc}"))
        for message in caught:
            session.config.hook.pytest_warning_recorded.call_historic(
                kwargs={"warning_message": message, "when": "config", "nodeid": "", "location": None})
    gc.freeze()


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if terminalreporter.stats.get("warnings") and terminalreporter._session.exitstatus == pytest.ExitCode.OK:
        terminalreporter._session.exitstatus = pytest.ExitCode.TESTS_FAILED
        terminalreporter.write_line("zero warnings means zero: the run printed the warnings above, so it fails", red=True)
