"""Journal exports can mask credentials: Authorization, cookies, API keys, signature and token query parameters,
and token or password fields of bodies."""

from __future__ import annotations

import json

import httpx2

from conftest import ServeProcess

SECRETS = ("password123", "Bearer abc.def.ghi", "session=s3cr3t", "k3y-v4lue", "SIGNATUREVALUE", "eyJ")


def _traffic(url: str) -> None:
    httpx2.post(f"{url}/api/auth/login", json={"email": "alice@example.com", "password": "password123"})  # answer: tokens
    httpx2.get(f"{url}/api/auth/me", headers={"Authorization": "Bearer abc.def.ghi", "Cookie": "session=s3cr3t", "X-Api-Key": "k3y-v4lue"})
    httpx2.get(f"{url}/health", params={"X-Amz-Signature": "SIGNATUREVALUE", "keep": "visible"})


def test_control_api_exports_mask_credentials_when_asked(auth_url):
    _traffic(auth_url)
    for fmt in ("har", "jsonl", "json"):
        plain = httpx2.get(f"{auth_url}/__mockpanel/requests", params={"format": fmt}).text
        masked = httpx2.get(f"{auth_url}/__mockpanel/requests", params={"format": fmt, "redact": "true"}).text
        assert all(secret in plain for secret in SECRETS), fmt
        assert not any(secret in masked for secret in SECRETS), (fmt, [s for s in SECRETS if s in masked])
        assert "visible" in masked and "alice@example.com" in masked and "***" in masked
    har = httpx2.get(f"{auth_url}/__mockpanel/requests", params={"format": "har", "redact": "true"}).json()
    assert len(har["log"]["entries"]) == 3


def test_serve_writes_a_masked_journal_file_with_redact(tmp_path):
    journal = tmp_path / "journal.jsonl"
    with ServeProcess("--only", "auth", "--auth-port", "0", "--journal-out", str(journal), "--redact") as serve:
        url = serve.readline().split(" at ")[1]
        _traffic(url)
        for _ in range(3):
            serve.readline()  # the three request lines: the journal line of each is written by then
        assert serve.stop() == 0
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    assert len(lines) == 3
    assert not any(secret in journal.read_text() for secret in SECRETS)
