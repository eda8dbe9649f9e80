"""schemathesis against the OpenAPI of every JSON server (auth, webhooks, client app, reference image API) and the
control API: whatever it generates, no 5xx (no faults are on), and every documented response matches its schema."""

from __future__ import annotations

import os
import httpx2
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from mockpanel.testing import RunningHub, settings_for

SERVERS = ["auth", "webhooks", "client", "imageapi", "s3"]
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture(scope="module")
def hub():
    with RunningHub(settings_for(SERVERS, {"imageapi": {"enabled": "true"}})) as running:
        yield running


def _schema_fixture(server: str, path: str):
    @pytest.fixture
    def load(hub):
        url = hub.urls[server]
        schema = schemathesis.openapi.from_dict(httpx2.get(url + path).json())
        return schema

    return load


auth_schema = _schema_fixture("auth", "/openapi.json")
webhooks_schema = _schema_fixture("webhooks", "/openapi.json")
client_schema = _schema_fixture("client", "/openapi.json")
imageapi_schema = _schema_fixture("imageapi", "/openapi.json")
control_schema = _schema_fixture("auth", "/__mockpanel/openapi.json")

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck),
                derandomize=bool(os.environ.get("CI")))  # CI: the same examples every run; locally: new ones each time


def check(case, hub, server: str) -> None:
    case.call_and_validate(base_url=hub.urls[server], checks=CHECKS, timeout=10)


@schemathesis.pytest.from_fixture("auth_schema").parametrize()
@FUZZ
def test_auth_api(case, hub):
    check(case, hub, "auth")


@schemathesis.pytest.from_fixture("webhooks_schema").parametrize()
@FUZZ
def test_webhook_receiver(case, hub):
    if case.path == "/webhooks/stream":
        return  # an endless event stream
    check(case, hub, "webhooks")


@schemathesis.pytest.from_fixture("client_schema").parametrize()
@FUZZ
def test_client_app(case, hub):
    if case.path == "/api/stress-test" and isinstance(case.body, dict) and isinstance(case.body.get("count", 51), int):
        # 1,000 real uploads (or the default 51) take longer than a fuzz example should
        case.body["count"] = min(case.body.get("count", 51), 5)
    check(case, hub, "client")


@schemathesis.pytest.from_fixture("imageapi_schema").parametrize()
@FUZZ
def test_reference_image_api(case, hub):
    check(case, hub, "imageapi")


@pytest.fixture(scope="module")
def http():
    with httpx2.Client(timeout=10) as client:  # one client: a new one per example loads the CA store each time
        yield client


@pytest.mark.timeout(360)  # every operation of the control API in one test (subtests), 40 examples each
@schemathesis.pytest.from_fixture("control_schema").parametrize()
@FUZZ
def test_control_api(case, hub, http):
    if case.path == "/__mockpanel/panel/events":
        return  # an endless event stream (tests/security/test_attach_guards.py reads it)
    check(case, hub, "auth")
    http.delete(hub.urls["auth"] + "/__mockpanel/faults")  # a generated policy may switch faults on
    http.delete(hub.urls["auth"] + "/__mockpanel/clock")  # and a generated time move the clock


@schemathesis.serializer("application/x-tar")
def _state_archive(ctx, value):
    """PUT /__mockpanel/state takes an archive: the generated value sent as its bytes (every one of them refused)."""
    return value if isinstance(value, bytes) else str(value).encode()


@pytest.fixture(scope="module")
def petstore_stub(tmp_path_factory):
    """A stub server answering from the OpenAPI Specification's Petstore example (tests/data/petstore.yaml)."""
    from pathlib import Path

    root = tmp_path_factory.mktemp("petstore")
    (root / "petstore.yaml").write_text((Path(__file__).parent / "data" / "petstore.yaml").read_text())
    (root / "mockpanel.toml").write_text('[stubs.petstore]\nopenapi = "petstore.yaml"\n')
    with RunningHub(settings_for(["petstore"], config=root / "mockpanel.toml")) as running:
        yield running


@pytest.fixture
def petstore_schema():
    from pathlib import Path

    return schemathesis.openapi.from_path(str(Path(__file__).parent / "data" / "petstore.yaml"))


@schemathesis.pytest.from_fixture("petstore_schema").parametrize()
@FUZZ
def test_a_stub_server_answers_its_own_document(case, petstore_stub):
    """What schemathesis sends from the Petstore document, the stub answers as the document says: the examples it
    makes from the schemas conform to them, in the declared content types, and nothing is a 5xx."""
    case.call_and_validate(base_url=petstore_stub.urls["petstore"], checks=CHECKS, timeout=10)
