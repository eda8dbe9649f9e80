"""The mail catcher: SMTP on 1025 and Mailpit's API on 8025 (Mailpit's own ports), so what a backend sends — the
verification link, the password reset, the receipt — is caught, journaled and read the way Mailpit's users already
read it. store: the messages (Mailbox); smtp: aiosmtpd's handler and the runner; app: the HTTP API.

Off unless asked (`--only mail`, `--mail-enabled true`, `[mail] enabled = true`): its ports are Mailpit's, which a
developer may already run."""

from __future__ import annotations

from ...settings import Setting
from ...spec import ServerSpec
from .app import MailFacade, build
from .smtp import MailRunner
from .store import Mailbox, Message

__all__ = ["SPEC", "MailFacade", "Mailbox", "Message"]

SETTINGS = (
    Setting("smtp_port", "port", 1025, "the SMTP port (0 picks a free one)"),
    Setting("max_messages", "positive", 500, "messages kept (the oldest go first, as Mailpit's --max)", ("MP_MAX_MESSAGES",)),
    Setting("max_stored_mib", "positive", 256, "bytes of messages kept, in MiB (the oldest go first)"),
    Setting("max_message_mib", "positive", 30, "largest message accepted, in MiB (SIZE; larger: 552 and nothing stored)"),
    Setting("max_recipients", "positive", 1000, "recipients of one message (more: 452)"),
    Setting("max_smtp_connections", "positive", 100, "SMTP connections at once (more: 421)"),
    Setting("smtp_timeout_s", "positive", 30, "an SMTP connection silent this long is closed"),
    Setting("smtp_accounts", "list", (), "user:password pairs AUTH accepts (none: any credentials, as Mailpit)"),
    Setting("smtp_tls", "bool", False, "offer STARTTLS, with a certificate made at start (self-signed, for localhost) unless "
            "smtp_tls_cert and smtp_tls_key name one"),
    Setting("smtp_tls_cert", "str", None, "PEM certificate for STARTTLS"),
    Setting("smtp_tls_key", "str", None, "PEM private key for smtp_tls_cert"),
)

SPEC = ServerSpec(name="mail", title="Email catcher (SMTP, Mailpit's API)", default_port=8025, build=build, settings=SETTINGS,
                  enabled_by_default=False, runner=MailRunner, cors=False,
                  # what changes the mailbox is the developer's, never a page's of another site (no CORS either)
                  same_site_paths=(("DELETE", "/api/"), ("PUT", "/api/"), ("POST", "/api/")))
