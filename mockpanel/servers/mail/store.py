"""The mail catcher's domain: the messages caught (raw bytes kept whole, parsed with Python's `email` package), bounded
in count and bytes (oldest first, as Mailpit's max messages), read status, tags, and Mailpit's search syntax."""

from __future__ import annotations

import asyncio
import html
import re
import secrets
import shlex
from collections import OrderedDict
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any, Callable

from ...service import ServerContext
from ...spec import Invalid, NotFound
from ...timefmt import iso

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SNIPPET = 250
MAX_TAGS = 50
MAX_QUERY = 1000
_TAG = re.compile(r"^[\w .\-/:@]{1,100}$")


def new_id() -> str:
    """22 characters of base 62, as Mailpit's message ids."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(22))


def _addresses(values: list[str]) -> list[dict[str, str]]:
    return [{"Name": name, "Address": address} for name, address in getaddresses(values) if address or name][:1000]


def _header_text(message: EmailMessage, name: str) -> str:
    try:
        value = message.get(name)
    except Exception:  # a header the policy cannot parse: its raw text
        value = message.get_all(name, [""])[0] if hasattr(message, "get_all") else ""
    return str(value) if value is not None else ""


def strip_html(text: str) -> str:
    """An HTML body as words: tags and scripts dropped, entities read (what a snippet and the pane show)."""
    text = re.sub(r"(?is)<(script|style)\b.*?</\1\s*>", " ", text)
    text = re.sub(r"(?s)<[^>]*>", " ", text)
    return re.sub(r"\s+", " ", html.unescape(text)).strip()


@dataclass
class Part:
    part_id: str
    content_type: str
    filename: str
    content_id: str
    size: int
    data: bytes = field(repr=False)

    def summary(self) -> dict[str, Any]:
        return {"PartID": self.part_id, "FileName": self.filename, "ContentType": self.content_type, "ContentID": self.content_id,
                "Size": self.size}


@dataclass
class Message:
    id: str
    raw: bytes = field(repr=False)
    received: float
    sender: str  # MAIL FROM
    recipients: list[str]  # RCPT TO
    read: bool = False
    tags: list[str] = field(default_factory=list)
    parsed: EmailMessage | None = field(default=None, repr=False)
    text: str = ""
    html: str = ""
    inline: list[Part] = field(default_factory=list)
    attachments: list[Part] = field(default_factory=list)

    def header(self, name: str) -> str:
        return _header_text(self.parsed, name) if self.parsed is not None else ""

    def addresses(self, name: str) -> list[dict[str, str]]:
        if self.parsed is None:
            return []
        try:
            values = [str(v) for v in self.parsed.get_all(name, [])]
        except Exception:
            return []
        return _addresses(values)

    @property
    def subject(self) -> str:
        return self.header("subject")

    def sender_address(self) -> dict[str, str]:
        found = self.addresses("from")
        return found[0] if found else {"Name": "", "Address": self.sender}

    def bcc(self) -> list[dict[str, str]]:
        """Recipients of the envelope that no To or Cc header names: the Bcc, as Mailpit derives it."""
        named = {a["Address"].lower() for a in self.addresses("to") + self.addresses("cc")}
        return [{"Name": "", "Address": r} for r in self.recipients if r.lower() not in named]

    def words(self) -> str:
        """The message as words: its text part, or its HTML part's words (no markup, no script)."""
        return self.text or strip_html(self.html)

    def snippet(self) -> str:
        words = re.sub(r"\s+", " ", self.text).strip() or strip_html(self.html)
        return words[:SNIPPET]

    def summary(self) -> dict[str, Any]:
        return {"ID": self.id, "MessageID": self.header("message-id").strip("<>"), "Read": self.read, "From": self.sender_address(),
                "To": self.addresses("to"), "Cc": self.addresses("cc"), "Bcc": self.bcc(), "ReplyTo": self.addresses("reply-to"),
                "Subject": self.subject, "Created": iso(self.received), "Tags": sorted(self.tags), "Size": len(self.raw),
                "Attachments": len(self.attachments), "Snippet": self.snippet()}

    def full(self) -> dict[str, Any]:
        date = self.header("date")
        try:
            stamp = parsedate_to_datetime(date).isoformat() if date else iso(self.received)
        except (TypeError, ValueError):
            stamp = iso(self.received)
        return {"ID": self.id, "MessageID": self.header("message-id").strip("<>"), "From": self.sender_address(),
                "To": self.addresses("to"), "Cc": self.addresses("cc"), "Bcc": self.bcc(), "ReplyTo": self.addresses("reply-to"),
                "ReturnPath": self.sender, "Subject": self.subject, "ListUnsubscribe": {"Header": self.header("list-unsubscribe")},
                "Date": stamp, "Tags": sorted(self.tags), "Text": self.text, "HTML": self.html, "Size": len(self.raw),
                "Inline": [p.summary() for p in self.inline], "Attachments": [p.summary() for p in self.attachments]}

    def headers(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        if self.parsed is not None:
            for name, value in self.parsed.raw_items():
                found.setdefault(name, []).append(str(value))
        return dict(sorted(found.items()))

    def part(self, part_id: str) -> Part:
        for part in (*self.inline, *self.attachments):
            if part.part_id == part_id:
                return part
        raise NotFound(f"no part {part_id[:20]!r} in message {self.id}")

    def links(self) -> list[str]:
        found = re.findall(r"""https?://[^\s"'<>)\]]+""", self.text + " " + self.html)
        return list(dict.fromkeys(html.unescape(link).rstrip(".,;") for link in found))[:200]


def parse(message: Message) -> None:
    """Read the raw bytes with the `email` package: text and HTML bodies, inline parts, attachments; PartIDs as
    Mailpit numbers them (1, 2, 2.1 … by position). A message that cannot be parsed stays whole, with no bodies."""
    try:
        parsed = BytesParser(policy=policy.default).parsebytes(message.raw)
    except Exception:
        return
    message.parsed = parsed  # type: ignore[assignment]

    def walk(part: Any, number: str) -> None:
        if part.is_multipart():
            for index, child in enumerate(part.iter_parts(), 1):
                walk(child, f"{number}.{index}" if number else str(index))
            return
        kind = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        filename = part.get_filename() or ""
        content_id = str(part.get("content-id", "")).strip("<>")
        if disposition != "attachment" and not filename and kind in ("text/plain", "text/html"):
            try:
                text = part.get_content()
            except Exception:
                text = part.get_payload(decode=True).decode("utf-8", "replace") if part.get_payload(decode=True) else ""
            if kind == "text/plain" and not message.text:
                message.text = text
            elif kind == "text/html" and not message.html:
                message.html = text
            return
        data = part.get_payload(decode=True) or b""
        found = Part(number or "1", kind, filename, content_id, len(data), data)
        (message.inline if disposition == "inline" or (content_id and disposition != "attachment") else message.attachments).append(found)

    walk(parsed, "")


PARSE_IN_THREAD = 256 * 1024  # a larger message (up to the SIZE limit) is parsed off the loop every server shares


async def parsed(message: Message) -> None:
    """parse(message), in a thread when the message is large."""
    if len(message.raw) > PARSE_IN_THREAD:
        await asyncio.to_thread(parse, message)
    else:
        parse(message)


class Mailbox:
    """The messages caught, newest last; bounded in count and bytes, the oldest dropped (and counted)."""

    def __init__(self, ctx: ServerContext) -> None:
        s = ctx.settings
        self.ctx = ctx
        self.max_messages: int = s["max_messages"]
        self.max_bytes: int = s["max_stored_mib"] * 1024 * 1024
        self.messages: OrderedDict[str, Message] = OrderedDict()
        self.bytes = 0
        self.dropped = 0
        self.accepted = self.rejected = self.accepted_bytes = 0
        self.listeners: list[Callable[[str, Any], None]] = []  # the events websocket's readers

    def announce(self, kind: str, data: Any) -> None:
        for listener in list(self.listeners):
            listener(kind, data)

    async def add(self, raw: bytes, sender: str, recipients: list[str]) -> Message:
        message = Message(new_id(), raw, self.ctx.clock(), sender, list(recipients))
        await parsed(message)
        while self.messages and (len(self.messages) >= self.max_messages or self.bytes + len(raw) > self.max_bytes):
            _, oldest = self.messages.popitem(last=False)
            self.bytes -= len(oldest.raw)
            self.dropped += 1
        self.messages[message.id] = message
        self.bytes += len(raw)
        self.accepted += 1
        self.accepted_bytes += len(raw)
        self.ctx.event("mail_received", id=message.id, sender=message.sender_address()["Address"], to=[r for r in recipients[:10]],
                       subject=message.subject[:200], size=len(raw))
        self.announce("new", message.summary())
        return message

    def get(self, message_id: str) -> Message:
        if message_id == "latest":
            if not self.messages:
                raise NotFound("no message yet")
            return next(reversed(self.messages.values()))
        found = self.messages.get(message_id)
        if found is None:
            raise NotFound(f"message {message_id[:40]!r} not found")
        return found

    def newest_first(self) -> list[Message]:
        return list(reversed(self.messages.values()))

    def unread(self) -> int:
        return sum(not m.read for m in self.messages.values())

    def tags(self) -> list[str]:
        return sorted({t for m in self.messages.values() for t in m.tags})

    def delete(self, ids: list[str] | None) -> int:
        targets = list(self.messages) if not ids else [i for i in ids if i in self.messages]
        if ids and len(targets) != len(set(ids)):
            missing = next(i for i in ids if i not in self.messages)
            raise NotFound(f"message {str(missing)[:40]!r} not found")
        for message_id in targets:
            self.bytes -= len(self.messages.pop(message_id).raw)
        if targets:
            self.ctx.event("mail_deleted", count=len(targets))
            self.announce("delete" if ids else "truncate", {"IDs": targets} if ids else None)
        return len(targets)

    def set_read(self, ids: list[str] | None, read: bool) -> None:
        for message in (self.messages.values() if not ids else [self.get(i) for i in ids]):
            message.read = read

    def set_tags(self, ids: list[str], tags: list[str]) -> None:
        clean = check_tags(tags)
        for message in [self.get(i) for i in ids]:
            message.tags = list(clean)

    def search(self, query: str) -> list[Message]:
        test = compile_query(query)
        return [m for m in self.newest_first() if test(m)]

    def reset(self) -> None:
        count = len(self.messages)
        self.messages.clear()
        self.bytes = self.dropped = 0
        if count:
            self.announce("truncate", None)

    def info(self) -> dict[str, Any]:
        return {"Version": "mockpanel", "LatestVersion": "", "Database": "memory", "DatabaseSize": self.bytes, "Messages": len(self.messages),
                "Unread": self.unread(), "Tags": {t: sum(t in m.tags for m in self.messages.values()) for t in self.tags()},
                "RuntimeStats": {"Uptime": 0, "Memory": 0, "MessagesDeleted": self.dropped, "SMTPAccepted": self.accepted,
                                 "SMTPAcceptedSize": self.accepted_bytes, "SMTPRejected": self.rejected, "SMTPIgnored": 0}}


def check_tags(tags: Any) -> list[str]:
    if not isinstance(tags, list) or len(tags) > MAX_TAGS or not all(isinstance(t, str) and _TAG.match(t) for t in tags):
        raise Invalid(f"Tags are at most {MAX_TAGS} names of letters, digits, spaces and . - / : @ (100 characters each)")
    return sorted(set(tags))


def compile_query(query: str) -> Callable[[Message], bool]:
    """Mailpit's search syntax: words (anywhere in the subject, addresses or text), "quoted phrases", `to:`, `from:`,
    `cc:`, `subject:`, `message-id:`, `tag:`, `is:read|unread|tagged`, `has:attachment`; `-` (or `!`) negates."""
    if len(query) > MAX_QUERY:
        raise Invalid(f"a search is at most {MAX_QUERY} characters")
    try:
        words = shlex.split(query)
    except ValueError:
        words = query.split()
    tests: list[Callable[[Message], bool]] = []
    for word in words[:50]:
        negate = word[:1] in ("-", "!") and len(word) > 1
        word = word[1:] if negate else word
        field_name, sep, value = word.partition(":")
        field_name, value = field_name.lower(), value.lower()
        if sep and field_name in ("to", "from", "cc", "bcc", "subject", "message-id", "tag", "is", "has"):
            tests.append(_field_test(field_name, value, negate))
        else:
            needle = word.lower()
            tests.append(lambda m, n=needle, neg=negate: (n in _haystack(m)) != neg)
    return lambda message: all(test(message) for test in tests)


def _haystack(message: Message) -> str:
    parts = [message.subject, message.sender, *message.recipients, message.text, strip_html(message.html),
             *(a["Name"] + " " + a["Address"] for a in message.addresses("from") + message.addresses("to"))]
    return " ".join(parts).lower()


def _field_test(name: str, value: str, negate: bool) -> Callable[[Message], bool]:
    def addresses(message: Message, header: str) -> str:
        found = message.addresses(header)
        extra = ([message.sender] if header == "from" else message.recipients if header == "to"  # the envelope's too
                 else [a["Address"] for a in message.bcc()] if header == "bcc" else [])
        return " ".join([*(a["Name"] + " <" + a["Address"] + ">" for a in found), *extra]).lower()

    def test(message: Message) -> bool:
        if name in ("to", "from", "cc", "bcc"):
            found = value in addresses(message, name)
        elif name == "subject":
            found = value in message.subject.lower()
        elif name == "message-id":
            found = value.strip("<>") == message.header("message-id").strip("<>").lower()
        elif name == "tag":
            found = value in (t.lower() for t in message.tags)
        elif name == "is":
            found = {"read": message.read, "unread": not message.read, "tagged": bool(message.tags)}.get(value, False)
        else:  # has:
            found = value in ("attachment", "attachments") and bool(message.attachments)
        return found != negate

    return test
