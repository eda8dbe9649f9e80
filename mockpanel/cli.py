"""Command line: `mockpanel serve` runs the servers headless; flags are generated from each server's settings."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Sequence, TextIO

from . import __version__
from .display import escape_controls
from .export import BatchedLines, write_ports_file
from .journal import DomainEvent, RequestEntry
from .scenario import ScenarioError, load_scenario
from .daemon import stop_on_signals
from .timefmt import iso
from .settings import COMMON_SETTINGS, GLOBAL_SETTINGS, SettingsError, check_port_variable, cli_flag, load_settings



def _specs() -> dict[str, Any]:
    from .servers import SERVERS

    return SERVERS


def build_parser() -> argparse.ArgumentParser:
    specs = _specs()
    parser = argparse.ArgumentParser(
        prog="mockpanel",
        description="Local mock services (auth API with JWTs, ...) with a live request journal and fault injection.",
    )
    parser.add_argument("--version", action="version", version=f"mockpanel {__version__}")
    parser.add_argument("command", nargs="?", choices=["serve", "start", "stop", "restart", "status", "attach"],
                        help="serve: run the servers headless (for CI); start/stop/restart/status: the same in the background "
                        "(state in MOCKPANEL_STATE_DIR); attach [URL]: the panel on mocks running elsewhere (default: those "
                        "mockpanel start runs); without a command, the control panel")
    parser.add_argument("url", nargs="?", metavar="URL", help="with attach: any one server's URL of the mocks to watch "
                        "(e.g. http://127.0.0.1:8000); the admin token, if they need it, from --admin-token or MOCKPANEL_ADMIN_TOKEN")
    parser.add_argument("--wait", action="store_true", help="with serve: run in the background and exit once every server is ready (= start)")
    parser.add_argument("--headless", action="store_true", help="same as the serve command")
    parser.add_argument("--only", metavar="NAMES", help=f"comma-separated servers to run (of {', '.join(specs)}, and the stub "
                        "servers of the configuration file's [stubs.NAME] tables)")
    parser.add_argument("--config", metavar="FILE", type=Path, help="TOML file with a section per server (default ./mockpanel.toml)")
    parser.add_argument("--log-format", choices=["text", "json"], default="text", help="how request lines are printed")
    parser.add_argument("--quiet", action="store_true", help="print errors only: no line per request or change")
    parser.add_argument("--ports-file", metavar="FILE", type=Path, help="write {server: url} JSON here once all servers are ready")
    parser.add_argument("--keep-going", action="store_true", help="keep running when a server fails to start")
    parser.add_argument("--scenario", metavar="FILE", type=Path, help="run this TOML fault schedule once the servers are ready")
    parser.add_argument("--journal-out", metavar="FILE", type=Path, help="append every request to FILE as a JSON line, as it happens")
    parser.add_argument("--redact", action="store_true", help="mask credentials (Authorization, cookies, API keys, signatures, tokens) in --journal-out")
    parser.add_argument("--web", action="store_true", help="show the panel in a browser (textual-serve) instead of this terminal, on 127.0.0.1")
    parser.add_argument("--web-port", metavar="PORT", type=int, default=8080, help="the browser view's port (default 8080; 0 takes a free one)")
    parser.add_argument("--demo", action="store_true", help="also run the reference image API (port 8002), so the client app's loop runs end to end")

    group = parser.add_argument_group("global settings")
    for setting in GLOBAL_SETTINGS:
        group.add_argument(cli_flag("mockpanel", setting.name), dest=f"mockpanel__{setting.name}", metavar="VALUE", help=setting.help)
    for name, spec in specs.items():
        group = parser.add_argument_group(f"{name} server ({spec.title}, port {spec.default_port})")
        for setting in (*COMMON_SETTINGS, *spec.settings):
            if setting.name == "enabled":
                continue
            group.add_argument(cli_flag(name, setting.name), dest=f"{name}__{setting.name}", metavar="VALUE", help=setting.help)
    return parser


def cli_values(args: argparse.Namespace) -> dict[tuple[str, str], Any]:
    values = {}
    for dest, value in vars(args).items():
        if "__" in dest and value is not None:
            section, key = dest.split("__", 1)
            values[(section, key)] = value
    return values


ERROR_EVENTS = ("notification_failed",)  # events that are errors, printed by --quiet too (with failed statuses, warning logs)


def _value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(_value(v) for v in value) or "none"
    if isinstance(value, dict):
        return json.dumps(value, default=str, separators=(",", ":"))
    return "true" if value is True else "false" if value is False else str(value)


def event_line(item: DomainEvent) -> str:
    """A domain event as serve's text log writes it: time, server, what changed, who changed it."""
    stamp = time.strftime("%H:%M:%S", time.localtime(item.time)) + f".{int(item.time * 1000) % 1000:03d}"
    said = "".join(f" {k}={_value(v)}" for k, v in item.data.items() if v is not None)
    return escape_controls(f"{stamp} {item.server:<8} {item.kind}{said}"[:400] + f" (by {item.source})")


