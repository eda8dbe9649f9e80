"""Security defaults: the admin token on the control API, the warning for all interfaces."""

from __future__ import annotations

import httpx2

from conftest import ServeProcess
from mockpanel.testing import RunningHub, settings_for


def test_the_admin_token_guards_every_control_call_and_nothing_else():
    settings = settings_for(["auth", "s3"], environ={"MOCKPANEL_ADMIN_TOKEN": "s3cr3t-admin"})
    with RunningHub(settings) as running:
        for name in ("auth", "s3"):
            url = running.urls[name]
            for method, path in (("GET", "/__mockpanel/faults"), ("DELETE", "/__mockpanel/requests"), ("POST", "/__mockpanel/reset"),
                                 ("GET", "/__mockpanel/openapi.json")):
                for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "s3cr3t-admin"}):
                    r = httpx2.request(method, url + path, headers=headers)
                    assert r.status_code == 401, (name, path, headers)
                    assert r.json()["detail"].startswith("the control API needs the admin token")
                    assert r.headers["www-authenticate"].startswith("Bearer")
            ok = httpx2.put(url + "/__mockpanel/faults", json={"fail_next": 1}, headers={"authorization": "Bearer s3cr3t-admin"})
            assert ok.status_code == 200 and ok.json()["fail_next"] == 1
        # the mocks themselves are not behind the token
        assert httpx2.get(running.urls["auth"] + "/health").status_code == 500  # the fault set above, with the token
        assert httpx2.get(running.urls["auth"] + "/health").status_code == 200
        assert httpx2.put(running.urls["s3"] + "/bucket").status_code == 500
        assert httpx2.put(running.urls["s3"] + "/bucket").status_code == 200


def test_without_a_token_the_control_api_is_open_on_loopback():
    with RunningHub(settings_for(["auth"])) as running:
        assert httpx2.get(running.urls["auth"] + "/__mockpanel/faults").status_code == 200


def test_binding_all_interfaces_guards_the_control_api_with_a_token_made_at_start():
    with ServeProcess("--only", "auth", "--auth-port", "0", "--host", "0.0.0.0") as serve:
        url = serve.readline().split("running at ")[1].strip()
        assert url.startswith("http://127.0.0.1:")
        assert httpx2.get(url + "/__mockpanel/faults").status_code == 401  # another machine's request would be too
        assert serve.stop() == 0
        err = serve.proc.stderr.read()
    assert "warning: auth: binding 0.0.0.0: reachable from other machines" in err
    token = err.split("made for this run: ", 1)[1].split()[0]
    assert len(token) >= 32 and "(set MOCKPANEL_ADMIN_TOKEN to choose one)" in err
    with ServeProcess("--only", "auth", "--auth-port", "0", "--host", "0.0.0.0", env={"MOCKPANEL_ADMIN_TOKEN": "x"}) as serve:
        url = serve.readline().split("running at ")[1].strip()
        assert httpx2.get(url + "/__mockpanel/faults", headers={"Authorization": "Bearer x"}).status_code == 200
        serve.stop()
        err = serve.proc.stderr.read()
    assert "made for this run" not in err
    assert "warning: auth: binding 0.0.0.0: reachable from other machines\n" in err
