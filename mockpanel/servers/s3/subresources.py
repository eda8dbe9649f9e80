"""Bucket and object subresources S3 stores and gives back: tagging (?tagging, x-amz-tagging), ACLs (?acl, x-amz-acl:
kept and returned, never enforced) and bucket CORS rules (?cors, and the preflights answered from them)."""

from __future__ import annotations

from typing import Any, Callable
from urllib.parse import parse_qsl

from .request import Request
from .storage import Bucket, ObjectMeta
from .xml import OWNER, S3Error, Xml, el, els, parse

MAX_OBJECT_TAGS = 10
MAX_BUCKET_TAGS = 50
MAX_CORS_RULES = 100
MAX_CORS_BYTES = 64 * 1024  # AWS: a CORS configuration is at most 64 KB (every preflight walks its rules)
CANNED_ACLS = ("private", "public-read", "public-read-write", "authenticated-read", "aws-exec-read", "bucket-owner-read",
               "bucket-owner-full-control", "log-delivery-write")
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
PERMISSIONS = ("FULL_CONTROL", "WRITE", "WRITE_ACP", "READ", "READ_ACP")
CORS_METHODS = ("GET", "PUT", "POST", "DELETE", "HEAD")
XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'


def check_tags(pairs: list[tuple[str, str]], limit: int) -> dict[str, str]:
    """Tags as S3 validates them: unique keys of 1-128 characters, values up to 256, no aws: prefix, `limit` at most."""
    tags: dict[str, str] = {}
    for key, value in pairs:
        if key in tags:
            raise S3Error("InvalidTag", "Cannot provide multiple Tags with the same key", TagKey=key[:128])
        if not key or len(key) > 128:
            raise S3Error("InvalidTag", "The TagKey you have provided is invalid" if not key else "The TagKey you have provided is too long, max 128")
        if len(value) > 256:
            raise S3Error("InvalidTag", "The TagValue you have provided is too long, max 256", TagKey=key)
        if key.lower().startswith("aws:"):
            raise S3Error("InvalidTag", "Your TagKey cannot be prefixed with aws:", TagKey=key)
        tags[key] = value
    if len(tags) > limit:
        raise S3Error("BadRequest" if limit == MAX_OBJECT_TAGS else "InvalidTag",
                      f"Object tags cannot be greater than {limit}" if limit == MAX_OBJECT_TAGS else f"Bucket tag count cannot be greater than {limit}")
    return tags


def header_tags(h: dict[str, str]) -> dict[str, str] | None:
    """The tags of `x-amz-tagging: k1=v1&k2=v2` (PutObject, CreateMultipartUpload, CopyObject REPLACE), or None."""
    value = h.get("x-amz-tagging")
    if value is None:
        return None
    try:
        pairs = parse_qsl(value, keep_blank_values=True, strict_parsing=bool(value), max_num_fields=MAX_BUCKET_TAGS + 1)
    except ValueError:
        raise S3Error("InvalidArgument", "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.",
                      ArgumentName="x-amz-tagging", ArgumentValue=value[:256]) from None
    return check_tags(pairs, MAX_OBJECT_TAGS)


def header_acl(h: dict[str, str]) -> str | None:
    value = h.get("x-amz-acl")
    if value is not None and value not in CANNED_ACLS:
        raise S3Error("InvalidArgument", None, ArgumentName="x-amz-acl", ArgumentValue=value[:64])
    return value


def _tag_set(tags: dict[str, str]) -> Any:
    return el("TagSet", els(el("Tag", el("Key", k), el("Value", v)) for k, v in tags.items()))


def _grants(acl: Any) -> list[dict[str, str]]:
    owner = {"type": "CanonicalUser", "id": "mockpanel", "permission": "FULL_CONTROL"}
    if isinstance(acl, list):
        return acl
    extra = {"public-read": [(ALL_USERS, "READ")], "public-read-write": [(ALL_USERS, "READ"), (ALL_USERS, "WRITE")],
             "authenticated-read": [(AUTHENTICATED_USERS, "READ")],
             "log-delivery-write": [(LOG_DELIVERY, "WRITE"), (LOG_DELIVERY, "READ_ACP")]}.get(acl or "private", [])
    return [owner] + [{"type": "Group", "uri": uri, "permission": permission} for uri, permission in extra]


