"""The mock servers mockpanel can host, by name, in start-up order."""

from __future__ import annotations

from ..spec import ServerSpec
from . import auth, client_app, image_api, s3, webhooks

SERVERS: dict[str, ServerSpec] = {
    spec.name: spec for spec in (auth.SPEC, s3.SPEC, webhooks.SPEC, client_app.SPEC, image_api.SPEC)
}
