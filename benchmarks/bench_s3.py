"""S3 throughput and memory: mockpanel's S3 mock against moto's server, the same boto3 workload side by side; then
mockpanel as a share of the ceiling (a server answering boto3 with pre-rendered responses), and what versioning and
notifications cost.

Run: .venv/bin/pip install -e '.[bench]' && .venv/bin/python benchmarks/bench_s3.py [--quick] [--part moto|ceiling]
Both servers run as separate processes on loopback; each workload runs against one, then the other.
Peak memory is the server's VmHWM (Linux) minus its resident size before the 1 GiB transfer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import httpx2
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"aws_access_key_id": "test-key", "aws_secret_access_key": "test-secret", "region_name": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str) -> None:
    for _ in range(400):
        try:
            httpx2.get(url, timeout=1)
            return
        except httpx2.TransportError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not start")


def start_mockpanel() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mockpanel", "serve", "--only", "s3", "--s3-port", str(port), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/health")
    return proc, url


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/moto-api/")
    return proc, url


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def client(url: str, pool: int = 10):
    return boto3.client("s3", endpoint_url=url, config=Config(max_pool_connections=pool, retries={"max_attempts": 1}), **KEYS)


def timed(fn, count: int) -> float:
    start = time.perf_counter()
    fn()
    return count / (time.perf_counter() - start)


def small_ops(url: str, n: int, threads: int, bucket: str | None = None) -> dict[str, float]:
    s3 = client(url, pool=threads + 2)
    bucket = bucket or f"small-{threads}"
    s3.create_bucket(Bucket=bucket)
    body = os.urandom(1024)
    keys = [f"obj/{i:06d}" for i in range(n)]

    def run(op) -> None:
        if threads == 1:
            for k in keys:
                op(k)
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(op, keys))

    return {
        "PUT": timed(lambda: run(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=body)), n),
        "GET": timed(lambda: run(lambda k: s3.get_object(Bucket=bucket, Key=k)["Body"].read()), n),
        "HEAD": timed(lambda: run(lambda k: s3.head_object(Bucket=bucket, Key=k)), n),
    }


def listing(url: str, keys: int, rounds: int) -> float:
    s3 = client(url, pool=18)
    s3.create_bucket(Bucket="listing")
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: s3.put_object(Bucket="listing", Key=f"dir{i % 10}/file-{i:06d}.txt", Body=b"x"), range(keys)))

    def list_all() -> None:
        for _ in range(rounds):
            seen = sum(p.get("KeyCount", 0) for p in s3.get_paginator("list_objects_v2").paginate(Bucket="listing"))
            assert seen == keys, seen

    return timed(list_all, rounds)  # full listings of `keys` keys per second


def capacity(url: str, seconds: int) -> dict[str, float]:
    """What the server itself sustains, with wrk as the client (boto3 costs ~1 ms a call and ~100 ms to parse a
    1000-key listing on the client side, which caps any ratio measured through it)."""
    import shutil

    if not shutil.which("wrk"):
        return {}
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from loadgen import requests_per_second

    s3 = client(url)
    s3.put_object(Bucket="listing", Key="one-kib", Body=os.urandom(1024))
    # A SigV4-shaped header (neither server verifies signatures here): moto refuses anonymous requests.
    auth = {"Authorization": "AWS4-HMAC-SHA256 Credential=test-key/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"}
    return {
        "wrk: GET 1 KiB (req/s)": requests_per_second(f"{url}/listing/one-kib", seconds, 8, headers=auth),
        "wrk: PUT 1 KiB (req/s)": requests_per_second(f"{url}/listing/put-target", seconds, 8, method="PUT", body=b"x" * 1024, headers=auth),
        "wrk: ListObjectsV2 1000-key page (req/s)": requests_per_second(f"{url}/listing?list-type=2", seconds, 8, headers=auth),
    }


def big_object(url: str, pid: int, size: int) -> dict[str, float]:
    s3 = client(url)
    s3.create_bucket(Bucket="big")
    with tempfile.NamedTemporaryFile() as fh:
        chunk = os.urandom(1024 * 1024)
        for _ in range(size // len(chunk)):
            fh.write(chunk)
        fh.flush()
        before = rss_kib(pid, "VmRSS")
        start = time.perf_counter()
        with open(fh.name, "rb") as body:
            s3.put_object(Bucket="big", Key="huge.bin", Body=body)
        put_s = time.perf_counter() - start
        start = time.perf_counter()
        got = 0
        for piece in s3.get_object(Bucket="big", Key="huge.bin")["Body"].iter_chunks(1024 * 1024):
            got += len(piece)
        get_s = time.perf_counter() - start
        assert got == size
    return {"PUT MiB/s": size / 2**20 / put_s, "GET MiB/s": size / 2**20 / get_s,
            "peak growth MiB": (rss_kib(pid, "VmHWM") - before) / 1024}


def record(url: str, keys: int) -> dict:
    """mockpanel's answers to the benchmark's calls, as boto3 received them: PutObject, GetObject, HeadObject (1 KiB)
    and every ListObjectsV2 page of the `keys`-key bucket (by continuation token)."""
    import base64

    s3 = client(url)
    recorded: dict = {}

    def keep(name: str):
        def handler(http_response, parsed, model, **kwargs):
            streamed = model.name == "GetObject"  # its body is the caller's to read: recorded below
            recorded[name(parsed)] = {"status": http_response.status_code, "headers": list(http_response.headers.items()),
                                      "body": "" if streamed else base64.b64encode(http_response.content).decode()}
        return handler

    s3.meta.events.register("after-call.s3.PutObject", keep(lambda p: "PUT"))
    s3.meta.events.register("after-call.s3.GetObject", keep(lambda p: "GET"))
    s3.meta.events.register("after-call.s3.HeadObject", keep(lambda p: "HEAD"))
    s3.meta.events.register("after-call.s3.ListObjectsV2", keep(lambda p: f"list:{p.get('ContinuationToken', '')}"))
    s3.create_bucket(Bucket="recorded")
    body = os.urandom(1024)
    s3.put_object(Bucket="recorded", Key="obj/000000", Body=body)
    assert s3.get_object(Bucket="recorded", Key="obj/000000")["Body"].read() == body
    recorded["GET"]["body"] = base64.b64encode(body).decode()
    s3.head_object(Bucket="recorded", Key="obj/000000")
    assert sum(p.get("KeyCount", 0) for p in s3.get_paginator("list_objects_v2").paginate(Bucket="listing")) == keys
    return recorded


def start_ceiling(recorded: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    path = Path(tempfile.mkdtemp(prefix="ceiling-")) / "recorded.json"
    path.write_text(json.dumps(recorded))
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve().parent / "ceiling_s3.py"), str(port), str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/")
    return proc, url


def full_listing(url: str, keys: int, rounds: int) -> float:
    s3 = client(url)

    def list_all() -> None:
        for _ in range(rounds):
            seen = sum(p.get("KeyCount", 0) for p in s3.get_paginator("list_objects_v2").paginate(Bucket="listing"))
            assert seen == keys, seen

    return timed(list_all, rounds)


def versions_and_notifications(url: str, target: str, keys: int, n: int) -> dict[str, float]:
    """A versioned listing of `keys` versions (keys/10 keys x 10 versions) against a plain listing of `keys`
    objects, and PUTs into a bucket with a notification rule (to `target`) against plain PUTs."""
    s3 = client(url, pool=18)
    s3.create_bucket(Bucket="versions")
    s3.put_bucket_versioning(Bucket="versions", VersioningConfiguration={"Status": "Enabled"})
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: s3.put_object(Bucket="versions", Key=f"dir{i % 10}/file-{i // 10:06d}.txt", Body=b"x"), range(keys)))

    def list_versions() -> None:
        seen = sum(len(p.get("Versions", [])) for p in s3.get_paginator("list_object_versions").paginate(Bucket="versions"))
        assert seen == keys, seen

    def list_plain() -> None:
        seen = sum(p.get("KeyCount", 0) for p in s3.get_paginator("list_objects_v2").paginate(Bucket="listing"))
        assert seen == keys, seen

    plain_list, versioned_list = timed(list_plain, 1), timed(list_versions, 1)
    s3.create_bucket(Bucket="plain-puts")
    s3.create_bucket(Bucket="notified-puts")
    httpx2.put(f"{url}/__mockpanel/notifications/notified-puts", json={"url": f"{target}/hook", "events": ["s3:ObjectCreated:*"]})
    body = os.urandom(1024)
    plain_put = timed(lambda: [s3.put_object(Bucket="plain-puts", Key=f"k{i}", Body=body) for i in range(n)], n)
    notified_put = timed(lambda: [s3.put_object(Bucket="notified-puts", Key=f"k{i}", Body=body) for i in range(n)], n)
    return {"plain listing of the same count (listings/s)": plain_list, "versioned listing (listings/s)": versioned_list,
            "plain PUT 1 KiB (ops/s)": plain_put, "PUT 1 KiB with a notification rule (ops/s)": notified_put}


def ceiling_part(quick: bool) -> None:
    n, keys, rounds = (200, 2000, 2) if quick else (600, 10_000, 5)
    from loadgen import pin

    proc, url = start_mockpanel()
    pinned = pin(proc.pid, 1) and pin(0, 0)
    shares: dict[str, list[float]] = {}
    rates: dict[str, dict[str, list[float]]] = {"mockpanel": {}, "ceiling": {}}
    try:
        listing(url, keys, 1)  # fills the bucket the listings read
        ceiling, ceiling_url = start_ceiling(record(url, keys))
        pinned = pinned and pin(ceiling.pid, 1)
        try:
            for round_ in range(rounds):  # each round both, in alternating order: a noisy spell hits one round, not one side
                order = (("mockpanel", url), ("ceiling", ceiling_url))
                this: dict[str, dict[str, float]] = {}
                for name, target in order if round_ % 2 == 0 else order[::-1]:
                    r = {f"1 KiB {k}, serial (ops/s)": v for k, v in small_ops(target, n, 1, bucket=f"ceiling-{round_}").items()}
                    r[f"ListObjectsV2 of {keys:,} keys (listings/s)"] = full_listing(target, keys, 2)
                    this[name] = r
                    for label, value in r.items():
                        rates[name].setdefault(label, []).append(value)
                for label in this["mockpanel"]:
                    shares.setdefault(label, []).append(this["mockpanel"][label] / this["ceiling"][label])
            extra = versions_and_notifications(url, ceiling_url, keys, n)
        finally:
            ceiling.terminate()
            ceiling.wait(20)
    finally:
        proc.terminate()
        proc.wait(20)
    where = "client on one core, server on the other" if pinned else "not pinned to cores"
    print(f"boto3 {boto3.__version__}, {os.cpu_count()} cores ({where}); {n} serial small ops; {keys:,} keys listed; {rounds} rounds")
    print(f"{'through boto3 (medians of the rounds)':<44}{'ceiling':>12}{'mockpanel':>12}{'share':>9}   rounds' shares")
    for label, values in shares.items():
        m, c = statistics.median(rates["mockpanel"][label]), statistics.median(rates["ceiling"][label])
        spread = " ".join(f"{100 * v:.0f}" for v in values)
        print(f"{label:<44}{c:>12,.1f}{m:>12,.1f}{100 * statistics.median(values):>8.0f}%   {spread}")
    results = {name: {label: statistics.median(v) for label, v in by_label.items()} for name, by_label in rates.items()}
    print("(share: the median over the rounds of mockpanel's rate as a percentage of the ceiling's in the same round)")
    print(f"versioned listing of {keys:,} versions: {extra['versioned listing (listings/s)']:,.2f}/s against "
          f"{extra['plain listing of the same count (listings/s)']:,.2f}/s plain "
          f"({extra['plain listing of the same count (listings/s)'] / extra['versioned listing (listings/s)']:.2f}x the time)")
    print(f"PUT with a notification rule: {extra['PUT 1 KiB with a notification rule (ops/s)']:,.0f} ops/s against "
          f"{extra['plain PUT 1 KiB (ops/s)']:,.0f} plain ({extra['PUT 1 KiB with a notification rule (ops/s)'] / extra['plain PUT 1 KiB (ops/s)']:.0%})")
    print(json.dumps({"results": results, "extra": extra}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller counts (a smoke run, not the README figures)")
    parser.add_argument("--part", choices=["moto", "ceiling", "all"], default="all", help="moto: against moto's server; ceiling: "
                        "against a server of pre-rendered answers, plus versioning and notification costs")
    args = parser.parse_args()
    if args.part in ("ceiling", "all"):
        ceiling_part(args.quick)
    if args.part == "ceiling":
        return
    n, keys, rounds, size = (200, 2000, 2, 64 * 2**20) if args.quick else (1000, 10_000, 3, 2**30)
    results: dict[str, dict[str, float]] = {}
    for name, start in (("mockpanel", start_mockpanel), ("moto", start_moto)):
        proc, url = start()
        try:
            r: dict[str, float] = {}
            for label, value in small_ops(url, n, 1).items():
                r[f"1 KiB {label}, serial (ops/s)"] = value
            for label, value in small_ops(url, n * 2, 8).items():
                r[f"1 KiB {label}, 8 threads (ops/s)"] = value
            r[f"ListObjectsV2 of {keys:,} keys (listings/s)"] = listing(url, keys, rounds)
            r.update(capacity(url, 2 if args.quick else 5))
            for label, value in big_object(url, proc.pid, size).items():
                r[f"{size // 2**20} MiB object: {label}"] = value
            results[name] = r
        finally:
            proc.terminate()
            proc.wait(20)
    print(f"boto3 {boto3.__version__}, {os.cpu_count()} cores; {n} serial / {n * 2} threaded small ops; {keys:,} keys listed {rounds}x")
    print(f"{'workload':<44}{'moto':>12}{'mockpanel':>12}{'ratio':>9}")
    for label in results["mockpanel"]:
        m, o = results["mockpanel"][label], results["moto"][label]
        ratio = (o / m if "growth" in label else m / o) if m and o else float("nan")
        print(f"{label:<44}{o:>12,.1f}{m:>12,.1f}{ratio:>8.1f}x")
    print("(ratio: how many times better mockpanel is; for memory growth, moto's growth / mockpanel's)")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