def _render_grant(grant: dict[str, str]) -> Any:
    kind = grant["type"]
    who = {"CanonicalUser": ("ID", grant.get("id")), "Group": ("URI", grant.get("uri")),
           "AmazonCustomerByEmail": ("EmailAddress", grant.get("email"))}[kind]
    inner = [el(who[0], who[1])]
    if kind == "CanonicalUser" and grant.get("id") == "mockpanel":
        inner.append(el("DisplayName", "mockpanel"))
    # The xsi:type attribute cannot be made by el() (elements only); `kind` is one of the three names above.
    return el("Grant", Xml(f'<Grantee {XSI} xsi:type="{kind}">{els(inner)}</Grantee>'), el("Permission", grant["permission"]))


def _parse_acl(body: bytes) -> list[dict[str, str]]:
    root = parse(body)
    if root.tag != "AccessControlPolicy":
        raise S3Error("MalformedACLError")
    grants = []
    for grant in root.iter("Grant"):
        grantee = grant.find("Grantee")
        permission = (grant.findtext("Permission") or "").strip()
        if grantee is None or permission not in PERMISSIONS:
            raise S3Error("MalformedACLError")
        kind = next((v for k, v in grantee.attrib.items() if k.endswith("}type") or k == "type"), "")
        field, tag = {"CanonicalUser": ("id", "ID"), "Group": ("uri", "URI"), "AmazonCustomerByEmail": ("email", "EmailAddress")}.get(kind, (None, None))
        value = (grantee.findtext(tag) or "").strip() if tag else ""
        if field is None or not value or len(value) > 1024:
            raise S3Error("MalformedACLError")
        grants.append({"type": kind, field: value, "permission": permission})
    if len(grants) > 100:
        raise S3Error("MalformedACLError", "The XML you provided was not well-formed: at most 100 grants")
    return grants


def _cors_rules(body: bytes) -> list[dict[str, Any]]:
    root = parse(body)
    if root.tag != "CORSConfiguration":
        raise S3Error("MalformedXML")
    rules = []
    for rule in root.findall("CORSRule"):
        methods = [m.text.strip() for m in rule.findall("AllowedMethod") if m.text]
        origins = [o.text.strip() for o in rule.findall("AllowedOrigin") if o.text]
        if not methods or not origins:
            raise S3Error("MalformedXML", "A CORS rule needs at least one AllowedMethod and one AllowedOrigin")
        for method in methods:
            if method not in CORS_METHODS:
                raise S3Error("InvalidRequest", f"Found unsupported HTTP method in CORS config. Unsupported method is {method[:16]}")
        for origin in origins:
            if origin.count("*") > 1:
                raise S3Error("InvalidRequest", f"AllowedOrigin \"{origin[:256]}\" can not have more than one wildcard.")
        for header in [h.text.strip() for h in rule.findall("AllowedHeader") if h.text]:
            if header.count("*") > 1:
                raise S3Error("InvalidRequest", f"AllowedHeader \"{header[:256]}\" can not have more than one wildcard.")
        max_age = rule.findtext("MaxAgeSeconds")
        if max_age is not None and not max_age.strip().isdigit():
            raise S3Error("MalformedXML")
        rules.append({"id": rule.findtext("ID"), "methods": methods, "origins": origins,
                      "headers": [h.text.strip() for h in rule.findall("AllowedHeader") if h.text],
                      "expose": [h.text.strip() for h in rule.findall("ExposeHeader") if h.text],
                      "max_age": int(max_age) if max_age is not None else None})
    if not rules or len(rules) > MAX_CORS_RULES:
        raise S3Error("MalformedXML", f"A CORS configuration has 1 to {MAX_CORS_RULES} rules")
    return rules


def _wildcard(pattern: str, value: str) -> bool:
    """A pattern with at most one `*` (checked when the rule is stored): prefix and suffix, no regular expression, so
    a long header cannot make matching slow."""
    head, star, tail = pattern.partition("*")
    if not star:
        return pattern == value
    return len(value) >= len(head) + len(tail) and value.startswith(head) and value.endswith(tail)


