"""Stub servers side by side in one run: mockpanel's against the auth mock's /health (one `mockpanel serve`), and
mockpanel's OpenAPI stub against Prism (`prism mock`) on the same document with the same requests.

Cases: a WireMock mapping matched among 50 (url path, a header and a query matcher); the Petstore's GET
/pets/{petId}; a request nothing matches (a 404 with its near misses; wrk repeats one request, so its report is the
cached one); and tests/data/openapi/features.yaml (basic auth) served by both mockpanel and Prism: a GET whose answer
is made from the schema, and a POST whose JSON body is validated. Each as requests per second, as a share of
/health's, and for the Prism cases mockpanel's rate over Prism's.

Run: .venv/bin/python benchmarks/bench_stubs.py [--seconds 5] [--rounds 3] [--connections 32]
Prism comes from npm (npm install --prefix tests/oracle; or PRISM=/path/to/prism). The load generator is wrk (-t1)
when installed. Rounds alternate between the cases so machine noise hits them alike; the median round is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
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
    shutil.copy(FEATURES, directory / "features.yaml")
    (directory / "mockpanel.toml").write_text('[stubs.partner]\nmappings = "mappings"\n\n[stubs.petstore]\nopenapi = "petstore.yaml"\n\n'
                                              '[stubs.features]\nopenapi = "features.yaml"\n')
    return directory


FEATURES = ROOT / "tests" / "data" / "openapi" / "features.yaml"


def prism_binary() -> str | None:
    found = os.environ.get("PRISM") or shutil.which("prism")
    local = ROOT / "tests" / "oracle" / "node_modules" / ".bin" / "prism"
    return found or (str(local) if local.exists() else None)


def start_prism(binary: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([binary, "mock", "-h", "127.0.0.1", "-p", str(port), "--errors", "false", str(FEATURES)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("prism did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    directory = project()
    proc, urls = start_serve("--only", "auth,partner,petstore,features", "--auth-port", "0", "--config", str(directory / "mockpanel.toml"),
                             cwd=directory)
    try:
        basic = {"Authorization": "Basic dXNlcjpwYXNz"}
        album = json.dumps({"title": "Tago Mago", "year": 1971}).encode()
        post = {**basic, "Content-Type": "application/json"}
        cases = [
            ("auth GET /health", urls["auth"] + "/health", "GET", None, {}, 200),
            ("stub: mapping matched (of 50)", urls["partner"] + "/v1/charges?limit=10", "GET", None, {"Accept": "application/json"}, 200),
            ("stub: OpenAPI GET /pets/{petId}", urls["petstore"] + "/pets/42", "GET", None, {}, 200),
            ("stub: no mapping matches (404)", urls["partner"] + "/v1/nothing", "GET", None, {}, 404),
            ("mockpanel: GET /albums/{id}", urls["features"] + "/albums/7", "GET", None, basic, 200),
            ("mockpanel: POST /albums (JSON)", urls["features"] + "/albums", "POST", album, post, 201),
        ]
        binary = prism_binary()
        if binary:
            prism, prism_url = start_prism(binary)
            cases += [("Prism: GET /albums/{id}", prism_url + "/albums/7", "GET", None, basic, 200),
                      ("Prism: POST /albums (JSON)", prism_url + "/albums", "POST", album, post, 201)]
        else:
            print("Prism not found (npm install --prefix tests/oracle, or PRISM=...): its cases are left out")
        print(f"load: {generator_name()}, {args.connections} connections, {args.seconds:g}s x {args.rounds} alternating rounds, "
              f"{os.cpu_count()} cores")
        results: dict[str, list[float]] = {case[0]: [] for case in cases}
        for label, url, method, body, headers, status in cases:  # warm up
            requests_per_second(url, 1, args.connections, method, body, headers, status)
        for _ in range(args.rounds):
            for label, url, method, body, headers, status in cases:
                results[label].append(requests_per_second(url, args.seconds, args.connections, method, body, headers, status))
        rate = {label: statistics.median(values) for label, values in results.items()}
        base = rate[cases[0][0]]
        print(f"{'case':<34}{'req/s':>10}{'of /health':>12}")
        for label, *_ in cases:
            print(f"{label:<34}{rate[label]:>10,.0f}{rate[label] / base:>11.0%}")
        if binary:
            for case in ("GET /albums/{id}", "POST /albums (JSON)"):
                print(f"mockpanel / Prism, {case}: {rate['mockpanel: ' + case] / rate['Prism: ' + case]:.2f}x")
            prism.terminate()
            prism.wait(10)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
