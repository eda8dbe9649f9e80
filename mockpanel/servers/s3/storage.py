"""S3 storage: buckets, objects and multipart uploads, in memory or in a data directory, written atomically.

Layout of a data directory:
    buckets/<name>/bucket.json              bucket metadata
    buckets/<name>/meta/<sha256(key)>.json  one object's metadata; its atomic rename is the commit point
    data/<uuid>                             object bodies, referenced from the metadata
    uploads/<upload id>/upload.json, part-N multipart uploads in progress
    tmp/                                    files being written
A crash leaves either the previous version of an object or the new one, never a torn one; bodies no metadata
refers to, and files in tmp/, are removed at the next start.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
import weakref
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

SMALL_BODY = 256 * 1024  # in memory mode, bodies up to this stay in RAM; larger ones are spooled to disk


@dataclass
class ObjectMeta:
    key: str
    size: int
    etag: str  # quoted, as S3 sends it
    last_modified: float
    content_type: str = "binary/octet-stream"
    metadata: dict[str, str] = field(default_factory=dict)  # x-amz-meta-* without the prefix
    headers: dict[str, str] = field(default_factory=dict)  # content-encoding, -disposition, -language, cache-control, expires
    sse: str | None = None
    sse_kms_key_id: str | None = None
    sse_customer_key_md5: str | None = None  # SSE-C: the customer key's MD5 (base64), never the key; reads must match it
    bucket_key: bool = False  # SSE-KMS with an S3 Bucket Key (x-amz-server-side-encryption-bucket-key-enabled)
    retention: dict[str, Any] | None = None  # Object Lock: {"mode": GOVERNANCE|COMPLIANCE, "until": epoch seconds}
    legal_hold: bool = False
    tags: dict[str, str] = field(default_factory=dict)  # object tagging
    acl: Any = None  # a canned ACL name, or a list of grants {type, id|uri|email, permission}; stored, never enforced
    version_id: str | None = None  # None: the "null" version (written while the bucket was never or no longer versioned)
    delete_marker: bool = False
    sequence: int = 0  # order among a key's versions (set when it becomes noncurrent)
    checksums: dict[str, str] = field(default_factory=dict)  # algorithm -> base64
    checksum_type: str | None = None  # FULL_OBJECT or COMPOSITE
    part_sizes: list[int] | None = None  # for multipart objects: GET ?partNumber=
    part_checksums: list[str] | None = None  # each part's checksum (of the object's algorithm), for GetObjectAttributes
    data_file: str | None = None  # name under data/ (or an absolute spool path in memory mode)
    body: bytes | None = field(default=None, repr=False)  # small bodies in memory mode

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        del record["body"]
        return record


@dataclass
class Upload:
    upload_id: str
    bucket: str
    key: str
    initiated: float
    meta: dict[str, Any]  # content type, metadata, headers, sse, checksum algorithm for the final object
    parts: dict[int, dict[str, Any]] = field(default_factory=dict)  # number -> {size, etag, last_modified, file, checksums}


@dataclass
class Bucket:
    name: str
    created: float
    region: str = "us-east-1"
    keys: list[str] = field(default_factory=list)  # sorted: listings bisect it
    objects: dict[str, ObjectMeta] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    acl: Any = None
    cors: list[dict[str, Any]] | None = None  # CORS rules (PutBucketCors), None when the bucket has none
    notifications: list[dict[str, Any]] | None = None  # event notification rules (notifications.py)
    versioning: str | None = None  # None (never set), "Enabled" or "Suspended"
    # Every version of a key but its live current one (in `objects`), oldest first, delete markers included. A key
    # whose newest version is a delete marker is absent from `objects`: listed and read as gone.
    history: dict[str, list[ObjectMeta]] = field(default_factory=dict)
    website: dict[str, str] | None = None  # PutBucketWebsite: {"index": suffix, "error": key}; its pages may run scripts
    policy: dict[str, Any] | None = None  # the bucket policy (governance.py)
    public_access_block: dict[str, bool] | None = None
    ownership: str | None = None  # Ownership Controls: BucketOwnerEnforced, BucketOwnerPreferred or ObjectWriter
    encryption: dict[str, Any] | None = None  # default encryption: {algorithm, kms_key_id, bucket_key}
    object_lock: dict[str, Any] | None = None  # {"enabled": True, "rule": default retention or None}
    lifecycle: list[dict[str, Any]] | None = None  # lifecycle rules (lifecycle.py), applied by the mock's clock

    SETTINGS = ("tags", "acl", "cors", "notifications", "versioning", "website", "policy", "public_access_block", "ownership",
                "encryption", "object_lock", "lifecycle")  # what save_bucket keeps in bucket.json besides name, created and region


class StorageError(Exception):
    """A storage failure the S3 layer turns into an S3 error."""

    def __init__(self, code: str, message: str, **extra: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _write_json_atomic(path: Path, tmp_dir: Path, record: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=tmp_dir, suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(record, fh, ensure_ascii=False)
    os.replace(tmp, path)


class BodyWriter:
    """Receives a body in chunks; keeps it in memory while small, spools it to a file when large (or always on disk)."""

    def __init__(self, store: "Store") -> None:
        self.store = store
        self.size = 0
        self._buffer = bytearray()
        self._fh = None
        self.path: Path | None = None
        self.md5 = hashlib.md5()

    def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.size += len(chunk)
        self.md5.update(chunk)
        if self._fh is None and (self.store.root is not None or len(self._buffer) + len(chunk) > SMALL_BODY):
            self.path = self.store.new_data_path()
            self._fh = open(self.path, "wb")
            if self._buffer:
                self._fh.write(self._buffer)
                self._buffer = bytearray()
        if self._fh is not None:
            self._fh.write(chunk)
        else:
            self._buffer += chunk

    def finish(self) -> tuple[str | None, bytes | None]:
        """(data file name, None) or (None, body bytes)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            return self.store.data_ref(self.path), None
        if self.store.root is not None:  # an empty body on disk still gets a file, like any other
            self.path = self.store.new_data_path()
            self.path.write_bytes(b"")
            return self.store.data_ref(self.path), None
        return None, bytes(self._buffer)

    def discard(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class Store:
    """All buckets. `root` None: in memory (large bodies spooled to a private temp dir)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root else None
        self.clock = time.time  # what stamps buckets, delete markers, uploads and parts (the domain's clock, see Storage.now)
        self.buckets: dict[str, Bucket] = {}
        self.uploads: dict[str, Upload] = {}
        self.pins = 0  # snapshots being written: bodies they refer to are not deleted until they are done (state.py)
        self._deferred: list[Path] = []
        if self.root is None:
            self._spool = Path(tempfile.mkdtemp(prefix="mockpanel-s3-"))
            weakref.finalize(self, shutil.rmtree, self._spool, True)
            self.data_dir = self._spool
            self.tmp_dir = self._spool
        else:
            self._spool = None
            self.data_dir = self.root / "data"
            self.tmp_dir = self.root / "tmp"
            outgoing = sorted(self.root.glob("outgoing-*")) if self.root.is_dir() else []
            if outgoing and not (self.root / "buckets").exists():  # a load stopped between its two renames: the old state stands
                os.replace(outgoing[0], self.root / "buckets")
            for sub in ("buckets", "data", "uploads", "tmp"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            self._load()

    # --- files ---

    def new_data_path(self) -> Path:
        return self.data_dir / uuid.uuid4().hex

    def data_ref(self, path: Path) -> str:
        return path.name

    def data_path(self, meta: ObjectMeta) -> Path:
        assert meta.data_file is not None
        return self.data_dir / meta.data_file

    def read_range(self, meta: ObjectMeta, start: int, end: int, chunk: int = 256 * 1024) -> Iterator[bytes]:
        """Bytes start..end (inclusive) of the object's body, in chunks."""
        if meta.body is not None:
            yield meta.body[start : end + 1]
            return
        with open(self.data_path(meta), "rb") as fh:
            fh.seek(start)
            remaining = end - start + 1
            while remaining > 0:
                piece = fh.read(min(chunk, remaining))
                if not piece:
                    break
                remaining -= len(piece)
                yield piece

    def _release(self, meta: ObjectMeta | None) -> None:
        if meta is not None and meta.data_file is not None:
            if self.pins:
                self._deferred.append(self.data_path(meta))
            else:
                self.data_path(meta).unlink(missing_ok=True)

    def pin(self) -> Any:
        """Keep every body from deletion until the returned function is called (a snapshot copying them)."""
        self.pins += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self.pins -= 1
            if not self.pins:
                for path in self._deferred:
                    path.unlink(missing_ok=True)
                self._deferred.clear()

        return release

    # --- snapshots (state.py) ---

    def stage(self, records: list[dict[str, Any]], blobs: Any, staged: Path | None) -> tuple[dict[str, Bucket], list[Path]]:
        """Buckets built from a snapshot's records, their bodies copied (checked) to new data files and, with a data
        directory, their metadata written under `staged` (in a thread: nothing live is touched). Returns the buckets
        and the files made (to remove if the load is called off)."""
        made: list[Path] = []
        buckets: dict[str, Bucket] = {}
        try:
            for raw in records:
                bucket = Bucket(raw["name"], float(raw["created"]), raw.get("region", "us-east-1"),
                                **{k: raw[k] for k in Bucket.SETTINGS if k in raw})
                for record in raw.get("objects", []):
                    meta = self._staged_meta(record, blobs, made)
                    bucket.objects[meta.key] = meta
                for key, versions in (raw.get("history") or {}).items():
                    bucket.history[key] = [self._staged_meta(record, blobs, made) for record in versions]
                bucket.keys = sorted(bucket.objects)
                buckets[bucket.name] = bucket
            if staged is not None:
                for bucket in buckets.values():
                    base = staged / "buckets" / bucket.name
                    (base / "meta").mkdir(parents=True)
                    (base / "versions").mkdir()
                    (base / "bucket.json").write_text(json.dumps({"name": bucket.name, "created": bucket.created, "region": bucket.region,
                                                                 **{k: getattr(bucket, k) for k in Bucket.SETTINGS}}))
                    for meta in bucket.objects.values():
                        (base / "meta" / f"{key_digest(meta.key)}.json").write_text(json.dumps(meta.to_json(), ensure_ascii=False))
                    for versions in bucket.history.values():
                        for meta in versions:
                            (base / "versions" / f"{key_digest(meta.key)}.{meta.version_id or 'null'}.json").write_text(
                                json.dumps(meta.to_json(), ensure_ascii=False))
        except BaseException:
            for path in made:
                path.unlink(missing_ok=True)
            raise
        return buckets, made

    def _staged_meta(self, record: dict[str, Any], blobs: Any, made: list[Path]) -> ObjectMeta:
        fields = {k: v for k, v in record.items() if k != "blob"}
        fields.pop("data_file", None)
        meta = ObjectMeta(**fields)
        if meta.delete_marker:
            return meta
        size = blobs.size(record["blob"])
        if size != meta.size:
            raise ValueError(f"object {meta.key[:80]!r}: its blob has {size} bytes, its record says {meta.size}")
        if self.root is None and size <= SMALL_BODY:
            meta.body = blobs.read(record["blob"], SMALL_BODY)
            return meta
        path = self.new_data_path()
        made.append(path)
        blobs.copy_to(record["blob"], path)
        meta.data_file = self.data_ref(path)
        return meta

    def replace_all(self, buckets: dict[str, Bucket], staged: Path | None) -> None:
        """Make staged buckets the live ones (in the loop): uploads in progress are aborted, the old bodies go."""
        old = self.buckets
        for upload_id in list(self.uploads):
            self.abort_upload(upload_id)
        if self.root is not None and staged is not None:
            outgoing = self.root / f"outgoing-{uuid.uuid4().hex}"
            os.replace(self.root / "buckets", outgoing)
            os.replace(staged / "buckets", self.root / "buckets")
            shutil.rmtree(staged, ignore_errors=True)
            shutil.rmtree(outgoing, ignore_errors=True)
        self.buckets = buckets
        for bucket in old.values():
            for meta in bucket.objects.values():
                self._release(meta)
            for versions in bucket.history.values():
                for meta in versions:
                    self._release(meta)

    # --- persistence ---

    def _bucket_dir(self, name: str) -> Path:
        assert self.root is not None
        return self.root / "buckets" / name

    def _meta_path(self, bucket: str, key: str) -> Path:
        return self._bucket_dir(bucket) / "meta" / f"{key_digest(key)}.json"

    def _version_path(self, bucket: str, meta: ObjectMeta) -> Path:
        return self._bucket_dir(bucket) / "versions" / f"{key_digest(meta.key)}.{meta.version_id or 'null'}.json"

    def _load(self) -> None:
        assert self.root is not None
        for leftover in self.tmp_dir.iterdir():
            leftover.unlink(missing_ok=True)
        for leftover in [*self.root.glob("incoming-*"), *self.root.glob("outgoing-*")]:  # a load a crash cut short
            shutil.rmtree(leftover, ignore_errors=True)
        referenced: set[str] = set()
        for bucket_dir in sorted((self.root / "buckets").iterdir()):
            info_path = bucket_dir / "bucket.json"
            if not info_path.is_file():
                continue
            info = json.loads(info_path.read_text())
            bucket = Bucket(info["name"], info["created"], info.get("region", "us-east-1"),
                            **{k: info[k] for k in Bucket.SETTINGS if k in info})
            for meta_path in (bucket_dir / "meta").glob("*.json"):
                record = json.loads(meta_path.read_text(encoding="utf-8"))
                meta = ObjectMeta(**record)
                if meta.data_file is None or not (self.data_dir / meta.data_file).is_file():
                    continue  # metadata without its body cannot be served; it was never acknowledged
                bucket.objects[meta.key] = meta
                referenced.add(meta.data_file)
            for version_path in (bucket_dir / "versions").glob("*.json"):
                meta = ObjectMeta(**json.loads(version_path.read_text(encoding="utf-8")))
                if not meta.delete_marker and (meta.data_file is None or not (self.data_dir / meta.data_file).is_file()):
                    continue
                bucket.history.setdefault(meta.key, []).append(meta)
                if meta.data_file:
                    referenced.add(meta.data_file)
            for key, versions in list(bucket.history.items()):
                current = bucket.objects.get(key)
                if current is not None:  # a crash between keeping a version and replacing the current one: once is enough
                    versions[:] = [m for m in versions if m.version_id != current.version_id or m.data_file != current.data_file]
                versions.sort(key=lambda m: m.sequence)
                if not versions:
                    del bucket.history[key]
            bucket.keys = sorted(bucket.objects)
            self.buckets[bucket.name] = bucket
        for upload_dir in (self.root / "uploads").iterdir():
            record_path = upload_dir / "upload.json"
            if not record_path.is_file():
                shutil.rmtree(upload_dir, ignore_errors=True)
                continue
            record = json.loads(record_path.read_text(encoding="utf-8"))
            upload = Upload(record["upload_id"], record["bucket"], record["key"], record["initiated"], record["meta"])
            for part_path in upload_dir.glob("part-*.json"):
                part = json.loads(part_path.read_text())
                if (upload_dir / part["file"]).is_file():
                    upload.parts[part["number"]] = part
            self.uploads[upload.upload_id] = upload
        for data_file in self.data_dir.iterdir():
            if data_file.name not in referenced:
                data_file.unlink(missing_ok=True)  # a body whose metadata never committed

    # --- buckets ---

    def create_bucket(self, name: str, region: str = "us-east-1") -> Bucket:
        bucket = Bucket(name, self.clock(), region)
        if self.root is not None:
            (self._bucket_dir(name) / "meta").mkdir(parents=True, exist_ok=True)
        self.save_bucket(bucket)
        self.buckets[name] = bucket
        return bucket

    def save_bucket(self, bucket: Bucket) -> None:
        """Persist a bucket's own settings (tags, ACL, CORS rules) after a change."""
        if self.root is not None:
            record = {"name": bucket.name, "created": bucket.created, "region": bucket.region,
                      **{k: getattr(bucket, k) for k in Bucket.SETTINGS}}
            _write_json_atomic(self._bucket_dir(bucket.name) / "bucket.json", self.tmp_dir, record)

    def save_meta(self, bucket: Bucket, meta: ObjectMeta) -> None:
        """Persist a change to a stored object's metadata (its tags, its ACL); the body is untouched."""
        if self.root is not None:
            _write_json_atomic(self._meta_path(bucket.name, meta.key), self.tmp_dir, meta.to_json())

    def delete_bucket(self, name: str) -> None:
        bucket = self.buckets.pop(name)
        for meta in bucket.objects.values():
            self._release(meta)
        for versions in bucket.history.values():
            for meta in versions:
                self._release(meta)
        if self.root is not None:
            shutil.rmtree(self._bucket_dir(name), ignore_errors=True)

    def reset(self) -> None:
        for name in list(self.buckets):
            self.delete_bucket(name)
        for upload_id in list(self.uploads):
            self.abort_upload(upload_id)

    # --- objects ---

    def put(self, bucket: Bucket, meta: ObjectMeta) -> ObjectMeta | None:
        """Commit an object (its body already written) as the key's current version; returns the one it replaced.
        In a versioned bucket the replaced version is kept (but the "null" one while versioning is suspended)."""
        if bucket.versioning == "Enabled":
            meta.version_id = new_version_id()
        elif bucket.versioning == "Suspended":
            meta.version_id = None
            self._drop_null_version(bucket, meta.key)
        old = bucket.objects.get(meta.key)
        keep = old is not None and (bucket.versioning == "Enabled" or (bucket.versioning is not None and old.version_id is not None))
        if keep:  # on disk before the new current replaces it: a crash between leaves it twice (load keeps one), never lost
            self._keep(bucket, old)  # type: ignore[arg-type]
        if self.root is not None:
            _write_json_atomic(self._meta_path(bucket.name, meta.key), self.tmp_dir, meta.to_json())
        bucket.objects[meta.key] = meta
        if old is None:
            bisect.insort(bucket.keys, meta.key)
        elif not keep and old.data_file != meta.data_file:
            self._release(old)
        return old

    def delete(self, bucket: Bucket, key: str) -> ObjectMeta | None:
        """Delete a key: its current version gone (unversioned), or hidden behind a new delete marker (versioned:
        returned then is the marker)."""
        old = bucket.objects.pop(key, None)
        marker = None
        if bucket.versioning:  # the versions kept on disk first, then the current one goes (as in put)
            marker = ObjectMeta(key, 0, "", self.clock(), delete_marker=True,
                                version_id=new_version_id() if bucket.versioning == "Enabled" else None)
            if old is not None and not (bucket.versioning == "Suspended" and old.version_id is None):
                self._keep(bucket, old)
            if bucket.versioning == "Suspended":
                self._drop_null_version(bucket, key)
            self._keep(bucket, marker)
        if old is not None:
            del bucket.keys[bisect.bisect_left(bucket.keys, key)]
            if self.root is not None:
                self._meta_path(bucket.name, key).unlink(missing_ok=True)
            if marker is None or (bucket.versioning == "Suspended" and old.version_id is None):
                self._release(old)
        return old if marker is None else marker

    def versions_of(self, bucket: Bucket, key: str) -> list[ObjectMeta]:
        """A key's versions, newest first (its current one, then the noncurrent ones and delete markers)."""
        current = bucket.objects.get(key)
        return ([current] if current is not None else []) + bucket.history.get(key, [])[::-1]

    def find_version(self, bucket: Bucket, key: str, version_id: str) -> ObjectMeta | None:
        wanted = None if version_id == "null" else version_id
        return next((m for m in self.versions_of(bucket, key) if m.version_id == wanted), None)

    def delete_version(self, bucket: Bucket, key: str, version_id: str) -> ObjectMeta | None:
        """Remove one version for good; when it was the current one, the newest remaining version (unless a delete
        marker) becomes current. Returns the version removed, or None."""
        found = self.find_version(bucket, key, version_id)
        if found is None:
            return None
        if bucket.objects.get(key) is found:
            del bucket.objects[key]
            del bucket.keys[bisect.bisect_left(bucket.keys, key)]
            if self.root is not None:
                self._meta_path(bucket.name, key).unlink(missing_ok=True)
        else:
            bucket.history[key].remove(found)
            if self.root is not None:
                self._version_path(bucket.name, found).unlink(missing_ok=True)
        self._release(found)
        older = bucket.history.get(key, [])
        if key not in bucket.objects and older and not older[-1].delete_marker:
            promoted = older.pop()
            if self.root is not None:
                _write_json_atomic(self._meta_path(bucket.name, key), self.tmp_dir, promoted.to_json())
                self._version_path(bucket.name, promoted).unlink(missing_ok=True)
            bucket.objects[key] = promoted
            bisect.insort(bucket.keys, key)
        if not older:
            bucket.history.pop(key, None)
        return found

    def _keep(self, bucket: Bucket, meta: ObjectMeta) -> None:
        meta.sequence = time.time_ns()
        bucket.history.setdefault(meta.key, []).append(meta)
        if self.root is not None:
            (self._bucket_dir(bucket.name) / "versions").mkdir(exist_ok=True)
            _write_json_atomic(self._version_path(bucket.name, meta), self.tmp_dir, meta.to_json())

    def _drop_null_version(self, bucket: Bucket, key: str) -> None:
        versions = bucket.history.get(key, [])
        for meta in [m for m in versions if m.version_id is None]:
            versions.remove(meta)
            self._release(meta)
            if self.root is not None:
                self._version_path(bucket.name, meta).unlink(missing_ok=True)
        if key in bucket.history and not versions:
            del bucket.history[key]

    def copy_body(self, source: ObjectMeta, start: int = 0, end: int | None = None, writer: BodyWriter | None = None) -> BodyWriter:
        """Bytes start..end of `source` into `writer` (a new body if none); it can be gigabytes: call it in a thread."""
        writer = writer or BodyWriter(self)
        last = source.size - 1 if end is None else end
        if source.size and last >= start:
            for piece in self.read_range(source, start, last):
                writer.write(piece)
        return writer

    # --- multipart ---

    def _upload_dir(self, upload_id: str) -> Path:
        assert self.root is not None
        return self.root / "uploads" / upload_id

    def create_upload(self, bucket: str, key: str, meta: dict[str, Any]) -> Upload:
        upload = Upload(uuid.uuid4().hex + uuid.uuid4().hex, bucket, key, self.clock(), meta)
        if self.root is not None:
            self._upload_dir(upload.upload_id).mkdir(parents=True)
            _write_json_atomic(
                self._upload_dir(upload.upload_id) / "upload.json",
                self.tmp_dir,
                {"upload_id": upload.upload_id, "bucket": bucket, "key": key, "initiated": upload.initiated, "meta": meta},
            )
        self.uploads[upload.upload_id] = upload
        return upload

    def part_writer(self, upload: Upload) -> BodyWriter:
        return BodyWriter(_PartStore(self, upload))  # type: ignore[arg-type]  # parts always go to files, beside the upload

    def put_part(self, upload: Upload, number: int, writer: BodyWriter, checksums: dict[str, str]) -> dict[str, Any]:
        data_file, body = writer.finish()
        part = {
            "number": number,
            "size": writer.size,
            "etag": f'"{writer.md5.hexdigest()}"',
            "last_modified": self.clock(),
            "file": data_file,
            "checksums": checksums,
        }
        old = upload.parts.get(number)
        if self.root is not None:
            _write_json_atomic(self._upload_dir(upload.upload_id) / f"part-{number}.json", self.tmp_dir, part)
        upload.parts[number] = part
        if old is not None and old["file"] != data_file:
            (self._part_dir(upload) / old["file"]).unlink(missing_ok=True)
        return part

    def _part_dir(self, upload: Upload) -> Path:
        if self.root is not None:
            return self._upload_dir(upload.upload_id)
        path = self._spool / f"upload-{upload.upload_id}"
        path.mkdir(exist_ok=True)
        return path

    def part_path(self, upload: Upload, part: dict[str, Any]) -> Path:
        return self._part_dir(upload) / part["file"]

    def abort_upload(self, upload_id: str) -> None:
        upload = self.uploads.pop(upload_id)
        shutil.rmtree(self._part_dir(upload), ignore_errors=True)


class _PartStore:
    """Where a multipart part's body goes: always a file in the upload's folder."""

    def __init__(self, store: Store, upload: Upload) -> None:
        self.store = store
        self.upload = upload
        self.root = store.root or Path("/")  # never None: parts always spool

    def new_data_path(self) -> Path:
        return self.store._part_dir(self.upload) / f"{uuid.uuid4().hex}.part"

    def data_ref(self, path: Path) -> str:
        return path.name


def new_version_id() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex[:8]


def walk(bucket: Bucket, prefix: str, delimiter: str, after: str, limit: int) -> tuple[list[str], list[str], bool, str | None]:
    """Keys and common prefixes after `after`, up to `limit` together; (keys, prefixes, truncated, last item)."""
    keys = bucket.keys
    n = len(keys)
    start = max(prefix, after) if after else prefix
    if after and delimiter and after.startswith(prefix) and after.endswith(delimiter) and after.find(delimiter, len(prefix)) == len(after) - len(delimiter):
        i = past_prefix(keys, after, 0)  # `after` was a common prefix: skip everything under it
    else:
        i = bisect.bisect_right(keys, start) if start == after else bisect.bisect_left(keys, start)
    contents: list[str] = []
    prefixes: list[str] = []
    last = None
    while i < n:
        key = keys[i]
        if not key.startswith(prefix):
            break
        if limit <= len(contents) + len(prefixes):
            return contents, prefixes, True, last
        if delimiter:
            j = key.find(delimiter, len(prefix))
            if j >= 0:
                common = key[: j + len(delimiter)]
                prefixes.append(common)
                last = common
                i = past_prefix(keys, common, i)
                continue
        contents.append(key)
        last = key
        i += 1
    return contents, prefixes, False, last


def past_prefix(keys: list[str], prefix: str, lo: int) -> int:
    """The index of the first key at or after `lo` that does not start with `prefix` (keys sorted by code point,
    which is S3's UTF-8 byte order)."""
    stem = prefix.rstrip("\U0010ffff")
    if not stem:
        return len(keys)
    bound = stem[:-1] + chr(ord(stem[-1]) + 1)  # the least string above every one that starts with `prefix`
    return bisect.bisect_left(keys, bound, lo)
