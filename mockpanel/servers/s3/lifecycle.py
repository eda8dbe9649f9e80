"""Lifecycle rules that act: Put/Get/DeleteBucketLifecycleConfiguration, and the rules applied by the mock's own
clock — expiration by Days or Date (prefix, tag and size filters), NoncurrentVersionExpiration, expired delete
markers and AbortIncompleteMultipartUpload — so "the upload is gone after 7 days" is a test that advances the clock
(`POST /__mockpanel/s3/clock {"advance_days": 7}`, or the Storage pane's `L`) instead of waiting.

As AWS, a day is 86,400 s after the object's last modification (AWS also rounds up to the next midnight UTC; the mock
does not, so a test knows the exact instant). Transitions are kept and shown, never applied: there is no storage
tier to move to."""

from __future__ import annotations

from typing import Any, Callable

from .request import Request
from .storage import Bucket, ObjectMeta, Store
from .xml import S3Error, el, iso8601, parse
from .governance import _date

MAX_RULES = 1000
DAY = 86_400


def _int(text: str | None, what: str) -> int | None:
    if text is None:
        return None
    text = text.strip()
    if not text.isdigit() or len(text) > 6 or int(text) < 1:
        raise S3Error("InvalidArgument", f"'{what}' for the rule must be a positive integer", ArgumentName=what)
    return int(text)


def _filter(rule: Any) -> dict[str, Any]:
    """A rule's filter as {prefix, tags, larger, smaller}: Filter (Prefix, Tag, And, ObjectSize*) or the legacy Prefix."""
    found = rule.find("Filter")
    if found is None:
        return {"prefix": (rule.findtext("Prefix") or ""), "tags": {}, "larger": None, "smaller": None}
    scope = found.find("And") if found.find("And") is not None else found
    tags = {(t.findtext("Key") or ""): (t.findtext("Value") or "") for t in scope.findall("Tag")}
    larger, smaller = scope.findtext("ObjectSizeGreaterThan"), scope.findtext("ObjectSizeLessThan")
    for value, name in ((larger, "ObjectSizeGreaterThan"), (smaller, "ObjectSizeLessThan")):
        if value is not None and not value.strip().isdigit():
            raise S3Error("InvalidArgument", f"{name} must be a whole number of bytes", ArgumentName=name)
    return {"prefix": scope.findtext("Prefix") or "", "tags": tags, "larger": int(larger) if larger else None,
            "smaller": int(smaller) if smaller else None}


def parse_rules(body: bytes) -> list[dict[str, Any]]:
    root = parse(body)
    if root.tag != "LifecycleConfiguration":
        raise S3Error("MalformedXML")
    rules = []
    for rule in root.findall("Rule"):
        status = (rule.findtext("Status") or "").strip()
        if status not in ("Enabled", "Disabled"):
            raise S3Error("MalformedXML", "A rule's Status is Enabled or Disabled")
        expiration = rule.find("Expiration")
        parsed: dict[str, Any] = {"id": (rule.findtext("ID") or f"rule-{len(rules) + 1}")[:255], "status": status, "filter": _filter(rule),
                                  "days": None, "date": None, "expired_markers": False, "noncurrent_days": None, "newer_noncurrent": None,
                                  "abort_days": None, "transitions": [(t.findtext("StorageClass") or "") for t in rule.findall("Transition")]}
        if expiration is not None:
            parsed["days"] = _int(expiration.findtext("Days"), "Days")
            date = expiration.findtext("Date")
            parsed["date"] = _date(date, "Date") if date is not None else None
            parsed["expired_markers"] = (expiration.findtext("ExpiredObjectDeleteMarker") or "").strip().lower() == "true"
            if sum(x is not None and x is not False for x in (parsed["days"], parsed["date"], parsed["expired_markers"] or None)) != 1:
                raise S3Error("MalformedXML", "Expiration has one of Days, Date or ExpiredObjectDeleteMarker")
        noncurrent = rule.find("NoncurrentVersionExpiration")
        if noncurrent is not None:
            parsed["noncurrent_days"] = _int(noncurrent.findtext("NoncurrentDays"), "NoncurrentDays")
            parsed["newer_noncurrent"] = _int(noncurrent.findtext("NewerNoncurrentVersions"), "NewerNoncurrentVersions")
        abort = rule.find("AbortIncompleteMultipartUpload")
        if abort is not None:
            parsed["abort_days"] = _int(abort.findtext("DaysAfterInitiation"), "DaysAfterInitiation")
            if parsed["filter"]["tags"]:
                raise S3Error("InvalidRequest", "AbortIncompleteMultipartUpload cannot be specified with Tags.")
        if not any((expiration is not None, noncurrent is not None, abort is not None, parsed["transitions"])):
            raise S3Error("MalformedXML", "A rule needs an action: Expiration, NoncurrentVersionExpiration, AbortIncompleteMultipartUpload or Transition")
        rules.append(parsed)
    if not rules or len(rules) > MAX_RULES:
        raise S3Error("MalformedXML", f"A lifecycle configuration has 1 to {MAX_RULES} rules")
    if len({r["id"] for r in rules}) != len(rules):
        raise S3Error("InvalidArgument", "Rule ID must be unique. Found same ID for more than one rule", ArgumentName="ID")
    return rules


