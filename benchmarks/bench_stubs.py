"""Stub servers against the auth mock's /health, side by side in one run of one `mockpanel serve`: a WireMock mapping
matched among 50 (url path, a header and a query matcher), an OpenAPI operation (the Petstore's GET /pets/{petId},
validated by openapi-core, its example made from the schema) and a request nothing matches (a 404 with its near
misses; wrk repeats one request, so its report is the cached one), each as requests per second and as a share of
/health's.

Run: .venv/bin/python benchmarks/bench_stubs.py [--seconds 5] [--rounds 3] [--connections 32]
The servers run in one process (one loop, as in use); the load generator is wrk (-t1) when installed. Rounds
alternate between the cases so machine noise hits them alike; the median round is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import generator_name, requests_per_second, start_serve  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def project() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="bench-stubs-"))
    mappings = directory / "mappings"
    mappings.mkdir()
    for i in range(49):  # other mappings the matched one is chosen among
        (mappings / f"other-{i:02d}.json").write_text(json.dumps(
            {"request": {"method": "GET", "urlPath": f"/v1/other/{i}"}, "response": {"status": 200, "body": "other"}}))
    (mappings / "charge.json").write_text(json.dumps({
        "request": {"method": "GET", "urlPath": "/v1/charges", "headers": {"Accept": {"contains": "json"}},
                    "queryParameters": {"limit": {"matches": "[0-9]+"}}},
        "response": {"status": 200, "jsonBody": {"data": [{"id": "ch_1", "amount": 500}]}}}))
    shutil.copy(ROOT / "tests" / "data" / "petstore.yaml", directory / "petstore.yaml")
    (directory / "mockpanel.toml").write_text('[stubs.partner]\nmappings = "mappings"\n\n[stubs.petstore]\nopenapi = "petstore.yaml"\n')
    return directory


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    directory = project()
    proc, urls = start_serve("--only", "auth,partner,petstore", "--auth-port", "0", "--config", str(directory / "mockpanel.toml"),
                             cwd=directory)
    try:
        cases = [
            ("auth GET /health", urls["auth"] + "/health", {}, 200),
            ("stub: mapping matched (of 50)", urls["partner"] + "/v1/charges?limit=10", {"Accept": "application/json"}, 200),
            ("stub: OpenAPI GET /pets/{petId}", urls["petstore"] + "/pets/42", {}, 200),
            ("stub: no mapping matches (404)", urls["partner"] + "/v1/nothing", {}, 404),
        ]
        print(f"load: {generator_name()}, {args.connections} connections, {args.seconds:g}s x {args.rounds} alternating rounds, "
              f"{os.cpu_count()} cores")
        results: dict[str, list[float]] = {label: [] for label, _, _, _ in cases}
        for label, url, headers, status in cases:  # warm up
            requests_per_second(url, 1, args.connections, "GET", None, headers, status)
        for _ in range(args.rounds):
            for label, url, headers, status in cases:
                results[label].append(requests_per_second(url, args.seconds, args.connections, "GET", None, headers, status))
        base = statistics.median(results[cases[0][0]])
        print(f"{'case':<34}{'req/s':>10}{'of /health':>12}")
        for label, _, _, _ in cases:
            rate = statistics.median(results[label])
            print(f"{label:<34}{rate:>10,.0f}{rate / base:>11.0%}")
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
