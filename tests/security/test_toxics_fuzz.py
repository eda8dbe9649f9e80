"""Hypothesis's toxics on a mock in `serve`, with traffic passing them: whatever the types, streams and attributes
(slicers of one byte, bandwidths of one, limits and resets at any byte), the mocks' loop never stalls past the
watchdog's 250 ms, and removing the toxics through the mock's own control API always works."""

from __future__ import annotations

import os

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ServeProcess

FUZZ = settings(max_examples=60 if os.environ.get("CI") else 20, deadline=None, derandomize=bool(os.environ.get("CI")),
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
BODY = bytes(range(256)) * 1024  # 256 KiB through the toxics on every example

toxics = st.one_of(
    st.fixed_dictionaries({"type": st.just("slicer"), "attributes": st.fixed_dictionaries({
        "average_size": st.integers(0, 64), "size_variation": st.integers(0, 64), "delay": st.integers(0, 50)})}),
    st.fixed_dictionaries({"type": st.just("latency"), "attributes": st.fixed_dictionaries({
        "latency": st.integers(0, 30), "jitter": st.integers(0, 30)})}),
    st.fixed_dictionaries({"type": st.just("bandwidth"), "attributes": st.fixed_dictionaries({"rate": st.integers(500, 100_000)})}),
    st.fixed_dictionaries({"type": st.just("limit_data"), "attributes": st.fixed_dictionaries({"bytes": st.integers(0, 300_000)})}),
    st.fixed_dictionaries({"type": st.just("reset_peer"), "attributes": st.fixed_dictionaries({
        "timeout": st.just(0), "bytes": st.integers(0, 300_000)})}),
    st.fixed_dictionaries({"type": st.just("slow_close"), "attributes": st.fixed_dictionaries({"delay": st.integers(0, 50)})}),
).flatmap(lambda toxic: st.fixed_dictionaries({**{k: st.just(v) for k, v in toxic.items()},
                                               "stream": st.sampled_from(["upstream", "downstream"]),
                                               "toxicity": st.sampled_from([1.0, 0.5])}))


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with ServeProcess("--only", "s3", "--s3-port", "0", "--quiet", cwd=tmp_path_factory.mktemp("toxics")) as serve:
        url = serve.urls(1)["s3"]
        httpx2.put(url + "/fuzz").raise_for_status()
        httpx2.put(url + "/fuzz/body", content=BODY).raise_for_status()
        yield url
        loop = serve.loop_stalls(url)
        assert loop["worst_stall_ms"] <= 250, loop


@FUZZ
@given(chosen=st.lists(toxics, min_size=1, max_size=3))
def test_hostile_toxics_never_stall_the_loop_and_always_come_off(s3, chosen):
    api = s3 + "/__mockpanel/toxiproxy/proxies/s3/toxics"
    for i, toxic in enumerate(chosen):
        assert httpx2.post(api, json={**toxic, "name": f"t{i}"}).status_code == 200
    try:
        with httpx2.Client(timeout=5) as http:
            got = http.get(s3 + "/fuzz/body")
            assert got.status_code == 200 and BODY.startswith(got.content)
    except httpx2.HTTPError:
        pass  # a limit or a reset ends the connection early, as asked
    finally:
        for i in range(len(chosen)):  # through the mock itself, whatever its toxics do
            assert httpx2.delete(f"{api}/t{i}", timeout=5).status_code == 204
    assert httpx2.get(s3 + "/fuzz/body", timeout=5).content == BODY
