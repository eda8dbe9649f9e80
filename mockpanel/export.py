"""Journal export: JSON lines (one request a line) and HAR 1.2, and a writer that appends JSON lines as requests happen."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from http import HTTPStatus
from pathlib import Path
from typing import Any, Iterable, TextIO
from urllib.parse import parse_qsl, unquote

from . import __version__
from .journal import RequestEntry
from .timefmt import iso


def default_filename(fmt: str = "har") -> str:
    """mockpanel-journal-20261121-103000.har: where the panel offers to write an export."""
    return time.strftime("mockpanel-journal-%Y%m%d-%H%M%S") + f".{fmt}"


SECRET_HEADERS = {b"authorization", b"proxy-authorization", b"cookie", b"set-cookie", b"x-api-key", b"x-amz-security-token"}
SECRET_PARAMS = {"x-amz-signature", "x-amz-credential", "x-amz-security-token", "signature", "awsaccesskeyid", "token",
                 "access_token", "refresh_token", "id_token", "client_secret", "api_key"}
_SECRET_FIELDS = re.compile(rb'("(?:access_token|refresh_token|id_token|token|password|client_secret|secret)"\s*:\s*")[^"]*')
MASK = "***"


def redacted(entry: RequestEntry) -> RequestEntry:
    """The entry with credentials masked: Authorization, cookies, API keys, signature and token query parameters,
    and token or password fields in JSON bodies (previews may be cut short, so fields are found by pattern)."""

    def headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        return [(k, MASK.encode() if k.lower() in SECRET_HEADERS else v) for k, v in raw]

    query = "&".join(f"{k}={MASK}" if unquote(k).lower() in SECRET_PARAMS else f"{k}={v}" if sep else k
                     for k, sep, v in (pair.partition("=") for pair in entry.query.split("&") if pair))
    return entry._replace(raw_request_headers=headers(entry.raw_request_headers), raw_response_headers=headers(entry.raw_response_headers),
                          raw_query=query.encode("latin-1"), request_preview=_SECRET_FIELDS.sub(rb"\1***", entry.request_preview),
                          response_preview=_SECRET_FIELDS.sub(rb"\1***", entry.response_preview))


def jsonl(entries: Iterable[RequestEntry], redact: bool = False) -> str:
    return "".join(json.dumps((redacted(entry) if redact else entry).as_dict()) + "\n" for entry in entries)


def _content(preview: bytes, size: int, mime: str) -> dict[str, Any]:
    content: dict[str, Any] = {"size": size, "mimeType": mime}
    try:
        content["text"] = preview.decode("utf-8")
    except UnicodeDecodeError:
        content["text"] = base64.b64encode(preview).decode("ascii")
        content["encoding"] = "base64"
    if size > len(preview):
        content["comment"] = f"first {len(preview)} of {size} bytes (mockpanel keeps body previews)"
    return content


def _har_entry(entry: RequestEntry, scheme: str) -> dict[str, Any]:
    request_headers = entry.request_headers
    response_headers = entry.response_headers
    host = next((v for k, v in request_headers if k.lower() == "host"), "localhost")
    url = f"{scheme}://{host}{entry.path}" + (f"?{entry.query}" if entry.query else "")
    request_mime = next((v for k, v in request_headers if k.lower() == "content-type"), "")
    response_mime = next((v for k, v in response_headers if k.lower() == "content-type"), "")
    try:
        status_text = HTTPStatus(entry.status).phrase if entry.status else ""
    except ValueError:
        status_text = ""
    har: dict[str, Any] = {
        "startedDateTime": iso(entry.time),
        "time": round(entry.duration_ms, 3),
        "request": {
            "method": entry.method,
            "url": url,
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": [{"name": k, "value": v} for k, v in request_headers],
            "queryString": [{"name": k, "value": v} for k, v in parse_qsl(entry.query, keep_blank_values=True)],
            "headersSize": -1,
            "bodySize": entry.request_size,
        },
        "response": {
            "status": entry.status,
            "statusText": status_text,
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": [{"name": k, "value": v} for k, v in response_headers],
            "content": _content(entry.response_preview, entry.response_size, response_mime),
            "redirectURL": next((v for k, v in response_headers if k.lower() == "location"), ""),
            "headersSize": -1,
            "bodySize": entry.response_size,
        },
        "cache": {},
        "timings": {"send": 0, "wait": round(entry.duration_ms, 3), "receive": 0},
        "_id": entry.id,
        "_server": entry.server,
        "_fault": entry.fault,
    }
    if entry.request_size or entry.request_preview:
        post = _content(entry.request_preview, entry.request_size, request_mime)
        har["request"]["postData"] = {"mimeType": request_mime, "text": post["text"], **({"comment": post["comment"]} if "comment" in post else {})}
    return har


def har(entries: Iterable[RequestEntry], scheme: str = "http", redact: bool = False) -> dict[str, Any]:
    """A HAR 1.2 log. Bodies are the journal's previews (a comment says when one is cut short); status 0 = no response.
    `redact` masks credentials (see `redacted`)."""
    return {"log": {"version": "1.2", "creator": {"name": "mockpanel", "version": __version__},
                    "entries": [_har_entry(redacted(entry) if redact else entry, scheme) for entry in entries]}}


class BatchedLines:
    """Lines for a text stream, written and flushed once per event-loop turn: a flood of requests costs one write a
    turn, not one a request. `serve`'s request log and the journal file both write through one."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._pending: list[str] = []
        self._scheduled = False

    def line(self, text: str) -> None:
        self._pending.append(text)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if self._pending and not self.out.closed:
            self.out.write("\n".join(self._pending) + "\n")
            self._pending.clear()
            self.out.flush()


