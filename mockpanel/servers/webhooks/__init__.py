"""The webhook receiver mock (seed 002, port 4000): stores every delivery byte-exact, checks its signature in the
common schemes, answers by a per-client response plan (to exercise a sender's retries), replays, and shows it all
on a live dashboard. models: the records; receiver: the domain facade (Receiver); app: the routes."""

from __future__ import annotations

from ...settings import Setting
from ...spec import ServerSpec
from .app import build
from .models import ClientConfig, ResponsePlan, WebhookEvent
from .receiver import Receiver

__all__ = ["SPEC", "ClientConfig", "Receiver", "ResponsePlan", "WebhookEvent"]

DEFAULT_SECRET = "webhook-secret-123"

SETTINGS = (
    Setting("webhook_secret", "str", DEFAULT_SECRET, "secret of every client without its own", ("WEBHOOK_SECRET",), secret_default=True),
    Setting("client_secrets", "list", (), "per-client secrets: client-id:secret,...", ("WEBHOOK_CLIENT_SECRETS",)),
    Setting("require_signature", "bool", False, "answer 401 to missing or invalid signatures (else store and answer 200)", ("REQUIRE_SIGNATURE",)),
    Setting("plans", "list", (), "response plans: client-id:500x3+200, client-id:delay=2000, client-id:timeout", ("WEBHOOK_PLANS",)),
    Setting("max_events", "positive", 10_000, "events kept (the oldest are dropped and counted)", ("WEBHOOK_MAX_EVENTS",)),
    Setting("max_body_bytes", "positive", 10 * 1024 * 1024, "largest body accepted (413 above)", ("WEBHOOK_MAX_BODY_BYTES",)),
    Setting("max_stored_bytes", "positive", 256 * 1024 * 1024, "bytes of bodies kept (the oldest events are dropped and counted)",
            ("WEBHOOK_MAX_STORED_BYTES",)),
    Setting("timestamp_tolerance_s", "positive", 300, "Stripe / Standard Webhooks timestamp tolerance", ("WEBHOOK_TOLERANCE_SECONDS",)),
    Setting("replay_timeout_s", "positive", 10, "how long a replay waits for its target", ("WEBHOOK_REPLAY_TIMEOUT",)),
)



SPEC = ServerSpec(name="webhooks", title="Webhook receiver", default_port=4000, build=build, settings=SETTINGS,
                  same_site_paths=(("POST", "/webhooks/replay/"),))
