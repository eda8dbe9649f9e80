"""Storage pane: the S3 mock's buckets and objects; copy a presigned URL, delete an object, reset."""

from __future__ import annotations

import time

from textual import on
from textual.binding import Binding
from textual.widgets import DataTable, Static

from ..display import plain
from ..spec import DomainError
from .base import Pane

MAX_OBJECTS = 1000


class StoragePane(Pane):
    TITLE = "Storage"
    KEY = "storage"
    SERVERS = ("s3",)
    BINDINGS = [
        Binding("u", "presign", "Copy presigned URL", tooltip="A GET URL for the selected object, valid one hour"),
        Binding("delete,d", "delete_object", "Delete object"),
        Binding("x", "reset", "Reset S3"),
    ]

    def __init__(self, hub) -> None:
        super().__init__(hub)
        self.bucket: str | None = None

    def compose(self):
        if self.runner("s3") is None:
            yield Static("The S3 server is not running (see --only).", classes="empty")
            return
        buckets = DataTable(id="buckets-table", cursor_type="row")
        buckets.add_columns("bucket", "objects", "bytes", "region")
        yield buckets
        objects = DataTable(id="objects-table", cursor_type="row", zebra_stripes=True)
        objects.add_columns("key", "size", "content type", "modified", "etag", "metadata")
        yield objects

    @property
    def storage(self):
        return self.facade("s3")

    def refresh_view(self) -> None:
        if self.storage is None:
            return
        table = self.query_one("#buckets-table", DataTable)
        table.clear()
        buckets = self.storage.buckets()
        names = [b.name for b in buckets]
        for bucket in buckets:
            table.add_row(plain(bucket.name), str(bucket.objects), str(bucket.size), bucket.region, key=bucket.name)
        if self.bucket not in names:
            self.bucket = names[0] if names else None
        if self.bucket is not None:
            table.move_cursor(row=names.index(self.bucket))
        self.show_objects()

    def show_objects(self) -> None:
        table = self.query_one("#objects-table", DataTable)
        cursor = table.cursor_row
        table.clear()
        if self.bucket is None:
            return
        try:
            objects = self.storage.objects(self.bucket, limit=MAX_OBJECTS)
        except DomainError:  # deleted meanwhile; its event redraws the buckets
            return
        for meta in objects:
            key = meta.key
            metadata = ", ".join(f"{k}={v}" for k, v in meta.metadata.items())
            table.add_row(plain(key), str(meta.size), plain(meta.content_type), time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(meta.last_modified)),
                          plain(meta.etag.strip('"')), plain(metadata), key=key)
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))

    @on(DataTable.RowHighlighted, "#buckets-table")
    def bucket_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value != self.bucket:
            self.bucket = str(event.row_key.value)
            self.show_objects()

    def selected_key(self) -> str | None:
        table = self.query_one("#objects-table", DataTable)
        if not table.row_count:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def action_presign(self) -> None:
        key = self.selected_key()
        if key is None or self.bucket is None:
            return
        self.copy_presigned(self.bucket, key)

    def copy_presigned(self, bucket: str, key: str) -> None:
        url = self.storage.presign("GET", bucket, key, 3600)
        self.app.copy_and_show(url, f"Presigned URL for {bucket}/{key}", f"presigned URL for {key} copied (valid 1 h)")

    def action_delete_object(self) -> None:
        key = self.selected_key()
        if key is None or self.bucket is None:
            return
        try:
            self.storage.delete_object(self.bucket, key)
        except DomainError as exc:
            self.app.notify(exc.message, severity="error")
            return
        self.app.notify(f"deleted {self.bucket}/{key}")

    async def action_reset(self) -> None:
        await self.app.reset_server("s3")
