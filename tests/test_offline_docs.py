"""/docs and /redoc with no network: Swagger UI and ReDoc come from the server itself (fastapi-offline's files), so a
browser that may reach nothing but the mock still lists the operations."""

from __future__ import annotations

import pytest

from mockpanel.testing import RunningHub, settings_for


@pytest.fixture(scope="module")
def urls():
    with RunningHub(settings_for(["auth", "s3", "webhooks", "client", "imageapi"])) as running:
        yield running.urls


def offline(page, base: str) -> list[str]:
    """Let the page reach `base` only; every other request is aborted and recorded."""
    blocked: list[str] = []

    def route(r):
        if r.request.url.startswith(base + "/"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return blocked


@pytest.mark.parametrize("server", ["auth", "s3", "webhooks", "client", "imageapi"])
def test_swagger_ui_lists_the_operations_offline(page, urls, server):
    blocked = offline(page, urls[server])
    page.goto(urls[server] + "/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=20_000)
    paths = page.eval_on_selector_all(".opblock-summary-path", "els => els.map(e => e.dataset.path || e.textContent)")
    assert any("health" in p for p in paths), paths
    assert blocked == []


def test_redoc_and_the_control_api_docs_offline(page, urls):
    blocked = offline(page, urls["auth"])
    page.goto(urls["auth"] + "/redoc")
    page.wait_for_function("document.body.innerText.includes('/api/auth/login')", timeout=20_000)
    page.goto(urls["auth"] + "/__mockpanel/docs")
    page.wait_for_selector(".opblock-summary-path[data-path='/__mockpanel/faults']", timeout=20_000)
    # ReDoc's footer logo (asked for whenever ReDoc gets to it, maybe after the next page opened): it works without it
    assert set(blocked) <= {"https://cdn.redoc.ly/redoc/logo-mini.svg"}
