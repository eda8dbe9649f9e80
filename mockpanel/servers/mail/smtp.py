"""The mail catcher's SMTP side: aiosmtpd speaks the protocol (EHLO, SIZE, 8BITMIME, SMTPUTF8, AUTH PLAIN and LOGIN,
pipelining) in the Hub's loop; this module decides what it accepts — bounds on recipients, connections and time,
Mailpit's chaos triggers — journals each message and hands it to the Mailbox. MailRunner hosts it beside the HTTP
API (uvicorn), as one server."""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from ...runner import UvicornRunner, bind_socket, display_url
from .store import Mailbox

TRIGGERS = ("Sender", "Recipient", "Authentication")


class Chaos:
    """Mailpit's chaos triggers: an SMTP error code answered to MAIL FROM, RCPT TO or AUTH with a probability (%)."""

    def __init__(self) -> None:
        self.triggers = {name: {"ErrorCode": 451, "Probability": 0} for name in TRIGGERS}
        self.random = random.Random()

    def set(self, body: Any) -> dict[str, Any]:
        from ...spec import Invalid

        if not isinstance(body, dict) or set(body) - set(TRIGGERS):
            raise Invalid(f"chaos triggers are {', '.join(TRIGGERS)}, each {{\"ErrorCode\": 451, \"Probability\": 50}}")
        found = {name: {"ErrorCode": 451, "Probability": 0} for name in TRIGGERS}
        for name, value in body.items():
            if not isinstance(value, dict) or set(value) - {"ErrorCode", "Probability"}:
                raise Invalid(f"{name}: {{\"ErrorCode\": 400-599, \"Probability\": 0-100}}")
            code, chance = value.get("ErrorCode", 451), value.get("Probability", 0)
            if isinstance(code, bool) or not isinstance(code, int) or not 400 <= code <= 599:
                raise Invalid(f"{name}.ErrorCode is an SMTP error code, 400 to 599")
            if isinstance(chance, bool) or not isinstance(chance, int) or not 0 <= chance <= 100:
                raise Invalid(f"{name}.Probability is a whole percentage, 0 to 100")
            found[name] = {"ErrorCode": code, "Probability": chance}
        self.triggers = found
        return self.view()

    def view(self) -> dict[str, Any]:
        return {"Triggers": {name: dict(value) for name, value in self.triggers.items()}}

    def strikes(self, name: str) -> str | None:
        trigger = self.triggers[name]
        if trigger["Probability"] and self.random.random() * 100 < trigger["Probability"]:
            return f"{trigger['ErrorCode']} Chaos {name.lower()} error"
        return None


