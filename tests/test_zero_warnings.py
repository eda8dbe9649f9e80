"""The suite's own rule (tests/zero_warnings.py), tested as pytest's user sees it: a run that prints a warning fails,
whatever the filters say, and an exception nobody could raise that only the last garbage collection of an xdist
worker finds fails the run instead of being lost with the worker."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent


def run(pytester, monkeypatch, source: str, *args: str, ini: str = "[pytest]\nfilterwarnings =\n    error\n"):
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    pytester.makepyfile(test_inner=source)
    pytester.makeini(ini)
    return pytester.runpytest_subprocess("-p", "zero_warnings", "-p", "no:cacheprovider", *args)


def test_a_clean_run_passes(pytester, monkeypatch):
    assert run(pytester, monkeypatch, "def test_fine():\n    assert True\n", "-n", "1").ret == 0


def test_a_warning_the_filters_let_through_still_fails_the_run(pytester, monkeypatch):
    result = run(pytester, monkeypatch, "import warnings\ndef test_warns():\n    warnings.warn('printed, not raised', UserWarning)\n",
                 ini="[pytest]\n")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*zero warnings means zero*", "*1 passed, 1 warning*"])


def test_a_worker_s_last_collection_finding_an_unclosed_socket_fails_the_run(pytester, monkeypatch):
    source = ("import socket\n"
              "def test_leaks_in_a_cycle():\n"
              "    class Holder:\n        pass\n"
              "    h = Holder(); h.me = h; h.sock = socket.socket()\n"  # only the garbage collector frees it, after the test
              "    del h\n")
    result = run(pytester, monkeypatch, source, "-n", "1")  # without the plugin: "1 passed", exit 0 (the worker's error is lost)
    assert result.ret == 1
    assert "unclosed <socket.socket" in result.stdout.str()
