"""Client app pane: uploads made through the client app and the jobs of the reference image API; Enter shows one
upload with its job."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.widgets import DataTable, Static

from ..display import plain
from ..hubclient import panel_op
from .base import Pane, cursor_key, cut, restore_cursor
from .dialogs import TextDialog

JOB_STYLES = {"completed": "green", "failed": "bold red", "processing": "yellow", "pending": "yellow"}


@panel_op
def client_state(hub: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The client app's uploads (newest 500, copies) and the image API's jobs (their views), read on the servers' loop."""
    image_api, client_app = hub.facade("imageapi"), hub.facade("client")
    jobs = [job.view() for job in image_api.jobs()] if image_api is not None else []
    history = [dict(upload) for upload in client_app.uploads()[:500]] if client_app is not None else []
    return history, jobs


class ClientPane(Pane):
    TITLE = "Client app"
    KEY = "client"
    SERVERS = ("client", "imageapi")
    BINDINGS = [Binding("enter", "detail", "Detail", tooltip="The selected upload and its image API job")]

    def __init__(self, client) -> None:
        super().__init__(client)
        self.rows: dict[str, dict[str, Any]] = {}  # row key -> what the detail shows

    def compose(self):
        if not self.serves("client") and not self.serves("imageapi"):
            yield Static("Neither the client app nor the image API is running (mockpanel --demo runs both).", classes="empty")
            return
        table = DataTable(id="client-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("uploaded", "file", "user", "HTTP", "job", "status", "detail")
        yield table

    def refresh_view(self) -> None:
        if not self.query(DataTable):
            return
        table = self.query_one(DataTable)
        key, row = cursor_key(table), table.cursor_row
        table.clear()
        self.rows.clear()
        history, views = self.read(client_state)
        jobs = {job["job_id"]: job for job in views}
        seen = set()
        for n, upload in enumerate(history):
            job = jobs.get(upload.get("job_id") or "")
            seen.add(upload.get("job_id"))
            status = job["status"] if job else upload.get("status") or ""
            detail = (job["error"] if job else None) or upload.get("detail") or ""
            row_key = f"upload-{upload.get('request_id') or n}"
            self.rows[row_key] = {"upload": upload, "job": job}
            table.add_row((upload.get("uploaded_at") or "")[11:19], plain(cut(upload.get("filename") or "", 30)),
                          plain(cut(upload.get("user_id") or "", 20)), str(upload.get("http_status") or ""),
                          plain((upload.get("job_id") or "—")[:12]), Text(status, style=JOB_STYLES.get(status, "")),
                          plain(cut(str(detail), 60)), key=row_key)
        for job in list(jobs.values())[-200:]:
            if job["job_id"] not in seen:  # uploads made straight to the image API
                self.rows[job["job_id"]] = {"upload": None, "job": job}
                table.add_row(job["created_at"][11:19], plain(cut(job["filename"], 30)), plain(cut(job["user_id"], 20)), "202",
                              job["job_id"][:12], Text(job["status"], style=JOB_STYLES.get(job["status"], "")), plain(cut(job["error"] or "", 60)),
                              key=job["job_id"])
        restore_cursor(table, key, row)

    @on(DataTable.RowSelected, "#client-table")
    def row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_detail()

    def action_detail(self) -> None:
        if not self.query(DataTable):
            return
        key = cursor_key(self.query_one(DataTable))
        shown = self.rows.get(key) if key is not None else None
        if shown is None:
            return
        parts = []
        if shown["upload"] is not None:
            parts.append("Upload through the client app:\n" + json.dumps(shown["upload"], indent=2, ensure_ascii=False, default=str))
        parts.append("Image API job:\n" + (json.dumps(shown["job"], indent=2, ensure_ascii=False, default=str) if shown["job"]
                                         else "(none: the image API did not accept it)"))
        name = (shown["upload"] or shown["job"] or {}).get("filename") or "upload"
        self.app.push_screen(TextDialog(f"Upload {name}", "\n\n".join(parts), "Esc closes"))
