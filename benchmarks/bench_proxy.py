"""A TCP proxy with no toxic against a direct connection, side by side in one run: throughput of one stream (MiB/s
for 1 GiB) and the latency a proxy adds to small request/response pairs (p50/p99 of 100-byte ping-pongs).

Run: .venv/bin/python benchmarks/bench_proxy.py [--gib 1] [--pings 5000] [--rounds 3]
The upstream (a stream source and an echo server) runs in this process's threads; the proxy in `mockpanel serve` in
a process of its own, on one core; the client here, on the other. Rounds alternate direct and proxied.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import pin  # noqa: E402

CHUNK = b"\xa5" * (1024 * 1024)


class Upstream(socketserver.BaseRequestHandler):
    """`STREAM n` sends n bytes; `ECHO` echoes 100-byte messages until the client leaves."""

    def handle(self) -> None:
        sock = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        line = b""
        while not line.endswith(b"\n"):
            data = sock.recv(1)
            if not data:
                return
            line += data
        if line.startswith(b"STREAM"):
            left = int(line.split()[1])
            while left > 0:
                sent = sock.send(CHUNK[: min(left, len(CHUNK))])
                left -= sent
        else:
            while True:
                message = recv_exactly(sock, 100)
                if message is None:
                    return
                sock.sendall(message)


def recv_exactly(sock: socket.socket, size: int) -> bytes | None:
    got = bytearray()
    while len(got) < size:
        data = sock.recv(size - len(got))
        if not data:
            return None
        got += data
    return bytes(got)


def stream(port: int, total: int) -> float:
    """MiB/s reading `total` bytes from the upstream through `port`."""
    buffer = bytearray(1024 * 1024)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        started = time.perf_counter()
        sock.sendall(f"STREAM {total}\n".encode())
        got = 0
        while got < total:
            n = sock.recv_into(buffer)
            if not n:
                raise RuntimeError(f"the stream ended after {got} bytes")
            got += n
        return total / (1024 * 1024) / (time.perf_counter() - started)


def pings(port: int, count: int) -> list[float]:
    """Round-trip times (ms) of `count` 100-byte messages on one connection."""
    message = b"p" * 100
    samples = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b"ECHO\n")
        for _ in range(count):
            started = time.perf_counter()
            sock.sendall(message)
            recv_exactly(sock, 100)
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(args: argparse.Namespace) -> None:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Upstream)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    upstream = server.server_address[1]
    work = Path(tempfile.mkdtemp(prefix="bench-proxy-"))
    (work / "mockpanel.toml").write_text(f'[proxies.bench]\nlisten = 0\nupstream = "127.0.0.1:{upstream}"\n')
    ports_file = work / "ports.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOCKPANEL_")} | {"MOCKPANEL_TOXIPROXY_PORT": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "mockpanel", "serve", "--only", "auth", "--auth-port", "0", "--quiet",
                             "--ports-file", str(ports_file)], cwd=work, env=env, stdout=subprocess.DEVNULL)
    try:
        while not (ports_file.is_file() and ports_file.read_text().endswith("\n")):
            time.sleep(0.05)
        auth = json.loads(ports_file.read_text())["auth"]
        import httpx2

        proxy = int(httpx2.get(auth + "/__mockpanel/toxiproxy/proxies/bench").json()["listen"].rsplit(":", 1)[1])
        pinned = pin(proc.pid, 1) and pin(0, 0)
        total = int(args.gib * 1024 ** 3)
        results: dict[str, dict[str, list[float]]] = {"direct": {"mib_s": [], "ms": []}, "proxy": {"mib_s": [], "ms": []}}
        for i in range(args.rounds):
            for name, port in ((("direct", upstream), ("proxy", proxy)) if i % 2 == 0 else (("proxy", proxy), ("direct", upstream))):
                results[name]["mib_s"].append(stream(port, total))
                results[name]["ms"] += pings(port, args.pings)
    finally:
        proc.terminate()
        proc.wait(15)
        server.shutdown()
    print(f"{args.rounds} alternating rounds; {args.gib:g} GiB a stream, {args.pings} pings a round; "
          f"{'proxy process and client on a core each' if pinned else 'not pinned'}")
    print(f"{'':<8}{'MiB/s (median)':>16}{'ping p50 ms':>14}{'ping p99 ms':>14}")
    for name, r in results.items():
        print(f"{name:<8}{statistics.median(r['mib_s']):>16,.0f}{pct(r['ms'], 0.5):>14.3f}{pct(r['ms'], 0.99):>14.3f}")
    d, p = results["direct"], results["proxy"]
    print(f"proxy / direct: throughput {statistics.median(p['mib_s']) / statistics.median(d['mib_s']):.2f}x; "
          f"added latency p50 {pct(p['ms'], 0.5) - pct(d['ms'], 0.5):+.3f} ms, p99 {pct(p['ms'], 0.99) - pct(d['ms'], 0.99):+.3f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=1.0, help="GiB a stream")
    parser.add_argument("--pings", type=int, default=5000, help="100-byte round trips a round")
    parser.add_argument("--rounds", type=int, default=3)
    main(parser.parse_args())
