"""pytest plugin (entry point `pytest11`): mockpanel's servers on free ports for your test suite.

Fixtures
    mockpanel          the session's mocks, reset before each test (seed data, starting faults, empty journal)
    mockpanel_session  the same mocks without the reset (session scope)
    mockpanel_factory  start(servers, settings) -> mocks of this test only, stopped after it
    mockpanel_state    a snapshot (a directory or a .tar archive) every test starts from: ini `mockpanel_state`,
                       `--mockpanel-state FILE`, or override the fixture (None: the seed data)
    --mockpanel-bundle-out DIR
                       a repro bundle for each failing test that used `mockpanel` (DIR/<test>/: its start and end
                       state, its requests and changes; `mockpanel replay DIR/<test>` opens it)
    mockpanel_clock    the session mocks' one clock (`mockpanel.clock`: advance(hours=1), set, freeze, resume),
                       back to the wall clock after the test
Configuration
    servers:  ini `mockpanel_servers = auth s3 webhooks`, or `--mockpanel-servers auth,s3`, or override the
              session fixture `mockpanel_servers` in conftest.py
    settings: override the session fixture `mockpanel_settings` -> {"auth": {"jwt_secret": "..."}}
    faults:   `--mockpanel-scenario FILE` runs a scenario (TOML) in every mocks the fixtures start, from their start
              (and again after each test's reset): the same suite, run against misbehaving mocks
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Mapping

import pytest

from .testing import Mocks, start_mocks

DEFAULT_SERVERS = "auth s3 webhooks"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mockpanel")
    group.addoption("--mockpanel-servers", default=None, help="servers the mockpanel fixtures start (comma-separated)")
    group.addoption("--mockpanel-scenario", default=None, metavar="FILE",
                    help="run this scenario (TOML) in every mocks the fixtures start, from their start")
    parser.addini("mockpanel_servers", "servers the mockpanel fixtures start", type="args", default=DEFAULT_SERVERS.split())
    group.addoption("--mockpanel-config", default=None, metavar="FILE", help="a mockpanel.toml whose [stubs.NAME] servers the fixtures may start")
    parser.addini("mockpanel_config", "a mockpanel.toml (relative to the rootdir) whose [stubs.NAME] servers the fixtures may start")
    group.addoption("--mockpanel-bundle-out", default=None, metavar="DIR",
                    help="write a repro bundle for each failing test that used the mockpanel fixture into DIR/<test>")
    group.addoption("--mockpanel-state", default=None, metavar="PATH", help="a snapshot every test starts from (directory or .tar)")
    parser.addini("mockpanel_state", "a snapshot (relative to the rootdir) every test starts from (directory or .tar)")


def _path_option(pytestconfig: pytest.Config, name: str) -> Any:
    """--NAME or the ini value NAME (relative paths: to the rootdir), or None."""
    from pathlib import Path

    option = pytestconfig.getoption("--" + name.replace("_", "-")) or pytestconfig.getini(name)
    if not option:
        return None
    path = Path(option)
    return path if path.is_absolute() else Path(pytestconfig.rootpath) / path


@pytest.fixture(scope="session")
def mockpanel_state(pytestconfig: pytest.Config) -> Any:
    """The snapshot every test starts from (--mockpanel-state, or the mockpanel_state ini value), or None: the seed data."""
    return _path_option(pytestconfig, "mockpanel_state")


@pytest.fixture(scope="session")
def mockpanel_config(pytestconfig: pytest.Config) -> Any:
    """The mockpanel.toml the fixtures read (--mockpanel-config, or the mockpanel_config ini value), or None."""
    return _path_option(pytestconfig, "mockpanel_config")


@pytest.fixture(scope="session")
def mockpanel_scenario(pytestconfig: pytest.Config, mockpanel_config: Any) -> Any:
    """The --mockpanel-scenario file, loaded (checked against every server name, the config's stub servers among
    them: a step for a server a test does not start is skipped), or None."""
    path = pytestconfig.getoption("--mockpanel-scenario")
    if not path:
        return None
    from .scenario import load_scenario
    from .servers import SERVERS
    from .settings import read_toml

    stubs = read_toml(mockpanel_config).get("stubs", {}) if mockpanel_config is not None else {}
    return load_scenario(path, [*SERVERS, *(stubs if isinstance(stubs, dict) else ())])


def _with_scenario(mocks: Mocks, scenario: Any) -> Mocks:
    if scenario is not None and mocks.hub is not None:
        mocks.call(mocks.hub.start_scenario(scenario))
    return mocks


@pytest.fixture(scope="session")
def mockpanel_servers(pytestconfig: pytest.Config) -> list[str]:
    option = pytestconfig.getoption("--mockpanel-servers")
    if option:
        return [name.strip() for name in option.split(",") if name.strip()]
    return list(pytestconfig.getini("mockpanel_servers"))


@pytest.fixture(scope="session")
def mockpanel_settings() -> Mapping[str, Mapping[str, Any]]:
    """Setting overrides, as on the command line: {"s3": {"buckets": "uploads"}, "auth": {"jwt_secret": "x"}}."""
    return {}


@pytest.fixture(scope="session")
def mockpanel_session(mockpanel_servers: list[str], mockpanel_settings: Mapping[str, Mapping[str, Any]],
                      mockpanel_scenario: Any, mockpanel_config: Any) -> Iterator[Mocks]:
    mocks = start_mocks(mockpanel_servers, mockpanel_settings, mockpanel_config)
    try:
        failed = mocks.hub.failed() if mocks.hub else {}
        if failed:
            raise RuntimeError("mockpanel could not start: " + "; ".join(f"{k}: {v}" for k, v in failed.items()))
        yield _with_scenario(mocks, mockpanel_scenario)
    finally:
        mocks.stop()


@pytest.fixture
def mockpanel(request: pytest.FixtureRequest, mockpanel_session: Mocks, mockpanel_scenario: Any, mockpanel_state: Any) -> Iterator[Mocks]:
    mockpanel_session.reset()
    if mockpanel_state is not None:
        mockpanel_session.load_state(mockpanel_state)
    bundles = request.config.getoption("--mockpanel-bundle-out")
    if not bundles:
        yield _with_scenario(mockpanel_session, mockpanel_scenario)
        return
    import re
    import shutil
    import tempfile
    from pathlib import Path

    from .bundle import BundleRecorder

    scratch = Path(tempfile.mkdtemp(prefix="mockpanel-bundle-"))
    recorder = BundleRecorder(mockpanel_session.hub, scratch)
    mockpanel_session.call(recorder.start())
    try:
        yield _with_scenario(mockpanel_session, mockpanel_scenario)
    finally:
        report = getattr(request.node, "_mockpanel_call_report", None)
        try:
            if report is not None and report.failed:
                mockpanel_session.call(recorder.finish(), timeout=600)
                target = Path(bundles) / re.sub(r"[^A-Za-z0-9_.-]+", "__", request.node.nodeid).strip("_")[:200]
                shutil.rmtree(target, ignore_errors=True)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(scratch), target)
                request.config.stash.setdefault(_BUNDLES, []).append((request.node.nodeid, target))
            else:
                mockpanel_session.call(recorder.discard())
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


_BUNDLES = pytest.StashKey[list]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Any:
    report = yield
    if report.when == "call":
        item._mockpanel_call_report = report  # type: ignore[attr-defined]
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    for nodeid, path in config.stash.get(_BUNDLES, []):
        terminalreporter.write_line(f"mockpanel: repro bundle for {nodeid} in {path} (mockpanel replay {path})")


@pytest.fixture
def mockpanel_factory(mockpanel_scenario: Any, mockpanel_config: Any) -> Iterator[Callable[..., Mocks]]:
    started: list[Mocks] = []

    def start(servers: Iterable[str], settings: Mapping[str, Mapping[str, Any]] | None = None, config: Any = None,
              stubs: Mapping[str, Mapping[str, Any]] | None = None) -> Mocks:
        mocks = start_mocks(servers, settings, config or mockpanel_config, stubs)
        started.append(mocks)
        return _with_scenario(mocks, mockpanel_scenario)

    yield start
    for mocks in started:
        mocks.stop()


@pytest.fixture
def mockpanel_clock(mockpanel_session: Mocks) -> Iterator[Any]:
    """The mocks' one clock for this test (MocksClock); whatever the test did to it, the wall clock after it."""
    clock = mockpanel_session.clock
    try:
        yield clock
    finally:
        clock.wall()
