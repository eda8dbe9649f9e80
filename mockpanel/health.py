"""`mockpanel health` (and `python -m mockpanel.health`, the image's HEALTHCHECK): exit 0 when every server in the
ports file serve wrote answers HTTP. Standard library only, so a check every few seconds costs a few milliseconds of
CPU, not the second that importing the servers takes."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import ssl
import sys
from pathlib import Path
from typing import Any, Sequence


def check(ports_file: Path | None, timeout: float = 3.0, err: Any = sys.stderr) -> int:
    """0: every server answered (any status: the servers guard their own paths); 1: one did not, or the file is not
    written yet (serve writes it once all are up, and removes a stale one at start); 2: no file named."""
    from urllib.parse import urlsplit

    if ports_file is None:
        print("mockpanel: health reads the ports file serve writes: --ports-file FILE or MOCKPANEL_PORTS_FILE", file=err)
        return 2
    try:
        urls = json.loads(ports_file.read_text())
    except (OSError, ValueError):
        print(f"mockpanel: not ready: {ports_file} is not written yet", file=err)
        return 1
    for name, url in urls.items():
        parts = urlsplit(url)
        host = "127.0.0.1" if parts.hostname in ("0.0.0.0", "::", "", None) else parts.hostname
        if parts.scheme == "https":  # its own certificate, on its own loopback
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, parts.port, timeout=timeout, context=ssl._create_unverified_context())
        else:
            connection = http.client.HTTPConnection(host, parts.port, timeout=timeout)
        try:
            connection.request("GET", "/", headers={"Host": f"{host}:{parts.port}"})
            connection.getresponse().read()
        except OSError as exc:
            print(f"mockpanel: {name} ({url}) does not answer: {exc}", file=err)
            return 1
        finally:
            connection.close()
    return 0


def default_ports_file() -> Path | None:
    return Path(os.environ["MOCKPANEL_PORTS_FILE"]) if os.environ.get("MOCKPANEL_PORTS_FILE") else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mockpanel health", description="Exit 0 when every server that serve started answers.")
    parser.add_argument("--ports-file", metavar="FILE", type=Path, default=default_ports_file(),
                        help="the file serve --ports-file wrote (default: $MOCKPANEL_PORTS_FILE)")
    parser.add_argument("--timeout", metavar="SECONDS", type=float, default=3.0, help="how long each server may take to answer")
    args = parser.parse_args(argv)
    return check(args.ports_file, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
