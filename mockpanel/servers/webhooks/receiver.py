"""The webhook receiver's domain: stored events (bounded), delivery attempts and response plans, per-client
secrets, stats, replay, and the live feed the dashboard listens to. Routes, the Webhooks pane, the palette and the
pytest plugin all go through Receiver; it sends the bus events and the dashboard's messages itself."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2
from pydantic import ValidationError

from ... import tracing
from ...service import ServerContext
from ...settings import SettingsError
from ...spec import Invalid, NotFound
from ...timefmt import iso
from .models import ClientConfig, ResponsePlan, WebhookEvent, event_type_of
from .signatures import secret_hint, sign, verify

CONTENT_HEADERS = ("content-type", "content-encoding", "content-language")
MAX_DELIVERY_KEYS = 10_000
MAX_FEED_BACKLOG = 1000  # messages a stalled dashboard may have waiting; more are dropped for it


@dataclass
class Delivery:
    """One received request: the stored event, the status the plan (or the signature policy) gives it."""

    event: WebhookEvent
    status: int
    plan: ResponsePlan | None


class Receiver:
    def __init__(self, ctx: ServerContext) -> None:
        s = ctx.settings
        self.ctx = ctx
        self.secret: str = s["webhook_secret"]
        self.require_signature: bool = s["require_signature"]
        self.tolerance: int = s["timestamp_tolerance_s"]
        self.replay_timeout: int = s["replay_timeout_s"]
        self._events: deque[WebhookEvent] = deque()
        self.max_events: int = s["max_events"]
        self.max_bytes: int = s["max_stored_bytes"]
        self._bytes = 0  # bodies held
        self._by_id: dict[str, WebhookEvent] = {}
        self.dropped = 0
        self._stats: dict[str, dict[str, Any]] = {}
        self._deliveries: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._clients: dict[str, ClientConfig] = {}
        self._feeds: set[asyncio.Queue] = set()
        self._configured = self._config_from_settings(s)
        self.reset()

    @staticmethod
    def _config_from_settings(s) -> dict[str, ClientConfig]:
        clients: dict[str, ClientConfig] = {}
        for item in s["client_secrets"]:
            client, sep, secret = item.partition(":")
            if not sep or not client or not secret:
                raise SettingsError(f"invalid setting webhooks.client_secrets item {item!r}: expected client-id:secret")
            clients.setdefault(client, ClientConfig()).secret = secret
        for item in s["plans"]:
            client, sep, spec = item.partition(":")
            try:
                plan = ResponsePlan.parse(spec)
            except ValueError:
                plan = None
            if not sep or not client or plan is None:
                raise SettingsError(f"invalid setting webhooks.plans item {item!r}: expected client-id:500x3+200, client-id:delay=2000 or client-id:timeout")
            clients.setdefault(client, ClientConfig()).plan = plan
        return clients

    # --- reading ---

    def events(self) -> list[WebhookEvent]:
        """Newest first."""
        return list(reversed(self._events))

    def event(self, event_id: str) -> WebhookEvent:
        event = self._by_id.get(event_id)
        if event is None:
            raise NotFound(f"event {event_id} not found")
        return event

    def __len__(self) -> int:
        return len(self._events)

    def stats(self) -> dict[str, Any]:
        return {"total": sum(s["count"] for s in self._stats.values()), "stored": len(self._events), "stored_bytes": self._bytes,
                "dropped": self.dropped, "clients": self._stats}

    def search(self, client_id=None, event_type=None, verdict=None, since=None, until=None, q=None) -> list[WebhookEvent]:
        needle = q.lower() if q else None
        found = []
        for event in reversed(self._events):
            if client_id is not None and event.client_id != client_id:
                continue
            if event_type is not None and event.event_type != event_type:
                continue
            if verdict is not None and event.signature.verdict != verdict:
                continue
            if since is not None and event.received_at < since:
                continue
            if until is not None and event.received_at > until:
                continue
            if needle is not None:  # the client id, the event type, the body or a header
                haystack = event.body.decode("utf-8", "replace").lower()
                if needle not in event.client_id.lower() and needle not in (event.event_type or "").lower() and needle not in haystack and not any(needle in k or needle in v.lower() for k, v in event.headers):
                    continue
            found.append(event)
        return found

    # --- clients ---

    def secret_for(self, client_id: str) -> tuple[str, str]:
        config = self._clients.get(client_id)
        if config is not None and config.secret:
            return config.secret, f"client secret of {client_id}"
        return self.secret, "WEBHOOK_SECRET"

    def plan_for(self, client_id: str) -> ResponsePlan | None:
        config = self._clients.get(client_id)
        return config.plan if config is not None else None

    def plans(self) -> dict[str, ResponsePlan]:
        """Every client with a response plan on."""
        return {client: config.plan for client, config in sorted(self._clients.items()) if config.plan is not None}

    def requires_signature(self, client_id: str) -> bool:
        config = self._clients.get(client_id)
        if config is not None and config.require_signature is not None:
            return config.require_signature
        return self.require_signature

    def client(self, client_id: str) -> dict[str, Any]:
        config = self._clients.get(client_id, ClientConfig())
        secret, source = self.secret_for(client_id)
        return {"client_id": client_id, "secret_source": source, "secret_hint": secret_hint(secret),
                "require_signature": self.requires_signature(client_id), "plan": config.plan.model_dump() if config.plan else None}

    def clients(self) -> list[str]:
        return sorted(self._clients)

    def configure(self, client_id: str, **changes: Any) -> dict[str, Any]:
        """Change a client's secret, require_signature and/or plan (a plan as text like 500x3+200, a ResponsePlan or
        None). A new plan starts every delivery's attempt count again. Invalid (nothing changed) on bad values."""
        if isinstance(changes.get("plan"), str):
            try:
                changes["plan"] = ResponsePlan.parse(changes["plan"]) if changes["plan"].strip() else None
            except ValueError as exc:
                raise Invalid(f"plan: {exc}") from None
        try:
            config = ClientConfig.model_validate(self._clients.get(client_id, ClientConfig()).model_dump() | changes)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise Invalid(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        self._clients[client_id] = config
        if "plan" in changes:
            for key in [k for k in self._deliveries if k.startswith(client_id + "/")]:
                del self._deliveries[key]
        self.ctx.event("client_configured", client_id=client_id, plan=config.plan.describe() if config.plan else None)
        return self.client(client_id)

    def set_plan(self, client_id: str, plan: str | ResponsePlan | None) -> dict[str, Any]:
        return self.configure(client_id, plan=plan)

    def forget_client(self, client_id: str) -> dict[str, Any]:
        self._clients.pop(client_id, None)
        self.ctx.event("client_configured", client_id=client_id, plan=None)
        return self.client(client_id)

    def clear_plans(self) -> list[str]:
        """Every response plan off (the panel's all-chaos-off); returns the clients that had one."""
        had = list(self.plans())
        for client_id in had:
            self.set_plan(client_id, None)
        return had

    # --- deliveries ---

    def _attempt(self, key: str, now: float) -> tuple[int, float | None]:
        """Attempt number of this delivery and the gap since its previous attempt."""
        previous = self._deliveries.pop(key, None)
        attempt, gap = (previous[0] + 1, round(now - previous[1], 3)) if previous else (1, None)
        self._deliveries[key] = (attempt, now)
        while len(self._deliveries) > MAX_DELIVERY_KEYS:
            self._deliveries.popitem(last=False)
        return attempt, gap

    def receive(self, client_id: str, method: str, query: str, raw_headers: list[tuple[str, str]], body: bytes,
                source: str | None, now: float | None = None) -> Delivery:
        """Check a request's signature, count its attempt and decide its answer; the caller stores it with `add`
        once it has waited as the plan says (a held request is stored at once)."""
        now = self.ctx.clock() if now is None else now  # the mocks' clock: the tolerance is judged by it
        headers = dict(raw_headers)
        secret, secret_source = self.secret_for(client_id)
        check = verify(headers, body, secret, secret_source, self.tolerance, now)
        key = headers.get("webhook-id") or headers.get("svix-id") or headers.get("x-github-delivery") or "sha256:" + hashlib.sha256(body).hexdigest()
        attempt, gap = self._attempt(f"{client_id}/{key}", now)
        event = WebhookEvent(
            id=str(uuid.uuid4()), client_id=client_id, received_at=now, method=method, query=query, headers=raw_headers, body=body,
            source=source, event_type=event_type_of(body, headers), signature=check, delivery_key=key, attempt=attempt, gap_s=gap,
        )
        plan = self.plan_for(client_id)
        if self.requires_signature(client_id) and check.verdict != "valid":
            status = 401
        else:
            status = plan.status_for(attempt) if plan else 200
        return Delivery(event, status, plan)

    def add(self, event: WebhookEvent) -> None:
        self._store(event)
        self.ctx.event("webhook_received", id=event.id, client_id=event.client_id, event_type=event.event_type,
                       verdict=event.signature.verdict, scheme=event.signature.scheme)
        self._announce("event", event.summary())

    def _store(self, event: WebhookEvent) -> None:
        # Bounded in count and in bytes: the oldest go first, and are counted.
        while self._events and (len(self._events) >= self.max_events or self._bytes + len(event.body) > self.max_bytes):
            oldest = self._events.popleft()
            self._by_id.pop(oldest.id, None)
            self._bytes -= len(oldest.body)
            self.dropped += 1
        self._events.append(event)
        self._by_id[event.id] = event
        self._bytes += len(event.body)
        stats = self._stats.setdefault(event.client_id, {"count": 0, "last_seen": None, "valid": 0, "invalid": 0, "unsigned": 0, "event_types": {}})
        stats["count"] += 1
        stats["last_seen"] = iso(event.received_at)
        stats[event.signature.verdict] += 1
        kind = event.event_type or "(none)"
        stats["event_types"][kind] = stats["event_types"].get(kind, 0) + 1

    def clear(self) -> int:
        """Delete every stored event; the dashboard and the panel are told. Returns how many there were."""
        count = self._forget()
        self._announce("cleared", {"deleted": count})
        self.ctx.event("webhooks_cleared", deleted=count)
        return count

    def _forget(self) -> int:
        count = len(self._events)
        self._events.clear()
        self._by_id.clear()
        self._bytes = 0
        self._stats.clear()
        self._deliveries.clear()
        self.dropped = 0
        return count

    # --- snapshots (state.py) ---

    def export_state(self, blobs: Any) -> dict[str, Any]:
        """The events received (oldest first; bodies as blobs), each client's configuration and the drop count."""
        events = []
        for event in self._events:
            found = {k: v for k, v in vars(event).items() if k not in ("body", "signature")}
            found.update(headers=[list(h) for h in event.headers], body=blobs.of_bytes(event.body), signature=event.signature.as_dict())
            events.append(found)
        return {"events": events, "clients": {k: v.model_dump(mode="json") for k, v in self._clients.items()}, "dropped": self.dropped}

    async def prepare_state(self, doc: dict[str, Any], blobs: Any) -> Any:
        from ...state import Prepared
        from .signatures import SignatureCheck

        try:
            clients = {str(k): ClientConfig.model_validate(v) for k, v in (doc.get("clients") or {}).items()}
            events = []
            for raw in (doc.get("events") or [])[-self.max_events:]:
                fields = {k: v for k, v in raw.items() if k not in ("body", "signature", "headers")}
                body = await asyncio.to_thread(blobs.read, raw["body"], self.max_bytes)
                events.append(WebhookEvent(**fields, headers=[(str(k), str(v)) for k, v in raw["headers"]], body=body,
                                           signature=SignatureCheck(**raw["signature"])))
        except ValidationError as exc:
            raise Invalid(f"clients: {exc.errors()[0]['msg']}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise Invalid(f"not a webhook receiver state this mockpanel wrote ({type(exc).__name__}: {str(exc)[:160]})") from None
        dropped = doc.get("dropped") if isinstance(doc.get("dropped"), int) else 0

        def apply() -> None:
            self._forget()
            self._clients = clients
            for event in events:
                self._store(event)  # quietly: loaded, not received
            self.dropped += dropped
            self._announce("cleared", {"deleted": 0})

        return Prepared(apply)

    def reset(self) -> None:
        """Back to the start: no events, clients as configured in settings (the server's reset event follows)."""
        count = self._forget()
        self._clients = {k: v.model_copy(deep=True) for k, v in self._configured.items()}
        if count:
            self._announce("cleared", {"deleted": count})

    async def replay(self, event_id: str, target_url: str) -> dict[str, Any]:
        """Send the raw body with its content headers, signed as the original was, with the client's current secret."""
        event = self.event(event_id)
        parts = urlsplit(target_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Invalid(f"target_url must be an http or https URL, got {target_url!r}")
        secret, _ = self.secret_for(event.client_id)
        original = dict(event.headers)
        headers = {k: v for k, v in event.headers if k in CONTENT_HEADERS}
        headers.update(sign(event.signature.scheme, event.body, secret, original, self.ctx.clock()))
        headers["x-mockpanel-replay-of"] = event.id
        headers.update(tracing.headers())  # the replay's request (dashboard, control API) or, from the panel, a new trace
        started = time.perf_counter()
        outcome: dict[str, Any] = {"event_id": event.id, "target_url": target_url, "at": iso()}
        try:
            async with httpx2.AsyncClient(timeout=self.replay_timeout, follow_redirects=False) as client:
                response = await client.post(target_url, content=event.body, headers=headers)
            outcome.update(delivered=response.status_code < 400, status=response.status_code, error=None)
        except httpx2.HTTPError as exc:
            outcome.update(delivered=False, status=None, error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        outcome["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
        event.replays.append(outcome)
        self.ctx.event("webhook_replayed", **outcome)
        return outcome

    # --- the dashboard's feed ---

    def subscribe(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue()
        self._feeds.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self._feeds.discard(queue)

    def _announce(self, kind: str, data: dict[str, Any]) -> None:
        message = f"event: {kind}\ndata: {json.dumps(data)}\n\n"
        for queue in list(self._feeds):
            if queue.qsize() < MAX_FEED_BACKLOG:  # a stalled dashboard must not grow without bound
                queue.put_nowait(message)
