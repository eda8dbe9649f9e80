"""Storage pane: the S3 mock's buckets, and a bucket's objects as folders by `/` (like the AWS console), a page at
a time; copy a presigned URL, delete an object, reset."""

from __future__ import annotations

import time
from typing import Any

from textual import on
from textual.binding import Binding
from textual.widgets import DataTable, Static

from ..display import plain
from ..spec import DomainError
from ..hubclient import panel_op, server_urls
from .base import Pane, cursor_key, cut, restore_cursor, size_text
from .dialogs import ConfirmDialog, PromptDialog

PAGE = 1000  # objects listed at once; m lists the next page too
UP = "\x00up"  # row keys of the rows that are not objects (object keys are valid UTF-8 without NUL)
FOLDER = "\x00folder:"


# --- what the pane reads and asks, run on the servers' loop ---


@panel_op
def browse(hub: Any, bucket: str, prefix: str, limit: int) -> tuple[list[str], list[tuple], bool, int] | None:
    """A page of a bucket as folders and objects — (folders, objects as (key, size, content type, modified, etag,
    metadata shown), more, under prefix) — or None when the bucket is gone."""
    try:
        page = hub.facade("s3").browse(bucket, prefix, limit=limit)
    except DomainError:
        return None
    objects = [(m.key, m.size, m.content_type, m.last_modified, m.etag, ", ".join(f"{k}={v}" for k, v in m.metadata.items())) for m in page.objects]
    return page.folders, objects, page.more, page.under_prefix


STORAGE_CALLS = frozenset({"delete_object", "presign", "advance_clock", "object_count", "buckets", "clock_offset"})


@panel_op
def storage_call(hub: Any, method: str, *args: Any) -> Any:
    """One of the Storage facade's operations (delete_object, presign, advance_clock, object_count, buckets), or its
    clock's offset."""
    if method not in STORAGE_CALLS:
        raise ValueError(f"not a storage operation of the panel: {method[:40]!r}")
    storage = hub.facade("s3")
    return storage.clock_offset if method == "clock_offset" else getattr(storage, method)(*args)


