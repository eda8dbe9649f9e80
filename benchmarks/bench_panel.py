"""The panel under load: key-press-to-repaint latency, idle and while wrk (on loopback) drives the auth server's
/health, with the servers on the panel's loop (as before the split: "shared") and on their own loop ("thread"),
in alternating rounds of one run; and the server's throughput meanwhile.

Run: .venv/bin/python benchmarks/bench_panel.py [--connections 200] [--keys 2157[,2818...]] [--rate N] [--rounds 2]
The real app (Textual's headless driver, 120x36). Latency: from sending a key until the screen has been refreshed
after it. The load runs on one core, the whole panel process (both its threads) on the other.
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
from mockpanel.hubclient import server_urls  # noqa: E402
from mockpanel.screens.servers import server_views  # noqa: E402
from mockpanel.testing import settings_for  # noqa: E402

from loadgen import pin  # noqa: E402


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


BY_KEY: dict[str, list[float]] = {}  # under load: every sample by the key pressed (which switch is slow)


PRESS_EVERY_S = 0.3  # a press starts this often (if the one before has been drawn): the same work a second in every mode


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
            # A fixed pace, not "as fast as it answers": a panel that answers sooner would otherwise draw more a second,
            # and the servers' throughput would be compared under different panel work.
            await asyncio.sleep(max(0.05, PRESS_EVERY_S - (time.perf_counter() - start)))
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


def pin_process(cpu: int) -> bool:
    """Every thread of this process on one core (the panel's and the servers' threads alike)."""
    import os

    done = True
    for tid in os.listdir("/proc/self/task"):
        done = pin(int(tid), cpu) and done
    return done


async def measure(mode: str, args, key_sets: list[str]) -> dict:
    """One app in `mode` ("shared": the servers in the panel's loop, as before the split; "thread": their own loop):
    idle presses, then presses under load, and the server's throughput meanwhile."""
    app = create_app(settings_for(["auth", "s3", "webhooks", "client"]), freeze_gc=True, servers_loop=mode)  # as the CLI runs it
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause(0.5)
        url = app.client.read(server_urls)["auth"] + "/health"
        total = lambda: next(v.total for v in app.client.read(server_views) if v.name == "auth")  # noqa: E731
        idle = await alternating(app, pilot, args.presses, key_sets, rounds=2)
        if args.rate:  # a fixed rate from a Python process of its own (wrk holds none)
            load = subprocess.Popen([sys.executable, str(Path(__file__).resolve().parent / "loadgen.py"), url, str(args.max_seconds),
                                     str(args.connections), str(args.rate)], stdout=subprocess.DEVNULL)
        else:
            load = subprocess.Popen(["wrk", "-t1", f"-c{args.connections}", f"-d{args.max_seconds}s", url], stdout=subprocess.DEVNULL)
        pinned = not args.no_pin and pin(load.pid, 1) and pin_process(0)
        await asyncio.sleep(3)  # warm-up: the journal and the panes' bounds fill
        before, started = total(), time.perf_counter()
        loaded = await alternating(app, pilot, args.presses, key_sets, rounds=2)
        served, elapsed = total() - before, time.perf_counter() - started
        load.terminate()
        load.wait()
        await pilot.press("q")
    return {"idle": idle, "loaded": loaded, "rate": served / elapsed, "pinned": pinned, "rss": rss_mib()}


async def main(args) -> None:
    if not args.rate and not shutil.which("wrk"):
        raise SystemExit("needs wrk on PATH (apt-get install wrk)")
    key_sets = args.keys.split(",")
    modes = args.modes.split(",")
    runs: dict[str, list[dict]] = {mode: [] for mode in modes}
    for i in range(args.rounds):  # the modes in alternating order, so the machine's drift falls on both
        for mode in modes if i % 2 == 0 else modes[::-1]:
            runs[mode].append(await measure(mode, args, key_sets))
    source = (f"python at {args.rate:g}/s" if args.rate else "wrk") + f", {args.connections} connections"
    pinned = all(r["pinned"] for rs in runs.values() for r in rs)
    print(f"auth /health under load ({source}; {'load and panel process on a core each' if pinned else 'not pinned'}); "
          f"{args.rounds} alternating rounds a mode, {args.presses} presses a round and set")
    print(f"{'servers loop':<14}{'keys':<8}{'idle p50':>10}{'idle p95':>10}{'load p50':>10}{'load p95':>10}{'req/s':>10}")
    for mode in modes:
        rate = statistics.median(r["rate"] for r in runs[mode])
        for keys in key_sets:
            idle = [v for r in runs[mode] for v in r["idle"][keys]]
            loaded = [v for r in runs[mode] for v in r["loaded"][keys]]
            print(f"{mode:<14}{keys:<8}{statistics.median(idle):>10.1f}{pct(idle, 0.95):>10.1f}{statistics.median(loaded):>10.1f}"
                  f"{pct(loaded, 0.95):>10.1f}{rate:>10,.0f}")
    if len(modes) == 2:
        a, b = modes
        for keys in key_sets:
            pa = pct([v for r in runs[a] for v in r["loaded"][keys]], 0.95)
            pb = pct([v for r in runs[b] for v in r["loaded"][keys]], 0.95)
            print(f"loaded p95, {keys}: {a} / {b} = {pa / pb:.2f}")
        ra, rb = (statistics.median(r["rate"] for r in runs[m]) for m in modes)
        print(f"server throughput: {a} / {b} = {ra / rb:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--presses", type=int, default=80, help="presses a round and key set")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each mode, in alternating order")
    parser.add_argument("--modes", default="shared,thread", help="shared: the servers in the panel's loop (before the split); "
                        "thread: the servers on their own loop (now)")
    parser.add_argument("--rate", type=float, default=0, help="requests a second from a rate-holding Python generator instead of wrk")
    parser.add_argument("--keys", default="2157", help="the pane keys pressed in turn (8 for the Traces pane: 2818); "
                        "several sets, comma-separated (2818,2717), are timed in alternating rounds of the same run")
    parser.add_argument("--connections", type=int, default=32, help="wrk's concurrent connections")
    parser.add_argument("--no-pin", action="store_true", help="let the scheduler place the load and the panel (by default each has a core "
                        "of its own: taking turns on one core, the scheduler's choices decide the figure)")
    parser.add_argument("--max-seconds", type=int, default=600, help="stop the load after this long")
    asyncio.run(main(parser.parse_args()))
