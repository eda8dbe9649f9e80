"""The pytest plugin as a user meets it: installed through its entry point, run in a separate pytest process."""

from __future__ import annotations

import re

from conftest import documentation


def readme_example() -> str:
    text = documentation()
    match = re.search(r"<!-- example: pytest-plugin -->\n```python\n(.*?)```", text, re.S)
    assert match, "the docs lost their pytest plugin example (docs/pytest-plugin.md)"
    return match.group(1)


def test_readme_example_runs_as_written(pytester):
    pytester.makepyfile(test_my_service=readme_example())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_servers_settings_factory_and_fault_blocks(pytester):
    pytester.makeini("[pytest]\nmockpanel_servers = auth\n")
    pytester.makeconftest('''
import pytest

@pytest.fixture(scope="session")
def mockpanel_settings():
    return {"auth": {"jwt_secret": "suite-secret"}}
''')
    pytester.makepyfile(test_user='''
import httpx2, jwt, pydantic, pytest

def test_only_auth_with_the_suites_secret(mockpanel):
    assert list(mockpanel.urls) == ["auth"]
    assert mockpanel.setting("auth", "jwt_secret") == "suite-secret"
    r = httpx2.post(mockpanel.url("auth") + "/api/auth/login", json={"email": "alice@example.com", "password": "password123"})
    token = r.json()["access_token"]
    assert jwt.decode(token, "suite-secret", algorithms=["HS256"])["email"] == "alice@example.com"
    with pytest.raises(KeyError, match="not running here"):
        mockpanel.url("s3")

def test_fault_block_then_previous_policy(mockpanel):
    health = mockpanel.url("auth") + "/health"
    with pytest.raises(pydantic.ValidationError):
        with mockpanel.faults("auth", error_rate=2.0):
            pass
    with mockpanel.faults("auth", error_rate=1.0, error_codes=[502]) as policy:
        assert policy.error_rate == 1.0
        assert httpx2.get(health).status_code == 502
    assert httpx2.get(health).status_code == 200
    assert [(r.status, r.fault) for r in mockpanel.requests("auth", path="/health")] == [(502, "error_rate:502"), (200, None)]

def test_journal_was_reset(mockpanel):
    assert mockpanel.requests("auth") == []

def test_a_scenario_for_a_block(mockpanel, tmp_path):
    health = mockpanel.url("auth") + "/health"
    with mockpanel.scenario(\'[[step]]\\nserver = "auth"\\nfaults = { fail_next = 2, fail_next_code = 503 }\'):
        import time
        for _ in range(100):
            if mockpanel.run(lambda: mockpanel["auth"].ctx.faults.policy.fail_next):
                break
            time.sleep(0.02)
        assert [httpx2.get(health).status_code for _ in range(3)] == [503, 503, 200]
    assert [r.fault for r in mockpanel.requests("auth")][:2] == ["fail_next:503 (scenario inline, step 1)"] * 2
    bad = tmp_path / "bad.toml"
    bad.write_text('[[step]]\\nserver = "s3"\\nfaults = { fail_next = 1 }')
    from mockpanel.scenario import ScenarioError
    with pytest.raises(ScenarioError, match="server 's3' is not running"):
        with mockpanel.scenario(bad):
            pass

def test_factory_starts_this_tests_own_servers(mockpanel_factory, mockpanel):
    own = mockpanel_factory(["s3"], {"s3": {"buckets": "preset"}})
    assert own.url("s3") != mockpanel.url("auth")
    assert httpx2.get(own.url("s3") + "/preset").status_code == 200
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=5)


def test_command_line_chooses_servers(pytester):
    pytester.makepyfile(test_cli='''
def test_servers(mockpanel):
    assert sorted(mockpanel.urls) == ["s3", "webhooks"]
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--mockpanel-servers", "s3,webhooks")
    result.assert_outcomes(passed=1)


def test_parallel_workers_each_run_their_own_servers(pytester):
    """pytest -n 4 (pytest-xdist): every worker starts its own mocks on free ports; nothing is shared between them."""
    pytester.makeini("[pytest]\nmockpanel_servers = auth s3\n")
    pytester.makepyfile(test_parallel='''
import json, os, boto3, httpx2, pytest

@pytest.mark.parametrize("n", range(16))
def test_register_then_store(mockpanel, n):
    worker = os.environ["PYTEST_XDIST_WORKER"]
    auth = mockpanel.url("auth")
    # the same e-mail in every test: it would clash if two workers shared one auth mock between their resets
    created = httpx2.post(f"{auth}/api/auth/register", json={"email": "same@example.com", "password": "password123", "name": "P"})
    assert created.status_code == 201, created.text
    s3 = boto3.client("s3", endpoint_url=mockpanel.url("s3"), aws_access_key_id="test-key", aws_secret_access_key="test-secret",
                      region_name="us-east-1")
    s3.create_bucket(Bucket="only-mine")
    with open(f"seen-{worker}.jsonl", "a") as out:
        out.write(json.dumps({"worker": worker, "auth": auth}) + "\\n")
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "4")
    result.assert_outcomes(passed=16)
    import json

    seen = [json.loads(line) for path in pytester.path.glob("seen-*.jsonl") for line in path.read_text().splitlines()]
    by_worker = {}
    for record in seen:
        by_worker.setdefault(record["worker"], set()).add(record["auth"])
    assert len(seen) == 16 and len(by_worker) == 4
    assert all(len(urls) == 1 for urls in by_worker.values())  # one session of mocks per worker
    assert len({url for urls in by_worker.values() for url in urls}) == 4  # and no two workers share one
