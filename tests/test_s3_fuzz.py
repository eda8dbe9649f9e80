"""Hypothesis against the running S3 mock over HTTP: odd keys, metadata, ranges, part numbers and XML bodies get S3
answers (an S3 error document when refused), never a 500, and never tear what is stored."""

from __future__ import annotations

import base64
import os
import hashlib
from urllib.parse import quote

import httpx2
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import ServeProcess, make_s3_client

FUZZ = settings(max_examples=2000 if os.environ.get("CI") else 250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
                derandomize=bool(os.environ.get("CI")))  # CI: the same examples every run; locally: new ones each time
SENTINEL = bytes(range(256)) * 40  # 10 KiB every example must leave untouched


@pytest.fixture(scope="module")
def s3env():
    # A `mockpanel serve` process of its own: the watchdog then measures the server's loop, not the test process
    # (whose garbage collections over hypothesis's data hold every thread in it, the loop's too).
    with ServeProcess("--only", "s3", "--s3-port", "0", "--quiet", env={"S3_MIN_PART_SIZE": "1"}) as serve:
        url = serve.urls(1)["s3"]
        s3 = make_s3_client(url)
        s3.create_bucket(Bucket="fuzz")
        s3.put_object(Bucket="fuzz", Key="sentinel", Body=SENTINEL, Metadata={"keep": "me"})
        with httpx2.Client(base_url=url, timeout=30) as client:
            yield url, s3, client
        # whatever the examples did, the sentinel is whole
        got = s3.get_object(Bucket="fuzz", Key="sentinel")
        assert got["Body"].read() == SENTINEL and got["Metadata"] == {"keep": "me"}
        # and no example held the server's loop (its watchdog saw no stall over 1 s)
        loop = serve.loop_stalls(url)
        assert loop["worst_stall_ms"] < 1000, loop


def s3_answer(r: httpx2.Response) -> None:
    """Not a 500; an error is an S3 XML error document."""
    assert r.status_code < 500, (r.status_code, r.text[:300])
    if r.status_code >= 400 and r.request.method != "HEAD":
        assert r.text.startswith("<?xml") and "<Error><Code>" in r.text, r.text[:300]


def sentinel_intact(client: httpx2.Client) -> None:
    r = client.get("/fuzz/sentinel")
    assert r.status_code == 200 and hashlib.md5(r.content).digest() == hashlib.md5(SENTINEL).digest()


keys = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=300)


@FUZZ
@given(key=keys, body=st.binary(max_size=2048))
@example(key="\U0010ffff", body=b"")  # the listing's old "skip past this prefix" bound was this character
@example(key="a/\U0010ffff/b", body=b"")
def test_any_key_round_trips_through_boto3(s3env, key, body):
    _, s3, _ = s3env
    if key == "sentinel":
        return
    s3.put_object(Bucket="fuzz", Key=key, Body=body)
    assert s3.get_object(Bucket="fuzz", Key=key)["Body"].read() == body
    listed = s3.list_objects_v2(Bucket="fuzz", Prefix=key, EncodingType="url")
    from urllib.parse import unquote_plus

    assert key in [unquote_plus(o["Key"]) for o in listed.get("Contents", [])]
    s3.delete_object(Bucket="fuzz", Key=key)


@FUZZ
@given(raw=st.binary(min_size=1, max_size=1100))
def test_any_raw_path_is_an_s3_answer(s3env, raw):
    _, _, client = s3env
    path = "/fuzz/" + quote(raw, safe="")
    r = client.put(path, content=b"x")
    s3_answer(r)
    if r.status_code == 200:
        s3_answer(client.get(path))
        s3_answer(client.delete(path))
    sentinel_intact(client)


header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=3000).map(str.strip)  # h11 sends no edge spaces


@FUZZ
@given(meta=st.dictionaries(st.from_regex(r"[a-z0-9-]{1,40}", fullmatch=True), header_values, max_size=5))
def test_any_metadata_is_stored_or_refused(s3env, meta):
    _, _, client = s3env
    headers = {f"x-amz-meta-{k}": v for k, v in meta.items()}
    r = client.put("/fuzz/meta-object", content=b"m", headers=headers)
    s3_answer(r)
    if r.status_code == 200:
        head = client.head("/fuzz/meta-object")
        for k, v in meta.items():
            assert head.headers[f"x-amz-meta-{k}"] == v
    else:
        assert "<Code>MetadataTooLarge</Code>" in r.text
    sentinel_intact(client)


