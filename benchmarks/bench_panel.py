"""The panel under load: key-press-to-repaint latency and memory, idle against >= 1,000 requests/s, in one run.

Run: .venv/bin/python benchmarks/bench_panel.py [--requests 1000000] [--presses 200] [--keys 2157[,2818...]] [--rate N]
The real app (Textual's headless driver, 120x36) runs every mock in its loop; wrk (on loopback) drives the auth
server's /health while keys switch panes. Latency: from sending a key until the screen has been refreshed after it.
Memory: the process's resident size after warm-up and after --requests requests (the bounds should have filled).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from mockpanel.app import create_app  # noqa: E402
from mockpanel.testing import settings_for  # noqa: E402

from loadgen import pin  # noqa: E402


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


BY_KEY: dict[str, list[float]] = {}  # under load: every sample by the key pressed (which switch is slow)


async def key_latencies(app, pilot, presses: int, keys: str = "2157") -> list[float]:
    """Send a key that switches panes; time until the screen has refreshed after the switch (not until the tab
    underline's animation ends, which Pilot.press would also wait for)."""
    from textual import events

    samples: list[float] = []
    original = app.action_show
    done: asyncio.Event | None = None

    def timed_show(key: str) -> None:
        original(key)
        app.call_after_refresh(done.set)

    app.action_show = timed_show
    try:
        for i in range(presses):
            done = asyncio.Event()
            key = keys[i % len(keys)]  # each differs from the one before: every press switches panes
            start = time.perf_counter()
            app.post_message(events.Key(key, key))
            await asyncio.wait_for(done.wait(), 30)
            samples.append((time.perf_counter() - start) * 1000)
            BY_KEY.setdefault(key, []).append(samples[-1])
            await asyncio.sleep(0.05)
    finally:
        app.action_show = original
    return samples


async def alternating(app, pilot, presses: int, key_sets: list[str], rounds: int = 8) -> dict[str, list[float]]:
    """`presses` samples for each key set, taken in `rounds` alternating rounds (the load and the machine drift
    alike for every set)."""
    samples: dict[str, list[float]] = {keys: [] for keys in key_sets}
    for i in range(rounds):
        for keys in key_sets if i % 2 == 0 else key_sets[::-1]:
            samples[keys] += await key_latencies(app, pilot, max(1, presses // rounds), keys)
    return samples


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(args) -> None:
    if not args.rate and not shutil.which("wrk"):
        raise SystemExit("needs wrk on PATH (apt-get install wrk)")
    app = create_app(settings_for(["auth", "s3", "webhooks", "client"]), freeze_gc=True)  # as the CLI runs it
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause(0.5)
        url = app.hub.urls()["auth"] + "/health"
        auth = app.hub["auth"].ctx.stats
        key_sets = args.keys.split(",")
        idle = await alternating(app, pilot, args.presses, key_sets)
        idle_rss = rss_mib()

        if args.rate:  # a fixed rate from a Python process of its own (wrk holds none)
            load = subprocess.Popen([sys.executable, str(Path(__file__).resolve().parent / "loadgen.py"), url, str(args.max_seconds),
                                     str(args.connections), str(args.rate)], stdout=subprocess.DEVNULL)
        else:
            load = subprocess.Popen(["wrk", "-t1", f"-c{args.connections}", f"-d{args.max_seconds}s", url], stdout=subprocess.DEVNULL)
        pinned = not args.no_pin and pin(load.pid, 1) and pin(0, 0)
        started, before = time.perf_counter(), auth.total
        await asyncio.sleep(5)  # warm-up: the journal (10,000) and the panes' bounds fill
        warm_rss = rss_mib()
        BY_KEY.clear()
        loaded = await alternating(app, pilot, args.presses, key_sets)
        while auth.total - before < args.requests and load.poll() is None:
            await asyncio.sleep(1)
        served = auth.total - before
        elapsed = time.perf_counter() - started
        end_rss = rss_mib()
        load.terminate()
        load.wait()
        await pilot.press("q")

    source = (f"python at {args.rate:g}/s" if args.rate else "wrk") + (", load and panel on a core each" if pinned else ", not pinned to cores")
    print(f"{served:,} requests in {elapsed:.0f} s = {served / elapsed:,.0f} req/s to auth /health while the panel ran ({source}, {args.connections} connections)")
    print(f"{'keys':<8}{'':<26}{'idle':>10}{'under load':>12}")
    for keys in key_sets:
        print(f"{keys:<8}{'key to repaint p50 (ms)':<26}{statistics.median(idle[keys]):>10.1f}{statistics.median(loaded[keys]):>12.1f}")
        print(f"{keys:<8}{'key to repaint p95 (ms)':<26}{pct(idle[keys], 0.95):>10.1f}{pct(loaded[keys], 0.95):>12.1f}")
    if len(key_sets) > 1:
        base = key_sets[-1]
        for keys in key_sets[:-1]:
            print(f"p95 under load, {keys} / {base}: {pct(loaded[keys], 0.95) / pct(loaded[base], 0.95):.2f}")
    print("under load, by the pane switched to: " + ", ".join(
        f"{key} p50 {statistics.median(v):.0f} / p95 {pct(v, 0.95):.0f} ms" for key, v in sorted(BY_KEY.items())))
    print(f"memory: idle {idle_rss:.0f} MiB, after warm-up {warm_rss:.0f} MiB, after {served:,} requests {end_rss:.0f} MiB "
          f"({end_rss - warm_rss:+.0f} MiB since warm-up)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--presses", type=int, default=200)
    parser.add_argument("--rate", type=float, default=0, help="requests a second from a rate-holding Python generator instead of wrk")
    parser.add_argument("--keys", default="2157", help="the pane keys pressed in turn (8 for the Traces pane: 2818); "
                        "several sets, comma-separated (2818,2717), are timed in alternating rounds of the same run")
    parser.add_argument("--connections", type=int, default=32, help="wrk's concurrent connections")
    parser.add_argument("--no-pin", action="store_true", help="let the scheduler place the load and the panel (by default each has a core "
                        "of its own: taking turns on one core, the scheduler's choices decide the figure)")
    parser.add_argument("--max-seconds", type=int, default=900, help="stop the load after this long even if --requests is not reached")
    asyncio.run(main(parser.parse_args()))
