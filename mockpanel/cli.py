"""Command line: `mockpanel serve` runs the servers headless; flags are generated from each server's settings."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Sequence, TextIO

from . import __version__
from .display import escape_controls
from .export import BatchedLines, write_ports_file
from .health import default_ports_file
from .journal import DomainEvent, RequestEntry
from .scenario import ScenarioError, load_scenario
from .daemon import stop_on_signals
from .timefmt import iso
from .settings import COMMON_SETTINGS, GLOBAL_SETTINGS, SettingsError, check_port_variable, cli_flag, load_settings



def _specs() -> dict[str, Any]:
    from .servers import SERVERS

    return SERVERS


COMMANDS = {
    "serve": "run the servers headless, in the foreground (for CI and containers)",
    "start": "serve in the background and return once every server is ready",
    "stop": "stop what start runs",
    "restart": "stop it, then start it again with these flags",
    "status": "what start runs: its servers and their URLs",
    "attach": "the control panel on mocks running elsewhere (a container, a CI job, start)",
    "panel": "the control panel in this terminal (the default: plain `mockpanel`)",
    "settings": "every setting of a server: its flag, environment variable and default",
    "health": "exit 0 when every server that serve started answers (a container's HEALTHCHECK)",
    "replay": "open the panel on a repro bundle (serve --bundle-out), or re-run its traffic against fresh mocks",
}

_TOP_EPILOG = """examples:
  mockpanel                          the panel, every server on the seeds' ports
  mockpanel serve --only auth,s3     two servers, headless
  mockpanel settings s3              what the S3 mock can be told, and how

Run `mockpanel COMMAND --help` for a command's options. Manual: docs/ (make docs)."""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30, width=min(120, max(80, _columns())))


def _columns() -> int:
    import shutil

    return shutil.get_terminal_size((100, 24)).columns


def _server_groups() -> str:
    """The settings' groups as serve's help lists them: one line a server, the flags themselves in `mockpanel settings`."""
    specs = _specs()
    lines = ["server settings (each a flag --SERVER-SETTING VALUE, a variable MOCKPANEL_SERVER_SETTING, or a [SERVER] key in",
             "mockpanel.toml; `mockpanel settings SERVER` lists them with their defaults):",
             f"  {'mockpanel':<10} {len(GLOBAL_SETTINGS):>2} global settings (--host, --admin-token, --allowed-hosts, ...)",
             f"  {'SERVER':<10} {len(COMMON_SETTINGS) - 1:>2} on every server (--auth-port, --s3-error-rate, ...)"]
    for name, spec in specs.items():
        lines.append(f"  {name:<10} {len(spec.settings):>2} {spec.title} (port {spec.default_port})")
    lines.append(f"  {'stubs':<10} {'':>2} [stubs.NAME] tables in mockpanel.toml: a stub server each")
    return "\n".join(lines)