def render_rule(rule: dict[str, Any]) -> Any:
    f = rule["filter"]
    conditions = ([el("Prefix", f["prefix"])] if f["prefix"] else []) + [el("Tag", el("Key", k), el("Value", v)) for k, v in f["tags"].items()]
    conditions += [el("ObjectSizeGreaterThan", f["larger"])] if f["larger"] is not None else []
    conditions += [el("ObjectSizeLessThan", f["smaller"])] if f["smaller"] is not None else []
    parts = [el("ID", rule["id"]), el("Filter", *(conditions if len(conditions) < 2 else [el("And", *conditions)])), el("Status", rule["status"])]
    if rule["days"] is not None:
        parts.append(el("Expiration", el("Days", rule["days"])))
    elif rule["date"] is not None:
        parts.append(el("Expiration", el("Date", iso8601(rule["date"]))))
    elif rule["expired_markers"]:
        parts.append(el("Expiration", el("ExpiredObjectDeleteMarker", "true")))
    if rule["noncurrent_days"] is not None:
        inner = [el("NoncurrentDays", rule["noncurrent_days"])]
        if rule["newer_noncurrent"] is not None:
            inner.append(el("NewerNoncurrentVersions", rule["newer_noncurrent"]))
        parts.append(el("NoncurrentVersionExpiration", *inner))
    if rule["abort_days"] is not None:
        parts.append(el("AbortIncompleteMultipartUpload", el("DaysAfterInitiation", rule["abort_days"])))
    return el("Rule", *parts)


def _matches(rule: dict[str, Any], meta: ObjectMeta) -> bool:
    f = rule["filter"]
    return (meta.key.startswith(f["prefix"]) and all(meta.tags.get(k) == v for k, v in f["tags"].items())
            and (f["larger"] is None or meta.size > f["larger"]) and (f["smaller"] is None or meta.size < f["smaller"]))


def due(store: Store, bucket: Bucket, now: float) -> dict[str, list[Any]]:
    """What the bucket's enabled rules expire at `now`: {"current": [keys], "noncurrent": [(key, version_id)],
    "markers": [(key, version_id)], "uploads": [upload ids]} (nothing is changed here)."""
    found: dict[str, list[Any]] = {"current": [], "noncurrent": [], "markers": [], "uploads": []}
    rules = [r for r in bucket.lifecycle or () if r["status"] == "Enabled"]
    if not rules:
        return found
    for key, meta in list(bucket.objects.items()):
        for rule in rules:
            if _matches(rule, meta) and ((rule["days"] is not None and meta.last_modified + rule["days"] * DAY <= now)
                                         or (rule["date"] is not None and rule["date"] <= now)):
                found["current"].append(key)
                break
    for key, versions in list(bucket.history.items()):
        current = bucket.objects.get(key)
        chain = ([current] if current is not None else []) + versions[::-1]  # newest first: chain[0] is current (or a delete marker)
        for index, meta in enumerate(chain[1:], 1):
            became_noncurrent = chain[index - 1].last_modified  # when the version after it was written
            for rule in rules:
                if rule["noncurrent_days"] is None or not (meta.delete_marker or _matches(rule, meta)):
                    continue
                if rule["newer_noncurrent"] is not None and index - 1 < rule["newer_noncurrent"]:
                    continue  # keep that many newer noncurrent versions
                if became_noncurrent + rule["noncurrent_days"] * DAY <= now:
                    found["noncurrent"].append((key, meta.version_id or "null"))
                    break
        left = len(chain) - sum(1 for k, _ in found["noncurrent"] if k == key)
        if current is None and chain and chain[0].delete_marker and left == 1:  # a delete marker with nothing behind it
            if any((r["expired_markers"] or r["days"] is not None) and key.startswith(r["filter"]["prefix"]) for r in rules):
                found["markers"].append((key, chain[0].version_id or "null"))
    for upload in list(store.uploads.values()):
        if upload.bucket == bucket.name and any(r["abort_days"] is not None and upload.key.startswith(r["filter"]["prefix"])
                                                and upload.initiated + r["abort_days"] * DAY <= now for r in rules):
            found["uploads"].append(upload.upload_id)
    return found


class Lifecycle:
    """The lifecycle configuration's wire operations (mixed into S3Protocol); the sweep is the domain's (domain.py)."""

    bucket: Callable[[Request], Bucket]

    async def put_bucket_lifecycle(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        rules = parse_rules(await self.read_small_body(req, receive, require_digest="strict"))  # type: ignore[attr-defined]
        await self.keep(req, send, bucket, "lifecycle", rules)  # type: ignore[attr-defined]

    async def get_bucket_lifecycle(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        if not bucket.lifecycle:
            raise S3Error("NoSuchLifecycleConfiguration", BucketName=bucket.name)
        await self.xml(send, req, "LifecycleConfiguration", [render_rule(r) for r in bucket.lifecycle])  # type: ignore[attr-defined]

    async def delete_bucket_lifecycle(self, req: Request, receive: Callable, send: Callable) -> None:
        await self.forget(req, send, "lifecycle")  # type: ignore[attr-defined]