class StoragePane(Pane):
    TITLE = "Storage"
    KEY = "storage"
    SERVERS = ("s3",)
    BINDINGS = [
        Binding("enter", "open", "Open folder", tooltip="Into the selected folder (.. goes up)"),
        Binding("backspace", "up", "Up", tooltip="To the folder above"),
        Binding("m", "more", "More", tooltip=f"List the next {PAGE:,} objects of this folder"),
        Binding("c", "presign", "Copy presigned URL", tooltip="A GET URL for the selected object, valid one hour"),
        Binding("u", "presign", "Copy presigned URL", show=False),
        Binding("x,delete", "delete_object", "Delete object…", tooltip="Delete the selected object (asks first)"),
        Binding("X", "reset", "Reset S3…", tooltip="Every bucket and object gone, the configured buckets back (asks first)"),
        Binding("L", "advance_clock", "Advance clock…", tooltip="Move the mocks' clock forward some days: S3's lifecycle rules expire what they name"),
    ]

    def __init__(self, hub) -> None:
        super().__init__(hub)
        self.bucket: str | None = None
        self.prefix = ""
        self.pages = 1

    def compose(self):
        if not self.serves("s3"):
            yield Static("The S3 server is not running (see --only).", classes="empty")
            return
        buckets = DataTable(id="buckets-table", cursor_type="row")
        buckets.add_columns("bucket", "objects", "size", "region")
        yield buckets
        yield Static("", id="objects-status")
        objects = DataTable(id="objects-table", cursor_type="row", zebra_stripes=True)
        objects.add_columns("key", "size", "content type", "modified", "etag", "metadata")
        yield objects

    def refresh_view(self) -> None:
        if not self.serves("s3"):
            return
        table = self.query_one("#buckets-table", DataTable)
        table.clear()
        buckets = self.client.read(storage_call, "buckets")
        names = [b.name for b in buckets]
        for bucket in buckets:
            table.add_row(plain(bucket.name), f"{bucket.objects:,}", size_text(bucket.size), bucket.region, key=bucket.name)
        if self.bucket not in names:
            self.bucket, self.prefix, self.pages = (names[0] if names else None), "", 1
        if self.bucket is not None:
            table.move_cursor(row=names.index(self.bucket))
        self.show_objects()

    def show_objects(self) -> None:
        table = self.query_one("#objects-table", DataTable)
        status = self.query_one("#objects-status", Static)
        key, row = cursor_key(table), table.cursor_row
        table.clear()
        if self.bucket is None:
            status.update(plain("No buckets yet: aws --endpoint-url " + self.read(server_urls).get("s3", "") + " s3 mb s3://my-bucket"))
            return
        page = self.read(browse, self.bucket, self.prefix, PAGE * self.pages)
        if page is None:  # deleted meanwhile; its event redraws the buckets
            return
        folders, objects, more, under_prefix = page
        if self.prefix:
            table.add_row("..", "", "folder above", "", "", "", key=UP)
        for folder in folders:
            table.add_row(plain(cut(folder[len(self.prefix):], 60)), "", "folder", "", "", "", key=FOLDER + folder)
        for key_name, size, content_type, modified, etag, metadata in objects:
            table.add_row(plain(cut(key_name[len(self.prefix):], 60)), size_text(size), plain(cut(content_type, 30)),
                          time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(modified)), plain(etag.strip('"')[:12]),
                          plain(cut(metadata, 40)), key=key_name)
        listed = len(objects) + len(folders)
        where = f"s3://{self.bucket}/{self.prefix}"
        if more:
            counted = f"{len(objects):,} of {under_prefix:,} objects shown" + (f" and {len(folders):,} folders" if folders else "")
            status.update(plain(f"{where} · {counted} · m lists {PAGE:,} more"))
        else:
            status.update(plain(f"{where} · {listed:,} entries" + (" · Enter opens a folder, Backspace goes up" if folders or self.prefix else "")))
        restore_cursor(table, key, row)

    @on(DataTable.RowHighlighted, "#buckets-table")
    def bucket_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value != self.bucket:
            self.bucket, self.prefix, self.pages = str(event.row_key.value), "", 1
            self.show_objects()

    def selected_key(self) -> str | None:
        """The selected object's key (None on a folder row)."""
        key = cursor_key(self.query_one("#objects-table", DataTable))
        return None if key is None or key.startswith("\x00") else key

    def acts_on(self) -> str:
        if not self.serves("s3"):
            return ""
        key = self.selected_key()
        return f"{self.bucket}/{key}" if key is not None else (f"s3://{self.bucket}/{self.prefix}" if self.bucket else "")

    @on(DataTable.RowSelected, "#objects-table")
    def row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        key = cursor_key(self.query_one("#objects-table", DataTable))
        if key == UP:
            self.action_up()
        elif key is not None and key.startswith(FOLDER):
            self._go(key[len(FOLDER):])

    def action_up(self) -> None:
        if self.prefix:
            above = self.prefix[: self.prefix.rstrip("/").rfind("/") + 1]
            self._go(above, select=FOLDER + self.prefix)

    def _go(self, prefix: str, select: str | None = None) -> None:
        self.prefix, self.pages = prefix, 1
        table = self.query_one("#objects-table", DataTable)
        table.clear()
        self.show_objects()
        restore_cursor(table, select, 1 if prefix else 0)  # on the first entry, not on ".."

    def action_more(self) -> None:
        self.pages += 1
        self.show_objects()

    def action_presign(self) -> None:
        key = self.selected_key()
        if key is None or self.bucket is None:
            return
        self.copy_presigned(self.bucket, key)

    def copy_presigned(self, bucket: str, key: str) -> None:
        url = self.client.read(storage_call, "presign", "GET", bucket, key, 3600)
        self.app.copy_and_show(url, f"Presigned URL for {bucket}/{key}", f"presigned URL for {key} copied (valid 1 h)")

    def action_delete_object(self) -> None:
        key, bucket = self.selected_key(), self.bucket
        if key is None or bucket is None:
            return

        def delete(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.client.command(storage_call, "delete_object", bucket, key)
            except DomainError as exc:
                self.app.notify(exc.message, severity="error")
                return
            self.app.notify(f"deleted {bucket}/{key}")

        self.app.push_screen(ConfirmDialog(f"Delete s3://{bucket}/{key}?"), delete)

    def action_advance_clock(self) -> None:
        def advance(answer: str | None) -> None:
            if not answer:
                return
            try:
                days = float(answer)
                applied = self.client.command(storage_call, "advance_clock", days * 86_400)
            except ValueError:
                self.app.notify(f"{answer!r} is not a number of days", severity="error")
                return
            except DomainError as exc:
                self.app.notify(str(exc), severity="error")
                return
            done = ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in applied.items() if n) or "nothing expired"
            offset = self.read(storage_call, "clock_offset")
            self.app.notify(f"the mocks' clock is {offset / 86_400:g} days ahead: {done}")
            self.refresh_view()

        if self.serves("s3"):
            self.app.push_screen(PromptDialog("Advance the mocks' clock (every server's) by how many days? S3's lifecycle rules apply at once", "1"), advance)

    def action_reset(self) -> None:
        async def reset(yes: bool | None) -> None:
            if yes:
                await self.app.reset_server("s3")

        count = self.client.read(storage_call, "object_count")
        self.app.push_screen(ConfirmDialog(f"Reset S3: delete every bucket and all {count:,} objects?"), reset)
