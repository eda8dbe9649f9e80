"""`mockpanel attach [URL]`: the panel on mocks running elsewhere — `mockpanel start` in the background, `serve` in
CI, a container — through the same interface the in-process panel uses (hubclient.HubClient), over HTTP.

This is the panel's side: RemoteHubClient, which sends the operations and reads the event stream in a thread of its
own. The mocks' side (two control routes every server answers) is panel_api.py. Both ends speak wire.py's JSON.
Several panels can watch one set of mocks; closing one leaves the mocks running."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable

from . import spec, wire
from .hubclient import LOCAL_OPS, op_name, server_names, server_urls
from .panel_api import CALL_PATH, EVENTS_PATH
from .spec import ScenarioError

FEED_KEEPALIVE_S = 15.0  # the mocks' side sends a comment this often (panel_api.py); a read waits twice as long


class Disconnected(Exception):
    """The mocks an attached panel watched are gone (stopped, or the network between)."""


class RemoteError(Exception):
    """A call the mocks refused for a reason of the call itself (a bug or a version mismatch), in their words."""


def _raise(status: int, payload: Any) -> None:
    kind = payload.get("error", "") if isinstance(payload, dict) else ""
    message = payload.get("detail", "") if isinstance(payload, dict) else str(payload)[:500]
    error = getattr(spec, kind, None)
    if isinstance(error, type) and issubclass(error, spec.DomainError):
        raise error(message)
    if kind == "ScenarioError":
        raise ScenarioError(message)
    if status == 401:
        raise Disconnected(f"the mocks want the admin token: {message} (mockpanel attach --token, or MOCKPANEL_ADMIN_TOKEN)")
    raise RemoteError(f"{status}: {message}")


def _json_or_text(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


class RemoteHubClient:
    """HubClient's interface over HTTP (see the module's docstring): `read`/`command` send an operation and return
    what it returned on the mocks' side; `wait` does the same without blocking the panel's loop; `subscribe` feeds
    the event stream to a sink from a reader thread."""

    thread = None
    attached = True

    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0) -> None:
        import httpx2

        self.url = url.rstrip("/")
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._headers = headers
        self._http = httpx2.Client(headers=headers, timeout=timeout)
        self._readers: list[_EventReader] = []
        self._others: list[str] = []  # the other servers' URLs: a call goes on through one when this one stops

    def read(self, fn: Callable[..., Any], *args: Any) -> Any:
        import httpx2

        name = op_name(fn)
        if name in LOCAL_OPS:
            raise RemoteError(f"{name} needs the mocks' own process: an attached panel cannot ask it")
        body = wire.dumps({"op": name, "args": list(args)})
        for base in [self.url, *self._others]:
            try:
                response = self._http.post(base + CALL_PATH, content=body)
            except httpx2.TransportError:
                continue
            if base != self.url:
                self.url = base
            if response.status_code != 200:
                try:
                    payload = response.json()
                except ValueError:
                    payload = response.text
                _raise(response.status_code, payload)
            try:
                return wire.loads(response.content)["result"]
            except (wire.WireError, KeyError, TypeError):
                raise RemoteError(f"{base} answered something that is not a panel result (is it mockpanel?)") from None
        raise Disconnected(f"the mocks at {self.url} do not answer")

    command = read

    def download_state(self, path: Any) -> dict[str, Any]:
        """GET /__mockpanel/state of the mocks into `path` on this machine (a .tar archive, or a directory it unpacks
        to), streamed to disk."""
        import tempfile
        from pathlib import Path

        from .state import extract

        target = Path(path)
        archive = target if target.suffix == ".tar" else Path(tempfile.mkstemp(suffix=".tar")[1])
        try:
            with self._http.stream("GET", self.url + "/__mockpanel/state", timeout=None) as response:
                if response.status_code != 200:
                    response.read()
                    _raise(response.status_code, _json_or_text(response))
                with open(archive, "wb") as out:
                    for chunk in response.iter_bytes(1024 * 1024):
                        out.write(chunk)
            if archive != target:
                target.mkdir(parents=True, exist_ok=True)
                extract(archive, target)
        finally:
            if archive != target:
                archive.unlink(missing_ok=True)
        return {"path": str(target)}

    def upload_state(self, path: Any) -> dict[str, Any]:
        """PUT a snapshot on this machine (a .tar archive, or a directory archived for the trip) to the mocks."""
        import tempfile
        from pathlib import Path

        from .state import archive as make_archive

        source = Path(path)
        archive = source if source.is_file() else Path(tempfile.mkstemp(suffix=".tar")[1])
        try:
            if archive != source:
                make_archive(source, archive)

            def chunks():
                with open(archive, "rb") as fh:
                    while chunk := fh.read(1024 * 1024):
                        yield chunk

            response = self._http.put(self.url + "/__mockpanel/state", content=chunks(), timeout=None,
                                      headers={"content-type": "application/x-tar"})
            if response.status_code != 200:
                _raise(response.status_code, _json_or_text(response))
            return response.json()
        finally:
            if archive != source:
                archive.unlink(missing_ok=True)

    async def wait(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(self.read, fn, *args)

    def subscribe(self, sink: Callable[[Any], None]) -> Callable[[], None]:
        reader = _EventReader(self, sink)
        self._readers.append(reader)
        reader.start()
        return reader.stop

    async def start(self) -> dict[str, str]:
        """Check the mocks answer (and are mockpanel's); their URLs."""
        urls = await self.wait(server_urls)
        self._others = [u for u in urls.values() if u.rstrip("/") != self.url]
        await self.wait(server_names)
        return urls

    async def stop(self) -> None:
        """Stop watching; the mocks keep running."""
        for reader in self._readers:
            reader.stop()
        self._readers.clear()
        self.close()

    def close(self) -> None:
        """Its connections closed (a caller outside a panel, e.g. mockpanel.testcontainers, when done)."""
        self._http.close()

    def __enter__(self) -> "RemoteHubClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


GONE = object()  # put in the sink when the event stream ends for good: the panel says so and leaves


class _EventReader:
    """Reads the event stream in a daemon thread; every bus item goes to the sink (a thread-safe deque's append).
    A stream that breaks is opened again (through another server when this one stopped) while the mocks answer."""

    def __init__(self, client: RemoteHubClient, sink: Callable[[Any], None]) -> None:
        self.client = client
        self.sink = sink
        self.stopped = threading.Event()
        self.connected = threading.Event()
        self._response: Any = None
        self.thread = threading.Thread(target=self._run, name="mockpanel-attach-events", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        response = self._response
        if response is not None:
            try:
                response.close()
            except Exception:  # closing from another thread: the reader sees its stream end
                pass

    def _run(self) -> None:
        import httpx2

        failures = 0
        with httpx2.Client(headers=self.client._headers, timeout=httpx2.Timeout(10.0, read=FEED_KEEPALIVE_S * 2)) as http:
            while not self.stopped.is_set():
                bases = [self.client.url, *self.client._others]
                base = bases[failures % len(bases)]
                try:
                    with http.stream("GET", base + EVENTS_PATH) as response:
                        self._response = response
                        if response.status_code != 200:
                            raise httpx2.TransportError(f"HTTP {response.status_code}")
                        failures = 0
                        self.connected.set()
                        for line in response.iter_lines():
                            if self.stopped.is_set():
                                return
                            if line.startswith("data: "):
                                self._deliver(line[6:])
                except (httpx2.HTTPError, OSError, RuntimeError):
                    pass
                finally:
                    self._response = None
                if self.stopped.is_set():
                    return
                failures += 1
                if failures > 3 * len(bases):
                    self.sink(GONE)
                    return
                self.stopped.wait(min(0.1 * failures, 1.0))

    def _deliver(self, data: str) -> None:
        try:
            message = wire.loads(data)
        except wire.WireError:
            return
        for item in message.get("items", ()):
            self.sink(item)
