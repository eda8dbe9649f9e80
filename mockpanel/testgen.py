"""Traffic → test: journaled requests (a filter's, or a trace's) written as a pytest file for the mockpanel plugin.

The file starts fresh mocks of the servers the traffic touched, replays the requests a client made (calls between
the mocks are not replayed: the replayed requests cause them again), and asserts each status and the stable part of
each JSON body — ids, tokens and timestamps masked — then, for a trace, the statuses of every hop the replay caused
(so a fault injected into one hop fails it). A request whose body the journal kept only in part is left out, with a
comment saying so (raise --body-preview-bytes to keep it).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Iterable
from urllib.parse import quote

from .export import MASK, redacted
from .journal import RequestEntry

REPLAYED_HEADERS = {"content-type", "authorization", "x-webhook-signature", "x-request-id", "x-amz-content-sha256", "accept"}
ID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}|[0-9a-f]{16,}|[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")
STAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")
ADDRESS = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}:\d+|localhost:\d+")  # fresh mocks listen on other ports

MASK_SOURCE = '''
ID = re.compile(r"{id}")
STAMP = re.compile(r"{stamp}")
ADDRESS = re.compile(r"{address}")
MOVING = {{"iat", "exp", "nbf", "auth_time", "time", "timestamp", "created", "duration_ms", "expires_in", "uptime_s"}}


def masked(value):
    """A JSON body with what changes from run to run (ids, tokens, timestamps) replaced by a placeholder."""
    if isinstance(value, dict):
        return {{k: "<moving>" if k in MOVING else masked(v) for k, v in value.items()}}
    if isinstance(value, list):
        return [masked(v) for v in value]
    if isinstance(value, str):
        return ADDRESS.sub("<address>", STAMP.sub("<time>", ID.sub("<id>", value)))
    return value
'''


_MASKING = MASK_SOURCE.format(id=ID.pattern, stamp=STAMP.pattern, address=ADDRESS.pattern)
_namespace: dict[str, Any] = {"re": re}
exec(compile(_MASKING, "mockpanel-generated-masking", "exec"), _namespace)  # the very function the generated file has
_masked = _namespace["masked"]


def _mask_path(path: str) -> str:
    return ID.sub("<id>", path)


def replay_path(path: str) -> str:
    """The journaled (decoded) path as the client sent it on the wire: every character a URL would read otherwise
    percent-encoded — `?` (a query), `#` (a fragment), `%` — and dot segments as %2E, which an HTTP client would
    resolve away (`e/../f` would replay as `f`). A server decodes it back to the very same path."""
    encoded = quote(path, safe="/")
    return "/".join({".": "%2E", "..": "%2E%2E"}.get(segment, segment) for segment in encoded.split("/"))


def _complete(preview: bytes, size: int) -> bool:
    return len(preview) >= size


def _json_of(entry: RequestEntry) -> Any:
    content_type = next((v for k, v in entry.response_headers if k.lower() == "content-type"), "")
    if "json" not in content_type or not _complete(entry.response_preview, entry.response_size) or not entry.response_preview:
        return None
    try:
        return json.loads(entry.response_preview)
    except ValueError:
        return None


def generate(entries: Iterable[RequestEntry], *, trace_id: str | None = None, title: str = "recorded traffic",
             redact: bool = False) -> str:
    """The pytest file's text; `redact` (--redact) writes no credential into it (see export.redacted)."""
    entries = [redacted(e) for e in entries] if redact else list(entries)
    spans = {e.span_id for e in entries}
    roots = [e for e in entries if e.parent_id not in spans]  # what a client sent (the rest, the mocks made)
    servers = sorted({e.server for e in entries})
    lines = [f'"""{title.capitalize()}, recorded by mockpanel on {time.strftime("%Y-%m-%d %H:%M")} and saved as a test.',
             "",
             f"Replays the {len(roots)} request{'s' if len(roots) != 1 else ''} a client made against fresh mocks "
             f"({', '.join(servers)}) and checks the statuses and the",
             "stable parts of the JSON bodies" + (", then every hop the replay caused" if trace_id else "") + '."""',
             "", "import re", *(["import time"] if trace_id else []), "", "import httpx2", "", "SERVERS = " + repr(servers),
             'SETTINGS = {"imageapi": {"enabled": "true"}}' if "imageapi" in servers else "SETTINGS = {}", _MASKING]
    if trace_id:
        lines += ["", "def hops_of(mocks, trace_id, count):",
                  '    """The hops of a trace once `count` of them are journaled (the mocks finish their jobs after answering)."""',
                  "    deadline = time.monotonic() + 20",
                  "    while len(mocks.trace(trace_id)) < count and time.monotonic() < deadline:",
                  "        time.sleep(0.05)",
                  "    return mocks.trace(trace_id)", ""]
    test_name = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_") or "recorded"
    lines += ["", f"def test_{test_name}(mockpanel_factory):", "    mocks = mockpanel_factory(SERVERS, SETTINGS)",
              "    url = {name: mocks.url(name) for name in SERVERS}"]
    if trace_id:
        lines.append(f'    traceparent = "00-{trace_id}-0000000000000001-01"  # the recorded trace id, so the hops can be found')
    for number, entry in enumerate(roots, 1):
        lines.append("")
        if not _complete(entry.request_preview, entry.request_size):
            # The path as a literal: a decoded path may hold a line break, which would end the comment and put the
            # rest of the path in the file as code (a page in the browser can send such a request to a mock).
            lines.append(f"    # request #{entry.id} ({entry.method} {entry.path!r}) left out: the journal kept {len(entry.request_preview):,} of its "
                         f"{entry.request_size:,} body bytes (raise --body-preview-bytes to keep it)")
            continue
        headers = {k.lower(): v for k, v in entry.request_headers if k.lower() in REPLAYED_HEADERS}
        if MASK in headers.values():
            lines.append("    # a credential of this request was redacted (--redact): put a valid one where the file says '***'")
        call = [f'"{entry.method}"', f'url["{entry.server}"] + {replay_path(entry.path) + ("?" + entry.query if entry.query else "")!r}']
        if trace_id:
            headers_src = "{**" + repr(headers) + ', "traceparent": traceparent}' if headers else '{"traceparent": traceparent}'
        else:
            headers_src = repr(headers) if headers else None
        if headers_src:
            call.append(f"headers={headers_src}")
        if entry.request_preview:
            call.append(f"content={bytes(entry.request_preview)!r}")
        lines.append(f"    answer = httpx2.request({', '.join(call)})  # #{entry.id}")
        lines.append(f"    assert answer.status_code == {entry.status}, answer.text")
        body = _json_of(entry)
        if body is not None:
            lines.append(f"    assert masked(answer.json()) == {_masked(body)!r}")
    if trace_id:
        expected = [(e.server, e.method, _mask_path(e.path), e.status) for e in entries]
        lines += ["", "    hops = hops_of(mocks, traceparent.split('-')[1], " + str(len(entries)) + ")",
                  "    assert [(h.server, h.method, ID.sub('<id>', h.path), h.status) for h in hops] == ["]
        lines += [f"        {item!r}," for item in expected]
        lines.append("    ]")
    return "\n".join(lines) + "\n"
