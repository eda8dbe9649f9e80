"""The mail catcher's HTTP side: Mailpit's API (/api/v1/…, /view/…, the /api/events websocket) as its clients call
it; every operation is the Mailbox's."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from ...service import ServerContext
from ...spec import Built, Invalid
from ...web import json_app, json_body
from .smtp import Catcher, Chaos
from .store import Mailbox, check_tags

MAX_LIMIT = 5000
MAX_IDS = 10_000
EVENT_QUEUE = 256  # events waiting for one websocket reader; a reader that far behind is let go
# A message's HTML is the sender's: shown on this origin it could run scripts with the API's rights, so it is shown
# sandboxed (no scripts, no same origin), its images from itself or data: only.
HTML_POLICY = "sandbox; default-src 'none'; img-src data: cid: 'self'; style-src 'unsafe-inline'"


class MailFacade:
    """What the panel, the plugin and snapshots reach: the mailbox and the SMTP handler (with its chaos triggers)."""

    def __init__(self, mailbox: Mailbox, catcher: Catcher) -> None:
        self.mailbox = mailbox
        self.catcher = catcher

    # --- snapshots (state.py) ---

    def export_state(self, blobs: Any) -> dict[str, Any]:
        """Every message as it arrived (its bytes a blob), with its envelope, read status and tags; the chaos triggers."""
        return {"messages": [{"id": m.id, "raw": blobs.of_bytes(m.raw), "received": m.received, "sender": m.sender,
                              "recipients": m.recipients, "read": m.read, "tags": m.tags} for m in self.mailbox.messages.values()],
                "chaos": self.catcher.chaos.view()["Triggers"]}

    async def prepare_state(self, doc: dict[str, Any], blobs: Any) -> Any:
        from ...state import Prepared
        from .store import Message, parsed

        box = self.mailbox
        found = []
        try:
            for raw in (doc.get("messages") or [])[-box.max_messages:]:
                message = Message(str(raw["id"])[:64], await asyncio.to_thread(blobs.read, raw["raw"], box.max_bytes), float(raw["received"]),
                                  str(raw["sender"]), [str(r) for r in raw["recipients"]][:box.max_messages * 10], bool(raw["read"]),
                                  check_tags(list(raw.get("tags") or [])))
                await parsed(message)
                found.append(message)
        except Invalid:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise Invalid(f"not a mail state this mockpanel wrote ({type(exc).__name__}: {str(exc)[:160]})") from None
        chaos = doc.get("chaos") or {}
        Chaos().set(chaos)  # checked now, on a copy: the live triggers change in apply

        def apply() -> None:
            box.reset()
            for message in found:
                box.messages[message.id] = message
                box.bytes += len(message.raw)
            self.catcher.chaos.set(chaos)
            box.announce("truncate", None)

        return Prepared(apply)


def _ids(body: Any) -> list[str] | None:
    if body is None or body == {}:
        return None
    if not isinstance(body, dict):
        raise Invalid('send {"IDs": ["…"]} (none: every message)')
    ids = body.get("IDs")
    if ids is None or ids == []:
        return None
    if not isinstance(ids, list) or len(ids) > MAX_IDS or not all(isinstance(i, str) for i in ids):
        raise Invalid(f"IDs is a list of at most {MAX_IDS} message ids")
    return ids


def build(ctx: ServerContext) -> Built:
    mailbox = Mailbox(ctx)
    catcher = Catcher(mailbox, ctx)
    ctx.http_faults = False  # its fault policy acts on SMTP (smtp.py): the API the test reads mail through stays reliable
    ctx.on_reset(mailbox.reset)
    app = json_app(title="Email catcher (Mailpit's API)", version="1.0.0",
                   description="Messages caught over SMTP, read through Mailpit's API, so its clients work unchanged.")

    def page(found: list[Any], start: int, limit: int) -> dict[str, Any]:
        return {"total": len(mailbox.messages), "unread": mailbox.unread(), "messages_count": len(found), "start": start,
                "tags": mailbox.tags(), "messages": [m.summary() for m in found[start:start + limit]]}

    @app.get("/api/v1/info", summary="Runtime information and message totals")
    async def info() -> dict[str, Any]:
        return mailbox.info()

    @app.get("/api/v1/webui", summary="Web UI configuration")
    async def webui() -> dict[str, Any]:
        return {"Label": "mockpanel", "MessageRelay": {"Enabled": False}, "SpamAssassin": False, "ChaosEnabled": True,
                "DuplicatesIgnored": False, "HideDeleteAllButton": False}

    @app.get("/api/v1/messages", summary="Messages, newest first")
    async def messages(start: int = Query(0, ge=0), limit: int = Query(50, ge=1, le=MAX_LIMIT)) -> dict[str, Any]:
        return page(mailbox.newest_first(), start, limit)

    @app.put("/api/v1/messages", summary="Set read status ({\"IDs\": [...], \"Read\": true}; no IDs: every message)",
             response_class=PlainTextResponse)
    async def set_read(request: Request) -> str:
        body = await json_body(request)
        read = body.get("Read", False) if isinstance(body, dict) else False
        if not isinstance(read, bool):
            raise Invalid("Read is true or false")
        mailbox.set_read(_ids(body), read)
        return "ok"

    @app.delete("/api/v1/messages", summary="Delete messages ({\"IDs\": [...]}; no IDs: every message)", response_class=PlainTextResponse)
    async def delete(request: Request) -> str:
        raw = await request.body()
        mailbox.delete(_ids(await json_body(request) if raw.strip() else None))
        return "ok"

    @app.get("/api/v1/search", summary="Messages matching a search (Mailpit's syntax), newest first")
    async def search(query: str = Query(..., max_length=1000), start: int = Query(0, ge=0),
                     limit: int = Query(50, ge=1, le=MAX_LIMIT)) -> dict[str, Any]:
        return page(mailbox.search(query), start, limit)

    @app.delete("/api/v1/search", summary="Delete the messages matching a search", response_class=PlainTextResponse)
    async def delete_search(query: str = Query(..., max_length=1000)) -> str:
        found = [m.id for m in mailbox.search(query)]
        if found:
            mailbox.delete(found)
        return "ok"

    @app.get("/api/v1/message/{message_id}", summary="One message (marked read); `latest` for the newest")
    async def message(message_id: str) -> dict[str, Any]:
        found = mailbox.get(message_id)
        found.read = True
        return found.full()

    @app.get("/api/v1/message/{message_id}/headers", summary="A message's headers, by name")
    async def headers(message_id: str) -> dict[str, list[str]]:
        return mailbox.get(message_id).headers()

    @app.get("/api/v1/message/{message_id}/raw", summary="A message's source, as it arrived", response_class=PlainTextResponse)
    async def raw(message_id: str) -> Response:
        return Response(mailbox.get(message_id).raw, media_type="text/plain; charset=utf-8")

    @app.get("/api/v1/message/{message_id}/part/{part_id}", summary="An attachment or inline part, with its own Content-Type")
    async def part(message_id: str, part_id: str) -> Response:
        found = mailbox.get(message_id).part(part_id)
        name = found.filename.replace('"', "").replace("\r", "").replace("\n", "")[:200]
        return Response(found.data, headers={"content-type": found.content_type,  # as the part declares it, no charset added
                                             "content-disposition": f'attachment; filename="{name or part_id}"',
                                             "x-content-type-options": "nosniff"})

    @app.get("/api/v1/tags", summary="Every tag in use")
    async def tags() -> list[str]:
        return mailbox.tags()

    @app.put("/api/v1/tags", summary="Set the tags of messages ({\"IDs\": [...], \"Tags\": [...]})", response_class=PlainTextResponse)
    async def set_tags(request: Request) -> str:
        body = await json_body(request)
        ids = _ids(body)
        if not ids:
            raise Invalid('send {"IDs": ["…"], "Tags": ["…"]}')
        mailbox.set_tags(ids, check_tags(body.get("Tags", [])))
        return "ok"

    @app.get("/api/v1/chaos", summary="The SMTP chaos triggers (sender, recipient, authentication)")
    async def get_chaos() -> dict[str, Any]:
        return catcher.chaos.view()

    @app.put("/api/v1/chaos", summary="Set the SMTP chaos triggers (those left out go back to 0 %)")
    async def put_chaos(request: Request) -> dict[str, Any]:
        return catcher.chaos.set(await json_body(request) or {})

    @app.get("/view/{message_id}.txt", summary="A message's text part", response_class=PlainTextResponse)
    async def view_text(message_id: str) -> Response:
        found = mailbox.get(message_id)
        return Response(found.text, media_type="text/plain; charset=utf-8")

    @app.get("/view/{message_id}.html", summary="A message's HTML part, sandboxed (no scripts)", response_class=HTMLResponse)
    async def view_html(message_id: str) -> Response:
        found = mailbox.get(message_id)
        if not found.html:
            raise Invalid("this message has no HTML part")
        return HTMLResponse(found.html, headers={"content-security-policy": HTML_POLICY, "x-content-type-options": "nosniff"})

    @app.websocket("/api/events")
    async def events(socket: WebSocket) -> None:
        """Mailpit's event stream: {"Type": "new", "Data": summary} for each message, "delete", "truncate", "stats"."""
        origin = socket.headers.get("origin")
        host = socket.headers.get("host", "")
        if origin is not None and origin.split("://", 1)[-1] != host:  # a page of another site may not read the mail
            await socket.close(code=1008)
            return
        await socket.accept()
        queue: asyncio.Queue = asyncio.Queue(maxsize=EVENT_QUEUE)
        behind = False

        def listener(kind: str, data: Any) -> None:
            nonlocal behind
            if not behind:
                try:
                    queue.put_nowait({"Type": kind, "Data": data})
                except asyncio.QueueFull:
                    behind = True  # this reader is let go: the mail is not held for it

        mailbox.listeners.append(listener)
        try:
            while True:
                item = await queue.get()
                if behind:
                    await socket.close(code=1013)  # "try again later": it reconnects and lists what it missed
                    return
                await socket.send_json(item)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            if listener in mailbox.listeners:
                mailbox.listeners.remove(listener)

    return Built(app, MailFacade(mailbox, catcher))