def is_error(item: DomainEvent) -> bool:
    return (item.kind in ERROR_EVENTS or (item.kind == "status" and item.data.get("status") == "failed")
            or (item.kind == "log" and item.data.get("level") in ("error", "critical", "warning")))


class RequestLog:
    """Prints one line per request and per domain event (what changed, on which server, by whom: the control API, the
    pytest plugin, a scenario, the panel or a request) to stdout, flushed in batches once per loop turn. `quiet`:
    errors only."""

    def __init__(self, out: TextIO, fmt: str, quiet: bool, err: TextIO = sys.stderr) -> None:
        self.err = err
        self.fmt = fmt
        self.quiet = quiet
        self._lines = BatchedLines(out)
        self.line, self.flush = self._lines.line, self._lines.flush

    def __call__(self, item: Any) -> None:
        if isinstance(item, RequestEntry):
            if self.quiet:
                return
            if self.fmt == "json":
                record = item.as_dict()
                del record["request_headers"], record["response_headers"], record["request_body_preview"], record["response_body_preview"]
                self.line(json.dumps({"event": "request", **record}))
            else:
                stamp = time.strftime("%H:%M:%S", time.localtime(item.time)) + f".{int(item.time * 1000) % 1000:03d}"
                target = escape_controls(item.path + ("?" + item.query if item.query else ""))  # a terminal may read this
                fault = f" [{item.fault}]" if item.fault else ""
                self.line(f"{stamp} {item.server:<8} {item.method} {target} {item.status or '---'} {item.duration_ms:.1f}ms{fault}")
        elif isinstance(item, DomainEvent) and item.kind == "stall":  # on stderr: stdout's lines stay the requests'
            text = json.dumps({"event": "stall", **item.data}) if self.fmt == "json" else f"warning: {escape_controls(item.data['message'])}"
            print(text, file=self.err, flush=True)
        elif isinstance(item, DomainEvent):
            # What a request did (a user registered, an object stored) is its request line already; every other change
            # — the control API's, the plugin's, a scenario's, the panel's, mockpanel's own — gets a line of its own.
            if not is_error(item) and (self.quiet or item.source == "a request"):
                return
            if self.fmt == "json":
                self.line(json.dumps({"event": item.kind, "server": item.server, "source": item.source, "time": iso(item.time),
                                      **item.data}, default=str))
            elif item.kind in ("log", "scenario"):
                self.line(f"mockpanel: {escape_controls(item.data.get('message'))}")
            else:
                self.line(event_line(item))


