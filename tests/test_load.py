"""Bounded load in the suite: 200 concurrent keep-alive connections per server against `mockpanel serve` (its own
process), every answer 2xx, the other servers answering meanwhile, memory flat after a warm-up round.
MOCKPANEL_LOAD_SECONDS sets each round's length (default 3; benchmarks/bench_load.py runs the 30 s version)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import threading
from pathlib import Path

import httpx2

from conftest import ServeProcess

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from loadgen import python_load  # noqa: E402

SECONDS = float(os.environ.get("MOCKPANEL_LOAD_SECONDS", "3"))


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_200_connections_per_server_no_errors_others_answer_memory_flat():
    with ServeProcess("--only", "auth,s3,webhooks", "--auth-port", "0", "--s3-port", "0", "--webhooks-port", "0", "--quiet") as serve:
        urls = dict(re.fullmatch(r"(\w+): running at (\S+)", serve.readline()).groups() for _ in range(3))
        httpx2.put(urls["s3"] + "/load/obj", content=b"x" * 1024).raise_for_status()
        token = httpx2.post(urls["auth"] + "/api/auth/login", json={"email": "alice@example.com", "password": "password123"}).json()["access_token"]
        body = json.dumps({"type": "invoice.paid", "data": {"amount": 4200}}).encode()
        targets = {
            "auth": (urls["auth"] + "/api/auth/me", "GET", None, {"Authorization": f"Bearer {token}"}),
            "s3": (urls["s3"] + "/load/obj", "GET", None, {}),
            "webhooks": (urls["webhooks"] + "/webhooks/load", "POST", body, {"Content-Type": "application/json"}),
        }
        health = {"auth": "/health", "s3": "/load", "webhooks": "/health"}
        rss = []
        for round_ in range(3):  # round 0 warms up: journal and event store fill to their bounds
            for name, (url, method, payload, headers) in targets.items():
                failures: list[str] = []
                stop = threading.Event()

                def probe() -> None:
                    with httpx2.Client(timeout=10) as client:
                        while not stop.is_set():
                            for other in targets:
                                if other != name:
                                    r = client.get(urls[other] + health[other])
                                    if r.status_code != 200:
                                        failures.append(f"{other}: {r.status_code}")
                            stop.wait(0.2)

                prober = threading.Thread(target=probe)
                prober.start()
                try:
                    rate = asyncio.run(python_load(url, SECONDS, 200, method, payload, headers))  # raises on any non-200
                finally:
                    stop.set()
                    prober.join()
                assert rate > 0 and failures == [], (name, failures)
            rss.append(rss_mib(serve.proc.pid))
        assert rss[2] - rss[1] < 25, f"resident memory grew from {rss[1]:.0f} to {rss[2]:.0f} MiB after warm-up"
        assert serve.stop() == 0
