"""S3 event notifications into HTTP targets: mockpanel's webhook receiver, or any URL.

Rules come from three places and are consulted together: the `s3.notifications` setting (mockpanel.toml, each rule
naming its bucket), the control API (`PUT /__mockpanel/notifications/{bucket}`), and boto3's
PutBucketNotificationConfiguration, whose Topic/Queue/Lambda ARN names a target: one declared in
`s3.notification_targets` ("ARN=URL"), else the webhook receiver running beside S3 at /webhooks/<the ARN's last
part>. An event is S3's JSON (Records[...]), signed like the seed's webhooks (X-Webhook-Signature: hex HMAC-SHA256 of
the body), sent once the write that caused it has been answered, retried on failure."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from typing import Any
from urllib.parse import quote_plus, urlsplit

from ... import tracing
from ...timefmt import iso
from .storage import Bucket, ObjectMeta
from .xml import S3Error, el, els, parse

EVENTS = ("s3:ObjectCreated:*", "s3:ObjectCreated:Put", "s3:ObjectCreated:Post", "s3:ObjectCreated:Copy",
          "s3:ObjectCreated:CompleteMultipartUpload", "s3:ObjectRemoved:*", "s3:ObjectRemoved:Delete", "s3:ObjectRemoved:DeleteMarkerCreated")
KINDS = {"Topic": "TopicConfiguration", "Queue": "QueueConfiguration", "CloudFunction": "CloudFunctionConfiguration"}
RETRY_DELAYS = (0.5, 1.0, 2.0)  # after the first attempt: four in all
MAX_RULES = 100
_sequence = itertools.count(1)


def check_rule(raw: Any, bucket: str | None = None) -> dict[str, Any]:
    """A rule as the control API or the settings give it: {url, events, prefix, suffix, id}; ValueError says why not."""
    if not isinstance(raw, dict):
        raise ValueError("a rule is an object: {\"url\": ..., \"events\": [...], \"prefix\": ..., \"suffix\": ...}")
    unknown = set(raw) - {"url", "events", "prefix", "suffix", "id", "bucket"}
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))} in a notification rule")
    url = raw.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise ValueError(f"a notification rule needs an http(s) url, not {str(url)[:100]!r}")
    events = raw.get("events", ["s3:ObjectCreated:*"])
    if isinstance(events, str):
        events = [events]
    if not isinstance(events, list) or not events or any(e not in EVENTS for e in events):
        raise ValueError(f"events are some of {', '.join(EVENTS)}")
    rule = {"id": str(raw.get("id") or f"mockpanel-{next(_sequence)}"), "url": url, "events": list(dict.fromkeys(events)),
            "prefix": str(raw.get("prefix") or ""), "suffix": str(raw.get("suffix") or "")}
    if bucket is not None or raw.get("bucket") is not None:
        rule["bucket"] = str(bucket if bucket is not None else raw["bucket"])
    return rule


def matches(rule: dict[str, Any], event: str, key: str) -> bool:
    family = event.split(":", 1)[0]
    return (f"s3:{event}" in rule["events"] or f"s3:{family}:*" in rule["events"]) and key.startswith(rule["prefix"]) and key.endswith(rule["suffix"])


def event_record(event: str, bucket: Bucket, meta: ObjectMeta, rule: dict[str, Any], request_id: str, source_ip: str,
                 now: float | None = None) -> dict[str, Any]:
    """One of S3's event records, as a Lambda or a queue would receive it."""
    obj: dict[str, Any] = {"key": quote_plus(meta.key, safe="/"), "sequencer": f"{time.time_ns():016X}"}
    if event.startswith("ObjectCreated"):
        obj.update(size=meta.size, eTag=meta.etag.strip('"'))
    if meta.version_id:
        obj["versionId"] = meta.version_id
    return {
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": bucket.region, "eventTime": iso(now), "eventName": event,
        "userIdentity": {"principalId": "mockpanel"}, "requestParameters": {"sourceIPAddress": source_ip},
        "responseElements": {"x-amz-request-id": request_id, "x-amz-id-2": request_id},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": rule["id"],
               "bucket": {"name": bucket.name, "ownerIdentity": {"principalId": "mockpanel"}, "arn": f"arn:aws:s3:::{bucket.name}"},
               "object": obj},
    }


