"""The mock servers mockpanel can host, by name, in start-up order."""

from __future__ import annotations

from typing import Any

from ..spec import ServerSpec
from . import auth, client_app, image_api, mail, s3, webhooks


class Catalog(dict):
    """The built-in mocks by name; `stubs` makes the specs of a configuration file's [stubs.NAME] servers (settings
    asks its specs for them, so it never imports the servers)."""

    def stubs(self, table: Any, config_path: Any, cwd: Any = None) -> dict[str, ServerSpec]:
        from .stubs import stub_specs

        return stub_specs(table, config_path, self, cwd)


SERVERS: dict[str, ServerSpec] = Catalog(
    (spec.name, spec) for spec in (auth.SPEC, s3.SPEC, webhooks.SPEC, client_app.SPEC, image_api.SPEC, mail.SPEC)
)
