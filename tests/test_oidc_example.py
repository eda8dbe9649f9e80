"""The OpenID Connect example of the docs (servers/oidc.md), as written, verifying tokens from a running auth mock."""

from __future__ import annotations

import re

import httpx2
from fastapi.testclient import TestClient

from conftest import documentation
from mockpanel.testing import RunningHub, settings_for


def readme_example() -> str:
    match = re.search(r"<!-- example: oidc-service -->\n```python\n(.*?)```", documentation(), re.S)
    assert match, "the docs lost their OpenID Connect example (docs/servers/oidc.md)"
    return match.group(1)


def test_the_readme_service_accepts_mockpanels_tokens_and_refuses_others():
    with RunningHub(settings_for(["auth"])) as running:
        url = running.urls["auth"]
        code = readme_example().replace('"http://localhost:8000"', repr(url))  # the mock on a free port
        namespace: dict = {}
        exec(compile(code, "docs/servers/oidc.md (oidc-service)", "exec"), namespace)
        service = TestClient(namespace["app"])
        issued = httpx2.post(f"{url}/oauth2/token", data={"grant_type": "client_credentials", "client_id": "orders-service"}).json()
        answer = service.get("/orders", headers={"Authorization": f"Bearer {issued['access_token']}"})
        assert answer.status_code == 200 and answer.json() == {"for": "orders-service"}
        other = httpx2.post(f"{url}/oauth2/token", data={"grant_type": "client_credentials", "client_id": "someone-else"}).json()
        refused = service.get("/orders", headers={"Authorization": f"Bearer {other['access_token']}"})
        assert refused.status_code == 401 and refused.json()["detail"] == "Audience doesn't match"
        httpx2.patch(f"{url}/__mockpanel/oidc/faults", json={"expired": True})
        expired = httpx2.post(f"{url}/oauth2/token", data={"grant_type": "client_credentials", "client_id": "orders-service"}).json()
        late = service.get("/orders", headers={"Authorization": f"Bearer {expired['access_token']}"})
        assert late.status_code == 401 and late.json()["detail"] == "Signature has expired"
