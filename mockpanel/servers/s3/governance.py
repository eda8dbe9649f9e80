"""Who may do what to a bucket, and what S3 keeps about it: bucket policies (validated as AWS does, and in signature
mode enforced for what a mock user tests with them: anonymous access granted by "Principal": "*", explicit Deny),
Public Access Block, Ownership Controls, default encryption and Object Lock (retention and legal hold).

Policies are evaluated without Condition blocks (a statement with one is kept and shown but neither allows nor
denies), NotAction/NotResource/NotPrincipal are refused as AWS accepts them but the mock cannot honour them."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Callable

from .request import Request
from .storage import Bucket, ObjectMeta
from .xml import S3Error, el, flag, iso8601, parse

MAX_POLICY_BYTES = 20 * 1024  # AWS's bucket policy limit
PAB_FIELDS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
OWNERSHIPS = ("BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter")
SSE_ALGORITHMS = ("AES256", "aws:kms", "aws:kms:dsse")
LOCK_MODES = ("GOVERNANCE", "COMPLIANCE")
PUBLIC_ACL_GROUPS = ("http://acs.amazonaws.com/groups/global/AllUsers", "http://acs.amazonaws.com/groups/global/AuthenticatedUsers")

# The S3 action each operation needs, as a policy names it.
ACTIONS = {
    "get_object": "s3:GetObject", "put_object": "s3:PutObject", "copy_object": "s3:PutObject", "delete_object": "s3:DeleteObject",
    "delete_objects": "s3:DeleteObject", "post_object": "s3:PutObject", "create_upload": "s3:PutObject", "put_part": "s3:PutObject",
    "complete_upload": "s3:PutObject", "abort_upload": "s3:AbortMultipartUpload", "list_parts": "s3:ListMultipartUploadParts",
    "list_objects": "s3:ListBucket", "head_bucket": "s3:ListBucket", "list_versions": "s3:ListBucketVersions",
    "list_uploads": "s3:ListBucketMultipartUploads", "get_object_tagging": "s3:GetObjectTagging", "put_object_tagging": "s3:PutObjectTagging",
    "delete_object_tagging": "s3:DeleteObjectTagging", "get_acl": "s3:GetObjectAcl", "put_acl": "s3:PutObjectAcl",
    "get_object_attributes": "s3:GetObjectAttributes", "get_location": "s3:GetBucketLocation",
    "get_object_retention": "s3:GetObjectRetention", "put_object_retention": "s3:PutObjectRetention",
    "get_object_legal_hold": "s3:GetObjectLegalHold", "put_object_legal_hold": "s3:PutObjectLegalHold",
}
# Grants an ACL gives anonymous callers: the permission a public grant must have for each action.
ACL_PERMISSIONS = {"s3:GetObject": ("object", "READ"), "s3:ListBucket": ("bucket", "READ"), "s3:PutObject": ("bucket", "WRITE"),
                   "s3:DeleteObject": ("bucket", "WRITE")}


def _malformed(message: str) -> S3Error:
    return S3Error("MalformedPolicy", message)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _wildcard(pattern: str, value: str, fold: bool = False) -> bool:
    """IAM's matching: `*` any run of characters, `?` one; no regular expression (linear in the value)."""
    if fold:
        pattern, value = pattern.lower(), value.lower()
    p = v = 0
    star, mark = -1, 0
    while v < len(value):
        if p < len(pattern) and (pattern[p] == "?" or pattern[p] == value[v]):
            p += 1
            v += 1
        elif p < len(pattern) and pattern[p] == "*":
            star, mark = p, v
            p += 1
        elif star >= 0:
            p, mark = star + 1, mark + 1
            v = mark
        else:
            return False
    return all(c == "*" for c in pattern[p:])


