"""kill -9 during uploads: every acknowledged object comes back whole, nothing partial, no manual repair."""

from __future__ import annotations

import hashlib
import os
import random
import re
import signal
import threading
import time

import httpx2

from conftest import ServeProcess, make_s3_client


def start_s3(data_dir) -> tuple[ServeProcess, str]:
    serve = ServeProcess("--only", "s3", "--s3-port", "0", "--s3-data-dir", str(data_dir), "--quiet")
    line = serve.readline()
    match = re.fullmatch(r"s3: running at (http://127\.0\.0\.1:\d+)", line)
    assert match, line
    return serve, match.group(1)


def test_kill_9_during_uploads_loses_nothing_acknowledged(tmp_path):
    data_dir = tmp_path / "s3data"
    serve, url = start_s3(data_dir)
    acked: dict[str, str] = {}  # key -> md5 of the last acknowledged body
    sent: dict[str, set[str]] = {}  # key -> md5 of every body ever sent for it (acknowledged or not)
    lock = threading.Lock()
    stop = threading.Event()
    with serve:
        make_s3_client(url).create_bucket(Bucket="crash")

        def uploader(worker: int) -> None:
            rng = random.Random(worker)
            with httpx2.Client(timeout=10) as client:
                n = 0
                while not stop.is_set():
                    n += 1
                    key = f"w{worker}/obj-{n % 7}"  # keys are overwritten: an object must be one whole version
                    body = rng.randbytes(rng.choice([1, 1024, 64 * 1024, 700 * 1024, 3 * 1024 * 1024]))
                    digest = hashlib.md5(body).hexdigest()
                    with lock:
                        sent.setdefault(key, set()).add(digest)
                    try:
                        r = client.put(f"{url}/crash/{key}", content=body)
                    except httpx2.HTTPError:
                        return  # the server is gone
                    if r.status_code == 200:
                        assert r.headers["etag"] == f'"{digest}"'
                        with lock:
                            acked[key] = digest

        threads = [threading.Thread(target=uploader, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while len(acked) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # uploads in flight, of every size
        os.kill(serve.proc.pid, signal.SIGKILL)
        serve.proc.wait(10)
        stop.set()
        for t in threads:
            t.join(20)
    with lock:
        acked_at_kill = dict(acked)
    assert len(acked_at_kill) >= 20

    serve, url = start_s3(data_dir)  # starts on its own: leftovers of the crash are swept
    with serve:
        s3 = make_s3_client(url)
        listed = {o["Key"]: o for page in s3.get_paginator("list_objects_v2").paginate(Bucket="crash") for o in page.get("Contents", [])}
        for key, digest in acked_at_kill.items():
            assert key in listed, f"acknowledged {key} is gone"
        for key, item in listed.items():
            body = s3.get_object(Bucket="crash", Key=key)["Body"].read()
            digest = hashlib.md5(body).hexdigest()
            assert digest in sent[key], f"{key} is not any body that was sent (torn)"
            assert item["ETag"] == f'"{digest}"' and item["Size"] == len(body)
        assert list((data_dir / "tmp").iterdir()) == []  # half-written files were swept at start
        assert len(list((data_dir / "data").iterdir())) == len(listed)  # and bodies no object refers to
        assert serve.stop() == 0
