"""What the container tests share: whether Docker is here, the image (built once per run, whichever worker asks
first), and a container started with its ports published on 127.0.0.1 only."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "mockpanel:test"
PREBUILT = os.environ.get("MOCKPANEL_TEST_IMAGE")  # an image already built from this checkout (to iterate): no build
BASE = os.environ.get("MOCKPANEL_TEST_BASE", "mockpanel-base:bookworm")


def docker(*args: str, timeout: float = 120, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and done.returncode:
        raise AssertionError(f"docker {' '.join(args)} exited with {done.returncode}: {done.stderr.strip()}")
    return done


def _unavailable() -> str | None:
    if shutil.which("docker") is None:
        return "docker is not installed (.ci/run installs docker.io and starts dockerd)"
    done = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=60)
    if done.returncode:
        return f"no Docker daemon answers: {done.stderr.strip()[:200]}"
    return None


def need_docker() -> None:
    """Skip without Docker, except in CI, where the container tests must run."""
    reason = _unavailable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI runs the container tests: {reason}")
        pytest.skip(reason)


def built_image(shared: Path) -> str:
    """The image, built from this checkout once per test run: the first worker builds, the others wait for it."""
    need_docker()
    if PREBUILT:
        return PREBUILT
    with open(shared / "image.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = shared / "image.built"
        if not marker.exists():
            done = subprocess.run(["bash", str(ROOT / "docker" / "build-image.sh"), IMAGE, BASE, sys.executable], cwd=ROOT,
                                  capture_output=True, text=True, timeout=900)
            if done.returncode:
                pytest.fail(f"the image did not build:\n{done.stdout}\n{done.stderr}")
            marker.write_text(IMAGE)
    return IMAGE


class Container:
    """`docker run -d` of the image, each port published on 127.0.0.1 (a free host port); removed on exit."""

    def __init__(self, image: str, *args: str, ports: tuple[int, ...] = (8000, 9000, 4000, 3000), env: dict | None = None,
                 volumes: tuple[str, ...] = (), name: str | None = None) -> None:
        self.name = name or f"mockpanel-test-{uuid.uuid4().hex[:10]}"
        self.command = ["run", "-d", "--name", self.name]
        for port in ports:
            self.command += ["-p", f"127.0.0.1::{port}"]
        for key, value in (env or {}).items():
            self.command += ["-e", f"{key}={value}"]
        for volume in volumes:
            self.command += ["-v", volume]
        self.command += [image, *args]
        self.ports = ports

    def start(self) -> "Container":
        docker(*self.command)
        return self

    def url(self, port: int) -> str:
        published = docker("port", self.name, f"{port}/tcp").stdout.split()[0]  # 127.0.0.1:32768
        return f"http://{published}"

    def state(self) -> dict:
        return json.loads(docker("inspect", "--format", "{{json .State}}", self.name).stdout)

    def wait_healthy(self, limit: float = 120) -> float:
        """Seconds from now until Docker reports the image's health check healthy (polls `docker inspect`, bounded)."""
        started = time.monotonic()
        while time.monotonic() - started < limit:
            state = self.state()
            if state.get("Health", {}).get("Status") == "healthy":
                return time.monotonic() - started
            if not state["Running"]:
                raise AssertionError(f"the container exited ({state['ExitCode']}):\n{self.logs()}")
            time.sleep(0.25)
        raise AssertionError(f"not healthy in {limit:.0f} s: {self.state().get('Health')}\n{self.logs()}")

    def logs(self) -> str:
        done = docker("logs", self.name, check=False)
        return done.stdout + done.stderr

    def stop(self, timeout: int = 20) -> dict:
        docker("stop", "-t", str(timeout), self.name, timeout=timeout + 60)
        return self.state()

    def remove(self) -> None:
        docker("rm", "-f", "-v", self.name, check=False)

    def __enter__(self) -> "Container":
        try:
            return self.start()
        except BaseException:
            self.remove()
            raise

    def __exit__(self, *exc) -> None:
        self.remove()


def admin_token(logs: str) -> str:
    """The admin token the container made at start, as it printed it."""
    for line in logs.splitlines():
        if "made for this run: " in line:
            return line.split("made for this run: ", 1)[1].split()[0]
    raise AssertionError(f"no admin token was printed:\n{logs}")