def byte_ranges(junk: int):
    """Range specs around the sentinel's 10 KiB (negative, past the end, open-ended) and `junk` characters of text."""
    return st.one_of(
        st.builds(lambda a, b: f"bytes={a}-{b}", st.integers(-5, 12000), st.integers(-5, 12000)),
        st.builds(lambda a: f"bytes={a}-", st.integers(-5, 12000)),
        st.builds(lambda b: f"bytes=-{b}", st.integers(0, 12000)),
        header_values.map(lambda v: v[:junk]),
    )


@FUZZ
@given(spec=byte_ranges(40))
def test_any_range_is_a_correct_slice_or_an_s3_error(s3env, spec):
    _, _, client = s3env
    r = client.get("/fuzz/sentinel", headers={"range": spec})
    s3_answer(r)
    if r.status_code == 206:
        first, last = (int(x) for x in r.headers["content-range"].split(" ")[1].split("/")[0].split("-"))
        assert r.content == SENTINEL[first:last + 1]
    elif r.status_code == 200:
        assert r.content == SENTINEL
    else:
        assert "<Code>InvalidRange</Code>" in r.text


@FUZZ
@given(number=st.one_of(st.integers(-10, 20000), st.text(max_size=12)))
def test_any_part_number_is_a_part_or_an_s3_error(s3env, number):
    _, s3, client = s3env
    upload = s3.create_multipart_upload(Bucket="fuzz", Key="mp")["UploadId"]
    try:
        r = client.put("/fuzz/mp", params={"uploadId": upload, "partNumber": str(number)}, content=b"part")
        s3_answer(r)
        text = str(number)
        ok = text.isascii() and text.isdigit() and 1 <= int(text) <= 10000
        assert (r.status_code == 200) == ok, (number, r.status_code, r.text[:200])
        if not ok:
            assert "<Code>InvalidArgument</Code>" in r.text
    finally:
        s3.abort_multipart_upload(Bucket="fuzz", Key="mp", UploadId=upload)


xml_bodies = st.one_of(
    st.binary(max_size=4096),
    st.text(max_size=2000).map(str.encode),
    st.builds(lambda keys: ("<Delete>" + "".join(f"<Object><Key>{k}</Key></Object>" for k in keys) + "</Delete>").encode(),
              st.lists(st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=50), max_size=20)),
    st.sampled_from([
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><Delete><Object><Key>&lol3;</Key></Object></Delete>',
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><Delete><Object><Key>&x;</Key></Object></Delete>',
        b"<Delete>" + b"<Object><Key>sentinel</Key></Object>" * 0 + b"<Object><Key>k</Key></Object>" * 1001 + b"</Delete>",
        b"<Delete>" + b"<a>" * 5000 + b"</a>" * 5000 + b"</Delete>",
        b"<Delete><Object><Key>" + b"k" * (2 * 1024 * 1024) + b"</Key></Object></Delete>",
    ]),
)


@FUZZ
@given(body=xml_bodies)
def test_any_xml_body_is_parsed_or_refused_without_harm(s3env, body):
    _, s3, client = s3env
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()  # so the XML itself is what gets judged
    s3_answer(client.post("/fuzz", params={"delete": ""}, content=body, headers={"Content-MD5": md5}))
    upload = s3.create_multipart_upload(Bucket="fuzz", Key="mp-xml")["UploadId"]
    s3_answer(client.post("/fuzz/mp-xml", params={"uploadId": upload}, content=body))
    s3_answer(client.put("/fuzz-new-bucket", content=body))
    client.delete("/fuzz-new-bucket")
    s3_answer(client.delete("/fuzz/mp-xml", params={"uploadId": upload}))  # abort (NoSuchUpload when completed)
    client.delete("/fuzz/mp-xml")
    sentinel_intact(client)


chunk_sizes = st.one_of(st.integers(0, 64).map(lambda n: format(n, "x")), st.text(max_size=20),
                        st.sampled_from(["-6", "+1", "0x1", "1_0", " 1", "1" * 40, "\u0661", "ffffffffffffffff"]))
trailer_lines = st.lists(st.one_of(st.sampled_from(["x-amz-checksum-crc32:AAAAAA==", "x-amz-checksum-crc32:<x/>",
                                                   "x-amz-checksum-evil:1", "no colon"]), st.text(max_size=40)), max_size=12)