def _server_options(parser: argparse.ArgumentParser, *, serving: bool = True) -> None:
    """What every command that runs servers takes: which ones, the configuration file, and every setting as a flag
    (accepted, not listed: `mockpanel settings` lists them)."""
    specs = _specs()
    parser.add_argument("--only", metavar="NAMES", help="comma-separated servers to run (default: every one enabled)")
    parser.add_argument("--config", metavar="FILE", type=Path, help="TOML file with a section per server (default ./mockpanel.toml)")
    parser.add_argument("--demo", action="store_true", help="also run the reference image API (port 8002): the client app's loop end to end")
    parser.add_argument("--scenario", metavar="FILE", type=Path, help="run this TOML fault schedule once the servers are ready")
    parser.add_argument("--journal-out", metavar="FILE", type=Path, help="append every request to FILE as a JSON line, as it happens")
    parser.add_argument("--redact", action="store_true", help="mask credentials in --journal-out (Authorization, cookies, signatures, ...)")
    parser.add_argument("--ports-file", metavar="FILE", type=Path, default=default_ports_file(),
                        help="write {server: url} JSON here once all servers are ready (default: $MOCKPANEL_PORTS_FILE)")
    if serving:
        parser.add_argument("--log-format", choices=["text", "json"], default="text", help="how request lines are printed")
        parser.add_argument("--quiet", action="store_true", help="print errors only: no line per request or change")
        parser.add_argument("--keep-going", action="store_true", help="keep running when a server fails to start")
        parser.add_argument("--bundle-out", metavar="DIR", type=Path, help="write a repro bundle to DIR: the state at start and "
                            "at the end, the settings, every request and change (mockpanel replay DIR opens it)")
    for setting in GLOBAL_SETTINGS:
        parser.add_argument(cli_flag("mockpanel", setting.name), dest=f"mockpanel__{setting.name}", metavar="VALUE", help=argparse.SUPPRESS)
    for name, spec in specs.items():
        for setting in (*COMMON_SETTINGS, *spec.settings):
            if setting.name != "enabled":
                parser.add_argument(cli_flag(name, setting.name), dest=f"{name}__{setting.name}", metavar="VALUE", help=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mockpanel", formatter_class=_Formatter, allow_abbrev=False, usage="mockpanel [COMMAND] [OPTIONS]", epilog=_TOP_EPILOG,
        description="Local mock services: an auth API issuing JWTs, S3, webhooks, a client app and stubs of any HTTP API,\n"
                    "with a live view of every request and faults you flip while traffic flows.")
    parser.add_argument("--version", action="version", version=f"mockpanel {__version__}")
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND", prog="mockpanel")

    def command(name: str, **extra: Any) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=COMMANDS[name], allow_abbrev=False, description=COMMANDS[name][0].upper() + COMMANDS[name][1:] + ".",
                                   formatter_class=_Formatter, **extra)

    for name in ("serve", "start", "restart"):
        sub = command(name, epilog=_server_groups(), usage=f"mockpanel {name} [OPTIONS] [--SERVER-SETTING VALUE ...]")
        _server_options(sub)
        sub.add_argument("--web", action="store_true", help=argparse.SUPPRESS)  # refused below with a reason
        if name == "serve":
            sub.add_argument("--wait", action="store_true", help="run in the background and exit once every server is ready (= start)")
    command("stop")
    command("status")
    attach = command("attach", epilog="The admin token, when the mocks need one: --admin-token or MOCKPANEL_ADMIN_TOKEN.")
    attach.add_argument("url", nargs="?", metavar="URL", help="any one server's URL of the mocks to watch (e.g. http://127.0.0.1:8000); "
                        "default: those `mockpanel start` runs")
    attach.add_argument("--admin-token", dest="mockpanel__admin_token", metavar="TOKEN", help="the mocks' admin token")
    attach.add_argument("--redact", action="store_true", help="mask credentials in what the panel shows and exports")
    panel = command("panel", epilog=_server_groups(), usage="mockpanel [panel] [OPTIONS] [--SERVER-SETTING VALUE ...]")
    _server_options(panel, serving=False)
    panel.add_argument("--web", action="store_true", help="show the panel in a browser (textual-serve) instead of this terminal, on 127.0.0.1")
    panel.add_argument("--web-port", metavar="PORT", type=int, default=8080, help="the browser view's port (default 8080; 0 takes a free one)")
    panel.add_argument("--headless", action="store_true", help=argparse.SUPPRESS)  # `mockpanel --headless` = serve, as before
    panel.add_argument("--wait", action="store_true", help=argparse.SUPPRESS)
    for flag in ("--log-format", "--quiet", "--keep-going"):  # serve's, taken with --headless
        panel.add_argument(flag, **({"choices": ["text", "json"], "default": "text"} if flag == "--log-format" else {"action": "store_true"}),
                           help=argparse.SUPPRESS)
    settings = command("settings")
    settings.add_argument("server", nargs="?", metavar="SERVER", help=f"one of {', '.join(_specs())}, mockpanel (global) or stubs")
    replay = command("replay", epilog="A bundle is what serve --bundle-out (or the pytest plugin's --mockpanel-bundle-out) writes.")
    replay.add_argument("bundle", metavar="DIR", type=Path, help="the bundle's directory")
    replay.add_argument("--rerun", action="store_true", help="send its requests again, in order, to fresh mocks in its start state "
                        "(with its faults, toxics and clock changes where they happened); exit 1 when any is answered otherwise")
    health = command("health")
    health.add_argument("--ports-file", metavar="FILE", type=Path, default=default_ports_file(),
                        help="the file serve --ports-file wrote (default: $MOCKPANEL_PORTS_FILE)")
    health.add_argument("--timeout", metavar="SECONDS", type=float, default=3.0, help="how long each server may take to answer")
    return parser


