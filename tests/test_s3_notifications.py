"""S3 event notifications: a boto3 PUT reaches the webhook receiver as S3's event JSON with a valid signature; rules
from boto3 (ARNs), the control API and the settings; prefix/suffix filters; deletes; retries."""

from __future__ import annotations

import http.server
import json
import threading
import time

import httpx2
import pytest

from conftest import make_s3_client
from mockpanel.testing import RunningHub, settings_for


@pytest.fixture(scope="module")
def running():
    with RunningHub(settings_for(["s3", "webhooks"])) as hub:
        yield hub


def events(receiver: str, client: str, count: int, limit: float = 20) -> list[dict]:
    """The receiver's stored events for `client`, oldest first, once there are `count` (deliveries are asynchronous)."""
    deadline = time.monotonic() + limit
    while True:
        found = httpx2.get(f"{receiver}/webhooks/events", params={"client_id": client, "limit": 100}).json()["events"]
        if len(found) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(found) >= count, f"{len(found)} of {count} notifications arrived for {client}"
    return [httpx2.get(f"{receiver}/webhooks/events/{e['id']}").json() for e in reversed(found)]


def test_a_boto3_put_arrives_at_the_receiver_as_s3s_event(running):
    s3, receiver = make_s3_client(running.urls["s3"]), running.urls["webhooks"]
    s3.create_bucket(Bucket="notified")
    s3.put_bucket_versioning(Bucket="notified", VersioningConfiguration={"Status": "Enabled"})
    arn = "arn:aws:sqs:us-east-1:000000000000:uploads-queue"
    s3.put_bucket_notification_configuration(Bucket="notified", NotificationConfiguration={"QueueConfigurations": [{
        "Id": "to-receiver", "QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "photos/"}, {"Name": "suffix", "Value": ".jpg"}]}}}]})
    config = s3.get_bucket_notification_configuration(Bucket="notified")["QueueConfigurations"][0]
    assert config["QueueArn"] == arn and config["Events"] == ["s3:ObjectCreated:*"] and config["Id"] == "to-receiver"

    put = s3.put_object(Bucket="notified", Key="photos/cat 1.jpg", Body=b"meow" * 100)
    s3.put_object(Bucket="notified", Key="photos/readme.txt", Body=b"no")  # suffix filter: no event
    s3.put_object(Bucket="notified", Key="other/dog.jpg", Body=b"no")  # prefix filter: no event
    (event,) = events(receiver, "uploads-queue", 1)
    assert event["signature"]["verdict"] == "valid"  # X-Webhook-Signature with the receiver's default secret
    (record,) = event["json"]["Records"]
    assert record["eventSource"] == "aws:s3" and record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"] == "notified" and record["s3"]["configurationId"] == "to-receiver"
    assert record["s3"]["object"]["key"] == "photos/cat+1.jpg"  # S3 form-encodes keys in events
    assert record["s3"]["object"]["size"] == 400 and record["s3"]["object"]["eTag"] == put["ETag"].strip('"')
    assert record["s3"]["object"]["versionId"] == put["VersionId"]


def test_control_api_rules_deletes_and_retries(running):
    s3, receiver, url = make_s3_client(running.urls["s3"]), running.urls["webhooks"], running.urls["s3"]
    s3.create_bucket(Bucket="controlled")
    rule = {"url": f"{receiver}/webhooks/flaky-consumer", "events": ["s3:ObjectCreated:Put", "s3:ObjectRemoved:*"]}
    answer = httpx2.put(f"{url}/__mockpanel/notifications/controlled", json=rule)
    assert answer.status_code == 200 and answer.json()["rules"][0]["url"] == rule["url"]
    bad = httpx2.put(f"{url}/__mockpanel/notifications/controlled", json={"url": "ftp://x", "events": ["s3:Everything"]})
    assert bad.status_code == 422 and "http(s) url" in bad.json()["detail"]
    running.run(running.hub.facade("webhooks").set_plan, "flaky-consumer", "500+200")  # the first delivery fails: the retry succeeds

    s3.put_object(Bucket="controlled", Key="doc.txt", Body=b"hello")
    s3.delete_object(Bucket="controlled", Key="doc.txt")
    arrived = events(receiver, "flaky-consumer", 4)  # the plan answers each delivery's first attempt 500, its second 200
    by_name: dict[str, list[tuple[int, int]]] = {}
    for e in arrived:
        by_name.setdefault(e["json"]["Records"][0]["eventName"], []).append((e["delivery"]["attempt"], e["response_status"]))
    assert by_name == {"ObjectCreated:Put": [(1, 500), (2, 200)], "ObjectRemoved:Delete": [(1, 500), (2, 200)]}

    assert httpx2.delete(f"{url}/__mockpanel/notifications/controlled").json()["rules"] == []
    assert s3.get_bucket_notification_configuration(Bucket="controlled").get("QueueConfigurations") is None


class _Collector(http.server.BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_rules_from_the_settings_and_an_arn_declared_there():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    target = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        settings = {"s3": {"buckets": "configured", "notifications": [{"bucket": "configured", "url": target, "events": ["s3:ObjectCreated:*"]}],
                           "notification_targets": f"arn:aws:sns:us-east-1:1:topic={target}"}}
        with RunningHub(settings_for(["s3"], settings)) as hub:
            s3 = make_s3_client(hub.urls["s3"])
            s3.put_object(Bucket="configured", Key="a.txt", Body=b"a")
            s3.create_bucket(Bucket="by-arn")
            s3.put_bucket_notification_configuration(Bucket="by-arn", NotificationConfiguration={"TopicConfigurations": [{
                "TopicArn": "arn:aws:sns:us-east-1:1:topic", "Events": ["s3:ObjectCreated:Copy"]}]})
            s3.copy_object(Bucket="by-arn", Key="b.txt", CopySource={"Bucket": "configured", "Key": "a.txt"})
            deadline = time.monotonic() + 20
            while len(_Collector.bodies) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        names = sorted(json.loads(b)["Records"][0]["eventName"] for b in _Collector.bodies)
        assert names == ["ObjectCreated:Copy", "ObjectCreated:Put"]
    finally:
        server.shutdown()
        server.server_close()


def test_an_arn_with_no_target_is_refused_without_a_receiver():
    from botocore.exceptions import ClientError

    with RunningHub(settings_for(["s3"])) as hub:
        s3 = make_s3_client(hub.urls["s3"])
        s3.create_bucket(Bucket="lonely")
        with pytest.raises(ClientError) as refused:
            s3.put_bucket_notification_configuration(Bucket="lonely", NotificationConfiguration={"QueueConfigurations": [{
                "QueueArn": "arn:aws:sqs:us-east-1:1:q", "Events": ["s3:ObjectCreated:*"]}]})
        assert refused.value.response["Error"]["Code"] == "InvalidArgument"
