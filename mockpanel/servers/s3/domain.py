"""The S3 mock's domain facade: buckets and objects as the panel, the palette, the control API and the protocol
change them. Every change goes through Storage, which sends its bus event; Store underneath keeps the bytes."""

from __future__ import annotations

import asyncio
import bisect
import shutil
import uuid
from typing import Any, NamedTuple

from ...service import ServerContext
from ...spec import Conflict, Invalid, NotFound
from ...wire import record
from .governance import locked
from .lifecycle import DAY, due
from .request import valid_bucket_name
from .signing import presign_v4
from .storage import Bucket, ObjectMeta, Store, past_prefix, walk


@record
class BucketView(NamedTuple):
    name: str
    region: str
    created: float
    objects: int
    size: int


class Page(NamedTuple):
    """One page of a bucket seen as folders: the common prefixes ("folders") and objects directly under `prefix`."""

    folders: list[str]
    objects: list[ObjectMeta]
    more: bool  # another page follows
    last: str | None  # give it as `after` for the next page
    under_prefix: int  # objects anywhere under the prefix (for "1,000 of 1,500 shown")


LIFECYCLE_COUNTS = ("expired", "noncurrent_removed", "markers_removed", "uploads_aborted")


class Storage:
    def __init__(self, ctx: ServerContext, store: Store) -> None:
        self.ctx = ctx
        self.store = store
        self.settings = ctx.settings
        store.clock = self.now  # every time the store stamps is the mock's
        ctx.clock.listen(ctx.name, self._clock_moved)  # lifecycle rules act whenever the mocks' clock moves forward

    # --- the mocks' clock (clock.py): what lifecycle rules and retention dates are judged by; this is a view of it ---

    def now(self) -> float:
        return self.ctx.clock()

    @property
    def clock_offset(self) -> float:
        """Seconds the mocks' clock is ahead of the wall clock (behind: negative)."""
        return round(self.ctx.clock() - self.ctx.clock.wall(), 3)

    def _clock_moved(self, before: float, after: float) -> dict[str, int] | None:
        if after <= before:
            return None
        done = self.apply_lifecycle()
        return done if any(done.values()) else None

    def advance_clock(self, seconds: float) -> dict[str, int]:
        """Move the mocks' clock forward (every server's: it is one clock) and apply every lifecycle rule at the new
        time: the counts."""
        if not 0 <= seconds <= 100 * 365 * DAY:
            raise Invalid("the clock moves forward, by at most 100 years")
        effects = self.ctx.clock.change(advance_s=seconds)["effects"]
        self.ctx.event("s3_clock", offset_s=self.clock_offset, now=self.now())
        return effects.get(self.ctx.name) or dict.fromkeys(LIFECYCLE_COUNTS, 0)

    def reset_clock(self) -> None:
        self.ctx.clock.reset()
        self.ctx.event("s3_clock", offset_s=0.0, now=self.now())

    def apply_lifecycle(self) -> dict[str, int]:
        """Apply every bucket's enabled lifecycle rules now (as AWS's daily run would): expire current versions
        (a delete marker in a versioned bucket), noncurrent versions and lone delete markers, abort old uploads.
        A version under Object Lock (retention to come, or legal hold) is left, as AWS leaves it."""
        now = self.now()
        done = dict.fromkeys(LIFECYCLE_COUNTS, 0)
        for bucket in list(self.store.buckets.values()):
            found = due(self.store, bucket, now)
            for key in found["current"]:
                if self.remove(bucket.name, key, None) is not None:
                    done["expired"] += 1
            for what, counter in (("noncurrent", "noncurrent_removed"), ("markers", "markers_removed")):
                for key, version_id in found[what]:
                    version = next((v for v in self.store.versions_of(bucket, key) if (v.version_id or "null") == version_id), None)
                    if version is None or locked(version, now):
                        continue
                    if self.remove(bucket.name, key, version_id) is not None:
                        done[counter] += 1
            for upload_id in found["uploads"]:
                self.store.abort_upload(upload_id)
                done["uploads_aborted"] += 1
        if any(done.values()):
            self.ctx.event("lifecycle_applied", **done)
        return done

    def status(self) -> dict[str, Any]:
        return {"offset_s": self.clock_offset, "now": self.now()}

    # --- reading ---

    def buckets(self) -> list[BucketView]:
        """Every bucket, by name."""
        return [BucketView(b.name, b.region, b.created, len(b.objects), sum(m.size for m in b.objects.values()))
                for b in sorted(self.store.buckets.values(), key=lambda b: b.name)]

    def _bucket(self, name: str) -> Bucket:
        bucket = self.store.buckets.get(name)
        if bucket is None:
            raise NotFound(f"bucket {name!r} does not exist")
        return bucket

    def objects(self, bucket: str, *, prefix: str = "", limit: int | None = None) -> list[ObjectMeta]:
        """A bucket's objects by key (at most `limit`, from the first key under `prefix`)."""
        found = self._bucket(bucket)
        keys = found.keys if not prefix else [k for k in found.keys if k.startswith(prefix)]
        return [found.objects[k] for k in (keys if limit is None else keys[:limit])]

    def browse(self, bucket: str, prefix: str = "", *, after: str = "", limit: int = 1000, delimiter: str = "/") -> Page:
        """A page of what is directly under `prefix`, as S3 lists it with a delimiter (folders and objects by key)."""
        found = self._bucket(bucket)
        keys, folders, more, last = walk(found, prefix, delimiter, after, limit)
        start = bisect.bisect_left(found.keys, prefix)
        under = past_prefix(found.keys, prefix, start) - start if prefix else len(found.keys)
        return Page(folders, [found.objects[k] for k in keys], more, last, under)

    def object_count(self) -> int:
        return sum(len(b.objects) for b in self.store.buckets.values())

    # --- changing ---

    def create_bucket(self, name: str, region: str) -> Bucket:
        bucket = self.store.create_bucket(name, region)
        self.ctx.event("bucket_created", bucket=name)
        return bucket

    def delete_bucket(self, name: str) -> None:
        self.store.delete_bucket(name)
        self.ctx.event("bucket_deleted", bucket=name)

    def commit(self, bucket: Bucket, meta: ObjectMeta) -> None:
        """Make an object (its body already written) the current one under its key."""
        self.store.put(bucket, meta)
        self.ctx.event("object_stored", bucket=bucket.name, key=meta.key, size=meta.size, etag=meta.etag)

    def delete_object(self, bucket: str, key: str) -> bool:
        """Delete an object; False when there was none (S3 answers the same either way)."""
        return self.remove(bucket, key, None) is not None

    def remove(self, bucket: str, key: str, version_id: str | None) -> ObjectMeta | None:
        """Delete a key (in a versioned bucket: a delete marker, returned), or with `version_id` that version for good
        (returned). None when there was nothing to delete."""
        found = self._bucket(bucket)
        gone = self.store.delete(found, key) if version_id is None else self.store.delete_version(found, key, version_id)
        if gone is not None:
            self.ctx.event("object_deleted", bucket=bucket, key=key, version_id=version_id)
        return gone

    def set_versioning(self, bucket: str, status: str) -> None:
        found = self._bucket(bucket)
        if found.object_lock and status != "Enabled":
            raise Conflict(f"bucket {bucket!r} has Object Lock: its versioning stays Enabled (as AWS keeps it)")
        found.versioning = status
        self.store.save_bucket(found)
        self.ctx.event("bucket_versioning", bucket=bucket, status=status)

    def reset(self) -> None:
        """Every bucket and upload gone; the configured buckets come back empty (the server's reset event follows)."""
        self.store.reset()
        self.seed()

    # --- snapshots (state.py) ---

    @property
    def staging_dir(self) -> Any:
        """Where a snapshot's archive is unpacked: beside the bodies, so that they are linked into place, not copied."""
        return self.store.root or self.store.tmp_dir

    def export_state(self, blobs: Any) -> dict[str, Any]:
        """Every bucket with its configuration, objects and versions (delete markers too); bodies as blobs, kept from
        deletion until the snapshot is written. Multipart uploads in progress are not part of it."""
        store = self.store
        blobs.done.append(store.pin())

        def record(meta: ObjectMeta) -> dict[str, Any]:
            found = meta.to_json()
            found.pop("data_file", None)
            if not meta.delete_marker:
                found["blob"] = blobs.of_bytes(meta.body) if meta.body is not None else blobs.of_file(store.data_path(meta), meta.size)
            return found

        return {"buckets": [{"name": b.name, "created": b.created, "region": b.region, **{k: getattr(b, k) for k in Bucket.SETTINGS},
                             "objects": [record(m) for m in b.objects.values()],
                             "history": {key: [record(m) for m in versions] for key, versions in b.history.items()}}
                            for b in store.buckets.values()]}

    async def prepare_state(self, doc: dict[str, Any], blobs: Any) -> Any:
        from ...state import Prepared, StateError

        records = doc.get("buckets")
        if not isinstance(records, list) or not all(isinstance(r, dict) and isinstance(r.get("name"), str) for r in records):
            raise StateError("buckets must be a list of bucket records")
        for raw in records:
            if not valid_bucket_name(raw["name"], legacy=True):
                raise StateError(f"{raw['name'][:80]!r} is not a bucket name")
        store = self.store
        staged = store.root / f"incoming-{uuid.uuid4().hex}" if store.root is not None else None
        try:
            buckets, made = await asyncio.to_thread(store.stage, records, blobs, staged)
        except StateError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            if staged is not None:
                shutil.rmtree(staged, ignore_errors=True)
            raise StateError(f"not an S3 state this mockpanel wrote ({type(exc).__name__}: {str(exc)[:160]})") from None

        def apply() -> None:
            store.replace_all(buckets, staged)
            self.ctx.event("buckets_loaded", buckets=len(buckets), objects=sum(len(b.objects) for b in buckets.values()))

        def discard() -> None:
            for path in made:
                path.unlink(missing_ok=True)
            if staged is not None:
                shutil.rmtree(staged, ignore_errors=True)

        return Prepared(apply, discard)

    def seed(self) -> None:
        """Create the configured buckets (s3.buckets) that do not exist; a data directory keeps what it has."""
        for name in self.settings["buckets"]:
            if name not in self.store.buckets:
                self.store.create_bucket(name, self.settings["region"])

    # --- presigned URLs ---

    def presign(self, method: str, bucket: str, key: str, expires_in: int = 3600, base_url: str | None = None,
                now: float | None = None) -> str:
        """A SigV4 presigned URL signed with the first configured key pair (what /presigned-url and the panel hand
        out); the base is presigned_url_base, else `base_url`, else this server's own URL."""
        s = self.settings
        base = s["presigned_url_base"] or base_url or self.ctx.peers().get(self.ctx.name) or f"http://localhost:{s.port}"
        first = s["access_keys"][0] if s["access_keys"] else "test-key:test-secret"
        access_key, _, secret = first.partition(":")
        return presign_v4(base, method, bucket, key, access_key, secret, expires_in, s["region"], self.ctx.clock() if now is None else now)

