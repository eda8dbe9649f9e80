"""S3's XML: the error document, response bodies, and safe parsing of request bodies."""

from __future__ import annotations

import re
import time
from typing import Any, Iterable
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from ...timefmt import iso

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'

# code -> (HTTP status, default message)
ERRORS: dict[str, tuple[int, str]] = {
    "AccessDenied": (403, "Access Denied"),
    "AuthorizationHeaderMalformed": (400, "The authorization header is malformed."),
    "AuthorizationQueryParametersError": (400, "Error parsing the query-string authentication parameters."),
    "BadDigest": (400, "The Content-MD5 or checksum value that you specified did not match what the server received."),
    "BucketAlreadyOwnedByYou": (409, "Your previous request to create the named bucket succeeded and you already own it."),
    "BucketNotEmpty": (409, "The bucket you tried to delete is not empty"),
    "EntityTooLarge": (400, "Your proposed upload exceeds the maximum allowed size"),
    "EntityTooSmall": (400, "Your proposed upload is smaller than the minimum allowed object size."),
    "IncompleteBody": (400, "You did not provide the number of bytes specified by the Content-Length HTTP header."),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "InvalidAccessKeyId": (403, "The AWS Access Key Id you provided does not exist in our records."),
    "InvalidArgument": (400, "Invalid Argument"),
    "InvalidBucketName": (400, "The specified bucket is not valid."),
    "InvalidEncryptionAlgorithmError": (400, "The encryption request you specified is not valid. Supported value: AES256."),
    "InvalidTag": (400, "The tag provided was not a valid tag."),
    "MalformedACLError": (400, "The XML you provided was not well-formed or did not validate against our published schema"),
    "MissingSecurityHeader": (400, "Your request was missing a required header"),
    "UnexpectedContent": (400, "This request does not support content"),
    "AccessForbidden": (403, "Access Forbidden"),
    "InvalidDigest": (400, "The Content-MD5 or checksum value that you specified is not valid."),
    "InvalidPart": (400, "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."),
    "InvalidPartNumber": (416, "The requested partnumber is not satisfiable"),
    "InvalidPartOrder": (400, "The list of parts was not in ascending order. Parts must be ordered by part number."),
    "InvalidRange": (416, "The requested range is not satisfiable"),
    "InvalidRequest": (400, "Invalid Request"),
    "KeyTooLongError": (400, "Your key is too long"),
    "MalformedXML": (400, "The XML you provided was not well-formed or did not validate against our published schema"),
    "MetadataTooLarge": (400, "Your metadata headers exceed the maximum allowed metadata size."),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource."),
    "MissingContentLength": (411, "You must provide the Content-Length HTTP header."),
    "NoSuchBucket": (404, "The specified bucket does not exist"),
    "NoSuchKey": (404, "The specified key does not exist."),
    "NoSuchVersion": (404, "The specified version does not exist."),
    "NoSuchUpload": (404, "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."),
    "NoSuchCORSConfiguration": (404, "The CORS configuration does not exist"),
    "NoSuchWebsiteConfiguration": (404, "The specified bucket does not have a website configuration"),
    "InvalidStorageClass": (400, "The storage class you specified is not valid"),
    "NoSuchBucketPolicy": (404, "The bucket policy does not exist"),
    "MalformedPolicy": (400, "Policy has invalid resource"),
    "NoSuchPublicAccessBlockConfiguration": (404, "The public access block configuration was not found"),
    "OwnershipControlsNotFoundError": (404, "The bucket ownership controls were not found"),
    "ServerSideEncryptionConfigurationNotFoundError": (404, "The server side encryption configuration was not found"),
    "ObjectLockConfigurationNotFoundError": (404, "Object Lock configuration does not exist for this bucket"),
    "NoSuchObjectLockConfiguration": (404, "The specified object does not have a ObjectLock configuration"),
    "InvalidBucketState": (409, "The request is not valid with the current state of the bucket."),
    "NoSuchLifecycleConfiguration": (404, "The lifecycle configuration does not exist"),
    "AccessControlListNotSupported": (400, "The bucket does not allow ACLs"),
    "InvalidBucketAclWithObjectOwnership": (400, "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"),
    "InvalidRedirectLocation": (400, "The website redirect location must have a prefix of 'http://' or 'https://' or '/'."),
    "NoSuchTagSet": (404, "The TagSet does not exist"),
    "NotImplemented": (501, "A header or query you provided implies functionality that is not implemented."),
    "PreconditionFailed": (412, "At least one of the pre-conditions you specified did not hold"),
    "RequestTimeTooSkewed": (403, "The difference between the request time and the current time is too large."),
    "ServiceUnavailable": (503, "Service is unable to handle request."),
    "SignatureDoesNotMatch": (403, "The request signature we calculated does not match the signature you provided. Check your key and signing method."),
    "SlowDown": (503, "Please reduce your request rate."),
    "XAmzContentSHA256Mismatch": (400, "The provided 'x-amz-content-sha256' header does not match what was computed."),
}