def normalize_argv(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """The command first: `mockpanel --only auth` is the panel, and a command written after flags (`mockpanel --only auth
    serve`, as the one-parser CLI took it) is moved to the front."""
    if not argv:
        return ["panel"]
    if argv[0] in COMMANDS or argv[0] in ("-h", "--help", "--version"):
        return argv
    panel = parser._subparsers._group_actions[0].choices["panel"]  # type: ignore[union-attr]
    takes_value = {flag for action in panel._actions if action.nargs != 0 for flag in action.option_strings}
    for i, word in enumerate(argv):
        if word in COMMANDS and (i == 0 or argv[i - 1] not in takes_value):
            return [word, *argv[:i], *argv[i + 1:]]
    return ["panel", *argv]


def print_settings(server: str | None, out: TextIO = sys.stdout) -> int:
    """`mockpanel settings [SERVER]`: each setting's flag, environment variable(s), default and what it does."""
    from .docsgen import _shown
    from .settings import env_name

    specs = _specs()
    sections: list[tuple[str, str, Any]] = []
    if server in (None, "mockpanel"):
        sections.append(("mockpanel", "global settings ([mockpanel] in mockpanel.toml)", GLOBAL_SETTINGS))
    if server is None:
        sections.append(("SERVER", "on every server ([SERVER] in mockpanel.toml)", [s for s in COMMON_SETTINGS if s.name != "enabled"]))
    for name, spec in specs.items():
        if server in (None, name):
            own = spec.settings if server is None else [s for s in (*COMMON_SETTINGS, *spec.settings) if s.name != "enabled"]
            sections.append((name, f"{spec.title}, port {spec.default_port} ([{name}] in mockpanel.toml)", own))
    if server in (None, "stubs"):
        from .servers.stubs import SETTINGS as STUB_SETTINGS

        sections.append(("NAME", "stub servers ([stubs.NAME] in mockpanel.toml; no flags: set them in the table or the environment)",
                         STUB_SETTINGS))
    if not sections:
        print(f"mockpanel: no server {server!r}: one of {', '.join(specs)}, mockpanel or stubs", file=sys.stderr)
        return 2
    for section, title, settings in sections:
        out.write(f"{section}: {title}\n")
        for s in settings:
            flag = cli_flag(section, s.name) if section != "NAME" else ""
            variables = " ".join((env_name(section, s.name), *s.seed_env))
            choices = f" (one of {', '.join(s.choices)})" if s.choices else ""
            out.write(f"  {flag or s.name:<32} {variables}\n      {s.help}{choices}; default: {_shown(s.default)}\n")
        out.write("\n")
    return 0


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
    if args.ports_file:
        args.ports_file.unlink(missing_ok=True)  # a restarted container's last run left one: it is not ready yet
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
    recorder = None
    if getattr(args, "bundle_out", None):
        from .bundle import BundleRecorder

        recorder = BundleRecorder(hub, args.bundle_out)
        await recorder.start()
    log = RequestLog(out, args.log_format, args.quiet, err)
    hub.bus.subscribe(log)
    if scenario is not None:
        await hub.start_scenario(scenario)
    await stop.wait()
    if recorder is not None:
        await hub.stop_scenario()
        print(f"mockpanel: repro bundle written to {await recorder.finish()}", file=err, flush=True)
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


def replay(args: argparse.Namespace) -> int:
    """A repro bundle: the panel on fresh mocks in its end state with its journal and the clock at its end, or
    (--rerun) its traffic sent again to fresh mocks in its start state."""
    import tempfile

    from .bundle import Bundle, import_journal, replay_settings, rerun
    from .hub import Hub
    from .state import StateError

    scratch = Path(tempfile.mkdtemp(prefix="mockpanel-replay-"))
    try:
        bundle = Bundle(args.bundle)
        settings = replay_settings(bundle, "start" if args.rerun else "end", scratch)
        if args.rerun:
            async def run() -> int:
                hub = Hub(settings, _specs())
                await hub.start()
                try:
                    return await rerun(hub, bundle, sys.stdout)
                finally:
                    await hub.stop()

            return _run(run())
        from .app import create_app

        app = create_app(settings, replay=bundle, freeze_gc=True)
        app.run()
        return app.return_code or 0
    except (StateError, SettingsError) as exc:
        print(f"mockpanel: {exc}", file=sys.stderr)
        return 2
    finally:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)


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
    given = list(sys.argv[1:] if argv is None else argv)
    argv = normalize_argv(given, parser)
    args = parser.parse_args(argv)
    if args.command in ("stop", "status"):
        from .daemon import Background

        background = Background()
        return background.stop(sys.stdout) if args.command == "stop" else background.status(sys.stdout, sys.stderr)
    if args.command == "attach":
        return attach(args)
    if args.command == "settings":
        try:
            return print_settings(args.server)
        except BrokenPipeError:  # `mockpanel settings | head`
            sys.stdout = open(os.devnull, "w")
            return 0
    if args.command == "replay":
        return replay(args)
    if args.command == "health":
        from .health import check

        return check(args.ports_file, args.timeout)
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
        web = getattr(args, "web", False)
        headless = args.command in ("serve", "start", "restart") or getattr(args, "headless", False)
        if headless and web:
            parser.error("--web shows the panel in a browser; serve runs the servers without one: choose one")
        if args.command in ("start", "restart") or (headless and getattr(args, "wait", False)):
            from .daemon import Background

            serve_args = [a for a in argv[1:] if a not in ("--wait", "--headless")]
            if args.command == "restart":
                return Background().restart(serve_args, sys.stdout, sys.stderr)
            return Background().start(serve_args, sys.stdout, sys.stderr)
        if headless:
            return _run(run_headless(settings, args, scenario))
        if web:
            from .webview import serve_web

            return _run(serve_web(given, args.web_port))
        from .app import create_app

        app = create_app(settings, scenario=scenario, journal_out=args.journal_out, freeze_gc=True, redact=args.redact,
                         ports_file=args.ports_file)
        app.run()
        return app.return_code or 0  # non-zero when the panel ended on an unhandled error
    except (SettingsError, ScenarioError) as exc:
        print(f"mockpanel: {exc}", file=sys.stderr)
        return 2