def check_policy(body: bytes, bucket: str) -> dict[str, Any]:
    """A bucket policy as AWS validates it; MalformedPolicy with AWS's message otherwise."""
    if len(body) > MAX_POLICY_BYTES:
        raise _malformed(f"Policies must be at most {MAX_POLICY_BYTES} bytes")
    try:
        policy = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise _malformed("Policies must be valid JSON and the first byte must be '{'") from None
    if not isinstance(policy, dict):
        raise _malformed("Policies must be valid JSON and the first byte must be '{'")
    if "Version" in policy and policy["Version"] not in ("2012-10-17", "2008-10-17"):
        raise _malformed("The policy must contain a valid version string")
    if "Statement" not in policy:
        raise _malformed("Missing required field Statement")
    statements = _as_list(policy["Statement"])
    if not statements or len(statements) > 100:
        raise _malformed("Missing required field Statement")
    for statement in statements:
        if not isinstance(statement, dict):
            raise _malformed("Statement is not an object")
        for unsupported in ("NotAction", "NotResource", "NotPrincipal"):
            if unsupported in statement:
                raise S3Error("NotImplemented", f"mockpanel does not evaluate {unsupported} in bucket policies", status=501)
        effect = statement.get("Effect")
        if effect is None:
            raise _malformed("Missing required field Effect")
        if effect not in ("Allow", "Deny"):
            raise _malformed(f"Invalid effect: {str(effect)[:64]}")
        if "Principal" not in statement:
            raise _malformed("Missing required field Principal")
        principal = statement["Principal"]
        if not (principal == "*" or isinstance(principal, dict) and principal):
            raise _malformed("Invalid principal in policy")
        if "Action" not in statement:
            raise _malformed("Missing required field Action")
        for action in _as_list(statement["Action"]):
            if not isinstance(action, str) or not (action == "*" or action.lower().startswith("s3:")):
                raise _malformed("Policy has invalid action")
        if "Resource" not in statement:
            raise _malformed("Missing required field Resource")
        for resource in _as_list(statement["Resource"]):
            if not isinstance(resource, str) or not (resource == f"arn:aws:s3:::{bucket}" or resource.startswith(f"arn:aws:s3:::{bucket}/")
                                                     or resource == "*" or _wildcard(resource, f"arn:aws:s3:::{bucket}")):
                raise _malformed("Policy has invalid resource")
    return policy


def _everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    return isinstance(principal, dict) and "*" in _as_list(principal.get("AWS", []))


def is_public(policy: dict[str, Any] | None) -> bool:
    """A policy that allows anyone (Principal "*", no Condition), as GetBucketPolicyStatus reports it."""
    return bool(policy) and any(s.get("Effect") == "Allow" and _everyone(s.get("Principal")) and not s.get("Condition")
                                for s in _as_list(policy["Statement"]))


def policy_decision(policy: dict[str, Any] | None, action: str, resource: str, anonymous: bool, public_ok: bool = True) -> str | None:
    """'Deny', 'Allow' or None (the policy says nothing) for a caller doing `action` on `resource`. An anonymous caller
    is only "*"; a signed one is any principal (a mock has one account). `public_ok`: Allow statements for "*" count."""
    if not policy:
        return None
    verdict = None
    for statement in _as_list(policy["Statement"]):
        if statement.get("Condition"):
            continue
        everyone = _everyone(statement.get("Principal"))
        if anonymous and not everyone:
            continue
        if not any(_wildcard(a, action, fold=True) for a in _as_list(statement["Action"])):
            continue
        if not any(_wildcard(r, resource) for r in _as_list(statement["Resource"])):
            continue
        if statement["Effect"] == "Deny":
            return "Deny"
        if everyone and not public_ok:
            continue
        verdict = "Allow"
    return verdict


def _grants_public(acl: Any, permission: str) -> bool:
    if acl in ("public-read", "public-read-write") and permission == "READ":
        return True
    if acl == "public-read-write" and permission == "WRITE":
        return True
    return isinstance(acl, list) and any(g.get("type") == "Group" and g.get("uri") == PUBLIC_ACL_GROUPS[0]
                                         and g.get("permission") in (permission, "FULL_CONTROL") for g in acl)


def public_acl(acl: Any) -> bool:
    return acl in ("public-read", "public-read-write", "authenticated-read") or isinstance(acl, list) and any(
        g.get("type") == "Group" and g.get("uri") in PUBLIC_ACL_GROUPS for g in acl)


