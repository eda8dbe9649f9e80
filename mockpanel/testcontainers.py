"""A Testcontainers module (`pip install 'mockpanel[testcontainers]'`): mockpanel's image started from a test suite,
as Testcontainers' LocalStack, MinIO and Mailpit modules start theirs.

    from mockpanel.testcontainers import MockpanelContainer

    with MockpanelContainer() as mocks:                 # waits for the image's health check
        s3 = mocks.s3_client()                          # boto3, with the mock's keys and path-style addressing
        token = mocks.token()                           # a seed user's JWT (alice@example.com)
        with mocks.faults("s3", fail_next=1):           # the control API, with the container's admin token
            ...

Testcontainers publishes ports on every interface by default, so a container's control API is reachable from the
network: this module always gives the container an admin token (its own random one unless `admin_token` is given) and
sends it on every control call. `bind="127.0.0.1"` publishes the ports on loopback only.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import Any, Iterable, Iterator

from testcontainers.core.container import DockerContainer
from testcontainers.core.wait_strategies import HealthcheckWaitStrategy

PORTS = {"auth": 8000, "s3": 9000, "webhooks": 4000, "client": 3000, "imageapi": 8002}
SEED_USER = ("alice@example.com", "password123")  # seed 000's first user
S3_KEYS = ("test-key", "test-secret")  # the S3 mock's development default


class MockpanelContainer(DockerContainer):
    """mockpanel's servers in a container: `servers` picks them (default the seeds' four), `env` adds settings as
    environment variables (MOCKPANEL_S3_ERROR_RATE=0.1, JWT_SECRET=..., see `mockpanel settings`)."""

    def __init__(self, image: str = "mockpanel:latest", servers: Iterable[str] = ("auth", "s3", "webhooks", "client"), *,
                 admin_token: str | None = None, bind: str | None = None, startup_timeout: float = 120, **kwargs: Any) -> None:
        super().__init__(image, **kwargs)
        self.servers = tuple(servers)
        unknown = set(self.servers) - set(PORTS)
        if unknown:
            raise ValueError(f"unknown server(s) {', '.join(sorted(unknown))}: choose from {', '.join(PORTS)}")
        self.admin_token = admin_token or secrets.token_urlsafe(24)
        self.with_env("MOCKPANEL_ADMIN_TOKEN", self.admin_token)
        self.with_command(["serve", "--only", ",".join(self.servers)])
        self.bind = bind
        for name in self.servers:
            if bind is None:
                self.with_bind_ports(PORTS[name])  # a free port on every interface, as Testcontainers publishes
            else:
                self.ports[f"{PORTS[name]}/tcp"] = (bind, None)  # a free port on that address only
        self.waiting_for(HealthcheckWaitStrategy().with_startup_timeout(startup_timeout))

    # --- where things are ---

    def get_url(self, server: str) -> str:
        """A server's base URL from this machine, e.g. http://localhost:32771."""
        if server not in self.servers:
            raise KeyError(f"{server!r} is not running here; running: {', '.join(self.servers)}")
        host = self.bind if self.bind not in (None, "0.0.0.0", "::") else self.get_container_host_ip()
        return f"http://{host}:{self.get_exposed_port(PORTS[server])}"

    @property
    def urls(self) -> dict[str, str]:
        return {name: self.get_url(name) for name in self.servers}

    # --- the clients a test wants ---

    def s3_client(self, **config: Any) -> Any:
        """A boto3 S3 client on the mock: its development keys, path-style addressing, us-east-1."""
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.get_url("s3"), aws_access_key_id=S3_KEYS[0], aws_secret_access_key=S3_KEYS[1],
                            region_name="us-east-1", config=Config(s3={"addressing_style": "path"}, **config))

    def token(self, email: str = SEED_USER[0], password: str = SEED_USER[1]) -> str:
        """A JWT for a user of the auth mock (a seed user by default), as POST /api/auth/login answers it."""
        response = self._http().post(self.get_url("auth") + "/api/auth/login", json={"email": email, "password": password})
        _check(response)
        return response.json()["access_token"]

    # --- the control API, with the admin token ---

    def control(self, server: str, method: str, path: str, **kwargs: Any) -> Any:
        """One call of a server's control API (/__mockpanel/...), its JSON answer; an error status raises."""
        response = self._http().request(method, self.get_url(server) + "/__mockpanel/" + path.lstrip("/"), **kwargs)
        _check(response)
        return response.json() if response.content else None

    @contextlib.contextmanager
    def faults(self, server: str, **policy: Any) -> Iterator[dict[str, Any]]:
        """Faults on for the `with` block (fields as the control API's policy: error_rate, fail_next, latency_ms, ...),
        then the policy as it was."""
        before = self.control(server, "GET", "faults")
        applied = self.control(server, "PATCH", "faults", json=policy)
        try:
            yield applied
        finally:
            self.control(server, "PUT", "faults", json=before)

    @contextlib.contextmanager
    def toxic(self, server: str, type: str, *, stream: str = "downstream", toxicity: float = 1.0, **attributes: Any) -> Iterator[dict[str, Any]]:
        """A network toxic on a server's connections for the `with` block (Toxiproxy's API, under the control API):
        mocks.toxic("s3", "latency", latency=300)."""
        made = self.control(server, "POST", f"toxiproxy/proxies/{server}/toxics",
                            json={"type": type, "stream": stream, "toxicity": toxicity, "attributes": attributes})
        try:
            yield made
        finally:
            with contextlib.suppress(RuntimeError):  # already gone (a reset)
                self.control(server, "DELETE", f"toxiproxy/proxies/{server}/toxics/{made['name']}")

    @contextlib.contextmanager
    def scenario(self, toml: str) -> Iterator[str]:
        """Run a scenario (TOML text) for the `with` block, timed from now; its name."""
        from . import hubclient

        client = self._remote()
        name = client.command(hubclient.run_scenario, toml, None)
        try:
            yield name
        finally:
            client.command(hubclient.stop_scenario)

    def reset(self) -> None:
        """Every server back to its seed data, with an empty journal."""
        from . import hubclient

        self._remote().command(hubclient.reset_all)
        for server in self.servers:
            self.control(server, "DELETE", "requests")

    def requests(self, server: str, **query: Any) -> list[dict[str, Any]]:
        """A server's journal entries, oldest first; `query` filters as GET /__mockpanel/requests does (method, status,
        path: a substring, limit: the newest N, 100 unless given)."""
        return self.control(server, "GET", "requests", params=query)["requests"]

    # --- plumbing ---

    def _http(self) -> Any:
        import httpx2

        client = getattr(self, "_client", None)
        if client is None:
            client = self._client = httpx2.Client(headers={"Authorization": f"Bearer {self.admin_token}"}, timeout=30)
        return client

    def _remote(self) -> Any:
        """The panel's own client of the mocks (what `mockpanel attach` uses), for the operations only it has."""
        from .attach import RemoteHubClient

        remote = getattr(self, "_remote_client", None)
        if remote is None:
            remote = self._remote_client = RemoteHubClient(self.get_url(self.servers[0]), self.admin_token)
        return remote

    def stop(self, force: bool = True, delete_volume: bool = True) -> None:
        for attribute in ("_client", "_remote_client"):
            client = getattr(self, attribute, None)
            if client is not None:
                client.close()
                setattr(self, attribute, None)
        super().stop(force=force, delete_volume=delete_volume)


def _check(response: Any) -> None:
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.method} {response.request.url}: {response.status_code} {response.text[:300]}")
