"""Settings: seed defaults, overridden by mockpanel.toml, .env, the environment and CLI flags, in that order."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from dotenv import dotenv_values

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


class SettingsError(ValueError):
    """A setting has a value mockpanel cannot use; the message is one line naming it."""


# --- value parsers: each takes a raw value (str from env/CLI, typed from TOML) ---


def _parse_int(raw: Any, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(raw, bool):
        raise ValueError("expected a whole number")
    if isinstance(raw, int):
        value = raw
    else:
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise ValueError("expected a whole number") from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"expected a whole number from {lo} to {hi}" if hi is not None else f"expected a whole number >= {lo}")
    return value


def _parse_float(raw: Any, lo: float, hi: float) -> float:
    try:
        value = float(raw) if not isinstance(raw, bool) else None
    except (TypeError, ValueError):
        value = None
    if value is None or value != value:  # NaN fails too
        raise ValueError("expected a number")
    if not lo <= value <= hi:
        raise ValueError(f"expected a number from {lo:g} to {hi:g}")
    return value


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("expected true or false")


def _parse_str(raw: Any) -> str:
    if isinstance(raw, (dict, list)):
        raise ValueError("expected text")
    return str(raw)


def _parse_codes(raw: Any) -> tuple[int, ...]:
    items = raw if isinstance(raw, list) else [p for p in str(raw).replace(" ", "").split(",") if p]
    if not items:
        raise ValueError("expected one or more HTTP status codes, e.g. 500,503")
    try:
        return tuple(_parse_int(i, 400, 599) for i in items)
    except ValueError:
        raise ValueError("expected HTTP error status codes from 400 to 599, e.g. 500,503") from None


def _parse_list(raw: Any) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else str(raw).split(",")
    return tuple(str(i).strip() for i in items if str(i).strip())


def _parse_json(raw: Any) -> Any:
    """TOML's arrays and tables as they are; JSON text from the environment or a flag."""
    if isinstance(raw, (list, dict)):
        return raw
    import json

    try:
        return json.loads(str(raw)) if str(raw).strip() else []
    except ValueError as exc:
        raise ValueError(f"expected JSON (or a TOML array of tables): {exc}") from None


PARSERS: dict[str, Callable[[Any], Any]] = {
    "port": lambda r: _parse_int(r, 0, 65535),
    "int": lambda r: _parse_int(r, 0),
    "positive": lambda r: _parse_int(r, 1),
    "ms": lambda r: _parse_int(r, 0, 3_600_000),
    "rate": lambda r: _parse_float(r, 0.0, 1.0),
    "bool": _parse_bool,
    "str": _parse_str,
    "codes": _parse_codes,
    "list": _parse_list,
    "json": _parse_json,
    "rounds": lambda r: _parse_int(r, 4, 12),  # a mock needs no real cost; 12 is ~0.3 s a hash (in a thread)
}

_KIND_HINT = {"port": "expected a port number from 0 to 65535", "rate": "expected a number from 0 to 1"}


@dataclass(frozen=True)
class Setting:
    """One configurable value of a server (or of mockpanel as a whole)."""

    name: str
    kind: str
    default: Any
    help: str = ""
    seed_env: tuple[str, ...] = ()  # the seed READMEs' unprefixed variable names
    secret_default: bool = False  # a development default worth announcing at start-up
    choices: tuple[str, ...] = ()

    def parse(self, raw: Any) -> Any:
        value = PARSERS[self.kind](raw)
        if self.choices and value not in self.choices:
            raise ValueError(f"expected one of {', '.join(self.choices)}")
        return value


# Settings every server has; the fault defaults come from seed 000's variables.
COMMON_SETTINGS: tuple[Setting, ...] = (
    Setting("enabled", "bool", True, "run this server"),
    Setting("host", "str", None, "interface to bind (default: the global host)"),
    Setting("port", "port", None, "port to listen on (0 picks a free one)"),
    Setting("tls_cert", "str", None, "PEM certificate: serve HTTPS instead of HTTP"),
    Setting("tls_key", "str", None, "PEM private key for tls_cert"),
    Setting("simulate_delays", "bool", False, "add a random delay to every request", ("SIMULATE_DELAYS",)),
    Setting("min_delay_ms", "ms", 50, "smallest simulated delay", ("MIN_DELAY_MS",)),
    Setting("max_delay_ms", "ms", 200, "largest simulated delay", ("MAX_DELAY_MS",)),
    Setting("error_rate", "rate", 0.0, "share of requests answered with an injected error", ("ERROR_RATE",)),
    Setting("error_codes", "codes", (500,), "status codes injected errors use", ("ERROR_CODES",)),
    Setting("fault_seed", "int", None, "seed for the fault RNG, for reproducible runs", ("FAULT_SEED",)),
    Setting("cors_origins", "list", ("*",), "origins browsers may call this server from (comma-separated; * any, as the seeds document)"),
)