class Catcher:
    """aiosmtpd's handler: what each command is answered with."""

    def __init__(self, mailbox: Mailbox, ctx: Any) -> None:
        s = ctx.settings
        self.mailbox = mailbox
        self.ctx = ctx
        self.max_recipients: int = s["max_recipients"]
        self.chaos = Chaos()
        accounts = [item.partition(":") for item in s["smtp_accounts"]]
        self.accounts = {user.encode(): password.encode() for user, sep, password in accounts if sep}

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        refused = self.chaos.strikes("Sender")
        if refused:
            self.mailbox.rejected += 1
            return refused
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        refused = self.chaos.strikes("Recipient")
        if refused:
            return refused
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return f"452 4.5.3 Too many recipients (at most {self.max_recipients} a message)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        started = time.perf_counter()
        raw = envelope.original_content or b""
        refused = await self._fault(server, session, envelope, raw, started)
        if refused is not None:
            return refused
        message = await self.mailbox.add(raw, envelope.mail_from or "", list(envelope.rcpt_tos))
        reply = f"250 2.0.0 Ok: queued as {message.id}"
        self._journal(session, envelope, message, raw, started)
        return reply

    async def _fault(self, server: Any, session: Any, envelope: Any, raw: bytes, started: float) -> str | None:
        """The server's fault policy in SMTP's terms, at the end of DATA (the message is then not stored): a delay
        before the reply; an injected error as 451 (a 5xx or 429 policy code: transient, as a busy server says it) or
        550 (another 4xx: refused for good); a dropped connection; a hang (no reply until the sender gives up or the
        connection's timeout)."""
        faults = self.ctx.faults
        decision = faults.decide() if faults.active else None
        if decision is None:
            return None
        if decision.delay_s:
            await asyncio.sleep(decision.delay_s)
        reply = None
        if decision.drop or decision.hang:
            if decision.hang:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(asyncio.get_running_loop().create_future()), self.ctx.settings["smtp_timeout_s"])
            server.transport.close()
            reply = "421 4.4.2 connection dropped (injected fault)"  # never reaches the sender: its connection is gone
            self._journal(session, envelope, None, raw, started, 0, decision.label)
            return reply
        if decision.status is not None:
            code = 451 if decision.status >= 500 or decision.status == 429 else 550
            reply = f"{code} {'4.3.0' if code == 451 else '5.7.1'} injected fault: {decision.label}"
            self.mailbox.rejected += 1
            self._journal(session, envelope, None, raw, started, code, decision.label)
            return reply
        return None

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        refused = self.chaos.strikes("Authentication")
        if refused:
            return AuthResult(success=False, handled=False, message=refused)
        if not self.accounts:
            return AuthResult(success=True)  # any credentials, as Mailpit accepts them unless told otherwise
        if isinstance(auth_data, LoginPassword) and self.accounts.get(auth_data.login) == auth_data.password:
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def _journal(self, session: Any, envelope: Any, message: Any, raw: bytes, started: float, status: int = 250,
                 fault: str | None = None) -> None:
        """Each message a journal entry: SMTP, sender → recipients, its size, the reply, and the trace its
        `traceparent` header names (the request that sent it)."""
        trace_id = parent = None
        traceparent = _traceparent(raw).split("-")
        if len(traceparent) == 4 and len(traceparent[1]) == 32 and len(traceparent[2]) == 16:
            trace_id, parent = traceparent[1], traceparent[2]
        recipients = ", ".join(envelope.rcpt_tos[:3]) + (f" +{len(envelope.rcpt_tos) - 3}" if len(envelope.rcpt_tos) > 3 else "")
        head = raw.split(b"\r\n\r\n", 1)[0][: self.ctx.preview_bytes]
        peer = session.peer if isinstance(session.peer, tuple) else ()
        answer = f"queued as {message.id}".encode() if message is not None else b""
        row = (self.ctx.journal.next_id(), time.time(), self.ctx.name, "SMTP", f"{envelope.mail_from} → {recipients}"[:500], b"", status,
               (time.perf_counter() - started) * 1000, len(raw), 0, (), (), head, answer, fault, peer[:2],
               "DATA", trace_id, secrets.token_hex(8) if trace_id else None, parent, self.ctx.clock.virtual_now())
        self.ctx.journal.record(row)