class Notifier:
    """Finds the rules an event matches and delivers it to each rule's URL, in the background."""

    def __init__(self, ctx: Any, settings_rules: list[dict[str, Any]], secret: str, targets: dict[str, str]) -> None:
        self.ctx = ctx
        self.settings_rules = settings_rules
        self.secret = secret
        self.targets = targets  # ARN -> URL (s3.notification_targets)
        self.tasks: set[asyncio.Task] = set()
        self.delivered = 0
        self.failed = 0
        self._client: Any = None  # one httpx2.AsyncClient for every delivery (a client per delivery costs ~10 ms)
        self._gate = asyncio.Semaphore(16)  # deliveries in flight at once

    def rules(self, bucket: Bucket) -> list[dict[str, Any]]:
        return [r for r in self.settings_rules if r.get("bucket") == bucket.name] + list(bucket.notifications or ())

    def pending(self, event: str, bucket: Bucket, meta: ObjectMeta, request_id: str, source_ip: str) -> list[tuple[str, bytes]]:
        """(url, body) of every delivery this event makes; sent by send() once the request has been answered."""
        out = []
        for rule in self.rules(bucket):
            if matches(rule, event, meta.key):
                body = json.dumps({"Records": [event_record(event, bucket, meta, rule, request_id, source_ip, self.ctx.clock())]}).encode()
                out.append((rule["url"], body))
        return out

    def send(self, deliveries: list[tuple[str, bytes]]) -> None:
        for url, body in deliveries:
            task = asyncio.get_running_loop().create_task(self._deliver(url, body))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def _http(self) -> Any:
        import httpx2

        if self._client is None:
            self._client = httpx2.AsyncClient(timeout=10, limits=httpx2.Limits(max_connections=16, max_keepalive_connections=16))
        return self._client

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _deliver(self, url: str, body: bytes) -> None:
        import httpx2

        signature = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {"content-type": "application/json", "x-webhook-signature": signature, "user-agent": "mockpanel-s3-notifications",
                   **tracing.headers()}
        outcome = ""
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS), 1):
            if delay:
                await asyncio.sleep(delay)
            try:
                async with self._gate:
                    answer = await self._http().post(url, content=body, headers={**headers, "x-mockpanel-attempt": str(attempt)})
                if answer.status_code < 300:
                    self.delivered += 1
                    self.ctx.event("notification_delivered", url=url, status=answer.status_code, attempt=attempt)
                    return
                outcome = f"answered {answer.status_code}"
            except httpx2.HTTPError as exc:
                outcome = f"{type(exc).__name__}: {exc}"
        self.failed += 1
        self.ctx.event("notification_failed", url=url, reason=outcome[:300], attempts=len(RETRY_DELAYS) + 1)

    # --- boto3's PutBucketNotificationConfiguration ---

    def target_url(self, arn: str) -> str:
        if arn in self.targets:
            return self.targets[arn]
        receiver = self.ctx.peers().get("webhooks")
        if receiver is None:
            raise S3Error("InvalidArgument", "Unable to validate the following destination configurations", ArgumentName=arn[:256],
                          ArgumentValue="no URL is declared for this ARN in s3.notification_targets, and no webhook receiver runs")
        return f"{receiver}/webhooks/{quote_plus(arn.rsplit(':', 1)[-1]) or 's3'}"

    def from_xml(self, body: bytes) -> list[dict[str, Any]]:
        root = parse(body)
        if root.tag != "NotificationConfiguration":
            raise S3Error("MalformedXML")
        rules = []
        for kind, tag in KINDS.items():
            for config in root.findall(tag):
                arn = (config.findtext(kind) or "").strip()
                events = [e.text.strip() for e in config.findall("Event") if e.text]
                if not arn or not events or any(e not in EVENTS for e in events):
                    raise S3Error("InvalidArgument", "The event or the destination is not valid", ArgumentName=tag)
                filters = {(r.findtext("Name") or "").strip().lower(): r.findtext("Value") or "" for r in config.iter("FilterRule")}
                rule = check_rule({"url": self.target_url(arn), "events": events, "prefix": filters.get("prefix", ""),
                                   "suffix": filters.get("suffix", ""), "id": config.findtext("Id")})
                rules.append({**rule, "arn": arn, "kind": kind})
        if len(rules) > MAX_RULES:
            raise S3Error("InvalidArgument", f"At most {MAX_RULES} notification configurations", ArgumentName="NotificationConfiguration")
        return rules

    @staticmethod
    def to_xml(rules: list[dict[str, Any]]) -> list[Any]:
        out = []
        for rule in rules:
            kind = rule.get("kind", "Queue")
            arn = rule.get("arn") or f"arn:mockpanel:url:::{rule['url']}"
            filters = [el("FilterRule", el("Name", name.capitalize()), el("Value", rule[name])) for name in ("prefix", "suffix") if rule[name]]
            parts = [el("Id", rule["id"]), el(kind, arn), *(el("Event", e) for e in rule["events"])]
            if filters:
                parts.append(el("Filter", el("S3Key", els(filters))))
            out.append(el(KINDS[kind], *parts))
        return out
