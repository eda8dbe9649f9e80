"""A HAR export is a HAR a browser can replay: Chromium (through playwright's route_from_har) serves it offline."""

from __future__ import annotations

import json

import httpx2

from conftest import port_is_closed
from mockpanel.testing import Mocks, settings_for


def test_chromium_replays_the_har_export_with_the_server_gone(browser, tmp_path):
    with Mocks(settings_for(["auth"])) as mocks:
        url = mocks.url("auth")
        assert httpx2.get(url + "/health").status_code == 200
        assert httpx2.get(url + "/api/auth/me").status_code == 401
        har = httpx2.get(url + "/__mockpanel/requests", params={"format": "har"}).json()
    assert port_is_closed(int(url.rsplit(":", 1)[1]))
    path = tmp_path / "auth.har"
    path.write_text(json.dumps(har))

    context = browser.new_context()
    try:
        context.route_from_har(str(path), not_found="abort")
        page = context.new_page()
        response = page.goto(url + "/health")
        assert response.status == 200
        assert json.loads(page.locator("body").inner_text())["status"] == "healthy"
        me = page.goto(url + "/api/auth/me")
        assert me.status == 401
    finally:
        context.close()
