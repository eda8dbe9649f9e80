"""Each server under 200 concurrent connections: throughput, errors, memory, and whether the others still answer.

Run: .venv/bin/python benchmarks/bench_load.py [--seconds 30] [--connections 200]
`mockpanel serve --demo` runs all five servers in one process on loopback; wrk loads one server at a time with a
representative request while a prober asks every other server's health twice a second. Memory is the serve
process's resident size after a 5 s warm-up and at the end of each server's run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx2

HEALTH = {"auth": "/health", "s3": "/bench", "webhooks": "/health", "client": "/health", "imageapi": "/api/v1/health"}


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def tiny_png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(out, "PNG")
    return out.getvalue()


def prepare(urls: dict[str, str]) -> dict[str, tuple[str, str, dict[str, str], str | None]]:
    """(method, url, headers, body) per server: a request that does the server's real work and answers 2xx."""
    httpx2.put(urls["s3"] + "/bench/obj", content=os.urandom(1024)).raise_for_status()
    login = httpx2.post(urls["auth"] + "/api/auth/login", json={"email": "alice@example.com", "password": "password123"})
    token = login.json()["access_token"]
    image_token = httpx2.get(urls["client"] + "/api/generate-token", params={"user_id": "bench"}).json()["token"]
    job = httpx2.post(urls["imageapi"] + "/api/v1/images/upload", headers={"authorization": f"Bearer {image_token}"},
                     files={"file": ("a.png", tiny_png(), "image/png")}).json()["job_id"]
    return {
        "auth": ("GET", urls["auth"] + "/api/auth/me", {"Authorization": f"Bearer {token}"}, None),
        "s3": ("GET", urls["s3"] + "/bench/obj", {}, None),
        "webhooks": ("POST", urls["webhooks"] + "/webhooks/bench", {"Content-Type": "application/json"},
                     json.dumps({"type": "invoice.paid", "data": {"id": "in_1", "amount": 4200}})),
        "client": ("GET", urls["client"] + "/api/generate-token?user_id=bench", {}, None),
        "imageapi": ("GET", urls["imageapi"] + f"/api/v1/jobs/{job}", {}, None),
    }


def wrk(method: str, url: str, headers: dict[str, str], body: str | None, seconds: int, connections: int) -> dict[str, float]:
    lines = [f'wrk.method = "{method}"'] + [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    if body:
        lines.append(f"wrk.body = {json.dumps(body)}")
    fd, script = tempfile.mkstemp(suffix=".lua")
    os.write(fd, "\n".join(lines).encode())
    os.close(fd)
    try:
        out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", script, url],
                             capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"requests": total, "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "non2xx": int(non2xx.group(1)) if non2xx else 0, "socket_errors": sum(map(int, sock.groups())) if sock else 0}


class Prober(threading.Thread):
    """Asks every server but the loaded one for its health, twice a second."""

    def __init__(self, urls: dict[str, str], loaded: str) -> None:
        super().__init__(daemon=True)
        self.targets = {name: urls[name] + HEALTH[name] for name in urls if name != loaded}
        self.latencies: list[float] = []
        self.failures = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx2.Client(timeout=5) as client:
            while not self.stop.is_set():
                for url in self.targets.values():
                    started = time.perf_counter()
                    try:
                        ok = client.get(url).status_code == 200
                    except httpx2.HTTPError:
                        ok = False
                    self.latencies.append((time.perf_counter() - started) * 1000)
                    self.failures += not ok
                self.stop.wait(0.5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=200)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("needs wrk on PATH (apt-get install wrk)")
    ports = Path(tempfile.mkdtemp()) / "ports.json"
    flags = [f"--{name}-port=0" for name in HEALTH]
    serve = subprocess.Popen([sys.executable, "-m", "mockpanel", "serve", "--demo", "--quiet", "--ports-file", str(ports), *flags],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if ports.exists() and ports.read_text().strip():
                break
            time.sleep(0.05)
        urls = json.loads(ports.read_text())
        targets = prepare(urls)
        print(f"mockpanel serve --demo, one process; wrk -t1 -c{args.connections} -d{args.seconds}s per server; "
              f"RSS at start {rss_mib(serve.pid):.0f} MiB")
        print(f"{'server':<10}{'request':<26}{'req/s':>8}{'errors':>8}{'RSS warm':>10}{'RSS end':>9}"
              f"{'others p95':>12}{'others max':>12}{'failed':>8}")
        for name, (method, url, headers, body) in targets.items():
            prober = Prober(urls, name)
            prober.start()
            result: dict[str, float] = {}
            load = threading.Thread(target=lambda: result.update(wrk(method, url, headers, body, args.seconds, args.connections)))
            load.start()
            time.sleep(min(5, args.seconds / 2))
            warm = rss_mib(serve.pid)
            load.join()
            end = rss_mib(serve.pid)
            prober.stop.set()
            prober.join()
            lat = sorted(prober.latencies)
            path = url.split("/", 3)[3].split("?")[0]
            print(f"{name:<10}{method + ' /' + path[:20]:<26}{result['rps']:>8,.0f}{result['non2xx'] + result['socket_errors']:>8.0f}"
                  f"{warm:>9.0f}M{end:>8.0f}M{lat[int(0.95 * (len(lat) - 1))]:>10.1f}ms{lat[-1]:>10.1f}ms{prober.failures:>8}")
        print(f"RSS at the end {rss_mib(serve.pid):.0f} MiB; prober: health of the {len(HEALTH) - 1} other servers every 0.5 s")
    finally:
        serve.terminate()
        serve.wait(15)


if __name__ == "__main__":
    main()