GLOBAL_SETTINGS: tuple[Setting, ...] = (
    Setting("host", "str", "127.0.0.1", "interface every server binds unless its own host is set", ("HOST",)),
    Setting("journal_size", "positive", 10_000, "requests kept in the journal, per server (ring buffer)"),
    Setting("journal_mib", "positive", 128, "memory the journal may hold, all servers together (MiB); each server's ring at most half "
            "of it, the oldest entries out first"),
    Setting("body_preview_bytes", "int", 2048, "bytes of each request/response body kept in the journal"),
    Setting("admin_token", "str", None, "require this token on every /__mockpanel/ call (Authorization: Bearer TOKEN)"),
    Setting("admin_token_scope", "str", "control", "what admin_token guards: the control API, or all (the seeds' admin endpoints too)",
            choices=("control", "all")),
    Setting("allowed_hosts", "list", (), "Host names the servers answer besides localhost, *.localhost, IP literals, "
            "host.docker.internal and this machine's name (*.domain for a domain; * for any)"),
    Setting("trusted_proxies", "list", (), "addresses of proxies in front of the mocks whose X-Forwarded-Proto and X-Forwarded-For "
            "are believed (none by default: any local process could send them)"),
    Setting("state", "str", None, "load this snapshot of every mock's state when the servers start: a directory or a .tar archive "
            "(GET /__mockpanel/state makes one; see State)"),
    Setting("toxiproxy_port", "int", None, "serve Toxiproxy's HTTP API on this port (8474 is Toxiproxy's own), for its clients to "
            "drive the proxies and the mocks' network faults; off unless set"),
)


@dataclass
class ServerSettings:
    name: str
    enabled: bool
    host: str
    port: int
    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    auto: bool = False  # enabled by nobody's choice: its spec's auto_start decides at start

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


@dataclass
class Settings:
    host: str = "127.0.0.1"
    journal_size: int = 10_000
    journal_mib: int = 128
    body_preview_bytes: int = 2048
    admin_token: str | None = None
    admin_token_scope: str = "control"
    admin_token_made: bool = False  # made at start, since a server binds all interfaces (see _guard_control)
    allowed_hosts: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    servers: dict[str, ServerSettings] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)  # development defaults in use, warnings
    port_variable: str | None = None  # the seeds' PORT, from the environment or .env (see check_port_variable)
    toxiproxy_port: int | None = None
    state: str | None = None  # a snapshot to load at start (state.py)
    proxies: dict[str, dict[str, Any]] = field(default_factory=dict)  # [proxies.NAME] listen, upstream, enabled
    stub_specs: dict[str, Any] = field(default_factory=dict)  # [stubs.NAME]: a ServerSpec each, beside the built-in mocks

    def enabled(self) -> list[ServerSettings]:
        return [s for s in self.servers.values() if s.enabled]


def env_name(section: str, key: str) -> str:
    prefix = "MOCKPANEL_" if section == "mockpanel" else f"MOCKPANEL_{section.upper()}_"
    return prefix + key.upper()


def cli_flag(section: str, key: str) -> str:
    if section == "mockpanel":
        return "--" + key.replace("_", "-")
    return f"--{section}-{key.replace('_', '-')}"


class _Layers:
    """Raw values by source, highest precedence first: CLI > environment > .env > TOML."""

    def __init__(self, cli: Mapping[tuple[str, str], Any], environ: Mapping[str, str], dotenv: Mapping[str, str], toml: Mapping[str, Any]):
        self.cli = cli
        self.environ = environ
        self.dotenv = dotenv
        self.toml = toml

    def lookup(self, section: str, setting: Setting, seed_names: Iterable[str]) -> tuple[Any, str] | None:
        key = setting.name
        if (section, key) in self.cli:
            return self.cli[(section, key)], cli_flag(section, key)
        names = [env_name(section, key), *seed_names]
        for source, mapping in (("environment", self.environ), (".env", self.dotenv)):
            for name in names:
                value = mapping.get(name)
                if value is not None:
                    return value, f"{name} in {source}"
        table = self.toml.get(section)
        if isinstance(table, dict) and key in table:
            return table[key], f"[{section}] {key} in mockpanel.toml"
        return None