class JournalWriter:
    """Appends every journaled request to a file as a JSON line (--journal-out)."""

    def __init__(self, path: Path, redact: bool = False) -> None:
        self.path = path
        self.redact = redact
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self._lines = BatchedLines(self._file)

    def __call__(self, item: Any) -> None:
        if isinstance(item, RequestEntry):
            self._lines.line(json.dumps((redacted(item) if self.redact else item).as_dict()))

    def close(self) -> None:
        self._lines.flush()
        self._file.close()


# Headers curl writes itself (or that would be wrong on a new connection).
_CURL_SKIPS = {"host", "content-length", "connection", "transfer-encoding", "expect", "accept-encoding"}


def curl_command(entry: RequestEntry, base_url: str) -> str:
    """A shell command that sends `entry` again to the server at `base_url`: method, path and query, headers and
    the body. A body the journal kept only in part (its preview) is sent as kept, and a comment says so; a body
    that is not text travels as base64 through `base64 -d`, so every byte arrives as it was."""
    import shlex
    from urllib.parse import quote

    url = base_url.rstrip("/") + quote(entry.path, safe="/:@!$&'()*+,;=-._~%") + (f"?{entry.query}" if entry.query else "")
    parts = ["curl", "-sS", "-i"]
    if entry.method != "GET" or entry.request_preview:
        parts += ["-X", entry.method]
    parts.append(shlex.quote(url))
    for name, value in entry.request_headers:
        if name.lower() not in _CURL_SKIPS:
            parts += ["-H", shlex.quote(f"{name}: {value}")]
    prefix = ""
    body = entry.request_preview
    if body:
        try:
            text = body.decode("utf-8")
            binary = any(not ch.isprintable() and ch not in "\n\t" for ch in text)  # control bytes: not for a shell line
        except UnicodeDecodeError:
            binary = True
        if binary:
            prefix = f"printf %s {base64.b64encode(body).decode()} | base64 -d | "
            parts += ["--data-binary", "@-"]
        else:
            parts += ["--data-binary", shlex.quote(text)]
    command = prefix + " ".join(parts)
    if entry.request_size > len(body):
        command = f"# the body was {entry.request_size:,} bytes; the journal kept the first {len(body):,} (--body-preview-bytes)\n{command}"
    return command


def otlp_json(hops: list[RequestEntry], external: Iterable[Any] = ()) -> dict[str, Any]:
    """A trace as OTLP/JSON (TracesData: what Jaeger and Grafana Tempo load): each mock a resource named
    mockpanel-<server> with one SERVER span per request, and the spans services exported, as they came."""
    def attribute(key: str, value: Any) -> dict[str, Any]:
        kind = "intValue" if isinstance(value, int) and not isinstance(value, bool) else "boolValue" if isinstance(value, bool) else "stringValue"
        return {"key": key, "value": {kind: str(value) if kind == "intValue" else value}}

    def nanos(seconds: float) -> str:
        return str(int(seconds * 1e9))

    resources: dict[str, list[dict[str, Any]]] = {}
    for hop in hops:
        attributes = [attribute("http.request.method", hop.method), attribute("url.path", hop.path),
                      attribute("http.response.status_code", hop.status), attribute("mockpanel.request_id", hop.id)]
        if hop.fault:
            attributes.append(attribute("mockpanel.fault", hop.fault))
        span = {"traceId": hop.trace_id, "spanId": hop.span_id, "name": f"{hop.method} {hop.route or hop.path}", "kind": 2,
                "startTimeUnixNano": nanos(hop.time), "endTimeUnixNano": nanos(hop.time + hop.duration_ms / 1000),
                "attributes": attributes, "status": {"code": 2 if hop.status >= 500 or hop.status == 0 else 1}}
        if hop.parent_id:
            span["parentSpanId"] = hop.parent_id
        resources.setdefault(f"mockpanel-{hop.server}", []).append(span)
    kinds = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
    for ext in external:
        span = {"traceId": ext.trace_id, "spanId": ext.span_id, "name": ext.name, "kind": kinds.get(ext.kind, 0),
                "startTimeUnixNano": nanos(ext.start), "endTimeUnixNano": nanos(ext.end),
                "attributes": [attribute(k, v if isinstance(v, (str, int, bool)) else str(v)) for k, v in ext.attributes.items()],
                "status": {"code": 2 if ext.error else 0}}
        if ext.parent_id:
            span["parentSpanId"] = ext.parent_id
        resources.setdefault(ext.service, []).append(span)
    return {"resourceSpans": [{"resource": {"attributes": [attribute("service.name", name)]},
                               "scopeSpans": [{"scope": {"name": "mockpanel", "version": __version__}, "spans": spans}]}
                              for name, spans in resources.items()]}


def write_ports_file(path: Any, urls: dict[str, str]) -> None:
    """{server: url} as JSON, whole (a script polling for the file once read it empty)."""
    from .private import write_whole

    Path(path).parent.mkdir(parents=True, exist_ok=True)  # MOCKPANEL_PORTS_FILE may name a directory not made yet
    write_whole(Path(path), json.dumps(urls, indent=2) + "\n")
