"""WireMock's stub mappings: reading them (a directory of JSON files, or the admin API), choosing the one that answers
a request (priority, then newest; scenario states), and the near misses of a request none answers."""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .matching import Incoming, MappingError, RequestPattern, Unsupported

DEFAULT_PRIORITY = 5
STARTED = "Started"
MAX_MAPPING_FILE = 10 * 1024 * 1024  # bytes of one mapping file
MAX_MAPPINGS = 20_000
FAULTS = ("CONNECTION_RESET_BY_PEER", "EMPTY_RESPONSE", "MALFORMED_RESPONSE_CHUNK", "RANDOM_DATA_THEN_CLOSE")
RESPONSE_KEYS = {"status", "statusMessage", "headers", "body", "jsonBody", "base64Body", "bodyFileName",
                 "fixedDelayMilliseconds", "delayDistribution", "fault", "proxyBaseUrl", "additionalProxyRequestHeaders",
                 "removeProxyRequestHeaders", "transformers", "transformerParameters"}
MAPPING_KEYS = {"id", "uuid", "name", "request", "response", "priority", "persistent", "metadata", "scenarioName",
                "requiredScenarioState", "newScenarioState", "postServeActions", "serveEventListeners", "insertionIndex"}
MAX_DELAY_MS = 10 * 60 * 1000


