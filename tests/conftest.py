"""Shared fixtures: real servers on free ports, talked to over HTTP."""

from __future__ import annotations

import contextlib
import http.server

import os
import queue
import shutil
import threading
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import weakref
from pathlib import Path
from typing import Any

import httpx2
import pytest

from mockpanel.testing import RunningHub, settings_for

pytest_plugins = ["pytester", "zero_warnings"]

ROOT = Path(__file__).resolve().parent.parent
SEED_SECRET = "dev-secret-key-change-in-production"




@pytest.fixture(scope="module")
def auth_hub():
    with RunningHub(settings_for(["auth"])) as running:
        yield running


def fresh(url: str) -> str:
    """Put a running server's state, faults and journal back to their start, through its control API."""
    httpx2.post(f"{url}/__mockpanel/reset").raise_for_status()
    httpx2.put(f"{url}/__mockpanel/faults", json={}).raise_for_status()
    httpx2.delete(f"{url}/__mockpanel/requests").raise_for_status()
    return url


@pytest.fixture
def auth_url(auth_hub):
    """The auth server's URL, with state, faults and journal back to seed before each test."""
    return fresh(auth_hub.urls["auth"])


@pytest.fixture
def client(auth_url):
    with httpx2.Client(base_url=auth_url, timeout=10) as c:
        yield c


def read_response(sock: socket.socket, buffered: bytearray | None = None) -> bytes:
    """One whole HTTP/1.1 response from a raw socket: its head, then as many body bytes as Content-Length says
    (an interim 100 Continue is a head alone). A socket read returns what has arrived, not a whole answer, so this
    reads until the response is complete; `buffered` carries bytes read past it to the next call."""
    data = buffered if buffered is not None else bytearray()
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed inside a response head: {bytes(data)[:200]!r}")
        data += chunk
    head_end = data.index(b"\r\n\r\n") + 4
    head = bytes(data[:head_end])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if head.startswith(b"HTTP/1.1 1"):
        length = 0
    while len(data) < head_end + length:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed inside a response body")
        data += chunk
    response = bytes(data[: head_end + length])
    del data[: head_end + length]
    return response


