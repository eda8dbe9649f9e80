"""Load generation for the benchmarks: wrk when installed, else a small keep-alive HTTP/1.1 generator in Python."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any
from urllib.parse import urlsplit


CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def pin(pid: int, cpu: int) -> bool:
    """Keep a process (0: this one) on one core (Linux): the load or client on one, the process under test on the
    other, so the two do not take turns on a core and the scheduler's choices do not decide the figure. False where
    it cannot be done."""
    try:
        if len(CPUS) < 2:
            return False
        os.sched_setaffinity(pid, {CPUS[cpu]})
        return True
    except (AttributeError, OSError):
        return False


def _wrk(url: str, seconds: float, connections: int, method: str, body: bytes | None, headers: dict[str, str], status: int = 200) -> float:
    script = None
    args = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    if method != "GET" or body or headers:
        lines = [f'wrk.method = "{method}"']
        if body:
            lines.append(f"wrk.body = {json.dumps(body.decode())}")
        for k, v in headers.items():
            lines.append(f'wrk.headers["{k}"] = "{v}"')
        fd, script = tempfile.mkstemp(suffix=".lua")
        os.write(fd, "\n".join(lines).encode())
        os.close(fd)
        args += ["-s", script]
    try:
        out = subprocess.run(args + [url], capture_output=True, text=True, check=True).stdout
    finally:
        if script:
            os.unlink(script)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(0)}")
    if non2xx and status < 300:
        raise RuntimeError(f"{non2xx.group(1)} non-2xx responses from {url}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


async def python_load(url: str, seconds: float, connections: int, method: str, body: bytes | None, headers: dict[str, str],
                      rate: float | None = None, status: int = 200) -> float:
    """Keep-alive HTTP/1.1 load; with `rate`, the connections together send that many requests a second (each at
    its share, on a fixed schedule: a slow answer delays that connection's next request, not the schedule)."""
    parts = urlsplit(url)
    head = [f"{method} {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1", f"Host: {parts.netloc}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    if body:
        head.append(f"Content-Length: {len(body)}")
    request = ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")
    deadline = time.perf_counter() + seconds
    count = 0
    expected = status

    async def worker(number: int) -> None:
        nonlocal count
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        interval = connections / rate if rate else 0.0
        next_at = time.perf_counter() + interval * number / max(connections, 1)
        while time.perf_counter() < deadline:
            if interval:
                wait = next_at - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                next_at += interval
            writer.write(request)
            line_one = await reader.readline()
            if b" %d " % expected not in line_one:
                raise RuntimeError(f"unexpected answer {line_one!r} from {url}")
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            count += 1
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(connections)))
    return count / (time.perf_counter() - start)


def requests_per_second(url: str, seconds: float = 5, connections: int = 32, method: str = "GET", body: bytes | None = None,
                        headers: dict[str, str] | None = None, status: int = 200) -> float:
    """Requests a second against `url`, every answer expected to have `status` (200)."""
    headers = headers or {}
    if shutil.which("wrk"):
        return _wrk(url, seconds, connections, method, body, headers, status)
    return asyncio.run(python_load(url, seconds, connections, method, body, headers, status=status))


def generator_name() -> str:
    return "wrk" if shutil.which("wrk") else f"python {sys.version.split()[0]} asyncio (install wrk for steadier figures)"


if __name__ == "__main__":  # a load of its own process: python benchmarks/loadgen.py URL SECONDS CONNECTIONS RATE
    target, duration, conns, per_second = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    achieved = asyncio.run(python_load(target, duration, conns, "GET", None, {}, per_second or None))
    print(f"{achieved:.0f}")


def start_serve(*args: str, cwd: Any = None) -> tuple[subprocess.Popen, dict[str, str]]:
    """`mockpanel serve ARGS --quiet` in a process of its own (none of this shell's mockpanel or seed variables), and
    its {server: url} once its ports file is written (whole: it is renamed into place)."""
    from pathlib import Path

    ports = Path(tempfile.mkdtemp()) / "ports.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mockpanel", "serve", *args, "--quiet", "--ports-file", str(ports)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd,
        env={k: v for k, v in os.environ.items() if not k.startswith(("MOCKPANEL_", "JWT_", "ERROR_RATE", "SIMULATE_DELAYS"))},
    )
    deadline = time.monotonic() + 30
    while not ports.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("mockpanel did not start")
        time.sleep(0.05)
    return proc, json.loads(ports.read_text())
