"""Process lifetime: how the long-running commands stop, and `mockpanel start | stop | restart | status` — the
headless servers in the background, the way the seeds' run_mocks.sh ran them.

`start` runs `mockpanel serve` detached (its own session, output to a log file), waits until every server is ready
(the ports file serve writes) or the process has ended, and records the pid and the command in a state directory:
`MOCKPANEL_STATE_DIR`, else the user's state directory (platformdirs). Exit codes fit scripts: 0 done, 1 failed
(the log's last lines are printed), 3 from `status` when nothing runs (as LSB init scripts answer).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence, TextIO
from urllib.parse import urlsplit

from .private import open_private_log, owned_privately, private_dir, write_private

NOT_RUNNING = 3
READY_SECONDS = 60.0
STOP_SECONDS = 15.0


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (Ctrl+C, docker stop, CI cancelling the job)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
    return stop


def state_dir() -> Path:
    named = os.environ.get("MOCKPANEL_STATE_DIR")
    if named:
        return Path(named)
    import platformdirs

    return Path(platformdirs.user_state_dir("mockpanel"))


class Background:
    """The background servers recorded in a state directory: state.json (pid, command, ports file, start time) and
    mockpanel.log (everything serve printed)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.dir = directory or state_dir()
        self.state_file = self.dir / "state.json"
        self.log_file = self.dir / "mockpanel.log"

    def state(self) -> dict | None:
        """What start recorded, while that very process lives: the pid must still be a `mockpanel serve` started when
        it was recorded (a pid is reused once its process ends), and the file this user's alone. Anything else is
        removed (another user's file is left alone, and not believed)."""
        if not owned_privately(self.state_file) or not owned_privately(self.dir):
            return None
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(state, dict) or not _alive(state.get("pid")) or _started(state["pid"]) != state.get("ticks") or not _is_serve(state["pid"]):
            self.state_file.unlink(missing_ok=True)
            return None
        return state

    def start(self, serve_args: Sequence[str], out: TextIO, err: TextIO) -> int:
        running = self.state()
        if running is not None:
            print(f"mockpanel: already running (pid {running['pid']}, started {_ago(running['started'])} ago); "
                  "`mockpanel restart [flags]` starts it again", file=err)
            return 1
        private_dir(self.dir)
        args = list(serve_args)
        ports_file = _option(args, "--ports-file")
        if ports_file is None:
            ports_file = str(self.dir / "ports.json")
            args += ["--ports-file", ports_file]
        ports = Path(ports_file).resolve()
        ports.unlink(missing_ok=True)
        with open_private_log(self.log_file) as log:
            offset = log.tell()  # what this run prints starts here
            process = subprocess.Popen([sys.executable, "-m", "mockpanel", "serve", *args], stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + READY_SECONDS
        while not (ports.is_file() and ports.read_text().endswith("\n")):  # serve writes it whole once all are up
            if process.poll() is not None or time.monotonic() > deadline:
                if process.poll() is None:
                    _terminate(process.pid)
                err.write(_since(self.log_file, offset))
                print(f"mockpanel: the servers did not start (exit {process.poll()}; log {self.log_file})", file=err)
                return 1
            time.sleep(0.05)
        write_private(self.state_file, json.dumps({"pid": process.pid, "ticks": _started(process.pid), "args": list(serve_args),
                                                   "ports_file": str(ports), "started": time.time(), "cwd": os.getcwd()}) + "\n")
        out.write(_since(self.log_file, offset))  # the notes and each server's "running at" line
        out.write(f"mockpanel: running in the background (pid {process.pid}; log {self.log_file}; `mockpanel stop` stops it)\n")
        return 0

    def stop(self, out: TextIO) -> int:
        state = self.state()
        if state is None:
            out.write("mockpanel: not running\n")
            return 0
        _terminate(state["pid"])
        self.state_file.unlink(missing_ok=True)
        out.write(f"mockpanel: stopped (pid {state['pid']})\n")
        return 0

    def restart(self, serve_args: Sequence[str], out: TextIO, err: TextIO) -> int:
        previous = self.state()
        args = list(serve_args) if serve_args or previous is None else previous["args"]
        self.stop(out)
        return self.start(args, out, err)

    def urls(self) -> dict[str, str]:
        """{server: url} of the servers running in the background, or {} when none run."""
        state = self.state()
        if state is None:
            return {}
        try:
            urls = json.loads(Path(state["ports_file"]).read_text())
        except (OSError, ValueError):
            return {}
        return urls if isinstance(urls, dict) else {}

    def status(self, out: TextIO, err: TextIO) -> int:
        state = self.state()
        if state is None:
            print("mockpanel: not running", file=err)
            return NOT_RUNNING
        import httpx2

        urls = self.urls()
        token = os.environ.get("MOCKPANEL_ADMIN_TOKEN")
        uptime = _ago(state["started"])
        rows = [("server", "url", "pid", "uptime", "requests")]
        for name, url in urls.items():
            # The admin token goes only to this machine: the ports file names the URLs, and it is only a file.
            headers = {"Authorization": f"Bearer {token}"} if token and _loopback(url) else {}
            try:
                stats = httpx2.get(f"{url}/__mockpanel/stats", headers=headers, timeout=5, verify=False).json()
                requests = str(stats.get("total_requests", "?"))
            except (httpx2.HTTPError, ValueError):
                requests = "not answering"
            rows.append((name, url, str(state["pid"]), uptime, requests))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() + "\n")
        return 0


def _option(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process reuses the number
        return False
    try:  # a zombie (ended, not yet reaped by its parent) is not running
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _started(pid: int) -> int | None:
    """When a process started, in clock ticks since boot (/proc/PID/stat field 22): with the pid, who it is."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _is_serve(pid: int) -> bool:
    """Whether the process runs `python -m mockpanel serve` (what `start` runs), by its command line."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            args = cmdline.read().split(b"\0")
    except OSError:
        return os.name != "posix" or not Path("/proc").is_dir()  # no /proc to ask: the start time check is all there is
    return args[1:4] == [b"-m", b"mockpanel", b"serve"]


def _loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def _terminate(pid: int) -> None:
    """SIGTERM (serve closes every port), then SIGKILL if it is still there after STOP_SECONDS."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_SECONDS
    while _alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.05)


def _ago(started: float) -> str:
    seconds = max(0, int(time.time() - started))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


def _since(path: Path, offset: int, limit: int = 64 * 1024) -> str:
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            return log.read(limit).decode("utf-8", "replace")
    except OSError:
        return ""
