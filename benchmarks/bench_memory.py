"""Memory under hostile or merely big input, as the serve process's resident size (VmRSS, and the peak VmHWM).

Run: .venv/bin/python benchmarks/bench_memory.py
One `mockpanel serve` (auth, s3, webhooks, image API) with default settings; after an idle reading it sends, in turn:
10,000 GETs to auth with a 60 KB query each and 10,000 with 40 headers of 1.5 KB (the journal kept them whole: +585 MiB
before it was bounded in bytes; now each entry keeps 2 KiB of a query and 8 KiB of headers, and all of the journal
128 MiB at most),
120 webhooks of 8 MB (the receiver keeps 256 MiB of bodies by default), three 144-megapixel PNGs to the image API
(the pixel cap is 40 MP, read from the header before decoding), an aws-chunked upload with 200,000 trailer lines,
60 OTLP/JSON exports whose span `kind` is a 4 MiB string (the store kept it whole: +263 MiB before the fix), and
400 exports of 100 spans with 32 attributes of 256 characters each (40,000 of the largest spans the receiver keeps).
Each line prints the RSS above idle after the step, and the peak so far.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import warnings

import httpx2
import jwt

warnings.filterwarnings("ignore", category=jwt.warnings.InsecureKeyLengthWarning)  # the seed's development secret


def status(pid: int) -> dict[str, float]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            values[line.split(":")[0]] = int(line.split()[1]) / 1024
    return values


def big_png(side: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (side, side), 0).save(out, "PNG", optimize=True)
    return out.getvalue()


def main() -> None:
    ports = Path(tempfile.mkdtemp()) / "ports.json"
    serve = subprocess.Popen([sys.executable, "-m", "mockpanel", "serve", "--only", "auth,s3,webhooks,imageapi", "--quiet",
                              "--auth-port=0", "--s3-port=0", "--webhooks-port=0", "--imageapi-port=0", "--ports-file", str(ports)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tempfile.mkdtemp())
    try:
        for _ in range(400):
            if ports.exists() and ports.read_text().strip():
                break
            time.sleep(0.05)
        urls = json.loads(ports.read_text())
        client = httpx2.Client(timeout=120)
        client.post(urls["webhooks"] + "/webhooks/warm", json={"event_type": "warm"}).raise_for_status()
        time.sleep(1)
        idle = status(serve.pid)["VmRSS"]
        print(f"mockpanel serve (auth, s3, webhooks, imageapi), default settings; idle RSS {idle:.0f} MiB")
        print(f"{'step':<56}{'RSS change':>12}{'above idle':>12}{'peak above idle':>17}")
        last = [idle]

        def report(step: str) -> None:
            now = status(serve.pid)
            print(f"{step:<56}{now['VmRSS'] - last[0]:>+8.0f} MiB{now['VmRSS'] - idle:>8.0f} MiB{now['VmHWM'] - idle:>13.0f} MiB", flush=True)
            last[0] = now["VmRSS"]

        query = "q=" + "x" * 60_000
        for i in range(10_000):
            client.get(urls["auth"] + f"/health?i={i}&{query}")
        journal = client.get(urls["auth"] + "/__mockpanel/stats").json()["journal"]
        report(f"10,000 GETs with a 60 KB query (journal {journal['all_bytes'] / 2**20:.0f} MiB)")
        headers = {f"x-header-{j}": "h" * 1500 for j in range(40)}
        for i in range(10_000):
            client.get(urls["auth"] + f"/health?h={i}", headers=headers)
        journal = client.get(urls["auth"] + "/__mockpanel/stats").json()["journal"]
        report(f"10,000 GETs with 40 headers of 1.5 KB (journal {journal['all_bytes'] / 2**20:.0f} MiB)")

        body = bytearray(b'{"event_type": "bulk.export", "blob": "' + b"x" * (8 * 1024 * 1024 - 60) + b'"}')
        for i in range(120):
            body[-10:-2] = f"{i:08d}".encode()
            client.post(urls["webhooks"] + f"/webhooks/big-{i}", content=bytes(body)).raise_for_status()
        newest = client.get(urls["webhooks"] + "/webhooks/events", params={"limit": 1}).json()
        newest_id = (newest.get("events") or newest)[0]["id"]
        event = client.get(urls["webhooks"] + f"/webhooks/events/{newest_id}").json()
        readable = "big-119" in json.dumps(event)[:100_000]
        report(f"120 webhooks of 8 MB (newest readable: {'yes' if readable else 'NO'})")

        png = big_png(12_000)
        token = jwt.encode({"sub": "bench", "exp": int(time.time()) + 600}, "dev-secret-change-in-production", algorithm="HS256")
        jobs = []
        for n in range(3):
            r = client.post(urls["imageapi"] + "/api/v1/images/upload", headers={"authorization": f"Bearer {token}"},
                            files={"file": (f"huge-{n}.png", png, "image/png")})
            jobs.append(r.json().get("job_id"))
        outcomes = []
        for job in jobs:
            for _ in range(600):
                state = client.get(urls["imageapi"] + f"/api/v1/jobs/{job}").json()
                if state.get("status") in ("completed", "failed"):
                    outcomes.append(state["status"])
                    break
                time.sleep(0.05)
        report(f"3 PNGs of 144 MP ({len(png) // 1024} KiB each): {', '.join(outcomes)}")

        trailers = b"".join(b"x-amz-checksum-crc32:AAAAAA==\r\n" for _ in range(200_000))
        r = client.put(urls["s3"] + "/membench/k", content=b"1\r\nA\r\n0\r\n" + trailers + b"\r\n",
                       headers={"content-encoding": "aws-chunked", "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER"})
        report(f"200,000 trailer lines ({len(trailers) // 1024 // 1024} MiB): {r.status_code}")

        otlp = urls["s3"] + "/__mockpanel/v1/traces"

        def export(spans: list[dict]) -> bytes:
            return json.dumps({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "bench"}}]},
                                                  "scopeSpans": [{"spans": spans}]}]}).encode()

        def span(n: int, **extra) -> dict:
            return {"traceId": f"{n:032x}", "spanId": f"{n:016x}", "name": "op", "startTimeUnixNano": "1700000000000000000",
                    "endTimeUnixNano": "1700000000100000000", **extra}

        kind = "k" * (4 * 1024 * 1024 - 1024)
        codes = {client.post(otlp, content=export([span(i + 1, kind=kind)]), headers={"content-type": "application/json"}).status_code for i in range(60)}
        report(f"60 OTLP exports, span kind of 4 MiB: {'/'.join(map(str, sorted(codes)))}")
        attributes = [{"key": f"attribute.{j:03d}".ljust(256, "x"), "value": {"stringValue": "v" * 256}} for j in range(32)]
        for batch in range(400):
            body = export([span(100_000 + batch * 100 + i, attributes=attributes) for i in range(100)])
            client.post(otlp, content=body, headers={"content-type": "application/json"}).raise_for_status()
        report("40,000 OTLP spans with 32 attributes of 256 characters")
    finally:
        serve.terminate()
        serve.wait(15)


if __name__ == "__main__":
    main()