@FUZZ
@given(sizes=st.lists(chunk_sizes, min_size=1, max_size=6), data=st.binary(max_size=64), trailers=trailer_lines)
def test_any_aws_chunked_body_is_decoded_or_refused_at_once(s3env, sizes, data, trailers):
    _, _, client = s3env
    body = b"".join(size.encode("utf-8", "surrogatepass") + b"\r\n" + data[: 8] + b"\r\n" for size in sizes)
    body += b"0\r\n" + b"".join(t.encode("utf-8", "surrogatepass") + b"\r\n" for t in trailers) + b"\r\n"
    r = client.put("/fuzz/chunked", content=body, headers={"content-encoding": "aws-chunked",
                                                           "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER"})
    s3_answer(r)
    sentinel_intact(client)


etag = hashlib.md5(SENTINEL).hexdigest()
http_dates = st.datetimes(min_value=__import__("datetime").datetime(1900, 1, 1)).map(lambda d: d.strftime("%a, %d %b %Y %H:%M:%S GMT"))
condition_values = st.one_of(header_values.map(lambda v: v[:80]), http_dates,
                             st.sampled_from([f'"{etag}"', etag, "*", f'"{etag}", "x"', "W/\"x\"", '""', "Thu, 01 Jan 1970 00:00:00 GMT",
                                              "Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 32 Foo 2024 99:99:99 GMT"]))
conditions = st.dictionaries(st.sampled_from(["if-match", "if-none-match", "if-modified-since", "if-unmodified-since"]),
                             condition_values, max_size=4)


@FUZZ
@given(headers=conditions, method=st.sampled_from(["GET", "HEAD", "PUT-new", "PUT-over", "COPY"]))
def test_any_conditional_request_is_answered_as_s3_does(s3env, headers, method):
    """Conditional GET/HEAD: the object, 304 or 412; conditional writes: stored, or 412 leaving what is there; the
    copy-source conditions likewise. Never a 500, never a torn object."""
    _, s3, client = s3env
    if method in ("GET", "HEAD"):
        r = client.request(method, "/fuzz/sentinel", headers=headers)
        s3_answer(r)
        assert r.status_code in (200, 304, 400, 412), (headers, r.status_code, r.text[:200])
        if method == "GET" and r.status_code == 200:
            assert r.content == SENTINEL
    elif method == "COPY":
        copy = {f"x-amz-copy-source-{k}": v for k, v in headers.items()}
        r = client.put("/fuzz/copied", headers={"x-amz-copy-source": "/fuzz/sentinel", **copy})
        s3_answer(r)
        if r.status_code == 200:
            assert client.get("/fuzz/copied").content == SENTINEL
        client.delete("/fuzz/copied")
    else:
        key = "/fuzz/cond-new" if method == "PUT-new" else "/fuzz/cond-over"
        before = client.get(key)
        sent = {k: v for k, v in headers.items() if "match" in k}
        r = client.put(key, content=b"written", headers=sent)
        if r.status_code == 501:  # as AWS: a write's If-None-Match may only be "*"
            assert "<Code>NotImplemented</Code>" in r.text and sent.get("if-none-match") != "*"
        else:
            s3_answer(r)
        after = client.get(key)
        if r.status_code == 200:
            assert after.content == b"written"
        else:
            assert after.status_code == before.status_code
            assert after.status_code == 404 or after.content == before.content
        client.delete("/fuzz/cond-new")
    sentinel_intact(client)


@FUZZ
@given(spec=byte_ranges(60), source=st.one_of(st.just("/fuzz/sentinel"), st.just("fuzz/sentinel?versionId=null"), header_values.map(lambda v: v[:200])))
def test_any_copy_source_and_range_copies_that_slice_or_is_refused(s3env, spec, source):
    _, s3, client = s3env
    upload = s3.create_multipart_upload(Bucket="fuzz", Key="mp-copy")["UploadId"]
    try:
        r = client.put("/fuzz/mp-copy", params={"uploadId": upload, "partNumber": "1"},
                       headers={"x-amz-copy-source": source, "x-amz-copy-source-range": spec})
        s3_answer(r)
        if r.status_code == 200:
            first, last = (int(x) for x in spec.removeprefix("bytes=").split("-"))
            expected = hashlib.md5(SENTINEL[first:last + 1]).hexdigest()
            assert f"&quot;{expected}&quot;" in r.text or f'"{expected}"' in r.text, (spec, r.text[:300])
    finally:
        s3.abort_multipart_upload(Bucket="fuzz", Key="mp-copy", UploadId=upload)
    sentinel_intact(client)