async def run_headless(settings, args: argparse.Namespace, scenario: Any = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    from .hub import Hub

    hub = Hub(settings, _specs())
    stop = stop_on_signals()
    if not hub.runners:
        print("mockpanel: no server is enabled", file=err)
        return 2
    if args.journal_out:
        hub.write_journal(args.journal_out, args.redact)
    await hub.start()
    # As the panel does: what exists once the servers are up lives as long as the process, so keep it out of the
    # full collections that would otherwise walk it (and hold the loop) under load.
    gc.collect()
    gc.freeze()
    for notice in settings.notices:  # after start: starting decides some (the reference image API's)
        print(notice if notice.startswith("warning: ") else f"note: {notice}", file=err, flush=True)
    for runner in hub.runners.values():
        if args.log_format == "json":
            out.write(json.dumps({"event": "ready" if runner.status == "running" else "failed", "server": runner.name, "url": runner.url, "reason": runner.reason}) + "\n")
        else:
            out.write(runner.describe() + "\n")
    for name, proxy in hub.network.proxies.items():  # TCP proxies to the user's services (network faults)
        if args.log_format == "json":
            out.write(json.dumps({"event": "ready" if proxy.status == "running" else proxy.status, "proxy": name, "listen": proxy.listen,
                                  "upstream": proxy.upstream, "reason": proxy.reason}) + "\n")
        elif proxy.status == "running":
            out.write(f"proxy {name}: listening at {proxy.listen} → {proxy.upstream}\n")
        else:
            out.write(f"proxy {name}: {proxy.status}{': ' + proxy.reason if proxy.reason else ''}\n")
    if hub.toxiproxy_url:
        out.write(json.dumps({"event": "ready", "server": "toxiproxy API", "url": hub.toxiproxy_url}) + "\n" if args.log_format == "json"
                  else f"toxiproxy API: running at {hub.toxiproxy_url}\n")
    out.flush()
    failed = hub.failed()
    if failed and not args.keep_going:
        names = ", ".join(failed)
        print(f"mockpanel: stopping, since {names} could not start (--keep-going runs the others anyway)", file=err)
        await hub.stop()
        return 1
    if args.ports_file:
        write_ports_file(args.ports_file, hub.urls())
    log = RequestLog(out, args.log_format, args.quiet, err)
    hub.bus.subscribe(log)
    if scenario is not None:
        await hub.start_scenario(scenario)
    await stop.wait()
    await hub.stop()
    log.flush()
    return 0


def attach(args: argparse.Namespace) -> int:
    """The panel on mocks running elsewhere; without a URL, on those `mockpanel start` runs."""
    import os

    from .app import attached_app
    from .attach import Disconnected, RemoteError
    from .daemon import Background

    url = args.url
    if url is None:
        urls = Background().urls()
        if not urls:
            print("mockpanel: nothing to attach to: no mocks run in the background (mockpanel start), and no URL was given "
                  "(mockpanel attach http://127.0.0.1:8000)", file=sys.stderr)
            return 2
        url = next(iter(urls.values()))
    token = getattr(args, "mockpanel__admin_token", None) or os.environ.get("MOCKPANEL_ADMIN_TOKEN")
    from .hubclient import server_names

    app = attached_app(url, token, freeze_gc=True, redact=args.redact)
    try:
        app.client.read(server_names)  # before the screen changes: an error here is a line in this terminal
    except (Disconnected, RemoteError) as exc:
        print(f"mockpanel: cannot attach to {url}: {exc}", file=sys.stderr)
        return 1
    app.run()
    return app.return_code or 0


def _run(coro) -> int:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is absent on Windows
        return asyncio.run(coro)
    return uvloop.run(coro)


def main(argv: Sequence[str] | None = None) -> int:
    # The seeds' development secrets are shorter than RFC 7518 recommends; a mock uses them on purpose (and announces
    # them). Set here, for the process the command owns, not on import: importing mockpanel changes nothing.
    warnings.filterwarnings("ignore", message=r"The HMAC key is \d+ bytes long")
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.command in ("stop", "status"):
        from .daemon import Background

        background = Background()
        return background.stop(sys.stdout) if args.command == "stop" else background.status(sys.stdout, sys.stderr)
    if args.url is not None and args.command != "attach":
        parser.error(f"unexpected argument {args.url!r} (a URL goes with attach)")
    if args.command == "attach":
        return attach(args)
    only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    try:
        cli = cli_values(args)
        if args.demo:
            cli[("imageapi", "enabled")] = "true"
            if only is not None and "imageapi" not in only:
                only.append("imageapi")
        settings = load_settings(_specs(), cli=cli, only=only, config_path=args.config)
        check_port_variable(settings)
        scenario = load_scenario(args.scenario, [s.name for s in settings.enabled()]) if args.scenario else None
        headless = args.command in ("serve", "start", "restart") or args.headless
        if headless and args.web:
            parser.error("--web shows the panel in a browser; serve runs the servers without one: choose one")
        if args.command in ("start", "restart") or (headless and args.wait):
            from .daemon import Background

            serve_args = [a for a in argv if a not in ("start", "restart", "serve", "--wait", "--headless")]
            if args.command == "restart":
                return Background().restart(serve_args, sys.stdout, sys.stderr)
            return Background().start(serve_args, sys.stdout, sys.stderr)
        if headless:
            return _run(run_headless(settings, args, scenario))
        if args.web:
            from .webview import serve_web

            return _run(serve_web(argv, args.web_port))
        from .app import create_app

        app = create_app(settings, scenario=scenario, journal_out=args.journal_out, freeze_gc=True, redact=args.redact,
                         ports_file=args.ports_file)
        app.run()
        return app.return_code or 0  # non-zero when the panel ended on an unhandled error
    except (SettingsError, ScenarioError) as exc:
        print(f"mockpanel: {exc}", file=sys.stderr)
        return 2
