"""Saving and loading every mock's state (GET and PUT /__mockpanel/state) with 10,000 objects / 1 GiB in S3, beside
the floor for the same bytes: `tar` of the S3 data directory, and extracting that tar. Time and the server's peak
memory (VmHWM) over its resident size before.

Run: .venv/bin/python benchmarks/bench_state.py [--objects 10000] [--size-kib 105]
`serve` runs as a subprocess with a data directory (as in the image); the archive is streamed to and from a file.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_s3 import ROOT, free_port, wait_http  # noqa: E402


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak(pid: int) -> None:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux 4.0+)
    except OSError:
        pass


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--size-kib", type=int, default=105)  # 10,000 x 105 KiB = 1.0 GiB
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-state-"))
    data = work / "s3-data"
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mockpanel", "serve", "--only", "s3", "--s3-port", str(port), "--quiet",
                             "--s3-data-dir", str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/health")
        httpx2.put(f"{url}/bench").raise_for_status()
        body = os.urandom(args.size_kib * 1024)
        with httpx2.Client(timeout=60) as client, ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: client.put(f"{url}/bench/obj-{i:05d}", content=i.to_bytes(8, "big") + body[8:]).raise_for_status(),
                          range(args.objects)))
        total = args.objects * args.size_kib * 1024
        print(f"{args.objects:,} objects, {total / 1024**3:.2f} GiB in S3 (data directory)")
        archive, floor = work / "state.tar", work / "floor.tar"

        def save() -> None:
            with httpx2.stream("GET", f"{url}/__mockpanel/state", timeout=None) as answer, open(archive, "wb") as out:
                answer.raise_for_status()
                for chunk in answer.iter_bytes(1024 * 1024):
                    out.write(chunk)

        def load() -> None:
            def chunks():
                with open(archive, "rb") as fh:
                    while chunk := fh.read(1024 * 1024):
                        yield chunk

            httpx2.put(f"{url}/__mockpanel/state", content=chunks(), headers={"content-type": "application/x-tar"},
                       timeout=None).raise_for_status()

        before = status_kib(proc.pid, "VmRSS")
        reset_peak(proc.pid)
        save_s = timed(save)
        save_peak = status_kib(proc.pid, "VmHWM") - before
        tar_s = timed(lambda: subprocess.run(["tar", "-cf", str(floor), "-C", str(data), "."], check=True))
        before = status_kib(proc.pid, "VmRSS")
        reset_peak(proc.pid)
        load_s = timed(load)
        load_peak = status_kib(proc.pid, "VmHWM") - before
        out = work / "untar"
        out.mkdir()
        untar_s = timed(lambda: subprocess.run(["tar", "-xf", str(floor), "-C", str(out)], check=True))
        listed = httpx2.get(f"{url}/bench", params={"max-keys": "1000"}).text.count("<Key>")
        print(f"archive {archive.stat().st_size / 1024**3:.2f} GiB; after the load the bucket lists {listed} keys in its first page")
        print(f"{'':28}{'seconds':>10}{'vs tar':>10}{'peak MiB':>10}")
        print(f"{'save (GET /__mockpanel/state)':28}{save_s:>10.1f}{save_s / tar_s:>9.1f}x{save_peak / 1024:>10.0f}")
        print(f"{'tar of the data directory':28}{tar_s:>10.1f}{1:>9.1f}x{'':>10}")
        print(f"{'load (PUT /__mockpanel/state)':28}{load_s:>10.1f}{load_s / untar_s:>9.1f}x{load_peak / 1024:>10.0f}")
        print(f"{'tar -x of it':28}{untar_s:>10.1f}{1:>9.1f}x{'':>10}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