def _resolve(layers: _Layers, section: str, setting: Setting, seed_names: Iterable[str]) -> tuple[Any, str]:
    found = layers.lookup(section, setting, seed_names)
    if found is None:
        return setting.default, "default"
    raw, source = found
    try:
        return setting.parse(raw), source
    except ValueError as exc:
        label = setting.name if section == "mockpanel" else f"{section}.{setting.name}"
        hint = _KIND_HINT.get(setting.kind, str(exc))
        raise SettingsError(f"invalid setting {label} = {raw!r} (from {source}): {hint}") from None


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"invalid config file {path}: {exc}") from None
    except OSError as exc:
        raise SettingsError(f"cannot read config file {path}: {exc.strerror}") from None


def load_settings(
    specs: Mapping[str, Any],
    *,
    cli: Mapping[tuple[str, str], Any] | None = None,
    only: Iterable[str] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    config_path: Path | None = None,
    stubs: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Build Settings for the servers in `specs` (name -> spec with .default_port, .settings, .enabled_by_default).

    `cli` maps (section, key) to raw flag values; `only` restricts which servers run; `stubs` declares stub servers
    in code as `[stubs.NAME]` tables would (paths relative to `cwd`), beside those of the file.
    """
    cwd = cwd or Path.cwd()
    environ = dict(os.environ if environ is None else environ)
    dotenv_path = cwd / ".env"
    dotenv = {k: v for k, v in dotenv_values(dotenv_path).items() if v is not None} if dotenv_path.is_file() else {}
    if config_path is None:
        named = environ.get("MOCKPANEL_CONFIG") or dotenv.get("MOCKPANEL_CONFIG")
        config_path = Path(named) if named else (cwd / "mockpanel.toml")
        toml = read_toml(config_path) if (named or config_path.is_file()) else {}
    else:
        toml = read_toml(config_path)
    for section in toml:
        if section not in ("mockpanel", "proxies", "stubs") and section not in specs:
            raise SettingsError(f"unknown section [{section}] in {config_path}: known servers are {', '.join(specs)}")
    stub_specs: dict[str, Any] = {}
    read_stubs = getattr(specs, "stubs", None)  # servers.Catalog: the built-in mocks and how stubs are made
    for table, where in ((toml.get("stubs"), config_path), (stubs, None)):
        if table is None:
            continue
        if read_stubs is None:
            raise SettingsError(f"[stubs] in {config_path}: stub servers are not available here")
        made = read_stubs(table, where, cwd)
        both = set(made) & set(stub_specs)
        if both:
            raise SettingsError(f"stub server {', '.join(sorted(both))} is declared in {config_path} and in code: once is enough")
        stub_specs.update(made)
        specs = {**specs, **made}  # each stub server is a server of its own name
        toml = {**toml, **{name: dict(values) for name, values in table.items()}}
    layers = _Layers(cli or {}, environ, dotenv, toml)
    port_variable = environ.get("PORT", dotenv.get("PORT"))

    settings = Settings()
    settings.stub_specs = stub_specs
    for setting in GLOBAL_SETTINGS:
        value, _ = _resolve(layers, "mockpanel", setting, setting.seed_env)
        setattr(settings, setting.name, value)

    wanted = set(only) if only else None
    if wanted:
        unknown = wanted - set(specs)
        if unknown:
            raise SettingsError(f"unknown server(s) {', '.join(sorted(unknown))}: choose from {', '.join(specs)}")
    single = wanted is not None and len(wanted) == 1

    for name, spec in specs.items():
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for setting in (*COMMON_SETTINGS, *spec.settings):
            seed_names = setting.seed_env
            if setting.name == "port" and single:
                seed_names = ("PORT",)  # the seeds' PORT names the one server a seed script ran
            values[setting.name], sources[setting.name] = _resolve(layers, name, setting, seed_names)
        if wanted is not None:
            enabled = name in wanted
        elif sources["enabled"] == "default":
            enabled = bool(spec.enabled_by_default)  # "auto" too: the Hub asks the spec's auto_start at start
        else:
            enabled = values["enabled"]
        port = spec.default_port if values["port"] is None else values["port"]
        host = values["host"] or settings.host
        if values["min_delay_ms"] > values["max_delay_ms"]:
            raise SettingsError(
                f"invalid setting {name}.min_delay_ms = {values['min_delay_ms']}: larger than {name}.max_delay_ms = {values['max_delay_ms']}"
            )
        srv = ServerSettings(name=name, enabled=enabled, host=host, port=port, values=values, sources=sources,
                             auto=wanted is None and sources["enabled"] == "default" and spec.enabled_by_default == "auto")
        settings.servers[name] = srv
        if enabled:
            for setting in spec.settings:
                if setting.secret_default and sources[setting.name] == "default":
                    shown = ", ".join(map(str, setting.default)) if isinstance(setting.default, (list, tuple)) else str(setting.default)
                    variable = setting.seed_env[0] if setting.seed_env else env_name(name, setting.name)
                    settings.notices.append(f"{name}: {setting.name} is the development default '{shown}' (set {variable} to change it)")
            if host in ("0.0.0.0", "::", ""):
                _guard_control(settings)
                settings.notices.append(f"warning: {name}: binding {host or 'all interfaces'}: reachable from other machines")
            open_admin = getattr(spec, "admin_paths", ())
            if settings.admin_token and settings.admin_token_scope != "all" and open_admin:
                listed = ", ".join(f"{method} {path}" for method, path in open_admin)
                settings.notices.append(f"{name}: the admin token guards the control API only; open: {listed} "
                                        "(admin_token_scope = \"all\" guards them too)")
    settings.port_variable = port_variable
    settings.proxies = _proxies(toml.get("proxies", {}), config_path)
    from .addresses import LOOPBACK, split_address

    for name, proxy in settings.proxies.items():
        host = split_address(proxy["listen"])[0]
        if host not in LOOPBACK:
            settings.notices.append(f"warning: proxy {name}: listening on {host or 'all interfaces'}: other machines reach "
                                    f"{proxy['upstream']} through it")
    if settings.toxiproxy_port is not None and settings.host not in LOOPBACK:
        _guard_control(settings)
        guarded = "guarded by the admin token"
        settings.notices.append(f"warning: Toxiproxy's API (port {settings.toxiproxy_port}): binding {settings.host or 'all interfaces'}: "
                                f"reachable from other machines, {guarded}")
    return settings


def _guard_control(settings: Settings) -> None:
    """A server other machines reach never has an open control API: without an admin token of the user's, one is made
    at start and printed (Jupyter's way), so the user — and only who reads this output — can drive it."""
    if settings.admin_token:
        return
    import secrets

    settings.admin_token = secrets.token_urlsafe(24)
    settings.admin_token_made = True
    settings.notices.append(f"warning: the servers are reachable from other machines, so their control API needs an admin token; "
                            f"made for this run: {settings.admin_token} (set MOCKPANEL_ADMIN_TOKEN to choose one)")


def _proxies(table: Any, where: Any) -> dict[str, dict[str, Any]]:
    """[proxies.NAME] tables: listen (a port or host:port; loopback unless a host is given), upstream (host:port),
    enabled (default true). Checked here, so a typo stops the start with its place named."""
    if not isinstance(table, dict):
        raise SettingsError(f"[proxies] in {where} holds one table a proxy: [proxies.postgres] listen = 15432, upstream = \"localhost:5432\"")
    from .addresses import NAME, ProxyError, split_address

    found = {}
    for name, values in table.items():
        here = f"[proxies.{name}] in {where}"
        if not isinstance(values, dict):
            raise SettingsError(f"{here}: a table: listen = 15432, upstream = \"localhost:5432\"")
        unknown = set(values) - {"listen", "upstream", "enabled"}
        if unknown:
            raise SettingsError(f"{here}: unknown key(s) {', '.join(sorted(unknown))} (listen, upstream, enabled)")
        if not NAME.match(name):
            raise SettingsError(f"{here}: a proxy's name is letters, digits, _ . - (up to 64)")
        if "upstream" not in values or "listen" not in values:
            raise SettingsError(f"{here}: needs listen (a port) and upstream (host:port)")
        try:
            split_address(values["listen"], what="listen")
            split_address(values["upstream"], default_host="localhost", what="upstream")
        except ProxyError as exc:
            raise SettingsError(f"{here}: {exc}") from None
        if not isinstance(values.get("enabled", True), bool):
            raise SettingsError(f"{here}: enabled is true or false")
        found[name] = {"listen": values["listen"], "upstream": values["upstream"], "enabled": values.get("enabled", True)}
    return found


def check_port_variable(settings: Settings) -> None:
    """The seeds' PORT names the port of the one server a seed script ran. With several servers it cannot say which:
    unless one of them runs on that port anyway (a seed's .env: PORT=8000 is auth's), say what to set instead."""
    value = settings.port_variable
    running = settings.enabled()
    if value is None or len(running) < 2 or any(str(s.port) == value.strip() for s in running):
        return
    example = running[0].name
    raise SettingsError(f"PORT={value} sets the port of one server (mockpanel serve --only {example}); with {len(running)} servers, "
                        f"set the one you mean: --{example}-port {value} or MOCKPANEL_{example.upper()}_PORT={value}")
