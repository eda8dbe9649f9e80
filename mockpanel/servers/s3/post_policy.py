"""Browser uploads: POST to a bucket with an HTML form (PostObject), as boto3's generate_presigned_post makes them.

The form's fields come before its file; the policy (base64 JSON: expiration and conditions) is checked against every
field and the file's size, and its signature (SigV4 `x-amz-signature`, or SigV2 `signature`) against the access key's
secret when signature checks are on."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from datetime import datetime
from typing import Any

from .signing import signing_key
from .xml import S3Error

UNCHECKED = {"x-amz-signature", "signature", "file", "policy", "awsaccesskeyid"}  # not covered by conditions


def _denied(reason: str) -> S3Error:
    return S3Error("AccessDenied", f"Invalid according to Policy: {reason}")


def decode_policy(raw: str) -> dict[str, Any]:
    try:
        policy = json.loads(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise S3Error("InvalidPolicyDocument", "Invalid Policy: Invalid JSON.") from None
    if not isinstance(policy, dict) or not isinstance(policy.get("conditions", []), list) or "expiration" not in policy:
        raise S3Error("InvalidPolicyDocument", "Invalid Policy: the policy needs an expiration and a list of conditions.")
    return policy


def check_signature(fields: dict[str, str], keys: dict[str, str]) -> None:
    """SigV4 (x-amz-algorithm AWS4-HMAC-SHA256, x-amz-credential, x-amz-signature) or SigV2 (AWSAccessKeyId,
    signature): the policy string signed with the access key's secret."""
    policy = fields.get("policy", "")
    if "x-amz-signature" in fields:
        if fields.get("x-amz-algorithm") != "AWS4-HMAC-SHA256":
            raise S3Error("InvalidArgument", "Only AWS4-HMAC-SHA256 is supported for x-amz-algorithm", ArgumentName="x-amz-algorithm")
        parts = fields.get("x-amz-credential", "").split("/")
        if len(parts) != 5 or parts[4] != "aws4_request":
            raise S3Error("InvalidArgument", "x-amz-credential is malformed", ArgumentName="x-amz-credential")
        access_key, date, region, service, _ = parts
        secret = keys.get(access_key)
        if secret is None:
            raise S3Error("InvalidAccessKeyId", AWSAccessKeyId=access_key)
        expected = hmac.new(signing_key(secret, date, region, service), policy.encode(), hashlib.sha256).hexdigest()
        given = fields["x-amz-signature"]
    elif "signature" in fields:
        access_key = fields.get("awsaccesskeyid", "")
        secret = keys.get(access_key)
        if secret is None:
            raise S3Error("InvalidAccessKeyId", AWSAccessKeyId=access_key)
        expected = base64.b64encode(hmac.new(secret.encode(), policy.encode(), hashlib.sha1).digest()).decode()
        given = fields["signature"]
    else:
        raise S3Error("AccessDenied", "A POST upload with signature checks on needs a signed policy (x-amz-signature).")
    if not hmac.compare_digest(expected.encode(), given.encode("latin-1", "replace")):
        raise S3Error("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. "
                      "Check your key and signing method.")


def check_policy(policy: dict[str, Any], fields: dict[str, str], bucket: str, size: int, now: float | None = None) -> None:
    """Every condition holds, every field is covered by one, and the policy has not expired."""
    try:
        expires = datetime.fromisoformat(str(policy["expiration"]).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise S3Error("InvalidPolicyDocument", "Invalid Policy: Invalid 'expiration' value.") from None
    if (now if now is not None else time.time()) > expires:
        raise _denied("Policy expired.")
    values = {**{k: v for k, v in fields.items()}, "bucket": bucket}
    covered = {"bucket"}
    for condition in policy.get("conditions", []):
        if isinstance(condition, dict) and len(condition) == 1:
            (name, expected), = condition.items()
            condition = ["eq", f"${name}", expected]
        if not isinstance(condition, list) or len(condition) != 3:
            raise S3Error("InvalidPolicyDocument", f"Invalid Policy: Invalid Condition: {json.dumps(condition)[:200]}")
        operator = str(condition[0]).lower()
        if operator == "content-length-range":
            try:
                low, high = int(condition[1]), int(condition[2])
            except (TypeError, ValueError):
                raise S3Error("InvalidPolicyDocument", "Invalid Policy: content-length-range needs two integers.") from None
            if size > high:
                raise S3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size", ProposedSize=str(size), MaxSizeAllowed=str(high))
            if size < low:
                raise S3Error("EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size", ProposedSize=str(size), MinSizeAllowed=str(low))
            continue
        name = str(condition[1]).lower()
        if operator not in ("eq", "starts-with") or not name.startswith("$"):
            raise S3Error("InvalidPolicyDocument", f"Invalid Policy: Invalid Condition: {json.dumps(condition)[:200]}")
        name = name[1:]
        covered.add(name)
        value, expected = values.get(name, ""), str(condition[2])
        holds = value == expected if operator == "eq" else value.startswith(expected)
        if name == "content-type" and operator == "starts-with" and "," in value:  # several types: each must match
            holds = all(v.strip().startswith(expected) for v in value.split(","))
        if not holds:
            raise _denied(f"Policy Condition failed: {json.dumps(condition)[:200]}")
    extra = sorted(n for n in fields if n not in covered and n not in UNCHECKED and not n.startswith("x-ignore-"))
    if extra:
        raise _denied(f"Extra input fields: {', '.join(extra)[:200]}")
