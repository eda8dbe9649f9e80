"""Snapshots of everything the mocks hold, saved and loaded as one versioned, diffable format.

The format is a directory of JSON documents beside content-addressed blobs, or one tar archive of that directory
(what `GET /__mockpanel/state` answers and `--state FILE.tar` reads):

    manifest.json        {"format": "mockpanel-state", "version": 1, "saved_at", "mockpanel", "servers": [...], "clock"}
    hub.json             every server's faults and network toxics, the TCP proxies with theirs
    servers/NAME.json    one server's own state, in its own shape (users, keys, buckets, events, mappings…)
    blobs/sha256/HEX     bodies (S3 objects and versions, webhook bodies), each stored once, named by its SHA-256

JSON documents are written with sorted keys and one value a line, so two snapshots diff line by line. Bodies never
pass through memory whole: they are copied (and hashed) in chunks in a thread.

A server takes part when its facade has `export_state(blobs) -> dict` (called in the Hub's loop: a consistent cut;
bodies are referenced, not read, and kept from deletion until the copy is done) and
`async prepare_state(doc, blobs) -> Prepared` (checks everything and stages what takes time — copying bodies — without
touching the live state). Loading is all or nothing: every server's part is prepared first; any refusal discards
what was staged and nothing changes; then every `apply` runs at once, in the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import DomainError, Invalid

FORMAT = "mockpanel-state"
VERSION = 1
CHUNK = 1024 * 1024
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024  # one JSON document (10,000 objects' records are ~10 MiB)
_HEX = re.compile(r"^[0-9a-f]{64}$")
_MEMBER = re.compile(r"^(manifest\.json|hub\.json|servers/[A-Za-z0-9_.-]{1,64}\.json|blobs/sha256/[0-9a-f]{64})$")


class StateError(Invalid):
    """A snapshot that cannot be loaded (or written): the message says which file and why."""


class Blob:
    """A body a document refers to: bytes, or a file the facade keeps from deletion until the save is done. Written as
    its SHA-256 (hex) wherever it stands in a document."""

    __slots__ = ("data", "path", "size", "sha")

    def __init__(self, data: bytes | None = None, path: Path | None = None, size: int = 0) -> None:
        self.data, self.path = data, path
        self.size = len(data) if data is not None else size
        self.sha: str | None = None


@dataclass
class Blobs:
    """What `export_state` hands its bodies to; `done` callbacks run once the snapshot is written (a pin released)."""

    found: list[Blob] = field(default_factory=list)
    done: list[Callable[[], None]] = field(default_factory=list)

    def of_bytes(self, data: bytes) -> Blob:
        blob = Blob(data=data)
        self.found.append(blob)
        return blob

    def of_file(self, path: Path, size: int) -> Blob:
        blob = Blob(path=Path(path), size=size)
        self.found.append(blob)
        return blob


class BlobSource:
    """The blobs of a snapshot being loaded (a directory): each checked against its name as it is read. `owned`: an
    archive this load unpacked (and checked) itself, whose blobs may be linked where they go instead of copied."""

    def __init__(self, root: Path, owned: bool = False) -> None:
        self.root = root
        self.owned = owned

    def path(self, sha: Any) -> Path:
        if not isinstance(sha, str) or not _HEX.match(sha):
            raise StateError(f"a blob reference must be a SHA-256 in hex, not {str(sha)[:80]!r}")
        path = self.root / "blobs" / "sha256" / sha
        if not path.is_file():
            raise StateError(f"blobs/sha256/{sha} is missing")
        return path

    def size(self, sha: Any) -> int:
        return self.path(sha).stat().st_size

    def read(self, sha: Any, limit: int) -> bytes:
        """A small blob's bytes (at most `limit`), checked."""
        path = self.path(sha)
        if path.stat().st_size > limit:
            raise StateError(f"blobs/sha256/{sha} is larger than the {limit} bytes it may be here")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != sha:
            raise StateError(f"blobs/sha256/{sha} does not match its name (a torn or edited file)")
        return data

    def copy_to(self, sha: Any, target: Path) -> None:
        """Copy a blob to `target` in chunks, checking it against its name (in a thread); one this load unpacked is
        linked there when it can be (checked as it was unpacked)."""
        source = self.path(sha)
        if self.owned:
            try:
                os.link(source, target)
                return
            except OSError:
                pass  # another file system: copied
        digest = hashlib.sha256()
        with open(source, "rb") as src, open(target, "wb") as dst:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                dst.write(chunk)
        if digest.hexdigest() != sha:
            target.unlink(missing_ok=True)
            raise StateError(f"blobs/sha256/{sha} does not match its name (a torn or edited file)")


