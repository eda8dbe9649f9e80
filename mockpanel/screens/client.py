"""Client app pane: uploads made through the client app and the jobs of the reference image API."""

from __future__ import annotations

from textual.widgets import DataTable, Static

from ..display import plain
from .base import Pane


class ClientPane(Pane):
    TITLE = "Client app"
    KEY = "client"
    SERVERS = ("client", "imageapi")

    def compose(self):
        if self.runner("client") is None and self.runner("imageapi") is None:
            yield Static("Neither the client app nor the image API is running (mockpanel --demo runs both).", classes="empty")
            return
        table = DataTable(id="client-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("uploaded", "file", "user", "HTTP", "job", "status", "detail")
        yield table

    def refresh_view(self) -> None:
        if not self.query(DataTable):
            return
        table = self.query_one(DataTable)
        table.clear()
        image_api, client_app = self.facade("imageapi"), self.facade("client")
        jobs = {job.job_id: job for job in image_api.jobs()} if image_api is not None else {}
        history = client_app.uploads() if client_app is not None else []
        seen = set()
        for upload in history[:500]:
            job = jobs.get(upload.get("job_id") or "")
            seen.add(upload.get("job_id"))
            status = job.status if job else upload.get("status") or ""
            detail = (job.error if job else None) or upload.get("detail") or ""
            table.add_row((upload.get("uploaded_at") or "")[11:19], plain(upload.get("filename") or ""), plain(upload.get("user_id") or ""),
                          str(upload.get("http_status") or ""), plain((upload.get("job_id") or "—")[:12]), status, plain(detail))
        for job in list(jobs.values())[-200:]:
            if job.job_id not in seen:  # uploads made straight to the image API
                table.add_row(job.view()["created_at"][11:19], plain(job.filename), plain(job.user_id), "202", job.job_id[:12], job.status, plain(job.error or ""))
