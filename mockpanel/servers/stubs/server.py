"""The domain facade of one stub server (Stubs): its mappings, scenarios, hit counts, request log and near misses,
its OpenAPI document, and record/replay. The routes (app.py), the admin API, the panel and scenarios call it."""

from __future__ import annotations

import asyncio
import base64
import bisect
import json
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ...export import MASK, SECRET_HEADERS, SECRET_PARAMS, _SECRET_FIELDS
from ...private import write_whole
from ...spec import Conflict, DomainError, Invalid, NotFound
from .mappings import (MAX_MAPPINGS, STARTED, Scenarios, StubMapping, file_name_for, parse_mapping, read_mapping_dir, write_json_atomic)
from .matching import REQUEST_REGEX_BUDGET_S, BudgetSpent, Incoming, MappingError, RequestPattern
from .openapi import OpenApiError, OpenApiStub

LOG_SIZE = 1000  # requests the admin API can count and find
LOG_BODY = 64 * 1024  # bytes of each logged body kept for matching
UNMATCHED_SIZE = 50
NEAR_MISSES = 3
NEAR_MISS_SCAN = 1000  # mappings (the highest priorities) a near-miss report compares a request with
NEAR_MISS_CACHE = 256  # reports kept: a flood of one unmatched request costs one comparison, not one per request
INLINE_BODY = 2048  # recorded bodies larger than this go to __files
IMPORT_BATCH = 100  # mappings checked between two turns of the servers' loop (about 10 ms of work)
MAX_RECORDED_BYTES = 1024 * 1024 * 1024  # what one recording may write into the mappings and files directories
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
              "transfer-encoding", "upgrade", "content-length", "content-encoding", "host", "date", "server"}


def _rank(mapping: StubMapping) -> tuple[int, int]:
    return mapping.priority, -mapping.order


@dataclass
class Logged:
    id: int
    request: Incoming
    mapping: StubMapping | None
    status: int


