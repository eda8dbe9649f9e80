"""The auth server as an OIDC provider: how fast it starts, next to oidc-provider-mock (a Python OIDC mock: Flask +
authlib), and how many tokens and JWKS answers it gives a second, next to the seed's HS256 login on the same server.

Run: .venv/bin/pip install -e '.[bench]' && .venv/bin/python benchmarks/bench_oidc.py [--seconds 5] [--rounds 3]
Every server is a separate process on loopback; start-up is spawn → first 200 from the discovery document, rounds
alternate between the tools, medians reported. Load: wrk (-t1 -c32) when installed.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_auth import LOGIN, start_mockpanel  # noqa: E402
from loadgen import generator_name, requests_per_second  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TOKEN = b"grant_type=client_credentials&client_id=orders-service&scope=orders%3Aread"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_to_discovery(command: list[str], url: str) -> float:
    """Seconds from spawning the process to the first 200 from its discovery document."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        while True:
            try:
                if httpx2.get(f"{url}/.well-known/openid-configuration", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx2.TransportError:
                pass
            if proc.poll() is not None or time.perf_counter() - started > 60:
                raise RuntimeError(f"{command[0]} did not start")
            time.sleep(0.01)
    finally:
        proc.terminate()
        proc.wait(20)


def start_up(rounds: int) -> dict[str, float]:
    opm = shutil.which("oidc-provider-mock", path=str(Path(sys.executable).parent))
    times: dict[str, list[float]] = {"mockpanel serve --only auth": [], "oidc-provider-mock": []}
    for _ in range(rounds):
        port = free_port()
        times["mockpanel serve --only auth"].append(time_to_discovery(
            [sys.executable, "-m", "mockpanel", "serve", "--only", "auth", "--auth-port", str(port), "--quiet"], f"http://127.0.0.1:{port}"))
        if opm:
            port = free_port()
            times["oidc-provider-mock"].append(time_to_discovery([opm, "-p", str(port)], f"http://127.0.0.1:{port}"))
    return {name: statistics.median(values) for name, values in times.items() if values}


def in_process_start(rounds: int) -> float:
    """The auth server's own start inside a running Python (the pytest plugin's case): Hub.start to serving."""
    from mockpanel.testing import RunningHub, settings_for

    values = []
    for _ in range(rounds):
        hub = RunningHub(settings_for(["auth"]))
        started = time.perf_counter()
        hub.start()
        httpx2.get(hub.urls["auth"] + "/.well-known/openid-configuration").raise_for_status()
        values.append(time.perf_counter() - started)
        hub.stop()
    return statistics.median(values)


def throughput(seconds: float, rounds: int) -> dict[str, float]:
    proc, url = start_mockpanel()
    try:
        httpx2.post(f"{url}/oauth2/token", content=TOKEN, headers=FORM).raise_for_status()  # the key exists before the clock runs
        workloads = {
            "OIDC token, client credentials, RS256": (f"{url}/oauth2/token", "POST", TOKEN, FORM),
            "OIDC JWKS": (f"{url}/jwks", "GET", None, {}),
            "seed login, HS256 (bcrypt cached)": (f"{url}/api/auth/login", "POST", LOGIN, {"Content-Type": "application/json"}),
        }
        rates: dict[str, list[float]] = {name: [] for name in workloads}
        for _ in range(rounds):
            for name, (target, method, body, headers) in workloads.items():
                rates[name].append(requests_per_second(target, seconds, 32, method, body, headers))
        return {name: statistics.median(values) for name, values in rates.items()}
    finally:
        proc.terminate()
        proc.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    print(f"start-up (spawn to the first discovery answer, median of {args.rounds})")
    ups = start_up(args.rounds)
    for name, value in ups.items():
        print(f"  {name:<34}{value * 1000:>8.0f} ms")
    if len(ups) == 2:
        print(f"  oidc-provider-mock takes {ups['oidc-provider-mock'] / ups['mockpanel serve --only auth']:.2f}x mockpanel's time")
    else:
        print("  oidc-provider-mock is not installed (pip install -e '.[bench]'): no comparison")
    print(f"  the auth server's own start in a running Python (the pytest plugin): {in_process_start(args.rounds) * 1000:.0f} ms")

    print(f"\nthroughput ({generator_name()}, 32 connections, {args.seconds:g} s, median of {args.rounds})")
    rates = throughput(args.seconds, args.rounds)
    login = rates["seed login, HS256 (bcrypt cached)"]
    for name, value in rates.items():
        print(f"  {name:<40}{value:>10,.0f} req/s  {value / login:>5.2f}x the HS256 login")


if __name__ == "__main__":
    main()
