"""The mail catcher's throughput: messages a second through Python's smtplib with 32 concurrent senders (each on its
own connection, sending one message after another), beside Mailpit's published figure ("approximately 70-100 emails
per second depending on CPU, network speed & email size", its README); and the server's resident memory once it
holds 10,000 messages.

Run: .venv/bin/python benchmarks/bench_mail.py [--messages 10000] [--senders 32]
Mailpit itself cannot be had here (no release download works), so its own figure is what it is compared with.
"""

from __future__ import annotations

import argparse
import smtplib
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_s3 import ROOT, free_port, wait_http  # noqa: E402
from bench_state import status_kib  # noqa: E402

MAILPIT_PER_SECOND = (70, 100)


def message(n: int) -> bytes:
    mail = EmailMessage()
    mail["From"] = "Shop <noreply@shop.example>"
    mail["To"] = f"user{n}@example.com"
    mail["Subject"] = f"Your receipt #{n}"
    mail.set_content(f"Hello user {n},\n\nthanks for your order. Verify: http://localhost:3000/verify?token={n:08d}\n" + "lorem ipsum " * 80)
    mail.add_alternative(f"<p>Hello user {n}, thanks for your order.</p>" + "<p>lorem ipsum</p>" * 40, subtype="html")
    return mail.as_bytes(policy=SMTP)  # CRLF line ends, as on the wire


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--senders", type=int, default=32)
    args = parser.parse_args()
    port, smtp = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mockpanel", "serve", "--only", "mail", "--mail-port", str(port), "--mail-smtp-port",
                             str(smtp), "--mail-max-messages", str(args.messages), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/api/v1/info")
        before = status_kib(proc.pid, "VmRSS")
        bodies = [message(n) for n in range(args.messages)]
        size = sum(map(len, bodies)) / len(bodies)

        def sender(index: int) -> int:
            sent = 0
            with smtplib.SMTP("127.0.0.1", smtp) as client:
                for n in range(index, args.messages, args.senders):
                    client.sendmail("noreply@shop.example", [f"user{n}@example.com"], bodies[n])
                    sent += 1
            return sent

        started = time.perf_counter()
        with ThreadPoolExecutor(args.senders) as pool:
            total = sum(pool.map(sender, range(args.senders)))
        seconds = time.perf_counter() - started
        held = httpx2.get(url + "/api/v1/info").json()["Messages"]
        after = status_kib(proc.pid, "VmRSS")
        rate = total / seconds
        print(f"{total:,} messages of {size / 1024:.1f} KiB through smtplib, {args.senders} senders at once: {seconds:.1f} s")
        print(f"mockpanel's mail server: {rate:,.0f} messages a second; Mailpit's published figure: "
              f"{MAILPIT_PER_SECOND[0]}-{MAILPIT_PER_SECOND[1]} a second ({rate / MAILPIT_PER_SECOND[1]:.1f}x to "
              f"{rate / MAILPIT_PER_SECOND[0]:.1f}x)")
        print(f"holding {held:,} messages: resident memory {after / 1024:.0f} MiB ({(after - before) / 1024:+.0f} MiB since start)")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
