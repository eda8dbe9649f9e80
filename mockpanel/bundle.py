"""Repro bundles: what a run's mocks went through, as one directory a failing CI job uploads and `mockpanel replay`
opens again.

    bundle.json      {"format": "mockpanel-bundle", "version": 1, "mockpanel", "started_at", "ended_at", "servers": {name: url}}
    settings.json    every server's settings as flags would give them (secrets kept: they are the run's), where each came from
    start/           every mock's state once the servers were ready (a snapshot: state.py)
    end/             the state when the run ended: the users, objects, webhooks, faults and clock at the failure
    journal.jsonl    every request, in the control API's JSON lines
    events.jsonl     every change as it happened (faults with their whole policy, toxics, the clock, scenario steps)

`serve --bundle-out DIR` writes one (start/ when ready, the two logs as it runs, end/ when it stops); the pytest
plugin writes one for each failing test with `--mockpanel-bundle-out DIR`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from .export import BatchedLines
from .journal import DomainEvent, RequestEntry
from .state import StateError, check_manifest, read_document, save

FORMAT = "mockpanel-bundle"
VERSION = 1
# Settings a replay takes from the machine it runs on, not from the bundle: where to listen, what files to use.
LOCAL_SETTINGS = {"host", "port", "enabled", "tls_cert", "tls_key", "data_dir", "oidc_keys_dir", "mappings", "files", "openapi"}


def setting_text(value: Any) -> str | None:
    """A setting's value as its flag takes it (None: unset)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def settings_record(settings: Any) -> dict[str, Any]:
    return {"mockpanel": {k: setting_text(getattr(settings, k)) for k in ("journal_size", "journal_mib", "body_preview_bytes")},
            "servers": {s.name: {"values": {k: setting_text(v) for k, v in s.values.items()}, "sources": s.sources,
                                 "stub": s.name in settings.stub_specs}
                        for s in settings.servers.values() if s.enabled}}


