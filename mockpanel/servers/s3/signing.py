"""AWS request signatures as S3 checks them: SigV4 (header and presigned query) and SigV2 (header and query).

Small and exact on purpose: the canonical forms follow what botocore signs, so a mock that verifies them rejects
exactly what S3 would.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote

from .xml import S3Error
from ...timefmt import iso

ALGORITHM_V4 = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
MAX_PRESIGN_SECONDS = 7 * 24 * 3600

# Query parameters SigV2 includes in the canonical resource (botocore's list).
V2_SUBRESOURCES = {
    "accelerate", "acl", "cors", "defaultObjectAcl", "location", "logging", "partNumber", "policy", "requestPayment",
    "torrent", "versioning", "versionId", "versions", "website", "uploads", "uploadId", "response-content-type",
    "response-content-language", "response-expires", "response-cache-control", "response-content-disposition",
    "response-content-encoding", "delete", "lifecycle", "tagging", "restore", "storageClass", "notification",
    "replication", "analytics", "metrics", "inventory", "select", "select-type", "object-lock",
}


@dataclass
class Auth:
    """How a request is signed, as parsed from its headers or query."""

    kind: str  # v4-header, v4-query, v2-header, v2-query
    access_key: str
    signature: str
    expires_at: float | None = None
    amz_date: str = ""
    scope: str = ""  # date/region/service/aws4_request
    signed_headers: list[str] = field(default_factory=list)
    region: str = ""


def _amz_time(value: str) -> float:
    try:
        return calendar.timegm(time.strptime(value, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        raise S3Error("AccessDenied", f"X-Amz-Date {value!r} is not in the form YYYYMMDDTHHMMSSZ") from None


def parse_auth(headers: dict[str, str], params: dict[str, str]) -> Auth | None:
    """The request's signature, or None for an anonymous request. Malformed signatures raise S3Error.

    `params`: the query string decoded, first value of each name.
    """
    header = headers.get("authorization")
    if header:
        if header.startswith(ALGORITHM_V4 + " "):
            fields: dict[str, str] = {}
            for part in header[len(ALGORITHM_V4) + 1 :].split(","):
                name, _, value = part.strip().partition("=")
                fields[name] = value
            try:
                credential = fields["Credential"]
                access_key, _, scope = credential.partition("/")
                auth = Auth("v4-header", access_key, fields["Signature"], scope=scope, signed_headers=fields["SignedHeaders"].split(";"))
            except KeyError:
                raise S3Error("AuthorizationHeaderMalformed", "The authorization header is malformed.", status=400) from None
            auth.amz_date = headers.get("x-amz-date", "")
            auth.region = scope.split("/")[1] if scope.count("/") >= 3 else ""
            return auth
        if header.startswith("AWS "):
            access_key, _, signature = header[4:].partition(":")
            return Auth("v2-header", access_key, signature)
        raise S3Error("InvalidArgument", "Unsupported Authorization Type", status=400, ArgumentName="Authorization", ArgumentValue=header[:64])
    if "X-Amz-Signature" in params or params.get("X-Amz-Algorithm"):
        if params.get("X-Amz-Algorithm") != ALGORITHM_V4:
            raise S3Error("AuthorizationQueryParametersError", "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"", status=400)
        try:
            credential = params["X-Amz-Credential"]
            amz_date = params["X-Amz-Date"]
            expires = int(params["X-Amz-Expires"])
            signature = params["X-Amz-Signature"]
            signed = params["X-Amz-SignedHeaders"].split(";")
        except (KeyError, ValueError):
            raise S3Error(
                "AuthorizationQueryParametersError",
                "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
                status=400,
            ) from None
        if not 0 < expires <= MAX_PRESIGN_SECONDS:
            raise S3Error("AuthorizationQueryParametersError", "X-Amz-Expires must be between 1 and 604800 seconds", status=400)
        access_key, _, scope = credential.partition("/")
        auth = Auth("v4-query", access_key, signature, amz_date=amz_date, scope=scope, signed_headers=signed)
        auth.expires_at = _amz_time(amz_date) + expires
        auth.region = scope.split("/")[1] if scope.count("/") >= 3 else ""
        return auth
    if "Signature" in params and "AWSAccessKeyId" in params:
        try:
            expires_at = float(int(params["Expires"]))
        except (KeyError, ValueError):
            raise S3Error("AccessDenied", "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters") from None
        return Auth("v2-query", params["AWSAccessKeyId"], params["Signature"], expires_at=expires_at)
    return None


MAX_SKEW_SECONDS = 15 * 60


def check_signed_parts(auth: Auth, headers: dict[str, str], now: float) -> None:
    """What a signature must cover, beyond being right: the host (and every x-amz-* header sent, for header
    signatures), and a request time within 15 minutes of the server's (presigned URLs carry their own expiry)."""
    if auth.kind in ("v4-header", "v4-query"):
        if "host" not in auth.signed_headers:
            raise S3Error("AccessDenied", "The host header must be signed (SignedHeaders).")
        if auth.kind == "v4-header":
            unsigned = sorted(h for h in headers if h.startswith("x-amz-") and h not in auth.signed_headers)
            if unsigned:
                raise S3Error("AccessDenied", "There were headers present in the request which were not signed",
                              HeadersNotSigned=", ".join(unsigned)[:200])
            _within_skew(_amz_time(auth.amz_date or headers.get("x-amz-date", "")), now)
    elif auth.kind == "v2-header":
        raw = headers.get("x-amz-date") or headers.get("date")
        if not raw:
            raise S3Error("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
        try:
            sent = parsedate_to_datetime(raw).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            raise S3Error("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header") from None
        _within_skew(sent, now)
    elif auth.kind == "v2-query" and auth.expires_at is not None and auth.expires_at > now + MAX_PRESIGN_SECONDS:
        raise S3Error("AccessDenied", "Query-string authentication: Expires must be within 7 days (604800 seconds) from now")


def _within_skew(sent: float, now: float) -> None:
    if abs(now - sent) > MAX_SKEW_SECONDS:
        raise S3Error("RequestTimeTooSkewed", RequestTime=iso(sent, millis=False), ServerTime=iso(now, millis=False),
                      MaxAllowedSkewMilliseconds=str(MAX_SKEW_SECONDS * 1000))


def check_expiry(auth: Auth, now: float | None = None) -> None:
    if auth.expires_at is not None and (time.time() if now is None else now) > auth.expires_at:
        raise S3Error("AccessDenied", "Request has expired", Expires=iso(auth.expires_at, millis=False))


def _uri_encode(value: str) -> str:
    return quote(value, safe="-_.~")


def canonical_query(query: list[tuple[str, str]], skip: str | None = None) -> str:
    pairs = sorted((_uri_encode(unquote(k)), _uri_encode(unquote(v))) for k, v in query if k != skip)
    return "&".join(f"{k}={v}" for k, v in pairs)


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def v4_signature(secret: str, method: str, raw_path: str, query: list[tuple[str, str]], headers: dict[str, list[str]],
                 signed_headers: list[str], payload_hash: str, amz_date: str, scope: str, skip_query: str | None = None) -> str:
    canonical_headers = "".join(f"{name}:{','.join(' '.join(v.split()) for v in headers.get(name, []))}\n" for name in signed_headers)
    canonical_request = "\n".join(
        [method, raw_path, canonical_query(query, skip_query), canonical_headers, ";".join(signed_headers), payload_hash]
    )
    string_to_sign = "\n".join([ALGORITHM_V4, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    date, region, service, _ = (scope.split("/") + ["", "", "", ""])[:4]
    return hmac.new(signing_key(secret, date, region, service), string_to_sign.encode(), hashlib.sha256).hexdigest()


def v2_signature(secret: str, method: str, resource_path: str, query: list[tuple[str, str]], headers: dict[str, list[str]], date: str) -> str:
    def one(name: str) -> str:
        return ",".join(v.strip() for v in headers.get(name, []))

    amz = sorted((k, ",".join(v.strip() for v in values)) for k, values in headers.items() if k.startswith("x-amz-"))
    lines = [method, one("content-md5"), one("content-type"), date]
    lines += [f"{k}:{v}" for k, v in amz]
    sub = sorted((k, unquote(v)) for k, v in query if k in V2_SUBRESOURCES)
    resource = resource_path + ("?" + "&".join(f"{k}={v}" if v else k for k, v in sub) if sub else "")
    string_to_sign = "\n".join(lines + [resource])
    return base64.b64encode(hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha1).digest()).decode()


def verify(auth: Auth, secret: str, method: str, raw_path: str, resource_path: str, query: list[tuple[str, str]],
           headers: dict[str, list[str]]) -> None:
    """Raise SignatureDoesNotMatch unless the request's signature is right for `secret`."""
    if auth.kind == "v4-header":
        payload_hash = (headers.get("x-amz-content-sha256") or [UNSIGNED_PAYLOAD])[0]
        expected = v4_signature(secret, method, raw_path, query, headers, auth.signed_headers, payload_hash, auth.amz_date, auth.scope)
    elif auth.kind == "v4-query":
        expected = v4_signature(secret, method, raw_path, query, headers, auth.signed_headers, UNSIGNED_PAYLOAD, auth.amz_date, auth.scope, skip_query="X-Amz-Signature")
    else:
        # v2-query: the expiry stands where the date would. A bucket's canonical resource is "/bucket/" even when
        # the request path is "/bucket" (botocore signs it so), so both forms are accepted.
        date = str(int(auth.expires_at or 0)) if auth.kind == "v2-query" else ("" if "x-amz-date" in headers else ",".join(headers.get("date", [])))
        given = auth.signature
        resources = [resource_path] + ([resource_path + "/"] if resource_path.count("/") == 1 else [])
        for resource in resources:
            if hmac.compare_digest(v2_signature(secret, method, resource, query, headers, date).encode(), given.encode()):
                return
        raise S3Error("SignatureDoesNotMatch", AWSAccessKeyId=auth.access_key)
    if not hmac.compare_digest(expected.encode(), auth.signature.encode()):
        raise S3Error("SignatureDoesNotMatch", AWSAccessKeyId=auth.access_key)


STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class ChunkSignatures:
    """The chain a signed aws-chunked body carries (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]): each chunk's
    signature covers its bytes and the signature before it, starting from the request's own (the seed); the
    trailer's covers the trailing headers. A link that does not match ends the upload with SignatureDoesNotMatch."""

    def __init__(self, key: bytes, amz_date: str, scope: str, seed: str, trailer: bool) -> None:
        self._key = key
        self._middle = f"{amz_date}\n{scope}"
        self.previous = seed
        self.trailer = trailer

    def _next(self, algorithm: str, given: str | None, *hashes: str) -> None:
        expected = hmac.new(self._key, "\n".join([algorithm, self._middle, self.previous, *hashes]).encode(),
                            hashlib.sha256).hexdigest()
        if given is None or not hmac.compare_digest(expected.encode(), given.encode("latin-1")):
            raise S3Error("SignatureDoesNotMatch", "A chunk of the aws-chunked body does not carry its signature."
                          if algorithm.endswith("PAYLOAD") else "The trailing headers do not match x-amz-trailer-signature.")
        self.previous = expected

    def chunk(self, given: str | None, data_sha256: str) -> None:
        self._next("AWS4-HMAC-SHA256-PAYLOAD", given, EMPTY_SHA256, data_sha256)

    def trailing(self, given: str | None, trailers: list[tuple[str, str]]) -> None:
        canonical = "".join(f"{name}:{value}\n" for name, value in trailers)
        self._next("AWS4-HMAC-SHA256-TRAILER", given, hashlib.sha256(canonical.encode("latin-1")).hexdigest())


def chunk_signatures(auth: Auth, secret: str, content_sha256: str) -> ChunkSignatures | None:
    """The chain to check for a header-signed streaming upload, None for any other request."""
    if auth.kind != "v4-header" or content_sha256 not in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER):
        return None
    date, region, service, _ = (auth.scope.split("/") + ["", "", "", ""])[:4]
    return ChunkSignatures(signing_key(secret, date, region, service), auth.amz_date, auth.scope, auth.signature,
                           trailer=content_sha256 == STREAMING_SIGNED_TRAILER)


def presign_v4(base_url: str, method: str, bucket: str, key: str, access_key: str, secret: str, expires_in: int,
               region: str = "us-east-1", now: float | None = None) -> str:
    """A SigV4 presigned URL (path style) for plain HTTP clients such as curl."""
    now = now or time.time()
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    path = f"/{bucket}/" + quote(key, safe="/~")
    host = base_url.split("://", 1)[1].split("/", 1)[0]
    prefix = "/" + base_url.split("://", 1)[1].split("/", 1)[1].strip("/") if "/" in base_url.split("://", 1)[1] else ""
    query = [
        ("X-Amz-Algorithm", ALGORITHM_V4),
        ("X-Amz-Credential", f"{access_key}/{scope}"),
        ("X-Amz-Date", amz_date),
        ("X-Amz-Expires", str(expires_in)),
        ("X-Amz-SignedHeaders", "host"),
    ]
    signature = v4_signature(secret, method, prefix + path, query, {"host": [host]}, ["host"], UNSIGNED_PAYLOAD, amz_date, scope)
    return f"{base_url.rstrip('/')}{path}?{canonical_query(query)}&X-Amz-Signature={signature}"
