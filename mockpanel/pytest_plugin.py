"""pytest plugin (entry point `pytest11`): mockpanel's servers on free ports for your test suite.

Fixtures
    mockpanel          the session's mocks, reset before each test (seed data, starting faults, empty journal)
    mockpanel_session  the same mocks without the reset (session scope)
    mockpanel_factory  start(servers, settings) -> mocks of this test only, stopped after it
Configuration
    servers:  ini `mockpanel_servers = auth s3 webhooks`, or `--mockpanel-servers auth,s3`, or override the
              session fixture `mockpanel_servers` in conftest.py
    settings: override the session fixture `mockpanel_settings` -> {"auth": {"jwt_secret": "..."}}
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Mapping

import pytest

from .testing import Mocks, start_mocks

DEFAULT_SERVERS = "auth s3 webhooks"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mockpanel")
    group.addoption("--mockpanel-servers", default=None, help="servers the mockpanel fixtures start (comma-separated)")
    parser.addini("mockpanel_servers", "servers the mockpanel fixtures start", type="args", default=DEFAULT_SERVERS.split())


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
def mockpanel_session(mockpanel_servers: list[str], mockpanel_settings: Mapping[str, Mapping[str, Any]]) -> Iterator[Mocks]:
    mocks = start_mocks(mockpanel_servers, mockpanel_settings)
    try:
        failed = mocks.hub.failed() if mocks.hub else {}
        if failed:
            raise RuntimeError("mockpanel could not start: " + "; ".join(f"{k}: {v}" for k, v in failed.items()))
        yield mocks
    finally:
        mocks.stop()


@pytest.fixture
def mockpanel(mockpanel_session: Mocks) -> Mocks:
    mockpanel_session.reset()
    return mockpanel_session


@pytest.fixture
def mockpanel_factory() -> Iterator[Callable[..., Mocks]]:
    started: list[Mocks] = []

    def start(servers: Iterable[str], settings: Mapping[str, Mapping[str, Any]] | None = None) -> Mocks:
        mocks = start_mocks(servers, settings)
        started.append(mocks)
        return mocks

    yield start
    for mocks in started:
        mocks.stop()
