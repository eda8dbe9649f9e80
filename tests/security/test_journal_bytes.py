"""The journal is bounded in bytes, not only in count: what an entry keeps of a long path, query or header is cut
as a body preview is, each server's ring and all of them together have a budget in memory, and a flood on one
server does not push the others' requests out. Tried through `serve` and from a page of another site."""

from __future__ import annotations

import httpx2
import pytest

from conftest import ServeProcess, page_on_another_site
from mockpanel.testing import RunningHub, settings_for

LONG = "q=" + "x" * 60_000


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def test_a_flood_of_long_queries_costs_the_journal_its_budget_not_the_queries():
    with ServeProcess("--only", "auth", "--auth-port", "0", "--journal-mib", "8") as proc:
        auth = proc.urls(1)["auth"]
        with httpx2.Client(timeout=30) as http:
            for _ in range(50):  # warm: the allocator's first pools, the routes' caches
                http.get(auth + "/health?" + LONG)
            before = rss_kib(proc.proc.pid)
            for i in range(1500):  # 88 MiB of queries: the journal kept all of it before
                assert http.get(auth + f"/health?i={i}&" + LONG).status_code == 200
            grown_mib = (rss_kib(proc.proc.pid) - before) / 1024
            stats = http.get(auth + "/__mockpanel/stats").json()["journal"]
            assert stats["bytes"] <= 4 * 1024 * 1024 and stats["all_max_bytes"] == 8 * 1024 * 1024
            assert stats["entries"] > 200  # each entry costs a few KiB now: hundreds of them fit
            assert grown_mib < 40, grown_mib
            newest = http.get(auth + "/__mockpanel/requests", params={"limit": 1}).json()["requests"][0]
            assert newest["query"].startswith("i=1499&q=xxx") and newest["query"].endswith("[cut]") and len(newest["query"]) == 2048 + 5
            # a long header value is cut; many headers are kept up to a budget and the rest counted
            headers = {"x-long": "v" * 20_000, **{f"x-h{i}": "h" * 500 for i in range(40)}}
            http.get(auth + "/health", headers=headers)
            kept = dict(http.get(auth + "/__mockpanel/requests", params={"limit": 1}).json()["requests"][0]["request_headers"])
            assert kept["x-long"] == "v" * 1024 + "[cut]"
            assert "more headers" in kept["x-mockpanel-cut"]
        assert proc.stop() == 0


def test_a_flood_on_one_server_leaves_the_others_entries():
    with RunningHub(settings_for(["auth", "webhooks"], {"mockpanel": {"journal_mib": "2"}})) as running:
        with httpx2.Client(timeout=30) as http:
            http.get(running.urls["webhooks"] + "/health")
            for i in range(600):
                http.get(running.urls["auth"] + f"/health?i={i}", headers={f"x-h{j}": "h" * 900 for j in range(8)})
        journal = running.hub.journal
        assert journal.bytes <= 2 * 1024 * 1024
        assert journal.of("auth").bytes <= 1024 * 1024
        assert len(journal.of("auth")) < 600  # the oldest went
        assert [e.path for e in journal.query(server="webhooks")] == ["/health"]
        assert journal.bytes == sum(ring.bytes for ring in journal.servers.values())
        running.run(lambda: journal.clear())
        assert journal.bytes == 0


def test_a_page_of_another_site_cannot_grow_the_journal_past_its_budget():
    with RunningHub(settings_for(["auth"], {"mockpanel": {"journal_mib": "2"}})) as running:
        auth = running.urls["auth"]
        with page_on_another_site() as page:
            sent = page.evaluate("""async ([url, query]) => {
                let sent = 0;
                for (let i = 0; i < 400; i++) {
                    await fetch(url + '/health?i=' + i + '&' + query, {mode: 'no-cors', cache: 'no-store'});
                    sent++;
                }
                return sent;
            }""", [auth, LONG[:30_000]])
        assert sent == 400
        ring = running.hub.journal.of("auth")
        assert ring.bytes <= 1024 * 1024
        entries = running.hub.journal.query(server="auth")
        assert entries[-1].query.startswith("i=399&") and all(len(e.raw_query) <= 2048 + 5 for e in entries)