@dataclass
class Prepared:
    """A server's part of a load, checked and staged: `apply` makes it the live state (in the loop, quickly);
    `discard` undoes the staging when another part was refused."""

    apply: Callable[[], Any]
    discard: Callable[[], None] = lambda: None


# --- saving ---


def capture(hub: Any) -> tuple[dict[str, Any], dict[str, Any], Blobs]:
    """In the Hub's loop, at once: every document of a snapshot ({path: document}), the manifest, and the bodies."""
    blobs = Blobs()
    documents: dict[str, Any] = {}
    servers = []
    try:
        for name, runner in hub.runners.items():
            facade = runner.facade
            if facade is not None and hasattr(facade, "export_state"):
                documents[f"servers/{name}.json"] = {"server": name, **facade.export_state(blobs)}
                servers.append(name)
    except BaseException:
        for release in blobs.done:  # a facade that failed after another pinned its bodies: the pins go
            release()
        raise
    documents["hub.json"] = {
        "faults": {name: runner.ctx.faults.policy.model_dump(mode="json") for name, runner in hub.runners.items()},
        "toxics": {name: [t.as_json() for t in runner.ctx.toxics.toxics.values()] for name, runner in hub.runners.items()},
        "proxies": [proxy.as_toxiproxy() for proxy in hub.network.proxies.values()],
    }
    from . import __version__

    manifest = {"format": FORMAT, "version": VERSION, "saved_at": round(time.time(), 3), "mockpanel": __version__, "servers": servers,
                "clock": hub.clock.state()}
    return documents, manifest, blobs


