"""Network faults below HTTP (Toxiproxy's toxics), on the mocks' own connections and on TCP proxies to a service of
the user's: each toxic's effect measured from a raw socket, httpx and boto3; proxies made from mockpanel.toml and
Toxiproxy's API, driven by Toxiproxy's own Python and Node clients."""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx2
import pytest

from conftest import http_upstream, make_s3_client, raw_get
from mockpanel.testing import RunningHub, settings_for

BODY = bytes(range(256)) * 400  # 102,400 bytes


@pytest.fixture(scope="module")
def upstream():
    with http_upstream(BODY) as port:
        yield port


@pytest.fixture(scope="module")
def hub(upstream, tmp_path_factory):
    config = tmp_path_factory.mktemp("config") / "mockpanel.toml"
    config.write_text(f'[proxies.web]\nlisten = 0\nupstream = "127.0.0.1:{upstream}"\n')
    from mockpanel.servers import SERVERS
    from mockpanel.settings import load_settings

    settings = load_settings(SERVERS, only=["auth", "s3"], config_path=config, environ={"MOCKPANEL_TOXIPROXY_PORT": "0"},
                             cwd=config.parent, cli={("auth", "port"): "0", ("s3", "port"): "0"})
    with RunningHub(settings) as running:
        yield running


def api(hub) -> str:
    return hub.run(lambda: hub.hub.toxiproxy_url)


def proxy_port(hub, name: str = "web") -> int:
    return hub.run(lambda: hub.hub.network.proxy(name).port)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.fixture(autouse=True)
def no_toxics(hub):
    yield
    httpx2.post(api(hub) + "/reset")