def matching_rule(bucket: Bucket, origin: str, method: str, headers: list[str]) -> dict[str, Any] | None:
    """The first CORS rule allowing this origin, method and request headers (as S3 picks it), or None."""
    for rule in bucket.cors or ():
        if method not in rule["methods"] or not any(_wildcard(o, origin) for o in rule["origins"]):
            continue
        if all(any(_wildcard(a.lower(), h.lower()) for a in rule["headers"]) for h in headers if h):
            return rule
    return None


def cors_headers(rule: dict[str, Any], origin: str, preflight: bool, method: str = "", headers: list[str] | None = None) -> list[tuple[str, str]]:
    answer = [("access-control-allow-origin", "*" if rule["origins"] == ["*"] else origin), ("vary", "Origin")]
    if rule["origins"] != ["*"]:
        answer.append(("access-control-allow-credentials", "true"))
    if preflight:
        answer.append(("access-control-allow-methods", ", ".join(rule["methods"])))
        if headers:
            answer.append(("access-control-allow-headers", ", ".join(headers)))
        if rule["max_age"] is not None:
            answer.append(("access-control-max-age", str(rule["max_age"])))
    elif rule["expose"]:
        answer.append(("access-control-expose-headers", ", ".join(rule["expose"])))
    return answer


class Subresources:
    """Tagging, ACL and CORS operations (mixed into S3Protocol)."""

    bucket: Callable[[Request], Bucket]
    object: Callable[[Request], ObjectMeta]

    # --- tagging ---

    async def get_object_tagging(self, req: Request, receive: Callable, send: Callable) -> None:
        await self.xml(send, req, "Tagging", [_tag_set(self.object(req).tags)])  # type: ignore[attr-defined]

    async def put_object_tagging(self, req: Request, receive: Callable, send: Callable) -> None:
        meta = self.object(req)
        tags = self._tags_from_body(await self.read_small_body(req, receive), MAX_OBJECT_TAGS)  # type: ignore[attr-defined]
        meta.tags = tags
        self.store.save_meta(self.bucket(req), meta)  # type: ignore[attr-defined]
        await self.respond(send, req, 200)  # type: ignore[attr-defined]

    async def delete_object_tagging(self, req: Request, receive: Callable, send: Callable) -> None:
        meta = self.object(req)
        meta.tags = {}
        self.store.save_meta(self.bucket(req), meta)  # type: ignore[attr-defined]
        await self.respond(send, req, 204)  # type: ignore[attr-defined]

    async def get_bucket_tagging(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        if not bucket.tags:
            raise S3Error("NoSuchTagSet", BucketName=bucket.name)
        await self.xml(send, req, "Tagging", [_tag_set(bucket.tags)])  # type: ignore[attr-defined]

    async def put_bucket_tagging(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        tags = self._tags_from_body(await self.read_small_body(req, receive, require_digest="strict"), MAX_BUCKET_TAGS)  # type: ignore[attr-defined]
        await self.keep(req, send, bucket, "tags", tags, 204)

    async def delete_bucket_tagging(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        await self.keep(req, send, bucket, "tags", {}, 204)

    @staticmethod
    def _tags_from_body(body: bytes, limit: int) -> dict[str, str]:
        root = parse(body)
        if root.tag != "Tagging" or root.find("TagSet") is None:
            raise S3Error("MalformedXML")
        pairs = []
        for tag in root.find("TagSet").findall("Tag"):  # type: ignore[union-attr]
            key = tag.findtext("Key")
            if key is None:
                raise S3Error("MalformedXML")
            pairs.append((key, tag.findtext("Value") or ""))
        return check_tags(pairs, limit)

    # --- ACLs: kept and given back, never enforced ---

    async def get_acl(self, req: Request, receive: Callable, send: Callable) -> None:
        target = self.object(req) if req.key else self.bucket(req)
        grants = els(_render_grant(g) for g in _grants(target.acl))
        await self.xml(send, req, "AccessControlPolicy", [OWNER, el("AccessControlList", grants)])  # type: ignore[attr-defined]

    async def put_acl(self, req: Request, receive: Callable, send: Callable) -> None:
        target = self.object(req) if req.key else self.bucket(req)
        canned = header_acl(req.headers)
        body = await self.read_small_body(req, receive)  # type: ignore[attr-defined]
        if canned is not None and body.strip():
            raise S3Error("UnexpectedContent", "This request does not support content")
        if canned is None and not body.strip():
            raise S3Error("MissingSecurityHeader", "Your request was missing a required header", MissingHeaderName="x-amz-acl")
        acl = canned if canned is not None else _parse_acl(body)
        self.check_acl_allowed(self.bucket(req), acl)  # type: ignore[attr-defined]
        target.acl = acl
        if req.key:
            self.store.save_meta(self.bucket(req), target)  # type: ignore[attr-defined, arg-type]
        else:
            self.store.save_bucket(target)  # type: ignore[attr-defined]
        await self.respond(send, req, 200)  # type: ignore[attr-defined]

    # --- CORS ---

    async def get_bucket_cors(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        if not bucket.cors:
            raise S3Error("NoSuchCORSConfiguration", BucketName=bucket.name)
        rules = []
        for rule in bucket.cors:
            parts = [el("ID", rule["id"])] if rule["id"] else []
            parts += [el("AllowedHeader", h) for h in rule["headers"]] + [el("AllowedMethod", m) for m in rule["methods"]]
            parts += [el("AllowedOrigin", o) for o in rule["origins"]] + [el("ExposeHeader", h) for h in rule["expose"]]
            if rule["max_age"] is not None:
                parts.append(el("MaxAgeSeconds", rule["max_age"]))
            rules.append(el("CORSRule", *parts))
        await self.xml(send, req, "CORSConfiguration", rules)  # type: ignore[attr-defined]

    async def put_bucket_cors(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        rules = _cors_rules(await self.read_small_body(req, receive, limit=MAX_CORS_BYTES, require_digest="strict"))  # type: ignore[attr-defined]
        await self.keep(req, send, bucket, "cors", rules)

    async def get_bucket_website(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        if not bucket.website:
            raise S3Error("NoSuchWebsiteConfiguration", BucketName=bucket.name)
        parts = [el("IndexDocument", el("Suffix", bucket.website["index"]))]
        if bucket.website.get("error"):
            parts.append(el("ErrorDocument", el("Key", bucket.website["error"])))
        await self.xml(send, req, "WebsiteConfiguration", parts)  # type: ignore[attr-defined]

    async def put_bucket_website(self, req: Request, receive: Callable, send: Callable) -> None:
        """Declares the bucket a website: its pages then run scripts (still in a sandbox of their own, see
        object_sandbox). Redirect rules are not kept: mockpanel has no website endpoint to apply them."""
        bucket = self.bucket(req)
        root = parse(await self.read_small_body(req, receive))  # type: ignore[attr-defined]
        index = (root.findtext("IndexDocument/Suffix") or "").strip()
        if root.tag != "WebsiteConfiguration" or (not index and root.find("RedirectAllRequestsTo") is None):
            raise S3Error("MalformedXML")
        if "/" in index or len(index) > 1024:
            raise S3Error("InvalidArgument", "The IndexDocument Suffix is not well formed", ArgumentName="IndexDocument", ArgumentValue=index[:64])
        await self.keep(req, send, bucket, "website", {"index": index or "index.html", "error": (root.findtext("ErrorDocument/Key") or "").strip()[:1024]})

    async def delete_bucket_website(self, req: Request, receive: Callable, send: Callable) -> None:
        await self.forget(req, send, "website")

    async def keep(self, req: Request, send: Callable, bucket: Bucket, setting: str, value: Any, status: int = 200) -> None:
        """A PutBucket… call's end: the bucket's `setting` set (persisted), answered `status`."""
        setattr(bucket, setting, value)
        self.store.save_bucket(bucket)  # type: ignore[attr-defined]
        await self.respond(send, req, status)  # type: ignore[attr-defined]

    async def forget(self, req: Request, send: Callable, setting: str) -> None:
        """A DeleteBucket… call: the bucket's `setting` gone (persisted), 204."""
        await self.keep(req, send, self.bucket(req), setting, None, 204)

    async def delete_bucket_cors(self, req: Request, receive: Callable, send: Callable) -> None:
        await self.forget(req, send, "cors")