def _date(text: str | None, what: str) -> float:
    try:
        return datetime.fromisoformat((text or "").strip().replace("Z", "+00:00")).astimezone(timezone.utc).timestamp()
    except ValueError:
        raise S3Error("InvalidArgument", f"{what} must be an ISO 8601 date", ArgumentName=what) from None


class Governance:
    """The bucket subresources above, and the checks they add (mixed into S3Protocol)."""

    bucket: Callable[[Request], Bucket]
    object: Callable[[Request], ObjectMeta]

    # --- authorization: what policies, ACLs and Public Access Block allow (signature mode) ---

    def authorize(self, req: Request, operation: str) -> None:
        """In signature mode: an explicit Deny refuses anyone; an anonymous caller needs an Allow for "*" in the
        bucket policy, a public ACL grant, or a bucket in public_buckets (GET/HEAD). Off: everything is open."""
        if not self.verify_signatures or req.bucket is None:  # type: ignore[attr-defined]
            return
        bucket = self.store.buckets.get(req.bucket)  # type: ignore[attr-defined]
        action = ACTIONS.get(operation)
        anonymous = req.auth is None
        if bucket is None or action is None:
            if anonymous and not self._form_post(req):  # type: ignore[attr-defined]
                raise S3Error("AccessDenied", "Anonymous requests are refused while signature checks are on (s3.verify_signatures).")
            return
        block = bucket.public_access_block or {}
        resource = f"arn:aws:s3:::{bucket.name}" + (f"/{req.key}" if req.key else "")
        verdict = policy_decision(bucket.policy, action, resource, anonymous, public_ok=not block.get("RestrictPublicBuckets"))
        if verdict == "Deny":
            raise S3Error("AccessDenied", "Access Denied: an explicit Deny in the bucket policy")
        if not anonymous or verdict == "Allow" or self._form_post(req):  # type: ignore[attr-defined]
            return
        if req.method in ("GET", "HEAD") and bucket.name in self.public_buckets:  # type: ignore[attr-defined]
            return
        where = ACL_PERMISSIONS.get(action)
        if where is not None and not block.get("IgnorePublicAcls"):
            target = bucket.objects.get(req.key or "") if where[0] == "object" else bucket
            if target is not None and _grants_public(target.acl, where[1]):
                return
        raise S3Error("AccessDenied", "Anonymous requests are refused while signature checks are on (s3.verify_signatures), "
                      "unless a bucket policy or a public ACL grants them.")

    def check_acl_allowed(self, bucket: Bucket, acl: Any) -> None:
        """What Ownership Controls and Public Access Block say of an ACL being set (on a write or PutAcl)."""
        if acl is None:
            return
        if bucket.ownership == "BucketOwnerEnforced" and acl not in ("bucket-owner-full-control", "private"):
            raise S3Error("AccessControlListNotSupported", "The bucket does not allow ACLs", status=400)
        if (bucket.public_access_block or {}).get("BlockPublicAcls") and public_acl(acl):
            raise S3Error("AccessDenied", "Access Denied: Public Access Block (BlockPublicAcls) refuses a public ACL")

    # --- bucket policy ---

    async def put_bucket_policy(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        policy = check_policy(await self.read_small_body(req, receive, limit=MAX_POLICY_BYTES + 1), bucket.name)  # type: ignore[attr-defined]
        if (bucket.public_access_block or {}).get("BlockPublicPolicy") and is_public(policy):
            raise S3Error("AccessDenied", "Access Denied: Public Access Block (BlockPublicPolicy) refuses a public policy")
        await self.keep(req, send, bucket, "policy", policy, 204)  # type: ignore[attr-defined]

    async def get_bucket_policy(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        if not bucket.policy:
            raise S3Error("NoSuchBucketPolicy", BucketName=bucket.name)
        await self.respond(send, req, 200, None, json.dumps(bucket.policy).encode(), "application/json")  # type: ignore[attr-defined]

    async def delete_bucket_policy(self, req: Request, receive: Callable, send: Callable) -> None:
        await self.forget(req, send, "policy")  # type: ignore[attr-defined]

    async def get_bucket_policy_status(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        if not bucket.policy:
            raise S3Error("NoSuchBucketPolicy", BucketName=bucket.name)
        await self.xml(send, req, "PolicyStatus", [el("IsPublic", flag(is_public(bucket.policy)))])  # type: ignore[attr-defined]

    # --- Public Access Block ---

    async def put_public_access_block(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        root = parse(await self.read_small_body(req, receive))  # type: ignore[attr-defined]
        if root.tag != "PublicAccessBlockConfiguration":
            raise S3Error("MalformedXML")
        block = {}
        for name in PAB_FIELDS:
            value = (root.findtext(name) or "false").strip().lower()
            if value not in ("true", "false"):
                raise S3Error("MalformedXML")
            block[name] = value == "true"
        await self.keep(req, send, bucket, "public_access_block", block)  # type: ignore[attr-defined]

    async def get_public_access_block(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        if bucket.public_access_block is None:
            raise S3Error("NoSuchPublicAccessBlockConfiguration", BucketName=bucket.name)
        await self.xml(send, req, "PublicAccessBlockConfiguration",  # type: ignore[attr-defined]
                       [el(name, flag(bucket.public_access_block[name])) for name in PAB_FIELDS])

    async def delete_public_access_block(self, req: Request, receive: Callable, send: Callable) -> None:
        await self.forget(req, send, "public_access_block")  # type: ignore[attr-defined]

    # --- Ownership Controls ---

    async def put_ownership_controls(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        root = parse(await self.read_small_body(req, receive))  # type: ignore[attr-defined]
        ownership = (root.findtext("Rule/ObjectOwnership") or "").strip()
        if root.tag != "OwnershipControls" or ownership not in OWNERSHIPS:
            raise S3Error("MalformedXML", f"ObjectOwnership is one of {', '.join(OWNERSHIPS)}")
        await self.keep(req, send, bucket, "ownership", ownership)  # type: ignore[attr-defined]

    async def get_ownership_controls(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        if bucket.ownership is None:
            raise S3Error("OwnershipControlsNotFoundError", BucketName=bucket.name)
        await self.xml(send, req, "OwnershipControls", [el("Rule", el("ObjectOwnership", bucket.ownership))])  # type: ignore[attr-defined]

    async def delete_ownership_controls(self, req: Request, receive: Callable, send: Callable) -> None:
        await self.forget(req, send, "ownership")  # type: ignore[attr-defined]

    # --- default encryption ---

    async def put_bucket_encryption(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        root = parse(await self.read_small_body(req, receive, require_digest="strict"))  # type: ignore[attr-defined]
        rule = root.find("Rule")
        algorithm = (root.findtext("Rule/ApplyServerSideEncryptionByDefault/SSEAlgorithm") or "").strip()
        if root.tag != "ServerSideEncryptionConfiguration" or rule is None or algorithm not in SSE_ALGORITHMS:
            raise S3Error("MalformedXML", f"SSEAlgorithm is one of {', '.join(SSE_ALGORITHMS)}")
        key_id = (root.findtext("Rule/ApplyServerSideEncryptionByDefault/KMSMasterKeyID") or "").strip()[:2048] or None
        if key_id and algorithm == "AES256":
            raise S3Error("InvalidArgument", "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms or aws:kms:dsse",
                          ArgumentName="ApplyServerSideEncryptionByDefault")
        await self.keep(req, send, bucket, "encryption", {"algorithm": algorithm, "kms_key_id": key_id,  # type: ignore[attr-defined]
                                                           "bucket_key": (root.findtext("Rule/BucketKeyEnabled") or "").strip().lower() == "true"})

    async def get_bucket_encryption(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        if not bucket.encryption:
            raise S3Error("ServerSideEncryptionConfigurationNotFoundError", BucketName=bucket.name)
        default = [el("SSEAlgorithm", bucket.encryption["algorithm"])]
        if bucket.encryption.get("kms_key_id"):
            default.append(el("KMSMasterKeyID", bucket.encryption["kms_key_id"]))
        await self.xml(send, req, "ServerSideEncryptionConfiguration", [el("Rule", el("ApplyServerSideEncryptionByDefault", *default),  # type: ignore[attr-defined]
                                                                           el("BucketKeyEnabled", flag(bucket.encryption.get("bucket_key", False))))])

    async def delete_bucket_encryption(self, req: Request, receive: Callable, send: Callable) -> None:
        await self.forget(req, send, "encryption")  # type: ignore[attr-defined]

    # --- Object Lock ---

    @staticmethod
    def _retention_rule(root: Any) -> dict[str, Any] | None:
        default = root.find("Rule/DefaultRetention")
        if default is None:
            return None
        mode = (default.findtext("Mode") or "").strip()
        days, years = default.findtext("Days"), default.findtext("Years")
        if mode not in LOCK_MODES or (days is None) == (years is None):
            raise S3Error("MalformedXML", "DefaultRetention has a Mode (GOVERNANCE or COMPLIANCE) and Days or Years")
        count = (days or years or "").strip()
        if not count.isdigit() or not 1 <= int(count) <= 36500:
            raise S3Error("InvalidArgument", "Default retention period must be a positive integer value", ArgumentName="DefaultRetention")
        return {"mode": mode, "seconds": int(count) * (86400 if days is not None else 365 * 86400), "days": days and int(days),
                "years": years and int(years)}

    async def put_object_lock_configuration(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        root = parse(await self.read_small_body(req, receive))  # type: ignore[attr-defined]
        if root.tag != "ObjectLockConfiguration" or (root.findtext("ObjectLockEnabled") or "").strip() != "Enabled":
            raise S3Error("MalformedXML", "ObjectLockEnabled must be Enabled")
        if bucket.versioning != "Enabled":
            raise S3Error("InvalidBucketState", "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration", status=409)
        await self.keep(req, send, bucket, "object_lock", {"enabled": True, "rule": self._retention_rule(root)})  # type: ignore[attr-defined]

    async def get_object_lock_configuration(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        if not bucket.object_lock:
            raise S3Error("ObjectLockConfigurationNotFoundError", BucketName=bucket.name)
        parts = [el("ObjectLockEnabled", "Enabled")]
        rule = bucket.object_lock.get("rule")
        if rule:
            period = el("Days", rule["days"]) if rule.get("days") else el("Years", rule["years"])
            parts.append(el("Rule", el("DefaultRetention", el("Mode", rule["mode"]), period)))
        await self.xml(send, req, "ObjectLockConfiguration", parts)  # type: ignore[attr-defined]

    def lock_fields(self, req: Request, bucket: Bucket) -> dict[str, Any]:
        """Retention and legal hold a new object version gets: the request's headers, else the bucket's default."""
        h = req.headers
        mode, until, hold = h.get("x-amz-object-lock-mode"), h.get("x-amz-object-lock-retain-until-date"), h.get("x-amz-object-lock-legal-hold")
        if (mode or until or hold) and not bucket.object_lock:
            raise S3Error("InvalidRequest", "Bucket is missing Object Lock Configuration")
        fields: dict[str, Any] = {}
        if mode is not None or until is not None:
            if mode not in LOCK_MODES or until is None:
                raise S3Error("InvalidArgument", "x-amz-object-lock-mode and x-amz-object-lock-retain-until-date must both be supplied",
                              ArgumentName="x-amz-object-lock-mode")
            fields["retention"] = {"mode": mode, "until": _date(until, "x-amz-object-lock-retain-until-date")}
        elif bucket.object_lock and bucket.object_lock.get("rule"):
            rule = bucket.object_lock["rule"]
            fields["retention"] = {"mode": rule["mode"], "until": self.storage.now() + rule["seconds"]}  # type: ignore[attr-defined]
        if hold is not None:
            if hold not in ("ON", "OFF"):
                raise S3Error("InvalidArgument", "x-amz-object-lock-legal-hold is ON or OFF", ArgumentName="x-amz-object-lock-legal-hold")
            fields["legal_hold"] = hold == "ON"
        return fields

    def _version(self, req: Request) -> tuple[Bucket, ObjectMeta]:
        bucket = self.bucket(req)
        if not bucket.object_lock:
            raise S3Error("InvalidRequest", "Bucket is missing Object Lock Configuration")
        return bucket, self.object(req)

    async def put_object_retention(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket, meta = self._version(req)
        root = parse(await self.read_small_body(req, receive))  # type: ignore[attr-defined]
        mode = (root.findtext("Mode") or "").strip()
        if root.tag != "Retention" or mode not in LOCK_MODES:
            raise S3Error("MalformedXML")
        until = _date(root.findtext("RetainUntilDate"), "RetainUntilDate")
        now = self.storage.now()  # type: ignore[attr-defined]
        current = meta.retention
        if current and current["until"] > now:
            lessened = until < current["until"] or (current["mode"] == "COMPLIANCE" and mode != "COMPLIANCE")
            if lessened and (current["mode"] == "COMPLIANCE" or not _bypass(req)):
                raise S3Error("AccessDenied", "Access Denied because object protected by object lock.")
        meta.retention = {"mode": mode, "until": until}
        self.store.save_meta(bucket, meta)  # type: ignore[attr-defined]
        await self.respond(send, req, 200)  # type: ignore[attr-defined]

    async def get_object_retention(self, req: Request, receive: Callable, send: Callable) -> None:
        _, meta = self._version(req)
        if not meta.retention:
            raise S3Error("NoSuchObjectLockConfiguration", "The specified object does not have a ObjectLock configuration")
        await self.xml(send, req, "Retention", [el("Mode", meta.retention["mode"]), el("RetainUntilDate", iso8601(meta.retention["until"]))])  # type: ignore[attr-defined]

    async def put_object_legal_hold(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket, meta = self._version(req)
        root = parse(await self.read_small_body(req, receive))  # type: ignore[attr-defined]
        status = (root.findtext("Status") or "").strip()
        if root.tag != "LegalHold" or status not in ("ON", "OFF"):
            raise S3Error("MalformedXML")
        meta.legal_hold = status == "ON"
        self.store.save_meta(bucket, meta)  # type: ignore[attr-defined]
        await self.respond(send, req, 200)  # type: ignore[attr-defined]

    async def get_object_legal_hold(self, req: Request, receive: Callable, send: Callable) -> None:
        _, meta = self._version(req)
        await self.xml(send, req, "LegalHold", [el("Status", "ON" if meta.legal_hold else "OFF")])  # type: ignore[attr-defined]

    def check_locked(self, req: Request, meta: ObjectMeta | None) -> None:
        """Deleting a version for good: refused while it is under legal hold or retention (GOVERNANCE yields to
        x-amz-bypass-governance-retention: true)."""
        if meta is not None and locked(meta, self.storage.now(), bypass=_bypass(req)):  # type: ignore[attr-defined]
            raise S3Error("AccessDenied", "Access Denied because object protected by object lock.")


def locked(meta: ObjectMeta, now: float, bypass: bool = False) -> bool:
    """Whether Object Lock keeps this version at `now`: a legal hold, or retention to come (GOVERNANCE yields to the
    bypass, COMPLIANCE never). The one rule for deletes and for lifecycle rules alike."""
    retention = meta.retention
    return meta.legal_hold or bool(retention and retention["until"] > now and (retention["mode"] == "COMPLIANCE" or not bypass))


def _bypass(req: Request) -> bool:
    return req.headers.get("x-amz-bypass-governance-retention", "").lower() == "true"


def lock_headers(meta: ObjectMeta) -> list[tuple[str, str]]:
    headers = []
    if meta.retention:
        headers += [("x-amz-object-lock-mode", meta.retention["mode"]), ("x-amz-object-lock-retain-until-date", iso8601(meta.retention["until"]))]
    if meta.legal_hold:
        headers.append(("x-amz-object-lock-legal-hold", "ON"))
    return headers


def default_encryption(bucket: Bucket) -> dict[str, Any]:
    """The SSE fields a new object gets from its bucket's default encryption (none when unset)."""
    rule = bucket.encryption
    if not rule:
        return {}
    return {"sse": rule["algorithm"], "sse_kms_key_id": rule.get("kms_key_id") if rule["algorithm"] != "AES256" else None,
            "bucket_key": bool(rule.get("bucket_key")) and rule["algorithm"] != "AES256"}