def toxic(hub, target: str, **body) -> dict:
    r = httpx2.post(f"{api(hub)}/proxies/{target}/toxics", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_latency_delays_every_answer_of_a_mock_by_at_least_its_amount(hub):
    auth = hub.urls["auth"]
    with httpx2.Client() as client:
        client.get(auth + "/health")  # a pooled connection made before the toxic: it gets the toxic too
        toxic(hub, "auth", type="latency", attributes={"latency": 400, "jitter": 0})
        for _ in range(2):
            started = time.monotonic()
            assert client.get(auth + "/health").status_code == 200
            assert 0.4 <= time.monotonic() - started < 10
    entries = hub.run(lambda: hub.hub.journal.query(limit=3))
    assert all(e.duration_ms < 400 for e in entries)  # the network, not the server, was slow: the journal says so


def test_bandwidth_caps_a_proxied_download_at_its_rate(hub):
    toxic(hub, "web", type="bandwidth", attributes={"rate": 200})  # 200 KB/s: 102,400 bytes take at least 0.5 s
    started = time.monotonic()
    r = httpx2.get(f"http://127.0.0.1:{proxy_port(hub)}/")
    assert r.content == BODY
    assert 0.5 <= time.monotonic() - started < 10


def test_reset_peer_is_a_connection_reset_for_the_client(hub):
    toxic(hub, "auth", type="reset_peer", attributes={"timeout": 0})
    with pytest.raises(httpx2.ReadError, match="reset"):
        httpx2.get(hub.urls["auth"] + "/health")
    with socket.create_connection(("127.0.0.1", proxy_port(hub)), timeout=10) as sock:
        toxic(hub, "web", type="reset_peer", attributes={"timeout": 0})
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        with pytest.raises(ConnectionResetError):
            while sock.recv(65536):
                pass


def test_reset_peer_after_n_bytes_and_limit_data_cut_a_response_there(hub):
    toxic(hub, "web", type="limit_data", attributes={"bytes": 1000})
    chunks, _, _ = raw_get(proxy_port(hub))
    assert len(b"".join(chunks)) == 1000  # then a clean close
    httpx2.post(api(hub) + "/reset")
    toxic(hub, "web", type="reset_peer", attributes={"bytes": 5000})
    received = bytearray()
    with socket.create_connection(("127.0.0.1", proxy_port(hub)), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        with pytest.raises(ConnectionResetError):
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                received += data
    assert len(received) <= 5000


def test_timeout_passes_nothing_then_closes(hub):
    toxic(hub, "web", type="timeout", attributes={"timeout": 300})
    started = time.monotonic()
    chunks, _, eof = raw_get(proxy_port(hub))
    assert chunks == [] and eof - started >= 0.3


def test_slicer_and_slow_close(hub):
    toxic(hub, "web", type="slicer", attributes={"average_size": 1000, "size_variation": 0, "delay": 2000})
    chunks, _, _ = raw_get(proxy_port(hub))
    assert b"".join(chunks).endswith(BODY) and len(chunks) > 10 and max(map(len, chunks)) <= 1000 * 8
    httpx2.post(api(hub) + "/reset")
    toxic(hub, "web", type="slow_close", attributes={"delay": 400})
    chunks, last, eof = raw_get(proxy_port(hub))
    assert b"".join(chunks).endswith(BODY) and eof - last >= 0.35


def test_upstream_toxics_act_on_what_the_client_sends(hub):
    toxic(hub, "web", type="latency", stream="upstream", attributes={"latency": 300})
    started = time.monotonic()
    assert httpx2.post(f"http://127.0.0.1:{proxy_port(hub)}/", content=b"ping").content == b"ping"
    assert time.monotonic() - started >= 0.3


def test_toxicity_picks_connections_and_a_seed_repeats_the_pick(hub):
    def picks(seed: int) -> list[bool]:
        httpx2.post(api(hub) + "/reset")
        toxic(hub, "web", type="limit_data", toxicity=0.5, seed=seed, attributes={"bytes": 10})
        return [len(b"".join(raw_get(proxy_port(hub))[0])) == 10 for _ in range(12)]

    first = picks(7)
    assert picks(7) == first and 0 < sum(first) < 12  # about half, the same half again
    assert picks(8) != first  # another seed, another pick
    httpx2.post(api(hub) + "/reset")
    toxic(hub, "web", type="limit_data", toxicity=0.0, attributes={"bytes": 10})
    assert not any(len(b"".join(raw_get(proxy_port(hub))[0])) == 10 for _ in range(5))


def test_the_journal_records_each_proxied_connection(hub):
    toxic(hub, "web", type="limit_data", attributes={"bytes": 100})
    raw_get(proxy_port(hub))

    def ended():
        return [e for e in hub.run(lambda: hub.hub.journal.query(limit=50)) if e.server == "web" and e.fault and "limit_data" in e.fault]

    deadline = time.monotonic() + 10
    while not ended() and time.monotonic() < deadline:
        time.sleep(0.05)
    entry = ended()[-1]
    assert entry.method == "TCP" and entry.response_size == 100 and "→ 127.0.0.1:" in entry.path


def test_boto3_under_a_bandwidth_toxic_and_retrying_a_reset(hub):
    s3_url = hub.urls["s3"]
    s3 = make_s3_client(s3_url)
    s3.create_bucket(Bucket="netfaults")
    toxic(hub, "s3", type="bandwidth", stream="upstream", attributes={"rate": 400})
    started = time.monotonic()
    s3.put_object(Bucket="netfaults", Key="blob", Body=BODY * 2)  # 204,800 bytes up at 400 KB/s
    assert time.monotonic() - started >= 0.45
    assert s3.get_object(Bucket="netfaults", Key="blob")["Body"].read() == BODY * 2
    httpx2.post(api(hub) + "/reset")
    # the first connection to pick the toxic is reset inside the answer's head; the SDK retries on a new one
    seed = next(s for s in range(1000) if (r := random.Random(s)).random() < 0.5 and r.random() >= 0.5)
    toxic(hub, "s3", type="reset_peer", toxicity=0.5, seed=seed, attributes={"bytes": 40})
    fresh = make_s3_client(s3_url)
    assert fresh.get_object(Bucket="netfaults", Key="blob")["Body"].read() == BODY * 2
    gets = [e for e in hub.run(lambda: hub.hub.journal.query(limit=20)) if e.server == "s3" and e.method == "GET" and e.path == "/netfaults/blob"]
    assert len(gets) >= 3  # the earlier read, the attempt that was reset, the retry


def test_a_redis_server_behind_a_proxy(hub, tmp_path):
    """A real service of the user's kind (Debian's redis-server), driven over RESP through the proxy."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("needs redis-server (apt-get install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    redis = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
                             stdout=subprocess.DEVNULL)
    try:
        r = httpx2.post(api(hub) + "/proxies", json={"name": "redis", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{port}"})
        listen = port_of("x:" + r.json()["listen"].rsplit(":", 1)[1])
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        toxic(hub, "redis", type="latency", attributes={"latency": 200})
        with socket.create_connection(("127.0.0.1", listen), timeout=10) as sock:
            started = time.monotonic()
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            assert sock.recv(100) == b"+PONG\r\n"
            assert time.monotonic() - started >= 0.2
    finally:
        redis.terminate()
        redis.wait(10)
        httpx2.delete(api(hub) + "/proxies/redis")


def test_toxiproxys_python_client_drives_mockpanel(hub, upstream):
    from toxiproxy import Toxiproxy

    server = Toxiproxy()
    server.update_api_consumer("127.0.0.1", port_of(api(hub)))
    assert server.running()
    proxy = server.create(name="py-client", upstream=f"127.0.0.1:{upstream}", listen="127.0.0.1:0")
    try:
        assert "py-client" in server.proxies() and proxy.upstream == f"127.0.0.1:{upstream}"
        proxy.add_toxic(type="latency", attributes={"latency": 300})
        assert list(proxy.toxics()) == ["latency_downstream"]
        port = port_of("x:" + proxy.listen.rsplit(":", 1)[1])
        started = time.monotonic()
        assert httpx2.get(f"http://127.0.0.1:{port}/").content == BODY
        assert time.monotonic() - started >= 0.3
        proxy.destroy_toxic("latency_downstream")
        assert proxy.toxics() == {}
        with proxy.down():
            with pytest.raises(httpx2.ConnectError):
                httpx2.get(f"http://127.0.0.1:{port}/")
        assert httpx2.get(f"http://127.0.0.1:{port}/").content == BODY  # enabled again, on the same port
    finally:
        server.destroy(proxy)
    assert "py-client" not in server.proxies()


NODE_SCRIPT = """
const { Toxiproxy } = require("toxiproxy-node-client");
(async () => {
  const toxiproxy = new Toxiproxy(process.argv[2]);
  const proxy = await toxiproxy.createProxy({ name: "node-client", listen: "127.0.0.1:0", upstream: process.argv[3] });
  const toxic = await proxy.addToxic({ type: "latency", stream: "downstream", toxicity: 1, attributes: { latency: 250, jitter: 0 } });
  const all = await toxiproxy.getAll();
  console.log(JSON.stringify({ listen: proxy.listen, toxic: toxic.name, names: Object.keys(all) }));
})().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
"""


@pytest.fixture(scope="module")
def node_client(tmp_path_factory):
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("needs node and npm (apt-get install nodejs npm)")
    where = tmp_path_factory.mktemp("node")
    done = subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "toxiproxy-node-client@4"], cwd=where,
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"npm install toxiproxy-node-client failed: {done.stderr[-2000:]}")
        pytest.skip(f"npm install toxiproxy-node-client failed (offline?): {done.stderr[-300:]}")
    (where / "drive.js").write_text(NODE_SCRIPT)
    return where


def test_toxiproxys_node_client_drives_mockpanel(hub, upstream, node_client: Path):
    done = subprocess.run(["node", "drive.js", api(hub), f"127.0.0.1:{upstream}"], cwd=node_client, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout)
    assert said["toxic"] == "latency_downstream" and {"node-client", "auth", "s3", "web"} <= set(said["names"])
    port = int(said["listen"].rsplit(":", 1)[1])
    started = time.monotonic()
    assert httpx2.get(f"http://127.0.0.1:{port}/").content == BODY
    assert time.monotonic() - started >= 0.25
    httpx2.delete(api(hub) + "/proxies/node-client")


def test_the_pytest_plugin_and_a_scenario_step_switch_toxics_on_a_mock():
    from mockpanel.testing import Mocks

    with Mocks(settings_for(["auth"])) as mocks:
        url = mocks.url("auth")
        with mocks.toxic("auth", "latency", latency=300):
            started = time.monotonic()
            assert httpx2.get(url + "/health").status_code == 200
            assert time.monotonic() - started >= 0.3
        assert mocks.run(lambda: dict(mocks.hub["auth"].ctx.toxics.toxics)) == {}
        scenario = ('name = "flaky-network"\n[[step]]\nat = 0\nserver = "auth"\nfor = "60s"\n'
                    'toxics = [{ type = "limit_data", attributes = { bytes = 10 } }]\n')
        with mocks.scenario(scenario):
            deadline = time.monotonic() + 10
            while not mocks.run(lambda: bool(mocks.hub["auth"].ctx.toxics.toxics)):
                assert time.monotonic() < deadline
                time.sleep(0.02)
            assert len(b"".join(raw_get(port_of(url), "/health")[0])) == 10
        assert mocks.run(lambda: dict(mocks.hub["auth"].ctx.toxics.toxics)) == {}  # the step's toxic went with it
        assert httpx2.get(url + "/health").status_code == 200


def test_a_proxy_whose_port_is_taken_fails_like_a_server(tmp_path, upstream):
    from conftest import ServeProcess

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (tmp_path / "mockpanel.toml").write_text(f'[proxies.db]\nlisten = {port}\nupstream = "127.0.0.1:{upstream}"\n'
                                                 f'[proxies.web]\nlisten = 0\nupstream = "127.0.0.1:{upstream}"\n')
        with ServeProcess("--only", "auth", "--auth-port", "0", cwd=tmp_path) as proc:
            assert proc.proc.wait(30) == 1
            assert "proxy db could not start" in proc.proc.stderr.read()
        with ServeProcess("--only", "auth", "--auth-port", "0", "--keep-going", "--toxiproxy-port", "0", cwd=tmp_path) as proc:
            lines = [proc.readline() for _ in range(4)]
            assert lines[0].startswith("auth: running at")
            assert lines[1] == f"proxy db: failed: port {port} is in use"
            assert lines[2].startswith("proxy web: listening at 127.0.0.1:") and lines[2].endswith(f"→ 127.0.0.1:{upstream}")
            api_url = lines[3].removeprefix("toxiproxy API: running at ")
            assert httpx2.get(api_url + "/proxies/db").json()["enabled"] is True  # configured on, failed to listen
            web = int(lines[2].split("listening at 127.0.0.1:")[1].split()[0])
            assert len(b"".join(raw_get(web)[0])) > len(BODY)
            assert proc.stop() == 0


def test_a_proxy_open_to_the_network_is_announced_and_a_bad_one_named(tmp_path):
    from mockpanel.servers import SERVERS
    from mockpanel.settings import SettingsError, load_settings

    path = tmp_path / "mockpanel.toml"
    path.write_text('[proxies.db]\nlisten = "0.0.0.0:15432"\nupstream = "localhost:5432"\n')
    settings = load_settings(SERVERS, only=["auth"], config_path=path, cwd=tmp_path, environ={})
    assert any(n.startswith("warning: proxy db: listening on 0.0.0.0") for n in settings.notices)
    path.write_text('[proxies.db]\nlisten = 15432\nupstream = "localhost"\n')
    with pytest.raises(SettingsError, match=r"\[proxies\.db\].*upstream 'localhost': write host:port"):
        load_settings(SERVERS, only=["auth"], config_path=path, cwd=tmp_path, environ={})