class Stubs:
    """One stub server's state. Mappings come from `mappings_dir` (WireMock's JSON), the admin API, the panel and
    recording; `files_dir` holds bodyFileName bodies; `openapi` answers what no mapping matches."""

    def __init__(self, name: str, *, mappings_dir: Path | None, files_dir: Path | None, openapi_path: Path | None,
                 upstream: str | None, mode: str, seed: int, event: Callable[..., None], clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self.mappings_dir = mappings_dir
        self.files_dir = files_dir
        self.openapi_path = openapi_path
        self.upstream = upstream.rstrip("/") if upstream else None
        self.mode = mode
        self.seed = seed
        self._event = event
        self.clock = clock
        self.mappings: list[StubMapping] = []  # in the order they are tried: priority, then the newest first
        self._by_id: dict[str, StubMapping] = {}
        self._order = 0
        self.hits: dict[str, int] = {}
        self.scenarios = Scenarios()
        self.log: deque[Logged] = deque(maxlen=LOG_SIZE)
        self.unmatched: deque[tuple[Incoming, list[tuple[StubMapping, float, list[str]]]]] = deque(maxlen=UNMATCHED_SIZE)
        self._next_id = 0
        self.openapi: OpenApiStub | None = None
        self.recorded = 0
        self.written = 0  # bytes this recording wrote (mapping and body files), against MAX_RECORDED_BYTES
        self.loaded_at = 0.0
        self._near: OrderedDict[tuple, list[tuple[StubMapping, float, list[str]]]] = OrderedDict()
        self._version = 0  # bumped by every change of the mappings: the near-miss reports before it are stale
        self._disk_seen = 0.0  # wall time of the last read of the files, or of this server's own write to them
        self._chains: dict[str, list[tuple[StubMapping, bytes]]] = {}  # this recording's mappings by request pattern
        self.operation_hits: dict[tuple[str, str], list[int]] = {}  # (method, path) of the document: [answered, refused]
        self.refused: list[str] = []  # mappings of the directory left out: what mockpanel does not do, each named
        self.reload()

    # --- reading and changing mappings ---

    def reload(self) -> dict[str, Any]:
        """Read the mappings directory and the OpenAPI document again. Mappings made by the admin API, the panel or
        recording since are dropped unless saved (WireMock's reset). On an error nothing changes."""
        return self._apply(*self._read())

    def _read(self) -> tuple[list[StubMapping], OpenApiStub | None, list[str]]:
        if self.mappings_dir is not None and not self.mappings_dir.exists() and self.upstream is None:
            raise MappingError(f"the mappings directory {self.mappings_dir} does not exist (create it, even empty, to add "
                               "mappings through the admin API or the panel)")
        refused: list[str] = []
        found = read_mapping_dir(self.mappings_dir, self.files_dir, self.upstream, refused) if self.mappings_dir else []
        openapi = OpenApiStub(self.openapi_path, self.seed) if self.openapi_path else None
        return found, openapi, refused

    def _apply(self, found: list[StubMapping], openapi: OpenApiStub | None, refused: list[str]) -> dict[str, Any]:
        by_id: dict[str, StubMapping] = {}
        for order, mapping in enumerate(found, 1):  # a later file's mapping with the same id replaces the earlier
            mapping.order = order
            by_id[mapping.id] = mapping
        self._order = len(found)
        self.mappings = sorted(by_id.values(), key=_rank)  # one sort: 20,000 mappings read in well under a second
        self._by_id = by_id
        self._version += 1
        self.openapi = openapi
        self.hits = {k: v for k, v in self.hits.items() if k in by_id}
        if openapi is None or (self.openapi is not None and openapi.path != self.openapi.path):
            self.operation_hits.clear()
        self.scenarios.reset()
        self.loaded_at = self.clock()
        self._disk_seen = time.time()
        self.refused = refused
        for reason in self.refused:  # printed by serve (even --quiet) and shown by the panel
            self._event("log", level="warning", message=f"{self.name}: mapping left out, the others served: {reason}")
        self._event("stubs_reloaded", mappings=len(self.mappings), openapi=bool(openapi), refused=self.refused)
        return {"mappings": len(self.mappings), "operations": len(openapi.operations()) if openapi else 0, "refused": self.refused}

    async def try_reload(self) -> dict[str, Any]:
        """reload(), the files read and parsed in a thread (a large directory does not hold the servers' loop); an
        error is a DomainError and nothing changes."""
        import asyncio

        try:
            found, openapi, refused = await asyncio.to_thread(self._read)
        except (MappingError, OpenApiError) as exc:
            raise Invalid(f"{self.name}: nothing reloaded: {exc}") from None
        return self._apply(found, openapi, refused)

    def _insert(self, mapping: StubMapping) -> StubMapping:
        if len(self.mappings) >= MAX_MAPPINGS and mapping.id not in self._by_id:
            raise Invalid(f"a stub server holds at most {MAX_MAPPINGS} mappings")
        self._order += 1
        self._version += 1
        mapping.order = self._order
        if mapping.id in self._by_id:
            self.mappings = [m for m in self.mappings if m.id != mapping.id]
        else:
            self.mappings = list(self.mappings)  # a new list: a request matching meanwhile keeps iterating its own
        bisect.insort(self.mappings, mapping, key=_rank)
        self._by_id[mapping.id] = mapping
        return mapping

    def parse(self, raw: Any, source: str) -> StubMapping:
        try:
            return parse_mapping(raw, "mapping", self.files_dir, self.upstream, source)
        except MappingError as exc:
            raise Invalid(str(exc)) from None

    def add(self, raw: Any, source: str = "admin API") -> StubMapping:
        return self._added(self.parse(raw, source), source)

    def _added(self, parsed: StubMapping, source: str, announce: bool = True) -> StubMapping:
        mapping = self._insert(parsed)
        if mapping.raw.get("persistent"):
            self._persist(mapping)
        if announce:
            self._event("mapping_added", id=mapping.id, label=mapping.label(), source=source)
        return mapping

    def get(self, mapping_id: str) -> StubMapping:
        mapping = self._by_id.get(mapping_id)
        if mapping is None:
            raise NotFound(f"no mapping {mapping_id[:64]!r} on {self.name}")
        return mapping

    def replace(self, mapping_id: str, raw: Any) -> StubMapping:
        old = self.get(mapping_id)
        mapping = self.parse({**raw, "id": mapping_id} if isinstance(raw, dict) else raw, old.source)
        self._insert(mapping)
        self._event("mapping_changed", id=mapping.id, label=mapping.label())
        return mapping

    def remove(self, mapping_id: str) -> None:
        mapping = self.get(mapping_id)
        self.mappings = [m for m in self.mappings if m.id != mapping_id]
        del self._by_id[mapping_id]
        self._version += 1
        self.hits.pop(mapping_id, None)
        self._event("mapping_removed", id=mapping_id, label=mapping.label())

    async def import_mappings(self, items: Any) -> list[StubMapping]:
        """WireMock's mappings/import: every mapping checked before any is added (all or none). Checking and
        compiling thousands of mappings takes most of a second: in batches, the servers' loop serving between them
        (a thread would not help: the checks are Python, and a thread holding the interpreter stalls the loop as
        much — measured in serve, 300-600 ms for 5,000 mappings)."""
        if not isinstance(items, list):
            raise DomainError('send {"mappings": [mapping, ...]}')
        parsed = []
        for at, item in enumerate(items):
            if at and at % IMPORT_BATCH == 0:
                await asyncio.sleep(0)
            parsed.append(self.parse(item, "admin API"))
        new = {m.id for m in parsed} - set(self._by_id)
        if len(self.mappings) + len(new) > MAX_MAPPINGS:
            raise Invalid(f"a stub server holds at most {MAX_MAPPINGS} mappings: it holds {len(self.mappings)}, the import adds "
                          f"{len(new)}; nothing was added")
        added = []
        for at, mapping in enumerate(parsed):  # every one checked, the cap too: adding cannot fail half-way
            if at and at % (IMPORT_BATCH * 5) == 0:
                await asyncio.sleep(0)
            added.append(self._added(mapping, "admin API", announce=False))
        # one change, however many mappings: thousands of events would flood serve's log and every panel
        self._event("mappings_imported", count=len(added))
        return added

    def by_metadata(self, spec: Any) -> list[StubMapping]:
        """The mappings whose metadata a WireMock matcher (matchesJsonPath, equalToJson…) accepts."""
        from .matching import value_matcher

        try:
            matcher = value_matcher(spec, "metadata")
        except MappingError as exc:
            raise DomainError(str(exc)) from None
        return [m for m in self.mappings if matcher.check(json.dumps(m.raw.get("metadata") or {}))]

    def remove_all(self) -> None:
        self.mappings = []
        self._by_id = {}
        self._version += 1
        self.hits.clear()
        self._event("mappings_removed")

    def save(self) -> int:
        """Write every mapping not read from the directory into it (WireMock's mappings/save)."""
        if self.mappings_dir is None:
            raise Conflict(f"{self.name} has no mappings directory to save into (set mappings in [stubs.{self.name}])")
        saved = 0
        for mapping in self.mappings:
            if mapping.source in ("admin API", "panel", "recorded"):
                self._persist(mapping)
                saved += 1
        return saved

    def _persist(self, mapping: StubMapping) -> Path:
        if self.mappings_dir is None:
            raise Conflict(f"{self.name} has no mappings directory to save into (set mappings in [stubs.{self.name}])")
        path = self.mappings_dir / file_name_for(mapping)
        write_json_atomic(path, mapping.raw)
        self._disk_seen = time.time()  # its own write is no change to reload
        mapping.source = path.name
        return path

    async def reset(self) -> None:
        """WireMock's /__admin/reset: the mappings as on disk, scenarios started, the log empty."""
        await self.try_reload()
        self.log.clear()
        self.unmatched.clear()

    # --- answering ---

    def match(self, request: Incoming) -> StubMapping | None:
        """The mapping that answers (its scenario moved on), or None. Counts a hit."""
        for at, mapping in enumerate(self.mappings):
            scenario = mapping.raw.get("scenarioName")
            if scenario is not None:
                required = mapping.raw.get("requiredScenarioState")
                if required is not None and self.scenarios.state(scenario) != required:
                    continue
            try:
                matched = mapping.pattern.matches(request)
            except BudgetSpent:
                request.cut_short = (f"the regex budget of {int(REQUEST_REGEX_BUDGET_S * 1000)} ms for one request ran out after "
                                     f"{at} of {len(self.mappings)} mappings: the others were not compared")
                return None
            if matched:
                if scenario is not None and mapping.raw.get("newScenarioState"):
                    self.scenarios.states[scenario] = mapping.raw["newScenarioState"]
                self.hits[mapping.id] = self.hits.get(mapping.id, 0) + 1
                return mapping
        return None

    @staticmethod
    def request_from_json(data: Any) -> Incoming:
        """A request as WireMock's admin API writes one (url, method, headers, cookies, body or bodyAsBase64)."""
        if not isinstance(data, dict) or not isinstance(data.get("url", ""), str) or not isinstance(data.get("method", "GET"), str):
            raise Invalid("a request: {\"url\": \"/path?query\", \"method\": \"GET\", \"headers\": {...}, \"body\": \"...\"}")
        url = data.get("url") or "/"
        path, _, query = url.partition("?")
        headers: dict[str, list[str]] = {}
        for name, value in (data.get("headers") or {}).items() if isinstance(data.get("headers"), dict) else ():
            values = value if isinstance(value, list) else [value]
            headers.setdefault(str(name).lower(), []).extend(str(v) for v in values)
        cookies = data.get("cookies") if isinstance(data.get("cookies"), dict) else {}
        if cookies:
            headers.setdefault("cookie", []).append("; ".join(f"{k}={v if not isinstance(v, list) else (v[0] if v else '')}"
                                                                for k, v in cookies.items()))
        body = data.get("body") if isinstance(data.get("body"), str) else ""
        raw = body.encode()
        if isinstance(data.get("bodyAsBase64"), str) and data["bodyAsBase64"]:
            try:
                raw = base64.b64decode(data["bodyAsBase64"], validate=True)
            except ValueError:
                raise Invalid("bodyAsBase64: not base64") from None
        return Incoming(str(data.get("method") or "GET").upper(), path if path.startswith("/") else "/" + path, query, headers, raw)

    def near_misses(self, request: Incoming, count: int = NEAR_MISSES) -> list[tuple[StubMapping, float, list[str]]]:
        """The closest mappings and what differed. Each costs a comparison per mapping: at most NEAR_MISS_SCAN of them
        are compared, and the report for the same request (method, URL, headers, body) against the same mappings and
        scenario states is reused."""
        import hashlib

        digest = hashlib.blake2b(repr((request.method, request.url, sorted(request.headers.items()),
                                       sorted(self.scenarios.states.items()))).encode(), digest_size=16)
        digest.update(request.body)
        key = (self._version, digest.digest())  # a digest, not the request: 256 kept reports hold no bodies
        found = self._near.get(key)
        if found is not None:
            self._near.move_to_end(key)
            return found
        found = self._rank(request, count)
        if request.cut_short:
            return found  # cut short by the budget: not a report to reuse
        self._near[key] = found
        if len(self._near) > NEAR_MISS_CACHE:
            self._near.popitem(last=False)
        return found

    def _rank(self, request: Incoming, count: int) -> list[tuple[StubMapping, float, list[str]]]:
        ranked = []
        skipped = 0
        for mapping in self.mappings[:NEAR_MISS_SCAN]:
            try:
                differences, distance = mapping.pattern.differences(request)
            except BudgetSpent:  # the request's regex budget is spent: this one is not compared
                skipped += 1
                continue
            scenario = mapping.raw.get("scenarioName")
            required = mapping.raw.get("requiredScenarioState")
            if scenario and required and self.scenarios.state(scenario) != required:
                differences.append(f"scenario {scenario}: in state {self.scenarios.state(scenario)}, needs {required}")
                distance = min(1.0, distance + 0.1)
            ranked.append((mapping, distance, differences))
        if skipped and not request.cut_short:
            request.cut_short = (f"the regex budget of {int(REQUEST_REGEX_BUDGET_S * 1000)} ms for one request ran out: {skipped} "
                                 "mappings were not compared for the near misses")
        ranked.sort(key=lambda item: item[1])
        return ranked[:count]

    def logged(self, request: Incoming, mapping: StubMapping | None, status: int,
               misses: list[tuple[StubMapping, float, list[str]]] | None = None) -> None:
        self._next_id += 1
        if len(request.body) > LOG_BODY:  # a copy with the body cut (and none of its decoded or parsed forms): the
            # request itself is still being answered (a template may read its whole body)
            request = Incoming(request.method, request.path, request.query, request.headers, request.body[:LOG_BODY],
                               request.client, request.logged)
        self.log.append(Logged(self._next_id, request, mapping, status))
        if mapping is None and misses is not None:
            self.unmatched.append((request, misses))

    def count(self, pattern_spec: Any) -> list[Logged]:
        try:
            pattern = RequestPattern(pattern_spec or {}, "request")
        except MappingError as exc:
            raise Invalid(str(exc)) from None
        return [entry for entry in self.log if pattern.matches(entry.request)]

    def operation_answered(self, method: str, route: str, refused: bool) -> None:
        """Count an OpenAPI operation's answer (refused: the request did not match the document)."""
        counts = self.operation_hits.setdefault((method.upper(), route), [0, 0])
        counts[1 if refused else 0] += 1

    def logged_request(self, request_id: str) -> Logged:
        for entry in self.log:
            if str(entry.id) == request_id:
                return entry
        raise NotFound(f"no request {request_id[:32]!r} in the log")

    # --- snapshots (state.py) ---

    def export_state(self, blobs: Any) -> dict[str, Any]:
        """The mappings it serves (from files, the admin API, recording or the panel) in WireMock's JSON, with where
        each came from; the scenarios' states; replay or record."""
        return {"mappings": [{"mapping": m.raw, "source": m.source} for m in sorted(self.mappings, key=lambda m: m.order)],
                "scenarios": dict(self.scenarios.states), "mode": self.mode}

    async def prepare_state(self, doc: dict[str, Any], blobs: Any) -> Any:
        from ...state import Prepared

        raw = doc.get("mappings")
        if not isinstance(raw, list) or len(raw) > MAX_MAPPINGS:
            raise Invalid(f"mappings must be a list of at most {MAX_MAPPINGS}")
        found = [self.parse(item.get("mapping") if isinstance(item, dict) else None,
                            str(item.get("source", "snapshot"))[:200] if isinstance(item, dict) else "snapshot") for item in raw]
        states = doc.get("scenarios") or {}
        if not isinstance(states, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in states.items()):
            raise Invalid("scenarios must map each scenario's name to its state")
        mode = doc.get("mode", "replay")
        if mode not in ("replay", "record") or (mode == "record" and self.upstream is None):
            mode = "replay"

        def apply() -> None:
            self._apply(found, self.openapi, [])
            self.scenarios.states.update(states)
            self.mode = mode

        return Prepared(apply)

    def set_scenario(self, name: str, state: Any) -> None:
        """Put a scenario in one of the states its mappings name."""
        known = {s["name"]: s["possibleStates"] for s in self.scenarios.describe(self.mappings)}
        if name not in known:
            raise NotFound(f"no scenario {name[:64]!r}")
        if state not in known[name]:
            raise DomainError(f"state is one of {', '.join(known[name])}")
        self.scenarios.states[name] = state

    def clear_log(self) -> None:
        self.log.clear()
        self.unmatched.clear()

    # --- record and replay ---

    def start_recording(self, target: Any = None) -> None:
        """WireMock's recordings/start: only to the configured upstream, whatever `target` (targetBaseUrl) says."""
        if target is not None and (self.upstream is None or str(target).rstrip("/") != self.upstream):
            raise DomainError(f"this stub server records only its configured upstream ({self.upstream or 'none is set'})")
        self.set_mode("record")

    def set_mode(self, mode: str) -> str:
        """record or replay. Each switch to record starts a new recording (repeats are chained within one)."""
        if mode not in ("record", "replay"):
            raise Invalid("mode is record or replay")
        if mode == "record" and self.upstream is None:
            raise Conflict(f"{self.name} has no upstream to record (set record = \"https://api.example.com\" in [stubs.{self.name}])")
        if mode != self.mode:
            self.mode = mode
            self._chains.clear()
            self.written = 0
            self._event("mode_changed", mode=mode)
        return self.mode

    def record(self, request: Incoming, status: int, headers: list[tuple[str, str]], body: bytes, source: str = "recorded") -> StubMapping:
        """The exchange as a WireMock mapping (credentials masked; a large body in __files), added and, with a
        mappings directory, written to it.

        The same request recorded again (this recording session): an identical answer adds nothing; a different one
        continues a scenario, as WireMock records repeats — replayed, the answers come back in the order recorded
        (and the last one stays)."""
        import hashlib

        answer = hashlib.blake2b(repr((status, sorted(_masked_headers(headers).items()),
                                       _SECRET_FIELDS.sub(rb"\1" + MASK.encode(), body))).encode(), digest_size=16).digest()
        raw = exchange_mapping(request, status, headers, body, None)  # the request pattern only, no file written yet
        key = json.dumps(raw["request"], sort_keys=True)
        chain = self._chains.get(key)
        if chain is not None and chain[-1][1] == answer:
            return chain[-1][0]
        # Every bound is checked before anything is written: past one, the user's directory gains no orphan file.
        if len(self.mappings) >= MAX_MAPPINGS:
            raise Invalid(f"a stub server holds at most {MAX_MAPPINGS} mappings: {request.method} {request.url[:80]} was not recorded")
        cost = len(body) + len(key) + 4096  # the body (inline or a file), the mapping file's request part and the rest
        if self.mappings_dir is not None and self.written + cost > MAX_RECORDED_BYTES:
            raise Invalid(f"this recording wrote {self.written // (1024 * 1024)} MiB, the most one recording writes is "
                          f"{MAX_RECORDED_BYTES // (1024 * 1024)} MiB: {request.method} {request.url[:80]} was not recorded "
                          "(switch to replay and back to record to start another)")
        raw = exchange_mapping(request, status, headers, body, self._body_file if self.files_dir is not None else None)
        if chain is not None:
            scenario = f"recorded {request.method} {request.url}"[:200]
            previous = chain[-1][0]
            if len(chain) == 1:
                previous.raw.update(scenarioName=scenario, requiredScenarioState=STARTED)
            state = f"{scenario} #{len(chain) + 1}"
            previous.raw["newScenarioState"] = state
            raw.update(scenarioName=scenario, requiredScenarioState=state)
            if self.mappings_dir is not None:
                self._persist(previous)  # its file gains the scenario too
        mapping = self._insert(self.parse(raw, source))
        if self.mappings_dir is not None:
            self._persist(mapping)
            self.written += cost
        self._chains.setdefault(key, []).append((mapping, answer))
        self.recorded += 1
        self._event("mapping_recorded", id=mapping.id, label=mapping.label())
        return mapping

    def _body_file(self, name: str, body: bytes) -> str:
        assert self.files_dir is not None
        self.files_dir.mkdir(parents=True, exist_ok=True)
        write_whole(self.files_dir / name, body)
        self._disk_seen = time.time()
        return name

    @staticmethod
    def mapping_of(entry: Any) -> dict[str, Any]:
        """A journaled exchange (RequestEntry) as a WireMock mapping (see _entry_mapping)."""
        return _entry_mapping(entry)

    # --- what the panel shows ---

    def changed_on_disk(self, limit: int = 2000) -> bool:
        """Whether a mapping file, a body file or the OpenAPI document changed since the last (re)load (the pane then
        says r reloads). Looks at no more than `limit` files."""
        paths: list[Path] = [self.openapi_path] if self.openapi_path else []
        for root in (self.mappings_dir, self.files_dir):
            if root is not None and root.is_dir():
                for index, path in enumerate(root.rglob("*")):
                    if index >= limit:
                        break
                    paths.append(path)
        for root in (self.mappings_dir, self.files_dir):
            if root is not None and root.is_dir():
                paths.append(root)  # a file removed changes its directory
        for path in paths:
            try:
                if path.stat().st_mtime > self._disk_seen:
                    return True
            except OSError:
                continue
        return False

    def view(self) -> dict[str, Any]:
        mappings = [{"id": m.id, "label": m.label(), "priority": m.priority, "source": m.source, "hits": self.hits.get(m.id, 0),
                     "status": m.response.get("status", 200) if not m.response.get("fault") else m.response["fault"],
                     "scenario": m.raw.get("scenarioName") or ""} for m in self.mappings]
        unmatched = [{"method": r.method, "url": r.url, "at": r.logged,
                      "near": [{"label": m.label(), "distance": round(d, 2), "differences": diffs[:3]} for m, d, diffs in misses]}
                     for r, misses in list(self.unmatched)[-20:]]
        return {"name": self.name, "mode": self.mode, "upstream": self.upstream, "mappings": mappings, "unmatched": unmatched,
                "openapi": str(self.openapi_path) if self.openapi_path else None,
                "operations": [{"label": f"{method} {route}", "name": name, "hits": self.operation_hits.get((method, route), [0, 0])[0],
                                "refused": self.operation_hits.get((method, route), [0, 0])[1]}
                               for method, route, name in (self.openapi.operations() if self.openapi else [])],
                "mappings_dir": str(self.mappings_dir) if self.mappings_dir else None, "recorded": self.recorded,
                "scenarios": self.scenarios.describe(self.mappings), "requests": len(self.log), "changed": self.changed_on_disk()}


def _masked_headers(headers: list[tuple[str, str]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, value in headers:
        if name.lower() in HOP_BY_HOP:
            continue
        shown = MASK if name.lower().encode() in SECRET_HEADERS else value
        key = name
        if key in found:
            found[key] = [*(found[key] if isinstance(found[key], list) else [found[key]]), shown]
        else:
            found[key] = shown
    return found


def exchange_mapping(request: Incoming, status: int, headers: list[tuple[str, str]], body: bytes,
                     store_file: Callable[[str, bytes], str] | None) -> dict[str, Any]:
    """WireMock's recorded form of one exchange: the method and URL matched exactly, a credential query parameter
    matched by presence only (its value is not written), the request body matched as JSON (credential fields
    ignored) or as text; the response's status, headers (credentials masked) and body."""
    import uuid

    mapping_id = str(uuid.uuid4())
    query = request.query_params
    secret = [k for k in query if k.lower() in SECRET_PARAMS]
    pattern: dict[str, Any] = {"method": request.method}
    if secret:
        pattern["urlPath"] = request.path
        pattern["queryParameters"] = {k: ({"matches": ".*"} if k in secret else {"equalTo": v[0]}) for k, v in query.items()}
    else:
        pattern["url"] = request.url
    if request.body:
        state, parsed = request.json()
        if state == "ok":
            pattern["bodyPatterns"] = [{"equalToJson": _mask_json(parsed), "ignoreArrayOrder": False}]
        else:
            pattern["bodyPatterns"] = [{"equalTo": request.text}]
    response: dict[str, Any] = {"status": status}
    kept = _masked_headers(headers)
    if kept:
        response["headers"] = kept
    body = _SECRET_FIELDS.sub(rb"\1" + MASK.encode(), body)
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
    if body:
        if len(body) > INLINE_BODY and store_file is not None:
            extension = "json" if "json" in content_type else "txt" if content_type.startswith("text/") else "bin"
            response["bodyFileName"] = store_file(f"{request.method.lower()}-{mapping_id[:8]}.{extension}", body)
        else:
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                response["base64Body"] = base64.b64encode(body).decode()
            else:
                if "json" in content_type:
                    try:
                        response["jsonBody"] = json.loads(text)
                    except ValueError:
                        response["body"] = text
                else:
                    response["body"] = text
    return {"id": mapping_id, "name": f"{request.method} {request.path}"[:200], "request": pattern, "response": response,
            "persistent": True}


def _mask_json(value: Any) -> Any:
    """Credential fields of a recorded request body become json-unit's ${json-unit.ignore}: never written, still matched."""
    secret = {"access_token", "refresh_token", "id_token", "token", "password", "client_secret", "secret"}
    if isinstance(value, dict):
        return {k: "${json-unit.ignore}" if k in secret else _mask_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_json(v) for v in value]
    return value


def _entry_mapping(entry: Any) -> dict[str, Any]:
    """A journaled exchange (RequestEntry) as a WireMock mapping, credentials masked as when recording. The journal
    keeps previews of bodies: a body it cut short is kept as far as it goes, and the mapping's name says so."""
    headers: dict[str, list[str]] = {}
    for name, value in entry.request_headers:
        headers.setdefault(name.lower(), []).append(value)
    request = Incoming(method=entry.method, path=entry.path, query=entry.query, headers=headers, body=entry.request_preview)
    if entry.request_size > len(entry.request_preview):
        request.body = b""  # a cut body would never match again: the mapping matches any body
    raw = exchange_mapping(request, entry.status or 200, entry.response_headers, entry.response_preview, None)
    if entry.response_size > len(entry.response_preview):
        raw["name"] += f" (body cut to the journal's {len(entry.response_preview)} of {entry.response_size} bytes)"
    raw["persistent"] = True
    return raw