async def until(pilot, condition, limit: float = 10) -> None:
    """Wait (bounded) for the panel to show something: updates arrive on the next flush tick."""
    for _ in range(int(limit / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    assert condition()


class Terminal:
    """A real terminal for one test: a tmux session on a tmux server of its own (its own socket, `-S`).

    One shared server is a race: killing a test's last session makes that server exit, and the next test's
    `new-session` can reach it while it is exiting ("server exited unexpectedly", exit status 1)."""

    def __init__(self, name: str, width: int, height: int) -> None:
        self.session = f"mockpanel-{name}-{uuid.uuid4().hex[:8]}"
        self.size = (width, height)
        self._dir = tempfile.mkdtemp(prefix="mockpanel-tmux-")
        self.socket = os.path.join(self._dir, "socket")

    def __call__(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True, text=True)
        if done.returncode:
            raise AssertionError(f"tmux {' '.join(args)} exited with {done.returncode}: {done.stderr.strip()}")
        return done.stdout

    def __enter__(self) -> "Terminal":
        width, height = self.size
        self("new-session", "-d", "-s", self.session, "-x", str(width), "-y", str(height), "bash", "--norc", "--noprofile")
        return self

    def __exit__(self, *exc) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True)
        shutil.rmtree(self._dir, ignore_errors=True)

    def send(self, *keys: str) -> None:
        self("send-keys", "-t", self.session, *keys)

    def type(self, text: str) -> None:
        """`text` as typed, each character literally (no key names)."""
        self("send-keys", "-t", self.session, "-l", text)

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", self.session)

    def wait_for(self, predicate, what: str, limit: float = 30) -> str:
        """The pane's text once `predicate` holds for it (bounded; polls the screen, as a person would look)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            text = self.screen()
            if predicate(text):
                return text
            time.sleep(0.2)
        raise AssertionError(f"{what} did not show; the screen was:\n{self.screen()}")


def port_is_closed(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) != 0


class ServeProcess:
    """`mockpanel serve` (or, with subcommand=None, plain `mockpanel ARGS`) as a subprocess: reads its ready lines,
    stops it with a signal."""

    def __init__(self, *args: str, env: dict | None = None, cwd: Path | None = None, subcommand: str | None = "serve") -> None:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("MOCKPANEL_")}
        full_env.update(env or {})
        if cwd is None:  # never the repository: its own .env or mockpanel.toml must not change what a test sees
            cwd = Path(tempfile.mkdtemp(prefix="mockpanel-serve-"))
            weakref.finalize(self, shutil.rmtree, cwd, True)  # removed with the object, used in a `with` or not
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mockpanel", *([subcommand] if subcommand else []), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=full_env,
            cwd=cwd,
        )
        self._lines: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def readline(self, timeout: float = 20) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            line = None
        if line is None:
            raise AssertionError(f"no line from mockpanel serve; stderr: {self.proc.stderr.read() if self.proc.poll() is not None else ''}")
        return line.rstrip("\n")

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def urls(self, count: int) -> dict[str, str]:
        """The first `count` "NAME: running at URL" lines, as {name: url}."""
        found: dict[str, str] = {}
        while len(found) < count:
            line = self.readline()
            name, sep, url = line.partition(": running at ")
            if sep:
                found[name] = url.strip()
        return found

    def loop_stalls(self, url: str) -> dict:
        """What the serve process's watchdog saw of its own event loop (GET /__mockpanel/stats, "loop")."""
        import httpx2

        return httpx2.get(f"{url}/__mockpanel/stats").json()["loop"]

    def rest(self) -> str:
        """Everything printed after the lines read so far, once the process has ended."""
        self._reader.join(10)
        lines = []
        while not self._lines.empty():
            line = self._lines.get()
            if line is not None:
                lines.append(line)
        return "".join(lines)

    def stop(self, sig: int = 15, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(10)  # it ends at the end of the output
        self.proc.stdout.close()
        self.proc.stderr.close()


# --- a service of the user's, behind a proxy (network faults) ---


class _BodyHandler(http.server.BaseHTTPRequestHandler):
    """GET answers the server's `body`; POST echoes what it read."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("content-length", str(len(self.server.body)))
        self.end_headers()
        try:
            self.wfile.write(self.server.body)
        except OSError:  # the test's client went away (or was reset) half-way
            pass

    def do_POST(self):
        data = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # a reset the test causes is no error of the upstream's
        pass


@contextlib.contextmanager
def http_server(handler: type, server_class: type = http.server.ThreadingHTTPServer, **state: Any):
    """A real HTTP server on a free port in a thread, answering through `handler` (an http.server request handler);
    `state` becomes attributes of the server (the handler's `self.server`). Yields the server."""
    server = server_class(("127.0.0.1", 0), handler)
    for key, value in state.items():
        setattr(server, key, value)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def http_upstream(body: bytes):
    """A plain HTTP server on a free port (its port yielded), standing for a service of the user's."""
    with http_server(_BodyHandler, _QuietServer, body=body) as server:
        yield server.server_address[1]


def raw_get(port: int, path: str = "/", close: bool = True) -> tuple[list[bytes], float, float]:
    """A GET from a raw socket, read until the connection ends: every chunk recv returned, when the last byte came
    and when EOF came (monotonic s)."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n{'Connection: close' if close else ''}\r\n\r\n".encode())
        chunks, last = [], time.monotonic()
        while True:
            data = sock.recv(65536)
            if not data:
                return chunks, last, time.monotonic()
            chunks.append(data)
            last = time.monotonic()


# --- S3 ---

S3_KEYS = {"aws_access_key_id": "test-key", "aws_secret_access_key": "test-secret", "region_name": "us-east-1"}


@pytest.fixture
def bucket(s3):
    """A bucket of this test's own in the module's S3 mock."""
    name = "t-" + os.urandom(6).hex()
    s3.create_bucket(Bucket=name)
    return name


def make_s3_client(url: str, **config):
    import boto3
    from botocore.config import Config

    verify = config.pop("verify", None)
    return boto3.client("s3", endpoint_url=url, config=Config(**config) if config else None, verify=verify, **S3_KEYS)


@pytest.fixture(scope="module")
def s3_hub():
    with RunningHub(settings_for(["s3"], {"s3": {"min_part_size": str(5 * 1024 * 1024)}})) as running:
        yield running


@pytest.fixture
def s3_url(s3_hub):
    return fresh(s3_hub.urls["s3"])


@pytest.fixture
def s3(s3_url):
    return make_s3_client(s3_url)


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, made for the test (https is where boto3 sends aws-chunked)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mockpanel test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


# --- a real browser ---

def node_packages(directory: Path, package: str, what: str) -> None:
    """Node, npm and the packages of `directory`'s lockfile (`npm ci` the first time): skipped without node and npm,
    except in CI, where `what` must run."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI runs {what}: node and npm are not installed")
        pytest.skip("node and npm are not installed")
    if not (directory / "node_modules" / package).is_dir():
        installed = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=directory, capture_output=True, text=True, timeout=600)
        assert installed.returncode == 0, installed.stderr[-3000:]


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by playwright; skipped without it, except in CI where it must run.

    Module-scoped: playwright's sync API keeps an event loop running on this thread while it is open, which
    async tests in later modules would trip over."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"needs Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@contextlib.contextmanager
def page_on_another_site(*extra_args: str):
    """A Chromium page on http://evil.example/ (served by playwright), skipped without Chromium except in CI.
    Chromium's own Local Network Access checks would stop its requests to 127.0.0.1 before they leave the browser;
    other browsers have none, so they are off here: the mock itself must refuse."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {CHROMIUM} is missing")
        pytest.skip(f"needs Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    args = [*CHROMIUM_ARGS, *extra_args,
            "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            page = browser.new_page()
            page.route("http://evil.example/", lambda route: route.fulfill(status=200, content_type="text/html", body="<p>hi</p>"))
            page.goto("http://evil.example/")
            yield page
        finally:
            browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    yield page
    context.close()


@contextlib.contextmanager
def page_server(body: bytes = b"<!doctype html><title>page</title><p>a page"):
    """A page on another local origin: a real HTTP server on a free port answering every GET with `body`, for
    cross-origin and redirect tests. Yields its origin (http://127.0.0.1:PORT)."""
    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    with http_server(Page) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}"


@contextlib.contextmanager
def serving(app):
    """A user's own ASGI app (a relying party, an instrumented service) served by uvicorn on a free port in a thread;
    yields its base URL."""
    import uvicorn

    # log_config=None, no log_level: uvicorn leaves logging alone (its default config would mute the mocks' own uvicorn
    # warnings for the rest of the session: the Hub routes them from the same loggers)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the app did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


def wait_for_job(client_url: str, job_id: str, timeout: float = 20) -> dict:
    """Poll the client app's job status until it is completed or failed (an upload's job runs after its answer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx2.get(f"{client_url}/api/status/{job_id}").json()
        if status["status"] in ("completed", "failed"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def upload_from_page(page, client_url: str, photo: Path, size: tuple[int, int], color: tuple[int, int, int]) -> None:
    """What a person does on the client app's page: a PNG of `size` written to `photo`, picked in the file input,
    then the job watched until the page says completed."""
    from PIL import Image

    Image.new("RGB", size, color).save(photo, "PNG")
    page.goto(client_url + "/")
    page.wait_for_function("document.getElementById('token').textContent.startsWith('token: eyJ')")
    page.set_input_files("#file", str(photo))
    page.wait_for_function("document.getElementById('status').textContent === 'completed'", timeout=30_000)


def documentation() -> str:
    """README and every page of the documentation site, as one text: where the examples the tests run are found."""
    root = Path(__file__).resolve().parent.parent
    return "\n".join(path.read_text() for path in [root / "README.md", *sorted((root / "docs").rglob("*.md"))])
