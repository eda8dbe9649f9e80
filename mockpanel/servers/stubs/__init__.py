"""Stub servers for any HTTP API: each `[stubs.NAME]` table of mockpanel.toml is a server named NAME, answering from
WireMock's JSON mappings, an OpenAPI 3 document, or (recording) a real service. matching: WireMock's request
matchers; mappings: reading and choosing mappings; openapi: the document as a stub; server: the facade (Stubs);
app: the routes and WireMock's admin API."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from ...settings import COMMON_SETTINGS, Setting, SettingsError
from ...spec import ServerSpec
from .matching import MappingError
from .openapi import OpenApiError
from .server import Stubs

__all__ = ["SETTINGS", "Stubs", "stub_spec", "stub_specs"]

MAX_IMPORT_BYTES = 16 * 1024 * 1024  # a bulk import of mappings (the admin API's other bodies: the guard's 1 MiB)
NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")

SETTINGS = (
    Setting("mappings", "str", None, "directory of WireMock JSON mappings (sub-directories too); recordings are written here"),
    Setting("files", "str", None, "directory of response bodies (bodyFileName); default: __files beside the mappings directory"),
    Setting("openapi", "str", None, "OpenAPI 3 document (YAML or JSON) answering what no mapping matches"),
    Setting("record", "str", None, "URL of the real service: record proxies to it and keeps each exchange as a mapping"),
    Setting("mode", "str", None, "record or replay (default: record when record is set, else replay)", choices=("record", "replay")),
    Setting("seed", "int", 0, "seed of the examples made from OpenAPI schemas (the same seed, the same examples)"),
)
_KEYS = {s.name for s in (*COMMON_SETTINGS, *SETTINGS)}


def stub_spec(name: str, base_dir: Path) -> ServerSpec:
    """The spec of the stub server NAME; its paths are taken relative to `base_dir` (the configuration file's)."""
    from .app import build

    def build_stub(ctx: Any) -> Any:
        try:
            return build(ctx, base_dir)
        except (MappingError, OpenApiError) as exc:
            raise SettingsError(f"[stubs.{name}]: {exc}") from None

    return ServerSpec(name=name, title=f"Stub server {name}", default_port=0, build=build_stub, settings=SETTINGS,
                      control_prefixes=("/__admin/",), door_limits={"/__admin/mappings/import": MAX_IMPORT_BYTES})


def stub_specs(table: Any, config_path: Path | None, taken: Any, cwd: Path | None = None) -> dict[str, ServerSpec]:
    """The `[stubs.NAME]` tables of a configuration file (or declared in code: no file, paths relative to `cwd`),
    checked (a typo stops the start, its place named)."""
    where = str(config_path) if config_path else "the stubs declared in code"
    if not isinstance(table, Mapping):
        raise SettingsError(f"[stubs] in {where} holds one table a stub server: [stubs.payments] port = 8090, openapi = \"payments.yaml\"")
    base_dir = config_path.parent if config_path else (cwd or Path.cwd())
    found = {}
    for name, values in table.items():
        here = f"[stubs.{name}] in {where}"
        if not isinstance(values, Mapping):
            raise SettingsError(f"{here}: a table: port = 8090, mappings = \"wiremock/mappings\"")
        if not NAME.fullmatch(name):
            raise SettingsError(f"{here}: a stub server's name is lower-case letters, digits and _ (up to 32), starting with a letter")
        if name in taken or name in ("mockpanel", "proxies", "stubs"):
            raise SettingsError(f"{here}: {name} is taken (a mock mockpanel has, or a section of the file); name the stub server otherwise")
        unknown = set(values) - _KEYS
        if unknown:
            raise SettingsError(f"{here}: unknown key(s) {', '.join(sorted(unknown))} (mappings, files, openapi, record, mode, seed, "
                                "port and the settings every server has)")
        if not any(values.get(k) for k in ("mappings", "openapi", "record")):
            raise SettingsError(f"{here}: answers from mappings (a directory), openapi (a document) or record (a URL); none is set")
        record = values.get("record")
        if record is not None and not re.match(r"https?://[^/\s]+", str(record)):
            raise SettingsError(f"{here}: record is the real service's URL, http:// or https://")
        found[name] = stub_spec(name, base_dir)
    return found
