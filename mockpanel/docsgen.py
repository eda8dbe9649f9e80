"""The settings reference of the documentation site, made from the settings' own definitions (so it cannot go
stale: the suite compares docs/reference/settings.md with what this prints). `python -m mockpanel.docsgen` writes it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterable

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "reference" / "settings.md"


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, (tuple, list)):
        return ", ".join(map(str, value)) if value else "—"
    if isinstance(value, dict):
        return json.dumps(value) if value else "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(section: str, settings: Iterable[Any]) -> list[str]:
    from .settings import cli_flag, env_name

    rows = ["| setting | flag | environment | default | what it does |", "|---|---|---|---|---|"]
    for s in settings:
        env = ", ".join(f"`{v}`" for v in (env_name(section, s.name), *s.seed_env))
        choices = f" (one of {', '.join(f'`{c}`' for c in s.choices)})" if s.choices else ""
        default = _shown(s.default)
        rows.append(f"| `{s.name}` | `{cli_flag(section, s.name)}` | {env} | `{_cell(default)}` | {_cell(s.help)}{choices} |")
    return rows


def settings_reference() -> str:
    from .servers import SERVERS
    from .settings import COMMON_SETTINGS, GLOBAL_SETTINGS

    lines = ["# Settings reference", "",
             "Every setting, generated from its definition in the code (`python -m mockpanel.docsgen` writes this page; the",
             "suite fails when it differs). Each can come from a flag, the environment (`MOCKPANEL_…`, then the seeds' own",
             "names), `.env`, `mockpanel.toml` (a `[mockpanel]` section and one per server) or its default — the first that",
             "has it wins (see [Configuration](../configuration.md)).", "", "## Global (`[mockpanel]`)", ""]
    lines += _table("mockpanel", GLOBAL_SETTINGS)
    lines += ["", "## Every server", "", "Each server has these too, e.g. `--auth-port`, `MOCKPANEL_S3_ERROR_RATE`, "
              "`[webhooks] delay_enabled = true`.", ""]
    lines += _table("SERVER", COMMON_SETTINGS)
    for name, spec in SERVERS.items():
        lines += ["", f"## `{name}` — {spec.title} (port {spec.default_port})", ""]
        lines += _table(name, spec.settings)
    from .servers.stubs import SETTINGS as STUB_SETTINGS

    lines += ["", "## `[stubs.NAME]` — stub servers (their `port`, else a free one)", "",
              "Each `[stubs.NAME]` table is a server named NAME (see [Stub any API](../servers/stubs.md)); no flag "
              "exists for a stub server (they are known only once the file is read): set them in the table or the environment.", ""]
    import re

    lines += [re.sub(r"\| `--NAME-[a-z-]+` \|", "| — |", row) for row in _table("NAME", STUB_SETTINGS)]
    return "\n".join(lines) + "\n"


def main() -> int:
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    REFERENCE.write_text(settings_reference())
    print(f"wrote {REFERENCE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
