"""Record the real tools' answers to tests/oracle/cases.json: WireMock 3.13 (its standalone jar, from the `wiremock`
npm package, on Java 17) serving tests/data/wiremock/root, and Prism 5.14 (`@stoplight/prism-cli`) serving each
document of tests/data/openapi/. The answers go to tests/oracle/recorded.json, which tests/test_stubs_oracles.py
compares mockpanel's answers with.

Re-record (after changing cases.json, the mappings or the documents):
    npm install --prefix tests/oracle          # the versions pinned in tests/oracle/package.json
    .venv/bin/python tests/oracle/record.py
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "data"
MODULES = HERE / "node_modules"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[0]} stopped")
        try:
            httpx2.get(url, timeout=2)
            return
        except httpx2.HTTPError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer")


def send(base: str, case: dict) -> dict:
    body = base64.b64decode(case["bodyBase64"]) if "bodyBase64" in case else case.get("body", "").encode()
    answer = httpx2.request(case["method"], base + case["path"], headers=case.get("headers") or {}, content=body or None, timeout=30)
    return {"status": answer.status_code, "content_type": answer.headers.get("content-type", ""), "body": answer.text}


def main() -> None:
    cases = json.loads((HERE / "cases.json").read_text())["cases"]
    recorded: dict[str, dict] = {}
    jar = next((MODULES / "wiremock" / "build").glob("wiremock-standalone-*.jar"))
    port = free_port()
    wiremock = subprocess.Popen(["java", "-jar", str(jar), "--port", str(port), "--bind-address", "127.0.0.1", "--root-dir",
                                 str(DATA / "wiremock" / "root"), "--disable-banner"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{port}/__admin/health", wiremock)
        for case in (c for c in cases if c["tool"] == "wiremock"):
            recorded[case["name"]] = send(f"http://127.0.0.1:{port}", case)
    finally:
        wiremock.terminate()
        wiremock.wait(20)
    for document in sorted({c["document"] for c in cases if c["tool"] == "prism"}):
        port = free_port()
        prism = subprocess.Popen([str(MODULES / ".bin" / "prism"), "mock", "-h", "127.0.0.1", "-p", str(port), str(DATA / "openapi" / document)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(f"http://127.0.0.1:{port}/", prism)
            for case in (c for c in cases if c["tool"] == "prism" and c["document"] == document):
                recorded[case["name"]] = send(f"http://127.0.0.1:{port}", case)
        finally:
            prism.terminate()
            prism.wait(20)
    versions = {"wiremock": jar.stem.rsplit("-", 1)[1],
                "prism": json.loads((MODULES / "@stoplight" / "prism-cli" / "package.json").read_text())["version"]}
    (HERE / "recorded.json").write_text(json.dumps({"versions": versions, "answers": recorded}, indent=1, ensure_ascii=False) + "\n")
    print(f"recorded {len(recorded)} answers ({versions})", file=sys.stderr)


if __name__ == "__main__":
    main()
