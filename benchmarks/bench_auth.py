"""Auth server throughput: mockpanel (journal on, faults off) against a bare FastAPI app, side by side in one run.

Run: .venv/bin/python benchmarks/bench_auth.py [--seconds 5] [--rounds 3]
Both servers run as separate processes on uvloop + httptools; the load generator is wrk (-t1 -c32) when installed.
Rounds alternate between the two servers so machine noise hits both alike; the median round is reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import generator_name, requests_per_second, start_serve  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LOGIN = b'{"email":"alice@example.com","password":"password123"}'


def start_mockpanel() -> tuple[subprocess.Popen, str]:
    proc, urls = start_serve("--only", "auth", "--auth-port", "0", cwd=ROOT)
    return proc, urls["auth"]


def start_bare() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "bare_auth_app.py")], stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    for _ in range(200):
        try:
            httpx2.get(f"{url}/health")
            return proc, url
        except httpx2.TransportError:
            time.sleep(0.05)
    raise SystemExit("bare app did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()

    procs = []
    try:
        mp, mp_url = start_mockpanel()
        procs.append(mp)
        bare, bare_url = start_bare()
        procs.append(bare)
        cases = [
            ("GET /health", "/health", "GET", None),
            ("POST /api/auth/login", "/api/auth/login", "POST", LOGIN),
        ]
        print(f"load: {generator_name()}, {args.connections} connections, {args.seconds:g}s x {args.rounds} alternating rounds, {os.cpu_count()} cores")
        print(f"{'endpoint':<24}{'bare FastAPI':>14}{'mockpanel':>12}{'mockpanel/bare':>16}{'overhead':>10}")
        for label, path, method, body in cases:
            results: dict[str, list[float]] = {"bare": [], "mockpanel": []}
            headers = {"Content-Type": "application/json"} if body else {}
            # warm both (and fill bcrypt's verification cache) before measuring
            for url in (bare_url, mp_url):
                requests_per_second(url + path, 1, args.connections, method, body, headers)
            for _ in range(args.rounds):
                for name, url in (("bare", bare_url), ("mockpanel", mp_url)):
                    results[name].append(requests_per_second(url + path, args.seconds, args.connections, method, body, headers))
            b, m = statistics.median(results["bare"]), statistics.median(results["mockpanel"])
            print(f"{label:<24}{b:>14,.0f}{m:>12,.0f}{m / b:>16.2f}{(1 - m / b) * 100:>9.1f}%")
        # The journal really was on: it holds what the load sent (bounded at its default 10,000).
        entries = httpx2.get(f"{mp_url}/__mockpanel/requests", params={"limit": 1}).json()["requests"]
        print(f"mockpanel journal: last entry id {entries[-1]['id'] if entries else 0} (every request recorded)")
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)


if __name__ == "__main__":
    main()
