"""A page stored in S3 and opened in the browser is not a page of the mocks' own site: it cannot read any server's
journal, reset a server or change S3's own settings. And a server's own site is its exact origin: a page on another
port of the same loopback address, or on an IP-literal origin, is another site."""

from __future__ import annotations

import httpx2
import pytest

from conftest import make_s3_client
from mockpanel.testing import RunningHub, settings_for

# What an attacker's page does once it runs on S3's origin: read every server's journal through S3's own control API,
# reset the auth server, point a notification at a URL of its choosing, and store what it read.
ATTACK = """<!DOCTYPE html><html><body><pre id="out">not run</pre><script>
(async () => {
  const out = document.getElementById('out');
  const steps = [];
  try {
    const text = await (await fetch('/__mockpanel/traces?limit=50')).text();
    steps.push('read:' + (text.includes('hunter2') ? 'leaked' : 'no-secret'));
    await fetch('/{bucket}/stolen', {method: 'PUT', body: text});
  } catch (e) { steps.push('read:blocked'); }
  for (const target of ['{auth}/__mockpanel/reset', '/__mockpanel/reset']) {
    try { await fetch(target, {method: 'POST', mode: 'no-cors'}); steps.push('posted'); } catch (e) { steps.push('post:blocked'); }
  }
  try {
    await fetch('/__mockpanel/notifications/{bucket}', {method: 'PUT', mode: 'no-cors', body: '[]'});
  } catch (e) {}
  out.textContent = 'ran ' + steps.join(' ');
})();
</script></body></html>"""


@pytest.fixture(scope="module")
def hub():
    with RunningHub(settings_for(["auth", "s3", "webhooks"])) as running:
        yield running


def users(auth: str) -> list[str]:
    return [u["email"] for u in httpx2.get(f"{auth}/api/auth/users").json()["users"]]


def store_page(hub, bucket: str, website: bool = False) -> str:
    s3 = make_s3_client(hub.urls["s3"])
    s3.create_bucket(Bucket=bucket)
    if website:
        s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}})
    page = ATTACK.replace("{auth}", hub.urls["auth"]).replace("{bucket}", bucket)
    s3.put_object(Bucket=bucket, Key="index.html", Body=page.encode(), ContentType="text/html")
    return f"{hub.urls['s3']}/{bucket}/index.html"


def setup_victim(hub) -> None:
    auth = hub.urls["auth"]
    httpx2.post(f"{auth}/api/auth/register", json={"email": "victim@example.com", "password": "hunter2hunter2", "name": "V"})
    httpx2.post(f"{auth}/api/auth/login", json={"email": "victim@example.com", "password": "hunter2hunter2"})


def test_a_page_stored_in_s3_runs_no_script_and_reaches_no_control_api(hub, page):
    setup_victim(hub)
    url = store_page(hub, "pages")
    response = page.goto(url)
    assert response.status == 200 and response.headers["content-security-policy"] == "sandbox"
    page.wait_for_load_state("load")
    assert page.text_content("#out") == "not run"  # the page is shown, its script never runs
    assert "victim@example.com" in users(hub.urls["auth"])
    assert "Contents" not in make_s3_client(hub.urls["s3"]).list_objects_v2(Bucket="pages", Prefix="stolen")


def test_a_website_bucket_runs_scripts_in_an_opaque_origin_that_reaches_no_control_api(hub, page):
    setup_victim(hub)
    url = store_page(hub, "site", website=True)
    events = []
    page.on("console", lambda m: events.append(m.text))
    page.goto(url)
    page.wait_for_function("document.getElementById('out').textContent.startsWith('ran')")
    outcome = page.text_content("#out")
    assert "read:blocked" in outcome, outcome  # S3's own control API is another origin to the page
    assert "victim@example.com" in users(hub.urls["auth"])  # its posts carry Origin: null: refused
    s3 = make_s3_client(hub.urls["s3"])
    assert "Contents" not in s3.list_objects_v2(Bucket="site", Prefix="stolen")
    assert s3.get_bucket_website(Bucket="site")["IndexDocument"] == {"Suffix": "index.html"}


def test_a_form_upload_that_redirects_to_its_own_page_lands_in_a_sandbox(hub, page):
    """The attack as a page on any site mounts it: a form PostObject stores text/html and redirects the browser to it."""
    setup_victim(hub)
    s3, auth = hub.urls["s3"], hub.urls["auth"]
    make_s3_client(s3).create_bucket(Bucket="dropped")
    attack = ATTACK.replace("{auth}", auth).replace("{bucket}", "dropped")
    page.route("http://evil.example/", lambda route: route.fulfill(status=200, content_type="text/html", body=f"""
        <form id="f" method="post" action="{s3}/dropped" enctype="multipart/form-data">
          <input name="key" value="x.html"><input name="Content-Type" value="text/html">
          <input name="success_action_redirect" value="{s3}/dropped/x.html">
          <textarea name="file"></textarea></form>"""))
    page.goto("http://evil.example/")
    page.fill("textarea", attack)
    with page.expect_navigation(url=f"{s3}/dropped/x.html*"):
        page.evaluate("document.getElementById('f').submit()")
    page.wait_for_load_state("load")
    assert page.text_content("#out") == "not run"
    assert "victim@example.com" in users(auth)


def test_a_servers_own_site_is_its_exact_origin(hub):
    auth, s3, webhooks = hub.urls["auth"], hub.urls["s3"], hub.urls["webhooks"]
    setup_victim(hub)
    for origin in (s3, webhooks, "http://localhost:3000", "http://203.0.113.5", "http://127.0.0.2:" + auth.rsplit(":", 1)[1]):
        r = httpx2.post(f"{auth}/__mockpanel/reset", headers={"Origin": origin})
        assert r.status_code == 403 and "cross-site" in r.json()["detail"], origin
    r = httpx2.post(f"{auth}/__mockpanel/reset", headers={"Sec-Fetch-Site": "same-site"})  # another port of this host
    assert r.status_code == 403
    assert "victim@example.com" in users(auth)
    event = httpx2.post(f"{webhooks}/webhooks/shop", json={"event_type": "x"}).json()["event_id"]
    r = httpx2.post(f"{webhooks}/webhooks/replay/{event}", params={"target_url": f"{webhooks}/webhooks/copy"}, headers={"Origin": s3})
    assert r.status_code == 403
    # the server's own page, and scripts with no Origin at all, still may
    assert httpx2.put(f"{auth}/__mockpanel/faults", json={}, headers={"Origin": auth}).status_code == 200
    assert httpx2.post(f"{webhooks}/webhooks/replay/{event}", params={"target_url": f"{webhooks}/webhooks/copy"},
                      headers={"Origin": webhooks}).status_code == 200
