"""mockpanel's container image side by side with WireMock's standalone server in a container on the same base, and
with mockpanel run on the host without Docker: image size over the base, time from `docker run` to the first answer
and to Docker's "healthy", and resident memory once serving.

WireMock runs as its standalone jar (from the wiremock npm package in tests/oracle) on this machine's Java 17,
mounted into a container of the same Debian-made base, so both pay the same container start; its "image size" is
the jar plus the JRE's own files (lib, bin, conf), what an image of it would add to the base.

Run: .venv/bin/python benchmarks/bench_image.py [--runs 5] [--image mockpanel:latest]
Needs a running Docker daemon and the image (make image). Runs alternate between the three so machine noise hits
them alike; medians are reported.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE = "mockpanel-base:bookworm"
WIREMOCK_JAR = next((ROOT / "tests" / "oracle" / "node_modules" / "wiremock" / "build").glob("wiremock-standalone-*.jar"), None)
JAVA_HOME = Path("/usr/lib/jvm/java-17-openjdk-amd64")
MOCKPANEL_PORTS = (8000, 9000, 4000, 3000, 8002)


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True, timeout=300).stdout.strip()


def answers(port: int, path: str = "/") -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", path)
        connection.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        connection.close()


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its children, from /proc (MiB)."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
            pids += [int(p) for p in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
        except (OSError, StopIteration):
            continue
    return total / 1024


def wait(condition, limit: float = 120) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > limit:
            raise SystemExit("did not come up in time")
        time.sleep(0.02)
    return time.monotonic() - started


def published(name: str, port: int) -> int:
    return int(docker("port", name, f"{port}/tcp").split(":")[-1])


def run_mockpanel_container(image: str) -> dict[str, float]:
    name = f"bench-image-{uuid.uuid4().hex[:8]}"
    began = time.monotonic()
    docker("run", "-d", "--name", name, *[a for p in MOCKPANEL_PORTS for a in ("-p", f"127.0.0.1::{p}")], image)
    started = time.monotonic()  # docker run has returned: the container's file system is made and its process runs
    try:
        ports = [published(name, p) for p in MOCKPANEL_PORTS]
        wait(lambda: all(answers(p) for p in ports))
        first = time.monotonic() - started
        wait(lambda: docker("inspect", "--format", "{{.State.Health.Status}}", name) == "healthy")
        healthy = time.monotonic() - started
        return {"docker run (s)": started - began, "first answer (s)": first, "healthy (s)": healthy,
                "RSS (MiB)": rss_mib(int(docker("inspect", "--format", "{{.State.Pid}}", name)))}
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True)


def run_wiremock_container() -> dict[str, float]:
    name = f"bench-wiremock-{uuid.uuid4().hex[:8]}"
    began = time.monotonic()
    docker("run", "-d", "--name", name, "-p", "127.0.0.1::8080", "-v", f"{JAVA_HOME.parent}:{JAVA_HOME.parent}:ro",
           "-v", "/etc/java-17-openjdk:/etc/java-17-openjdk:ro", "-v", f"{WIREMOCK_JAR}:/opt/wiremock.jar:ro", BASE,
           str(JAVA_HOME / "bin" / "java"), "-jar", "/opt/wiremock.jar", "--port", "8080", "--disable-banner")
    started = time.monotonic()
    try:
        port = published(name, 8080)
        wait(lambda: answers(port, "/__admin/health"))
        first = time.monotonic() - started
        return {"docker run (s)": started - began, "first answer (s)": first, "healthy (s)": float("nan"),
                "RSS (MiB)": rss_mib(int(docker("inspect", "--format", "{{.State.Pid}}", name)))}
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True)


def run_mockpanel_host() -> dict[str, float]:
    directory = Path(tempfile.mkdtemp(prefix="bench-image-"))
    ports_file = directory / "ports.json"
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "mockpanel", "serve", "--demo", "--quiet", "--ports-file", str(ports_file),
                                *[a for name in ("auth", "s3", "webhooks", "client", "imageapi") for a in (f"--{name}-port", "0")]],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=directory)
    try:
        wait(lambda: ports_file.is_file() and ports_file.read_text().endswith("\n"))
        ports = [int(url.rsplit(":", 1)[1]) for url in json.loads(ports_file.read_text()).values()]
        wait(lambda: all(answers(p) for p in ports))
        first = time.monotonic() - started
        return {"docker run (s)": float("nan"), "first answer (s)": first, "healthy (s)": float("nan"), "RSS (MiB)": rss_mib(process.pid)}
    finally:
        process.terminate()
        process.wait(30)
        shutil.rmtree(directory, ignore_errors=True)


def du_mib(*paths: Path) -> float:
    return sum(f.stat().st_size for p in paths for f in (p.rglob("*") if p.is_dir() else [p]) if f.is_file() and not f.is_symlink()) / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image", default="mockpanel:latest")
    args = parser.parse_args()
    image_size = int(docker("image", "inspect", "--format", "{{.Size}}", args.image)) / 2**20
    base_size = int(docker("image", "inspect", "--format", "{{.Size}}", BASE)) / 2**20
    print(f"{args.image}: {image_size:.0f} MiB, {image_size - base_size:.0f} MiB over its base ({BASE}, {base_size:.0f} MiB)")
    contenders = {"mockpanel (container)": lambda: run_mockpanel_container(args.image), "mockpanel (host, no Docker)": run_mockpanel_host}
    jre = float("nan")
    if WIREMOCK_JAR is not None and JAVA_HOME.is_dir():
        jre = du_mib(JAVA_HOME / "lib", JAVA_HOME / "bin") + du_mib(WIREMOCK_JAR)
        print(f"WireMock {WIREMOCK_JAR.stem.split('-')[-1]} standalone: jar {du_mib(WIREMOCK_JAR):.0f} MiB + Java 17's lib and bin: "
              f"{jre:.0f} MiB over the same base")
        contenders["WireMock (container)"] = run_wiremock_container
    else:
        print("WireMock left out: npm install --prefix tests/oracle (its jar) and Java 17 are needed")
    results: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
    for _ in range(args.runs):
        for name, run in contenders.items():
            results[name].append(run())
    print(f"\nmedians of {args.runs} runs (mockpanel: 5 servers; WireMock: one server); after docker run returned:")
    print(f"{'':30} {'docker run':>11} {'first answer':>13} {'healthy':>9} {'RSS':>9}")
    medians = {}

    def shown(value: float) -> str:
        return "—" if value != value else f"{value:.2f} s"

    for name, runs in results.items():
        medians[name] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        m = medians[name]
        print(f"{name:30} {shown(m['docker run (s)']):>11} {shown(m['first answer (s)']):>13} {shown(m['healthy (s)']):>9} "
              f"{m['RSS (MiB)']:>5.0f} MiB")
    if "WireMock (container)" in medians:
        ours, theirs = medians["mockpanel (container)"], medians["WireMock (container)"]
        print(f"\nmockpanel/WireMock: first answer {ours['first answer (s)'] / theirs['first answer (s)']:.2f}x, "
              f"RSS {ours['RSS (MiB)'] / theirs['RSS (MiB)']:.2f}x, image over the base {(image_size - base_size) / jre:.2f}x")
    host = medians["mockpanel (host, no Docker)"]
    print(f"mockpanel in a container/on the host: first answer {medians['mockpanel (container)']['first answer (s)'] / host['first answer (s)']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
