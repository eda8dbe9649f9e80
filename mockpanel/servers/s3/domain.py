"""The S3 mock's domain facade: buckets and objects as the panel, the palette, the control API and the protocol
change them. Every change goes through Storage, which sends its bus event; Store underneath keeps the bytes."""

from __future__ import annotations

import bisect
from typing import NamedTuple

from ...service import ServerContext
from ...spec import NotFound
from .signing import presign_v4
from .storage import Bucket, ObjectMeta, Store, past_prefix, walk


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


class Storage:
    def __init__(self, ctx: ServerContext, store: Store) -> None:
        self.ctx = ctx
        self.store = store
        self.settings = ctx.settings

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
        found.versioning = status
        self.store.save_bucket(found)
        self.ctx.event("bucket_versioning", bucket=bucket, status=status)

    def reset(self) -> None:
        """Every bucket and upload gone; the configured buckets come back empty (the server's reset event follows)."""
        self.store.reset()
        self.seed()

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

