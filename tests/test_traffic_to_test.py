"""Traffic → test: one upload's trace saved as a pytest file passes as generated in a separate pytest process, and
fails there when a scenario injects a fault into one hop (S3); a server's filtered journal saves the same way."""

from __future__ import annotations

import ast
import io
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
from PIL import Image

from conftest import wait_for_job
from mockpanel.testing import Mocks, settings_for

TRACE = "6e0c63257de34c92bf9efcd03927272e"


@pytest.fixture(scope="module")
def mocks():
    with Mocks(settings_for(["s3", "webhooks", "client", "imageapi"], {"imageapi": {"enabled": "true"}})) as running:
        yield running


def run_pytest(path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path), *args],
                          capture_output=True, text=True, cwd=path.parent, timeout=300)


def test_an_uploads_trace_becomes_a_test_that_passes_then_fails_with_a_fault(mocks, tmp_path):
    image = io.BytesIO()
    Image.new("RGB", (60, 40), (200, 90, 10)).save(image, "PNG")
    client = mocks.url("client")
    answer = httpx2.post(f"{client}/api/upload", files={"file": ("small.png", image.getvalue(), "image/png")},
                        data={"user_id": "recorder"}, headers={"traceparent": f"00-{TRACE}-1111111111111111-01"})
    assert wait_for_job(client, answer.json()["job_id"])["status"] == "completed"
    deadline_hops = 7  # upload, image API, four S3 PUTs, the webhook
    assert len(mocks.trace(TRACE)) == deadline_hops

    generated = httpx2.get(f"{client}/__mockpanel/traces/{TRACE}", params={"format": "pytest"})
    assert generated.status_code == 200 and generated.headers["content-type"].startswith("text/x-python")
    source = generated.text
    compile(source, "test_trace.py", "exec")  # valid Python
    assert "def test_trace_6e0c6325(mockpanel_factory):" in source and "('s3', 'PUT'" in source
    path = tmp_path / "test_trace.py"
    path.write_text(source)

    passed = run_pytest(path)
    assert passed.returncode == 0, passed.stdout + passed.stderr

    scenario = tmp_path / "s3-down.toml"
    scenario.write_text('name = "s3 down"\n[[step]]\nserver = "s3"\nfaults = { error_rate = 1.0, error_codes = [503] }\n')
    failed = run_pytest(path, "--mockpanel-scenario", str(scenario))
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "503" in failed.stdout  # the S3 hop's status differs from the recording


def test_a_servers_journal_becomes_a_test_with_masked_bodies(mocks, tmp_path):
    s3, webhooks = mocks.url("s3"), mocks.url("webhooks")
    mocks.reset()  # recorded from seed state, as the generated test's fresh mocks start
    assert httpx2.post(f"{webhooks}/webhooks/orders", json={"order": 7, "at": "2026-12-03T01:00:00Z"}).status_code == 200
    assert httpx2.get(f"{webhooks}/webhooks/events").status_code == 200
    source = httpx2.get(f"{webhooks}/__mockpanel/requests", params={"format": "pytest"}).text
    assert "masked(answer.json())" in source
    path = tmp_path / "test_webhooks_journal.py"
    path.write_text(source)
    result = run_pytest(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert s3  # the module's mocks run S3 too; this journal touched only the receiver


def test_a_recorded_path_cannot_write_code_into_the_generated_file(mocks):
    # The server decodes %0A in a path to a line break: in the comment naming a request left out (body cut by the
    # journal) it would end the comment and make the rest of the path a statement of the file someone then runs.
    webhooks = mocks.url("webhooks")
    path = "/webhooks/x%0Aimport%20os%0Aos.system(%22touch%20pwned%22)%0A%23"
    answer = httpx2.post(webhooks + path, content=b"x" * 5000, headers={"content-type": "application/octet-stream"})
    assert answer.status_code < 500
    source = httpx2.get(f"{webhooks}/__mockpanel/requests", params={"format": "pytest", "path": "/webhooks/x"}).text
    assert "left out" in source
    tree = ast.parse(source)
    assert not [node for node in ast.walk(tree) if isinstance(node, ast.Import) and node.names[0].name == "os"], source
    assert "os.system" not in "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("#"))


def test_odd_keys_replay_as_the_same_keys_and_redact_writes_no_credential(mocks, tmp_path):
    """Keys with ?, # and dot segments replay as those keys (they replayed as a query, a fragment and another key)."""
    from conftest import make_s3_client

    s3 = mocks.url("s3")
    mocks.reset()
    client = make_s3_client(s3)
    client.create_bucket(Bucket="odd")
    keys = ["a?x=1", "c#d", "e/../f", "g/./h", "100% sure", "ü+plus"]
    for key in keys:
        client.put_object(Bucket="odd", Key=key, Body=key.encode())
    httpx2.get(f"{s3}/health", headers={"Authorization": "Bearer secret-token-123"})
    source = httpx2.get(f"{s3}/__mockpanel/requests", params={"format": "pytest", "redact": "true"}).text
    assert "secret-token-123" not in source and "'***'" in source and "redacted (--redact)" in source
    plain = httpx2.get(f"{s3}/__mockpanel/requests", params={"format": "pytest", "method": "PUT"}).text
    # the replay stores each key under its own name: the file ends by listing the bucket
    path = tmp_path / "test_odd_keys.py"
    path.write_text(plain + f'''

def test_the_keys_are_the_recorded_ones(mockpanel_factory):
    mocks = mockpanel_factory(SERVERS, SETTINGS)
    test_s3_traffic(lambda *a: mocks)
    listing = httpx2.get(mocks.url("s3") + "/odd?list-type=2").text
    for key in {keys!r}:
        assert "<Key>" + key.replace("&", "&amp;") + "</Key>" in listing, (key, listing)
''')
    result = run_pytest(path, "-k", "the_keys_are")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_generated_test_runs_in_a_fresh_environment_holding_only_mockpanel(mocks, tmp_path):
    """What a user gets: the file saved from the journal, run where only mockpanel (and pytest, to run it) is installed —
    not this suite's environment, which has every test dependency besides."""
    import os
    import venv

    webhooks = mocks.url("webhooks")
    mocks.reset()
    assert httpx2.post(f"{webhooks}/webhooks/orders", json={"order": 7}).status_code == 200
    source = httpx2.get(f"{webhooks}/__mockpanel/requests", params={"format": "pytest"}).text
    assert "import httpx2" in source and "import httpx\n" not in source
    path = tmp_path / "test_saved.py"
    path.write_text(source)
    fresh = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=True).create(fresh)
    python = fresh / "bin" / "python"
    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    installed = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(root), "pytest"],
                               capture_output=True, text=True, timeout=900, env=env)
    assert installed.returncode == 0, installed.stderr[-3000:]
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, env=env).stdout
    assert "boto3" not in listed and "playwright" not in listed  # the test extra is not there
    result = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
