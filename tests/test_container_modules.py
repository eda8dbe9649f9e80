"""The image from other test suites: mockpanel's Testcontainers module for Python (driven only through its public API,
boto3 and httpx2), and the recipe for Node's testcontainers, run with Node."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx2
import jwt
import pytest

from conftest import node_packages
from containers import built_image, docker

pytestmark = pytest.mark.timeout(900)
NODE_RECIPE = Path(__file__).resolve().parent / "node_recipe"


@pytest.fixture(scope="session")
def image(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    return built_image(base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base)


@pytest.fixture(autouse=True)
def _no_reaper(monkeypatch):
    # Testcontainers' reaper (Ryuk) is an image from a registry, and none is reachable here: each test removes its own.
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    from testcontainers.core.config import testcontainers_config

    monkeypatch.setattr(testcontainers_config, "ryuk_disabled", True)  # read at import: this process may have imported it


def test_the_python_module_gives_urls_clients_tokens_and_the_control_api(image):
    from mockpanel.testcontainers import MockpanelContainer

    with MockpanelContainer(image, bind="127.0.0.1") as mocks:
        assert set(mocks.urls) == {"auth", "s3", "webhooks", "client"}
        s3 = mocks.s3_client()
        s3.create_bucket(Bucket="from-a-container")
        s3.put_object(Bucket="from-a-container", Key="a.txt", Body=b"hello")
        assert s3.get_object(Bucket="from-a-container", Key="a.txt")["Body"].read() == b"hello"

        token = mocks.token()
        claims = jwt.decode(token, "dev-secret-key-change-in-production", algorithms=["HS256"], options={"verify_aud": False})
        assert claims["email"] == "alice@example.com"

        # the control API needs the module's token: another client without it is refused
        assert httpx2.get(mocks.get_url("s3") + "/__mockpanel/faults").status_code == 401
        with mocks.faults("s3", fail_next=1, fail_next_code=503):
            assert httpx2.get(mocks.get_url("s3") + "/from-a-container/a.txt").status_code == 503
        assert mocks.control("s3", "GET", "faults")["fail_next"] == 0
        with mocks.toxic("auth", "latency", latency=50):
            assert [t["type"] for t in mocks.control("auth", "GET", "toxiproxy/proxies/auth/toxics")] == ["latency"]
        assert mocks.control("auth", "GET", "toxiproxy/proxies/auth/toxics") == []
        scenario = '[[step]]\nat = 0\nserver = "auth"\nfaults = { fail_next = 2 }\n'
        with mocks.scenario(scenario):
            assert _until(lambda: mocks.control("auth", "GET", "faults")["fail_next"] == 2)
        assert any(r["path"] == "/from-a-container/a.txt" for r in mocks.requests("s3"))
        mocks.reset()
        assert mocks.requests("s3") == [] and s3.list_buckets()["Buckets"] == []
        name = mocks.get_wrapped_container().name
    assert docker("ps", "-a", "-q", "--filter", f"name={name}").stdout.strip() == ""  # removed at the end of the block


def docs_block(name: str, language: str) -> str:
    import re

    page = (Path(__file__).resolve().parent.parent / "docs" / "any-language.md").read_text()
    found = re.search(rf"<!-- example: {name} -->\n```{language}\n(.*?)```", page, re.S)
    assert found, f"docs/any-language.md lost its {name} example"
    return found.group(1)


def test_the_docs_python_example_runs_as_written(image, capsys):
    exec(compile(docs_block("testcontainers-python", "python"), "docs/any-language.md", "exec"), {"IMAGE": image})
    printed = capsys.readouterr().out
    assert "'auth': 'http://127.0.0.1:" in printed and "/uploads" in printed


def test_the_docs_node_recipe_is_the_one_the_suite_runs():
    assert docs_block("node-recipe", "javascript") == (NODE_RECIPE / "recipe.test.mjs").read_text()


def _until(condition, limit: float = 20) -> bool:
    import time

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_the_node_recipe_runs_with_nodes_testcontainers(image, tmp_path):
    node_packages(NODE_RECIPE, "testcontainers", "the Node recipe")
    env = {**os.environ, "MOCKPANEL_IMAGE": image, "TESTCONTAINERS_RYUK_DISABLED": "true"}
    done = subprocess.run(["node", "--test", "recipe.test.mjs"], cwd=NODE_RECIPE, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "# pass 1" in done.stdout and "# fail 0" in done.stdout