class BundleRecorder:
    """Writes a bundle of the Hub's run to `directory` (see the module's docstring)."""

    def __init__(self, hub: Any, directory: Path) -> None:
        self.hub = hub
        self.directory = Path(directory)
        self.started_at = time.time()
        self._files: list[Any] = []
        self._journal: BatchedLines | None = None
        self._events: BatchedLines | None = None
        self._unsubscribe: Any = None

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for stale in ("bundle.json", "journal.jsonl", "events.jsonl"):
            (self.directory / stale).unlink(missing_ok=True)
        (self.directory / "settings.json").write_text(json.dumps(settings_record(self.hub.settings), indent=1, sort_keys=True, default=str))
        await save(self.hub, self.directory / "start")
        journal = open(self.directory / "journal.jsonl", "a", encoding="utf-8")  # noqa: SIM115 - closed by finish()
        events = open(self.directory / "events.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        self._files = [journal, events]
        self._journal, self._events = BatchedLines(journal), BatchedLines(events)
        self._unsubscribe = self.hub.bus.subscribe(self)

    def __call__(self, item: Any) -> None:
        if isinstance(item, RequestEntry):
            assert self._journal is not None
            self._journal.line(json.dumps(item.as_dict()))
        elif isinstance(item, DomainEvent) and self._events is not None:
            record = {"time": item.time, "server": item.server, "kind": item.kind, "source": item.source, "data": item.data}
            runner = self.hub.runners.get(item.server)
            if item.kind == "faults_changed" and runner is not None:  # the whole policy, not its description: a rerun applies it
                record["policy"] = runner.ctx.faults.policy.model_dump(mode="json")
            elif item.kind == "toxics_changed" and runner is not None:
                record["toxics"] = [t.as_json() for t in runner.ctx.toxics.toxics.values()]
            self._events.line(json.dumps(record, default=str))

    async def discard(self) -> None:
        """Stop recording and keep nothing (a test that passed)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for handle in self._files:
            handle.close()

    async def finish(self) -> Path:
        """The state as it ends, and the bundle's own record (written last: a bundle without it was cut short)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for lines in (self._journal, self._events):
            if lines is not None:
                lines.flush()
        for handle in self._files:
            handle.close()
        await save(self.hub, self.directory / "end")
        record = {"format": FORMAT, "version": VERSION, "mockpanel": _version(), "started_at": self.started_at, "ended_at": time.time(),
                  "servers": self.hub.urls()}
        (self.directory / "bundle.json").write_text(json.dumps(record, indent=1, sort_keys=True))
        return self.directory


def _version() -> str:
    from . import __version__

    return __version__


class Bundle:
    """A bundle read back: its record, settings, journal and events; StateError when it is not one."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        if not (self.directory / "bundle.json").is_file():
            raise StateError(f"{self.directory}: no bundle.json (not a bundle, or one whose run was cut short before it stopped)")
        self.record = read_document(self.directory, "bundle.json")
        if not isinstance(self.record, dict) or self.record.get("format") != FORMAT:
            raise StateError(f"{self.directory}/bundle.json is not a mockpanel bundle")
        if not isinstance(self.record.get("version"), int) or self.record["version"] > VERSION:
            raise StateError(f"{self.directory} is bundle format version {self.record.get('version')}, from a newer mockpanel: upgrade to open it")
        self.settings = read_document(self.directory, "settings.json")
        for part in ("start", "end"):
            check_manifest(read_document(self.directory / part, "manifest.json"))

    @property
    def servers(self) -> list[str]:
        return list(self.settings.get("servers", {}))

    def overrides(self) -> dict[tuple[str, str], str]:
        """The run's settings as flags for mocks on this machine (free ports; local paths left out)."""
        found: dict[tuple[str, str], str] = {}
        for name, server in self.settings.get("servers", {}).items():
            for key, value in server.get("values", {}).items():
                if value is not None and key not in LOCAL_SETTINGS:
                    found[(name, key)] = value
            found[(name, "port")] = "0"
        return found

    def lines(self, name: str) -> list[dict[str, Any]]:
        path = self.directory / name
        if not path.is_file():
            return []
        found = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                continue  # the last line of a run cut short
        return found

    def requests(self) -> list[RequestEntry]:
        """The journal as entries again (what the panel's panes show)."""
        return [entry_from(record) for record in self.lines("journal.jsonl")]

    def end_clock(self) -> float:
        return float(read_document(self.directory / "end", "manifest.json")["clock"]["now"])


def entry_from(record: dict[str, Any]) -> RequestEntry:
    """A RequestEntry from its as_dict() form."""
    client = record.get("client") or ""
    host, _, port = client.rpartition(":")
    return RequestEntry(
        record["id"], record["time"], record["server"], record["method"], record["path"], record.get("query", "").encode("latin-1"),
        record["status"], record["duration_ms"], record["request_size"], record["response_size"],
        tuple((k.encode("latin-1", "replace"), v.encode("latin-1", "replace")) for k, v in record.get("request_headers", [])),
        tuple((k.encode("latin-1", "replace"), v.encode("latin-1", "replace")) for k, v in record.get("response_headers", [])),
        record.get("request_body_preview", "").encode(), record.get("response_body_preview", "").encode(), record.get("fault"),
        (host, int(port)) if port.isdigit() else (), None, record.get("trace_id"), record.get("span_id"), record.get("parent_span_id"),
        record.get("mock_time"))


# --- replay ---


def replay_settings(bundle: Bundle, state: str, scratch: Path) -> Any:
    """Settings for mocks on this machine that run what the bundle's run ran, on free ports, starting from `state`
    (its start/ or end/); stub servers get an empty mappings directory under `scratch` (the snapshot has theirs)."""
    from .servers import SERVERS
    from .settings import load_settings

    stubs = {}
    for name, server in bundle.settings.get("servers", {}).items():
        if server.get("stub"):
            (scratch / name).mkdir(parents=True, exist_ok=True)
            stubs[name] = {"mappings": str(scratch / name)}
    cli: dict[tuple[str, str], Any] = {k: v for k, v in bundle.overrides().items() if k[0] not in stubs or k[1] == "port"}
    cli[("mockpanel", "state")] = str(bundle.directory / state)
    return load_settings(SERVERS, cli=cli, only=bundle.servers, environ={}, cwd=scratch, stubs=stubs)


def import_journal(hub: Any, bundle: Bundle) -> int:
    """The run's requests into the Hub's journal (renumbered after its own), as they were: what the panes show."""
    count = 0
    for entry in sorted(bundle.requests(), key=lambda e: (e.time, e.id)):
        if entry.server in hub.runners:
            ring = hub.journal.of(entry.server)
            ring.record(tuple(entry._replace(id=ring.next_id())))
            count += 1
    return count


class MadeUp:
    """What the mocks made up in the run (a user's id, a token, an upload's id) and what they make up in the rerun in
    its place: learnt from the JSON answers side by side, put in place of the old in the requests that follow."""

    def __init__(self) -> None:
        self.new: dict[str, str] = {}

    def learn(self, recorded: bytes, answered: bytes) -> None:
        try:
            old, now = json.loads(recorded), json.loads(answered)
        except ValueError:
            return
        self._walk(old, now)

    def _walk(self, old: Any, now: Any) -> None:
        if isinstance(old, dict) and isinstance(now, dict):
            for key in old.keys() & now.keys():
                self._walk(old[key], now[key])
        elif isinstance(old, list) and isinstance(now, list):
            for a, b in zip(old, now):
                self._walk(a, b)
        elif isinstance(old, str) and isinstance(now, str) and old != now and len(old) >= 8 and len(self.new) < 10_000:
            self.new[old] = now

    def text(self, value: str) -> str:
        for old, now in self.new.items():
            if old in value:
                value = value.replace(old, now)
        return value

    def data(self, value: bytes) -> bytes:
        for old, now in self.new.items():
            value = value.replace(old.encode(), now.encode())
        return value


SKIP_HEADERS = {"host", "content-length", "connection", "transfer-encoding", "accept-encoding", "keep-alive"}


async def rerun(hub: Any, bundle: Bundle, out: Any) -> int:
    """Send the run's requests again, in order, to these mocks (started from the bundle's start/), with the faults,
    toxics and clock changes the run saw applied where they happened; print what answers differently. 0 when every
    request was answered with its recorded status."""
    import httpx2

    from .clock import change_from
    from .faults import FaultPolicy
    from .toxics import parse_toxic

    started = read_document(bundle.directory / "start", "manifest.json")["clock"]
    hub.clock.change(now=float(started["now"]), frozen=bool(started.get("frozen")))  # the run's tokens are as young as they were
    items = [(e.time, 1, e) for e in bundle.requests()] + [(ev["time"], 0, ev) for ev in bundle.lines("events.jsonl")]
    items.sort(key=lambda item: (item[0], item[1]))
    same = different = skipped = 0
    urls = hub.urls()
    made = MadeUp()
    async with httpx2.AsyncClient(timeout=60) as client:
        for _, kind, item in items:
            if kind == 0:
                runner = hub.runners.get(item.get("server"))
                if item["kind"] == "faults_changed" and runner is not None and "policy" in item:
                    runner.ctx.faults.replace(FaultPolicy.model_validate(item["policy"]))
                elif item["kind"] == "toxics_changed" and runner is not None and "toxics" in item:
                    for name in list(runner.ctx.toxics.toxics):
                        runner.ctx.toxics.remove(name)
                    for toxic in item["toxics"]:
                        runner.ctx.toxics.add(parse_toxic(toxic))
                elif item["kind"] == "clock" and item["server"] == "mockpanel":
                    hub.clock.change(**change_from({"now": item["data"]["now_iso"], "frozen": item["data"].get("frozen", False)}))
                continue
            entry: RequestEntry = item
            if entry.server not in urls or entry.method == "TCP":
                skipped += 1
                continue
            if entry.request_size != len(entry.request_preview):
                skipped += 1
                out.write(f"skipped  {entry.server} {entry.method} {entry.path}: its body is cut short in the journal "
                          f"({len(entry.request_preview)} of {entry.request_size} bytes)\n")
                continue
            headers = [(k, made.text(v)) for k, v in entry.request_headers if k.lower() not in SKIP_HEADERS]
            url = urls[entry.server] + made.text(entry.path + (f"?{entry.query}" if entry.query else ""))
            try:
                answer = await client.request(entry.method, url, headers=headers, content=made.data(entry.request_preview) or None)
                status = answer.status_code
                made.learn(entry.response_preview, answer.content)
            except httpx2.HTTPError as exc:
                status = 0
                reason = f" ({type(exc).__name__})"
            else:
                reason = ""
            if status == entry.status:
                same += 1
            else:
                different += 1
                out.write(f"differs  {entry.server} {entry.method} {entry.path}: recorded {entry.status or 'no answer'}, now {status or 'no answer'}{reason}\n")
    out.write(f"mockpanel: replayed {same + different} requests: {same} answered as recorded, {different} differently"
              f"{f', {skipped} skipped' if skipped else ''}\n")
    return 0 if not different else 1