def inside(root: Path, name: Any, where: str) -> Path:
    """`name` under `root` (symbolic links resolved): a file outside it is refused, whatever the name says."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise MappingError(f"{where}: a file name under {root}")
    base = root.resolve()
    candidate = (base / name).resolve()
    if candidate != base and base not in candidate.parents:
        raise MappingError(f"{where}: {name!r} is outside {root}: files are read only under the declared directories")
    return candidate


@dataclass
class StubMapping:
    """One mapping, as read: its JSON (what the admin API lists and saves) and what it compiles to."""

    raw: dict[str, Any]
    pattern: RequestPattern
    id: str
    priority: int
    source: str  # the file it came from, "admin API", "recorded" or "panel"
    order: int = 0  # newer mappings win a tie of priority
    body_file: Path | None = None
    render: Any = None  # response templating: (request, base URL) -> (headers, body or None)
    answer: Any = None  # (headers, body) of a response that is the same every time, made at its first use

    @property
    def name(self) -> str:
        return str(self.raw.get("name") or "")

    @property
    def response(self) -> dict[str, Any]:
        return self.raw.get("response") or {}

    def url_text(self) -> str:
        """The URL it matches, as written (a path, a pattern or a template), or "any URL"."""
        spec = self.pattern.spec
        return str(next((spec[k] for k in ("url", "urlPath", "urlPattern", "urlPathPattern", "urlPathTemplate") if k in spec), "any URL"))

    def label(self) -> str:
        return self.name or f"{self.pattern.method} {self.url_text()}"


def parse_mapping(raw: Any, where: str, files: Path | None, upstream: str | None, source: str, stable: bool = False) -> StubMapping:
    """A mapping from WireMock's JSON, checked entirely (a typo is an error naming its place)."""
    if not isinstance(raw, dict):
        raise MappingError(f"{where}: a mapping is a JSON object with request and response")
    unknown = set(raw) - MAPPING_KEYS
    if unknown:
        raise MappingError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    if raw.get("postServeActions") or raw.get("serveEventListeners"):
        raise Unsupported(f"{where}: post-serve actions (webhooks) are WireMock extensions mockpanel does not run")
    pattern = RequestPattern(raw.get("request", {}), f"{where}: request")
    response = raw.get("response", {})
    if not isinstance(response, dict):
        raise MappingError(f"{where}: response: an object")
    unknown = set(response) - RESPONSE_KEYS
    if unknown:
        raise MappingError(f"{where}: response: unknown field(s) {', '.join(sorted(unknown))}")
    here = f"{where}: response"
    status = response.get("status", 200)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise MappingError(f"{here}.status: an HTTP status from 100 to 599")
    transformers = response.get("transformers") or []
    if not isinstance(transformers, list) or any(t != "response-template" for t in transformers):
        raise MappingError(f"{here}.transformers: mockpanel runs WireMock's response-template only (other transformers are Java extensions)")
    bodies = [k for k in ("body", "jsonBody", "base64Body", "bodyFileName") if k in response]
    if len(bodies) > 1:
        raise MappingError(f"{here}: one of body, jsonBody, base64Body, bodyFileName, not {' and '.join(bodies)}")
    if "body" in response and not isinstance(response["body"], str):
        raise MappingError(f"{here}.body: a string (jsonBody takes JSON)")
    if "base64Body" in response:
        try:
            base64.b64decode(response["base64Body"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise MappingError(f"{here}.base64Body: not base64") from None
    body_file = None
    if "bodyFileName" in response:
        if files is None:
            raise MappingError(f"{here}.bodyFileName: this stub server has no files directory (set files, or mappings beside __files)")
        body_file = inside(files, response["bodyFileName"], f"{here}.bodyFileName")
        if not body_file.is_file():
            raise MappingError(f"{here}.bodyFileName: no file {response['bodyFileName']!r} in {files}")
    headers = response.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) or (isinstance(v, list) and all(isinstance(i, str) for i in v))
                                                for v in headers.values()):
        raise MappingError(f"{here}.headers: an object of name to a string (or a list of strings)")
    render = None
    if transformers:  # once the headers and the body are known to be of the right types
        from .templating import compile_response

        render = compile_response(response, here)
    delay = response.get("fixedDelayMilliseconds", 0)
    if not isinstance(delay, int) or isinstance(delay, bool) or not 0 <= delay <= MAX_DELAY_MS:
        raise MappingError(f"{here}.fixedDelayMilliseconds: a whole number from 0 to {MAX_DELAY_MS}")
    distribution = response.get("delayDistribution")
    if distribution is not None:
        kind = distribution.get("type") if isinstance(distribution, dict) else None
        needs = {"uniform": ("lower", "upper"), "lognormal": ("median", "sigma"), "fixed": ("milliseconds",)}.get(kind or "")
        if needs is None or not all(isinstance(distribution.get(k), (int, float)) and distribution[k] >= 0 for k in needs):
            raise MappingError(f"{here}.delayDistribution: uniform (lower, upper), lognormal (median, sigma) or fixed (milliseconds)")
    fault = response.get("fault")
    if fault is not None and fault not in FAULTS:
        raise MappingError(f"{here}.fault: one of {', '.join(FAULTS)}")
    for key in ("additionalProxyRequestHeaders", "removeProxyRequestHeaders"):
        value = response.get(key)
        if value is not None and not (isinstance(value, dict) and all(isinstance(v, str) for v in value.values()) if key.startswith("add")
                                      else isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise MappingError(f"{here}.{key}: " + ("an object of header to value" if key.startswith("add") else "a list of header names"))
    proxy = response.get("proxyBaseUrl")
    if proxy is not None and (upstream is None or proxy.rstrip("/") != upstream.rstrip("/")):
        raise MappingError(f"{here}.proxyBaseUrl: proxies go only to this stub server's record upstream "
                           f"({upstream or 'none is set'}), not {str(proxy)[:100]}")
    priority = raw.get("priority", DEFAULT_PRIORITY)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise MappingError(f"{where}: priority: a whole number (1 is the highest)")
    for key in ("scenarioName", "requiredScenarioState", "newScenarioState", "name"):
        if key in raw and not isinstance(raw[key], str):
            raise MappingError(f"{where}: {key}: a string")
    if ("requiredScenarioState" in raw or "newScenarioState" in raw) and "scenarioName" not in raw:
        raise MappingError(f"{where}: a scenario state needs scenarioName")
    # A file's mapping without an id keeps one id across reloads (its hit count with it), named by its place.
    fallback = uuid.uuid5(uuid.NAMESPACE_URL, f"mockpanel-stub:{where}") if stable else uuid.uuid4()
    mapping_id = str(raw.get("id") or raw.get("uuid") or fallback)
    try:
        mapping_id = str(uuid.UUID(mapping_id))
    except ValueError:
        raise MappingError(f"{where}: id: a UUID") from None
    stored = {**raw, "id": mapping_id, "uuid": mapping_id}
    return StubMapping(stored, pattern, mapping_id, priority, source, body_file=body_file, render=render)


def read_mapping_file(path: Path, root: Path, files: Path | None, upstream: str | None,
                      refused: list[str] | None = None) -> list[StubMapping]:
    """A file holds one mapping, or {"mappings": [...]} as WireMock's exports do. A mapping that uses what mockpanel
    does not do (Unsupported) is left out and named in `refused`, when given; any other error stops the reading."""
    where = str(path.relative_to(root)) if root in path.parents else str(path)
    if path.stat().st_size > MAX_MAPPING_FILE:
        raise MappingError(f"{where}: larger than {MAX_MAPPING_FILE // (1024 * 1024)} MiB")
    try:
        data = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise MappingError(f"{where}: not JSON: {exc}") from None
    items = data["mappings"] if isinstance(data, dict) and isinstance(data.get("mappings"), list) else [data]
    found = []
    for i, item in enumerate(items):
        try:
            found.append(parse_mapping(item, f"{where}[{i}]" if len(items) > 1 else where, files, upstream, where, stable=True))
        except Unsupported as exc:
            if refused is None:
                raise
            refused.append(str(exc))
    return found


def read_mapping_dir(root: Path, files: Path | None, upstream: str | None, refused: list[str] | None = None) -> list[StubMapping]:
    """Every *.json under `root` (sub-directories too, as WireMock), sorted by path; symbolic links that lead
    outside `root` are refused. Mappings mockpanel cannot serve are named in `refused` and the rest read."""
    if not root.exists():
        return []
    if not root.is_dir():
        raise MappingError(f"{root}: not a directory")
    found: list[StubMapping] = []
    for path in sorted(root.rglob("*.json")):
        real = inside(root, str(path.relative_to(root)), str(path.relative_to(root)))
        found.extend(read_mapping_file(real, root.resolve(), files, upstream, refused))
        if len(found) > MAX_MAPPINGS:
            raise MappingError(f"{root}: more than {MAX_MAPPINGS} mappings")
    return found


def write_json_atomic(path: Path, data: Any) -> None:
    from ...private import write_whole

    path.parent.mkdir(parents=True, exist_ok=True)
    write_whole(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def file_name_for(mapping: StubMapping) -> str:
    """WireMock's recorded names: the method and URL as a slug, then the id's first characters."""
    slug = re.sub(r"[^a-z0-9]+", "-", mapping.label().lower()).strip("-")[:60] or "mapping"
    return f"{slug}-{mapping.id[:8]}.json"


@dataclass
class Scenarios:
    """WireMock's scenarios: each a state machine that starts in "Started"; a mapping may require a state and move it."""

    states: dict[str, str] = field(default_factory=dict)

    def state(self, name: str) -> str:
        return self.states.get(name, STARTED)

    def reset(self) -> None:
        self.states.clear()

    def describe(self, mappings: Iterable[StubMapping]) -> list[dict[str, Any]]:
        possible: dict[str, set[str]] = {}
        for mapping in mappings:
            name = mapping.raw.get("scenarioName")
            if name:
                states = possible.setdefault(name, {STARTED})
                for key in ("requiredScenarioState", "newScenarioState"):
                    if mapping.raw.get(key):
                        states.add(mapping.raw[key])
        return [{"id": name, "name": name, "state": self.state(name), "possibleStates": sorted(states)}
                for name, states in sorted(possible.items())]


def incoming_dict(request: Incoming, host: str) -> dict[str, Any]:
    """A request as WireMock's admin API shows it (requests find, the journal, near misses)."""
    import time

    body = request.body
    text = body.decode("utf-8", "replace")
    return {
        "url": request.url, "absoluteUrl": f"http://{host}{request.url}", "method": request.method, "clientIp": request.client,
        "headers": {k: v[0] if len(v) == 1 else v for k, v in request.headers.items()},
        "cookies": {k: v[0] for k, v in request.cookies.items()},
        "queryParams": {k: {"key": k, "values": v} for k, v in request.query_params.items()},
        "body": text, "bodyAsBase64": base64.b64encode(body).decode(), "browserProxyRequest": False,
        "loggedDate": int(request.logged * 1000),
        "loggedDateString": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(request.logged)),
    }