# Injected faults by status: the S3 error an SDK expects for it (and retries, for 500/503).
FAULT_CODES = {400: "InvalidRequest", 403: "AccessDenied", 404: "NoSuchKey", 409: "OperationAborted", 412: "PreconditionFailed",
               413: "EntityTooLarge", 431: "RequestHeaderSectionTooLarge",
               416: "InvalidRange", 429: "SlowDown", 500: "InternalError", 501: "NotImplemented", 502: "BadGateway",
               503: "SlowDown", 504: "GatewayTimeout"}


class S3Error(Exception):
    """An S3 error answer: code, status, message and the extra elements (Key, BucketName, ...)."""

    def __init__(self, code: str, message: str | None = None, status: int | None = None, **extra: Any) -> None:
        default_status, default_message = ERRORS.get(code, (400, code))
        super().__init__(message or default_message)
        self.code = code
        self.message = message or default_message
        self.status = status or default_status
        self.extra = {k: v for k, v in extra.items() if v is not None}
        self.headers: list[tuple[str, str]] = []  # sent with the error (x-amz-delete-marker, x-amz-version-id)


def error_document(code: str, message: str, request_id: str, resource: str | None = None, **extra: Any) -> bytes:
    return (HEAD + el("Error", el("Code", code), el("Message", message), *(el(name, value) for name, value in extra.items()),
                      el("Resource", resource) if resource is not None else None, el("RequestId", request_id),
                      el("HostId", request_id))).encode()


def http_date(ts: float) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(ts))


def iso8601(ts: float) -> str:
    """S3's XML times: milliseconds and Z."""
    return iso(ts)


class Xml(str):
    """Markup built by el(): the only kind of string document() and el() insert as it is. Any other string is
    text and is escaped, so a value a client sent (a key, a checksum, a marker) can never become an element."""


_TAG = re.compile(r"[A-Za-z][A-Za-z0-9]*\Z")


def text(value: Any) -> str:
    """A value as element text: escaped (most need nothing, and three `in` tests are cheaper than three replaces)."""
    s = value if value.__class__ is str else str(value)
    return escape(s) if "&" in s or "<" in s or ">" in s else s


_CHECKED_TAGS: set[str] = set()  # names come from code (checksum ones from an allow-list): a bounded set


def el(tag: str, *children: Any) -> Xml:
    """<tag>children</tag>: Xml children as they are, everything else (str, int) as escaped text; None is left out."""
    if tag not in _CHECKED_TAGS:
        if not _TAG.match(tag):
            raise ValueError(f"not an element name: {tag[:40]!r}")
        _CHECKED_TAGS.add(tag)
    if len(children) == 1:  # the common case: no generator, no join
        child = children[0]
        inner = child if child.__class__ is Xml else "" if child is None else text(child)
    else:
        inner = "".join(c if c.__class__ is Xml else text(c) for c in children if c is not None)
    return Xml(f"<{tag}>{inner}</{tag}>")


def record(tag: str, *items: Any) -> Xml:
    """<tag> with one element per (name, value) item, values escaped as text (None left out), Xml items as they are:
    el() for the flat records a listing renders by the thousand, in one join."""
    checked = _CHECKED_TAGS
    if tag not in checked:
        _check_tag(tag)
    parts = []
    for item in items:
        if item.__class__ is Xml:
            parts.append(item)
            continue
        name, value = item
        if name not in checked:
            _check_tag(name)
        if value is not None:
            parts.append(f"<{name}>{text(value)}</{name}>")
    return Xml(f"<{tag}>{''.join(parts)}</{tag}>")


def _check_tag(name: str) -> None:
    if not _TAG.match(name):
        raise ValueError(f"not an element name: {name[:40]!r}")
    _CHECKED_TAGS.add(name)


def els(items: Iterable[Xml]) -> Xml:
    """Several elements as one child."""
    return Xml("".join(item if isinstance(item, Xml) else escape(str(item)) for item in items))


def flag(value: bool) -> str:
    return "true" if value else "false"


def document(root: str, body: Iterable[Any]) -> bytes:
    return (f'{HEAD}<{root} xmlns="{NS}">' + els(body) + f"</{root}>").encode()


OWNER = el("Owner", el("ID", "mockpanel"), el("DisplayName", "mockpanel"))
INITIATOR = el("Initiator", el("ID", "mockpanel"), el("DisplayName", "mockpanel"))
FULL_CONTROL = Xml('<AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser">'
                   "<ID>mockpanel</ID><DisplayName>mockpanel</DisplayName></Grantee><Permission>FULL_CONTROL</Permission></Grant></AccessControlList>")


def parse(body: bytes, limit: int = 2 * 1024 * 1024) -> Element:
    """Parse a request body; anything malformed, too large or with entities is MalformedXML."""
    if len(body) > limit:
        raise S3Error("MalformedXML", "The XML you provided was larger than the maximum allowed size.")
    try:
        root = SafeET.fromstring(body)
    except (SafeET.ParseError, DefusedXmlException, ValueError, UnicodeDecodeError):
        raise S3Error("MalformedXML") from None
    for element in root.iter():  # namespaces are optional in requests: drop them
        if element.tag.startswith("{"):
            element.tag = element.tag.split("}", 1)[1]
    return root