def write_directory(target: Path, documents: dict[str, Any], manifest: dict[str, Any], blobs: Blobs) -> dict[str, int]:
    """Write a captured snapshot as a directory (in a thread): bodies first (copied and hashed in one pass), then the
    documents, the manifest last (a directory without one is not a snapshot). Returns counts."""
    (target / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (target / "servers").mkdir(exist_ok=True)
    written = total = 0
    for blob in blobs.found:
        fd, tmp = tempfile.mkstemp(dir=target / "blobs", prefix=".incoming-")
        with os.fdopen(fd, "wb") as out:
            blob.sha = _pour(blob, out)
        final = target / "blobs" / "sha256" / blob.sha
        if final.exists():
            os.unlink(tmp)
        else:
            os.replace(tmp, final)
            written += 1
        total += blob.size
    for path, document in documents.items():
        (target / path).write_text(_dumps(document), encoding="utf-8")
    (target / "manifest.json").write_text(_dumps(manifest), encoding="utf-8")
    return {"blobs": written, "bytes": total, "documents": len(documents)}


def _pour(blob: Blob, out: Any = None) -> str:
    """A body's SHA-256 (hex), read in chunks; written to `out` on the way when one is given."""
    digest = hashlib.sha256()
    if blob.data is not None:
        digest.update(blob.data)
        if out is not None:
            out.write(blob.data)
        return digest.hexdigest()
    assert blob.path is not None
    with open(blob.path, "rb") as src:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            if out is not None:
                out.write(chunk)
    return digest.hexdigest()


def _dumps(document: Any) -> str:
    def blob_ref(value: Any) -> Any:
        if isinstance(value, Blob):
            return value.sha
        if isinstance(value, (bytes, bytearray)):
            raise TypeError("bytes in a state document: hand them to Blobs")
        raise TypeError(f"{type(value).__name__} in a state document")

    return json.dumps(document, default=blob_ref, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def write_archive(out: Any, documents: dict[str, Any], manifest: dict[str, Any], blobs: Blobs) -> dict[str, int]:
    """Write a captured snapshot as a tar stream to `out` (a file, or a pipe to a response), in a thread: each body
    read twice (hashed, then copied: its name comes first in a tar), each distinct body once; the manifest last."""
    written = total = 0
    seen: set[str] = set()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, bufsize=CHUNK) as tar:
        for blob in blobs.found:
            blob.sha = _pour(blob)
            total += blob.size
            if blob.sha in seen:
                continue
            seen.add(blob.sha)
            info = tarfile.TarInfo(f"blobs/sha256/{blob.sha}")
            info.size, info.mtime, info.mode = blob.size, int(time.time()), 0o600
            if blob.data is not None:
                tar.addfile(info, io.BytesIO(blob.data))
            else:
                with open(blob.path, "rb") as src:  # type: ignore[arg-type]
                    tar.addfile(info, src)
            written += 1
        for name, document in [*documents.items(), ("manifest.json", manifest)]:
            data = _dumps(document).encode()
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
            tar.addfile(info, io.BytesIO(data))
    return {"blobs": written, "bytes": total, "documents": len(documents)}


class Pipe(io.RawIOBase):
    """A file a writer thread fills and an async reader drains, 1 MiB at a time, at most `depth` pieces ahead (so
    a slow reader holds the writer, never memory). `close_reader()` makes the writer's next write fail."""

    def __init__(self, depth: int = 8) -> None:
        import queue

        self.pieces: Any = queue.Queue(maxsize=depth)
        self.buffer = bytearray()
        self.abandoned = False

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.abandoned:
            raise BrokenPipeError("the reader went away")
        self.buffer += data
        if len(self.buffer) >= CHUNK:
            self._put(bytes(self.buffer))
            self.buffer.clear()
        return len(data)

    def _put(self, piece: bytes | None) -> None:
        import queue

        while not self.abandoned:
            try:
                self.pieces.put(piece, timeout=0.5)
                return
            except queue.Full:
                continue
        raise BrokenPipeError("the reader went away")

    def finish(self) -> None:
        if self.buffer:
            self._put(bytes(self.buffer))
            self.buffer.clear()
        self._put(None)

    def close_reader(self) -> None:
        self.abandoned = True


async def stream_archive(hub: Any) -> Any:
    """The snapshot as an async iterator of tar pieces, written by a thread as they are read (nothing whole on disk
    or in memory); captured now, in this step of the loop."""
    documents, manifest, blobs = capture(hub)
    pipe = Pipe()

    def produce() -> None:
        try:
            write_archive(pipe, documents, manifest, blobs)
            pipe.finish()
        except BrokenPipeError:
            pass
        except BaseException:
            with contextlib.suppress(BrokenPipeError):
                pipe._put(None)  # the response ends short and its connection closes: a torn archive no load accepts
            raise

    async def pieces() -> Any:
        task = asyncio.ensure_future(asyncio.to_thread(produce))
        try:
            while True:
                piece = await asyncio.to_thread(pipe.pieces.get)
                if piece is None:
                    break
                yield piece
            await task
        finally:
            pipe.close_reader()
            try:
                await asyncio.shield(task)
            except BaseException:
                pass
            for release in blobs.done:
                release()

    return pieces()


def archive(directory: Path, target: Path) -> None:
    """A snapshot directory as one tar archive (uncompressed: bodies are rarely worth compressing, and a tar streams)."""
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(directory.rglob("*")):
            if path.is_file() and not path.name.startswith(".incoming-"):
                tar.add(path, arcname=path.relative_to(directory).as_posix(), recursive=False)


async def save(hub: Any, target: Path) -> dict[str, Any]:
    """Save every mock's state to `target`: a directory, or a tar archive when it ends in .tar. Consistent: captured in
    one step of the loop, bodies pinned until written."""
    target = Path(target)
    documents, manifest, blobs = capture(hub)
    try:
        if target.suffix == ".tar":
            partial = target.with_name(target.name + ".partial")

            def write() -> dict[str, int]:
                with open(partial, "wb") as out:
                    return write_archive(out, documents, manifest, blobs)

            try:
                counts = await asyncio.to_thread(write)
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
        else:
            if target.exists() and any(target.iterdir()) and not (target / "manifest.json").is_file():
                raise StateError(f"{target} is a directory with other files in it: save a snapshot to an empty or new one")
            if (target / "manifest.json").is_file():  # an older snapshot: replaced whole
                shutil.rmtree(target)
            target.mkdir(parents=True, exist_ok=True)
            counts = await asyncio.to_thread(write_directory, target, documents, manifest, blobs)
    finally:
        for release in blobs.done:
            release()
    return {"path": str(target), "servers": manifest["servers"], **counts}


# --- loading ---


def extract(source: Any, into: Path) -> None:
    """Unpack a state archive (a path, or a stream read once) in a thread, refusing anything but the snapshot's own
    files: no links, no paths out, no names it does not know. Blobs are checked against their names as they are
    written."""
    try:
        opened = tarfile.open(source, "r:*") if isinstance(source, (str, Path)) else tarfile.open(fileobj=source, mode="r|*")
        with opened as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if member.isdir():
                    continue
                if not member.isfile() or not _MEMBER.match(name):
                    raise StateError(f"the archive holds {name[:120]!r}, which is not part of a mockpanel snapshot")
                if name.endswith(".json") and member.size > MAX_DOCUMENT_BYTES:
                    raise StateError(f"{name} is larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB")
                target = into / name
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                digest = hashlib.sha256()
                with open(target, "wb") as out:
                    while chunk := source.read(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                if name.startswith("blobs/") and digest.hexdigest() != name.rsplit("/", 1)[1]:
                    raise StateError(f"{name} does not match its name (a torn or edited archive)")
    except (tarfile.TarError, EOFError) as exc:
        raise StateError(f"not a state archive (tar): {exc}") from None


class PieceReader(io.RawIOBase):
    """The reading end of an archive arriving in pieces (a request body): `feed` from the loop, read in a thread."""

    def __init__(self, depth: int = 8) -> None:
        import queue

        self.pieces: Any = queue.Queue(maxsize=depth)
        self.current = memoryview(b"")
        self.ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not len(self.current):
            if self.ended:
                return 0
            piece = self.pieces.get()
            if piece is None:
                self.ended = True
                return 0
            self.current = memoryview(piece)
        size = min(len(buffer), len(self.current))
        buffer[:size] = self.current[:size]
        self.current = self.current[size:]
        return size


async def load_stream(hub: Any, pieces: Any, max_bytes: int, stall_s: float) -> dict[str, Any]:
    """Load an archive as it arrives (an async iterator of bytes): unpacked by a thread while it is received, never
    whole in memory or twice on disk; at most `max_bytes`, no gap longer than `stall_s`; then all or nothing."""
    import queue

    work = staging(hub)
    reader = PieceReader()
    unpacking = asyncio.ensure_future(asyncio.to_thread(extract, reader, work))
    received = 0

    async def hand(piece: bytes | None) -> bool:
        """Give the unpacking thread a piece, waiting while it is 8 pieces behind; False once it has ended."""
        while not unpacking.done():
            try:
                reader.pieces.put_nowait(piece)
                return True
            except queue.Full:
                await asyncio.sleep(0.005)
        return False

    try:
        iterator = pieces.__aiter__()
        while True:
            try:
                piece = await asyncio.wait_for(iterator.__anext__(), stall_s)
            except StopAsyncIteration:
                break
            except asyncio.TimeoutError:
                raise StateError(f"the archive stopped arriving for {stall_s:g} s: nothing loaded") from None
            received += len(piece)
            if received > max_bytes:
                raise StateError(f"a state archive is at most {max_bytes // 1024**3} GiB: nothing loaded")
            if not await hand(piece):  # the unpacking refused what came so far: its reason is the answer
                break
        if not received:
            raise StateError("send a state archive (GET /__mockpanel/state makes one) as the body")
        await hand(None)
        await unpacking
        return await load_directory(hub, work, owned=True)
    finally:
        if not unpacking.done():
            reader.ended = True
            with contextlib.suppress(Exception):
                while True:
                    reader.pieces.get_nowait()
            with contextlib.suppress(Exception):
                reader.pieces.put_nowait(None)
        with contextlib.suppress(BaseException):
            await unpacking
        await asyncio.to_thread(shutil.rmtree, work, True)


def read_document(root: Path, name: str) -> Any:
    path = root / name
    if not path.is_file():
        raise StateError(f"{name} is missing")
    if path.stat().st_size > MAX_DOCUMENT_BYTES:
        raise StateError(f"{name} is larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise StateError(f"{name} is not valid JSON: nested too deep") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise StateError(f"{name} is not valid JSON: {str(exc)[:200]}") from None


def check_manifest(manifest: Any) -> dict[str, Any]:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise StateError(f"manifest.json does not say format {FORMAT!r}: not a mockpanel snapshot")
    version = manifest.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise StateError("manifest.json has no format version")
    if version > VERSION:
        raise StateError(f"this snapshot is format version {version}, written by a newer mockpanel ({manifest.get('mockpanel', '?')}); "
                         f"this one ({_own_version()}) reads up to version {VERSION}: upgrade mockpanel to load it")
    if not isinstance(manifest.get("servers"), list) or not all(isinstance(s, str) for s in manifest["servers"]):
        raise StateError("manifest.json: servers must be a list of names")
    return manifest


def _own_version() -> str:
    from . import __version__

    return __version__


async def load(hub: Any, source: Path) -> dict[str, Any]:
    """Load a snapshot (a directory, or a tar archive) into the running mocks: all or nothing."""
    source = Path(source)
    if source.is_dir():
        return await load_directory(hub, source)
    if not source.is_file():
        raise StateError(f"{source}: no such file or directory")
    work = staging(hub)
    try:
        await asyncio.to_thread(extract, source, work)
        return await load_directory(hub, work, owned=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def staging(hub: Any) -> Path:
    """A new directory to unpack an archive into: beside S3's data when it can be (its bodies are then linked into
    place, not copied), named so that S3 removes it at its next start if a crash leaves it."""
    near = next((runner.facade.staging_dir for runner in hub.runners.values() if getattr(runner.facade, "staging_dir", None)), None)
    return Path(tempfile.mkdtemp(prefix="incoming-state-", dir=near))


async def load_directory(hub: Any, root: Path, owned: bool = False) -> dict[str, Any]:
    manifest = check_manifest(await asyncio.to_thread(read_document, root, "manifest.json"))
    hub_doc = await asyncio.to_thread(read_document, root, "hub.json")
    blobs = BlobSource(root, owned)
    loaded, skipped, prepared = [], [], []
    try:
        for name in manifest["servers"]:
            runner = hub.runners.get(name)
            facade = runner.facade if runner is not None else None
            if facade is None or not hasattr(facade, "prepare_state"):
                skipped.append(name)
                continue
            document = await asyncio.to_thread(read_document, root, f"servers/{name}.json")
            if not isinstance(document, dict):
                raise StateError(f"servers/{name}.json is not a JSON object")
            try:
                prepared.append(await facade.prepare_state(document, blobs))
            except StateError as exc:
                raise StateError(f"servers/{name}.json: {exc.message}") from None
            except DomainError as exc:
                raise StateError(f"servers/{name}.json: {exc.message}") from None
            loaded.append(name)
        prepared.append(_prepare_hub(hub, hub_doc, manifest))
    except BaseException:
        for part in prepared:
            part.discard()
        raise
    for part in prepared:  # nothing refused: every part becomes the live state in this one step of the loop
        part.apply()
    await _apply_proxies(hub, hub_doc)
    hub.bus.event("mockpanel", "state_loaded", servers=loaded, skipped=skipped)
    return {"loaded": loaded, "skipped": skipped, "clock": hub.clock.state()}


def _prepare_hub(hub: Any, document: Any, manifest: dict[str, Any]) -> Prepared:
    from pydantic import ValidationError

    from .clock import change_from
    from .faults import FaultPolicy
    from .toxics import ToxicError, parse_toxic

    if not isinstance(document, dict):
        raise StateError("hub.json is not a JSON object")
    policies, toxics = {}, {}
    for name, raw in (document.get("faults") or {}).items():
        if name in hub.runners:
            try:
                policies[name] = FaultPolicy.model_validate(raw)
            except ValidationError as exc:
                raise StateError(f"hub.json: faults of {name}: {exc.errors()[0]['msg']}") from None
    for name, raw in (document.get("toxics") or {}).items():
        if name in hub.runners:
            try:
                toxics[name] = [parse_toxic(t) for t in raw]
            except (ToxicError, TypeError) as exc:
                raise StateError(f"hub.json: toxics of {name}: {exc}") from None
    clock = manifest.get("clock") or {}
    change = change_from({"now": clock["now"], "frozen": bool(clock.get("frozen"))}) if clock.get("virtual") else None

    def apply() -> None:
        for name, policy in policies.items():
            hub.runners[name].ctx.faults.replace(policy)
        for name, found in toxics.items():
            held = hub.runners[name].ctx.toxics
            for old in list(held.toxics):
                held.remove(old)
            for toxic in found:
                held.add(toxic)
        if change is not None:
            hub.clock.change(**change)
        elif hub.clock.virtual:
            hub.clock.reset()

    return Prepared(apply)


async def _apply_proxies(hub: Any, document: dict[str, Any]) -> None:
    """The TCP proxies to the user's services: created (or kept) and given their toxics. They bind ports and reach
    other services, so they come after the all-or-nothing part; what cannot start is said in the log."""
    from .toxics import parse_toxic

    items = document.get("proxies") or []
    if not isinstance(items, list) or not items:
        return
    try:
        made = await hub.network.populate([{k: v for k, v in item.items() if k != "toxics"} for item in items if isinstance(item, dict)])
    except DomainError as exc:
        hub.log.append(f"state: proxies not restored: {exc.message}")
        return
    wanted = {item.get("name"): item.get("toxics") or [] for item in items if isinstance(item, dict)}
    for proxy in made:
        for old in list(proxy.toxics.toxics):
            proxy.toxics.remove(old)
        for toxic in wanted.get(proxy.name, []):
            proxy.toxics.add(parse_toxic(toxic))