def _traceparent(raw: bytes) -> str:
    """The message's traceparent header, read from its head only (a W3C value is ASCII)."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"traceparent":
            return value.strip().decode("ascii", "replace")
    return ""


def tls_context(cert: str | None, key: str | None) -> tuple[Any, str]:
    """STARTTLS's server context: the given certificate, or one made now — self-signed, for localhost and
    127.0.0.1, valid a year, in a private directory removed at exit. (context, certificate path)."""
    import datetime
    import ipaddress
    import shutil
    import ssl
    import tempfile
    import weakref
    from pathlib import Path

    if not cert:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        private = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.datetime.now(datetime.timezone.utc)
        made = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=365))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                               critical=False)
                .sign(private, hashes.SHA256()))
        folder = Path(tempfile.mkdtemp(prefix="mockpanel-smtp-tls-"))
        holder = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        weakref.finalize(holder, shutil.rmtree, folder, True)
        cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
        Path(cert).write_bytes(made.public_bytes(serialization.Encoding.PEM))
        Path(key).write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
        holder.load_cert_chain(cert, key)
        return holder, cert
    if not key:
        raise ValueError("smtp_tls_cert needs smtp_tls_key")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context, cert


class _Session(SMTP):
    """One SMTP connection, counted (the catcher holds at most its limit; a slow sender is let go after the timeout)."""

    def __init__(self, runner: "MailRunner", *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._runner = runner

    def connection_made(self, transport: Any) -> None:
        self._runner.open.add(transport)
        super().connection_made(transport)

    def connection_lost(self, error: Any) -> None:
        self._runner.open.discard(self.transport)
        super().connection_lost(error)


class _Busy(asyncio.Protocol):
    """A connection over the limit: told so (421, SMTP's "try again later") and closed."""

    def connection_made(self, transport: Any) -> None:
        transport.write(b"421 4.3.2 Too many connections, try again later\r\n")
        transport.close()


class MailRunner(UvicornRunner):
    """The mail server: its HTTP API (Mailpit's, on the server's port) and its SMTP listener (smtp_port), started
    and stopped together."""

    def __init__(self, spec: Any, ctx: Any) -> None:
        super().__init__(spec, ctx)
        self.smtp: asyncio.AbstractServer | None = None
        self.smtp_port: int | None = None
        self.smtp_url: str | None = None
        self.open: set[Any] = set()  # the SMTP connections' transports
        self.tls: Any = None  # STARTTLS's context, when smtp_tls is on
        self.tls_cert: str | None = None  # the certificate it presents (PEM path), for clients to trust

    def _factory(self) -> asyncio.Protocol:
        s = self.ctx.settings
        if len(self.open) >= s["max_smtp_connections"]:
            return _Busy()
        catcher = self.facade.catcher
        return _Session(self, catcher, data_size_limit=s["max_message_mib"] * 1024 * 1024, enable_SMTPUTF8=True, decode_data=False,
                        hostname="mockpanel", ident="mockpanel mail catcher", timeout=s["smtp_timeout_s"], auth_require_tls=False,
                        authenticator=catcher.authenticate, tls_context=self.tls, loop=asyncio.get_running_loop())

    async def start(self) -> bool:
        if not await super().start():
            return False
        host = self.settings.host
        if self.settings["smtp_tls"] and self.tls is None:
            try:
                self.tls, self.tls_cert = tls_context(self.settings["smtp_tls_cert"], self.settings["smtp_tls_key"])
            except (OSError, ValueError) as exc:
                await super().stop()
                self._set_status("failed", f"SMTP STARTTLS: {exc}")
                return False
        wanted = self.smtp_port if self.smtp_port and self.settings["smtp_port"] == 0 else self.settings["smtp_port"]
        try:
            sock = bind_socket(host, wanted)
            self.smtp = await asyncio.get_running_loop().create_server(self._factory, sock=sock)
        except OSError as exc:
            await super().stop()
            self._set_status("failed", f"SMTP: {exc}")
            return False
        self.smtp_port = sock.getsockname()[1]
        self.smtp_url = display_url(host, self.smtp_port, "smtp")
        self.ctx.event("smtp_listening", url=self.smtp_url)
        return True

    def describe(self) -> str:
        """serve's ready line, and the SMTP address on a line of its own (a script reads the URL after "running at")."""
        text = super().describe()
        return f"{text}\n{self.name}: SMTP at {self.smtp_url}" if self.status == "running" and self.smtp_url else text

    async def stop(self) -> None:
        if self.smtp is not None:
            self.smtp.close()
            for transport in list(self.open):  # a sender still talking is cut off: the server is going
                with contextlib.suppress(Exception):
                    transport.close()
            self.open.clear()
            self.smtp = None
        await super().stop()
