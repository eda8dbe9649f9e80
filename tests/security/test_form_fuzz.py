"""Hypothesis against the multipart form parsers of the image API, the client app and S3's browser uploads, over HTTP: any body, boundary
or part headers get a JSON answer below 500, and no example holds the loop every server shares."""

from __future__ import annotations

import time

import httpx2
import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockpanel.servers.image_api import CLIENT_SECRET_DEFAULT
from conftest import ServeProcess
from test_s3_fuzz import FUZZ

def png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (2, 2), "red").save(out, "PNG")
    return out.getvalue()


PNG = png()


@pytest.fixture(scope="module")
def forms():
    # `mockpanel serve` in a process of its own, so its watchdog measures the servers' loop alone.
    with ServeProcess("--only", "s3,webhooks,imageapi,client", "--s3-port", "0", "--webhooks-port", "0", "--imageapi-port", "0",
                      "--client-port", "0", "--quiet", env={"RATE_LIMIT_PER_MINUTE": "100000000"}) as serve:
        urls = serve.urls(4)
        assert httpx2.put(f"{urls['s3']}/fuzz-post").status_code == 200  # the bucket S3's POST uploads go to
        token = jwt.encode({"sub": "fuzz", "exp": int(time.time()) + 3600}, CLIENT_SECRET_DEFAULT, algorithm="HS256")
        with httpx2.Client(timeout=30) as client:
            yield urls, client, token
        for name, url in urls.items():
            assert httpx2.get(url + ("/api/v1/health" if name == "imageapi" else "/health")).status_code == 200
        loop = serve.loop_stalls(urls["s3"])
        assert loop["worst_stall_ms"] < 1000, loop


header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=120)
boundaries = st.one_of(st.from_regex(r"[A-Za-z0-9-]{8,40}", fullmatch=True), st.from_regex(r"[A-Za-z0-9'()+_,./:=?-]{1,70}", fullmatch=True), header_text, st.just(""), st.just("x" * 5000))
names = st.one_of(st.sampled_from(["file", "bucket", "context", "user_id", "key", "policy", "Content-Type", "success_action_status",
                                    "success_action_redirect", "x-amz-meta-a", "acl"]), header_text.map(lambda v: v[:30]))
part_headers = st.one_of(
    st.builds(lambda n, f: f'Content-Disposition: form-data; name="{n}"' + (f'; filename="{f}"' if f is not None else ""),
              names, st.one_of(st.none(), header_text.map(lambda v: v[:60]), st.sampled_from(["a\r\nb", "\u00e9t\u00e9.png", "..\\..\\x"]))),
    header_text,
    st.just("Content-Type: image/png"),
)
contents = st.one_of(st.binary(max_size=300), st.just(PNG))
file_part = st.builds(lambda f, t, c: ([f'Content-Disposition: form-data; name="file"; filename="{f}"'] + ([t] if t else []), c),
                      st.one_of(st.just("a.png"), header_text.map(lambda v: v[:60].replace('"', ""))),
                      st.sampled_from(["Content-Type: image/png", "Content-Type: application/octet-stream", "", "Content-Type: é"]),
                      contents)
parts = st.one_of(
    st.lists(st.tuples(st.lists(part_headers, max_size=3), contents), max_size=6),  # anything
    st.builds(lambda f, rest: [f, *rest], file_part, st.lists(st.tuples(st.lists(part_headers, max_size=2), contents), max_size=3)),  # a real upload
)


def multipart(boundary: str, items: list[tuple[list[str], bytes]], ending: str) -> bytes:
    out = bytearray()
    for headers, content in items:
        out += f"--{boundary}\r\n".encode("utf-8", "surrogatepass")
        out += "".join(h + "\r\n" for h in headers).encode("utf-8", "surrogatepass") + b"\r\n" + content + b"\r\n"
    return bytes(out) + ending.replace("B", boundary).encode("utf-8", "surrogatepass")


def json_answer(r: httpx2.Response) -> None:
    from hypothesis import event
    event(f"{r.request.url.path} {r.status_code}")  # --hypothesis-show-statistics: which answers the examples reached
    assert r.status_code < 500, (r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert "detail" in r.json(), r.text[:300]


@FUZZ
@given(boundary=boundaries, declared=st.one_of(st.none(), st.none(), st.none(), boundaries), items=parts,
       ending=st.sampled_from(["--B--\r\n"] * 6 + ["--B--", "--B", "", "--B--\r\ntrailing junk", "\r\n--B--\r\n"]),
       raw=st.one_of(st.none(), st.none(), st.none(), st.binary(max_size=2000)),
       content_type=st.sampled_from(["multipart/form-data; boundary={}"] * 6 + ["multipart/form-data; boundary=\"{}\"",
                                     "multipart/form-data", "multipart/mixed; boundary={}", "text/plain", "{}"]))
def test_any_upload_form_gets_a_json_answer(forms, boundary, declared, items, ending, raw, content_type):
    urls, client, token = forms
    body = raw if raw is not None else multipart(boundary, items, ending)
    ctype = content_type.format(boundary if declared is None else declared).strip()  # h11 sends no edge spaces
    try:
        ctype.encode("latin-1")
    except UnicodeEncodeError:
        ctype = "multipart/form-data"
    json_answer(client.post(f"{urls['imageapi']}/api/v1/images/upload", content=body,
                            headers={"content-type": ctype, "authorization": f"Bearer {token}"}))
    json_answer(client.post(f"{urls['client']}/api/upload", content=body, headers={"content-type": ctype}))
    s3_answer(client.post(f"{urls['s3']}/fuzz-post", content=body, headers={"content-type": ctype}))


def s3_answer(r: httpx2.Response) -> None:
    """S3's browser upload (PostObject): below 500, and an S3 XML error document when refused."""
    from hypothesis import event
    event(f"s3 POST {r.status_code}")
    assert r.status_code < 500, (r.status_code, r.text[:1500])
    if r.status_code >= 400:
        assert r.text.startswith("<?xml") and "<Error><Code>" in r.text, r.text[:300]


def test_a_malformed_form_leaves_no_library_warning_on_the_terminal():
    """python-multipart warns of every malformed form; in `serve` (and under the panel) that went to stderr raw."""
    with ServeProcess("--only", "imageapi", "--imageapi-port", "0") as serve:
        url = serve.readline().removeprefix("imageapi: running at ")
        r = httpx2.post(f"{url}/api/v1/images/upload", content=b"--abd\r\nxx", headers={
            "content-type": "multipart/form-data; boundary=abc", "authorization": "Bearer x"})
        assert r.status_code == 400 and r.json()["detail"] == "Invalid multipart data."
        assert "POST /api/v1/images/upload 400" in serve.readline()  # the request is over
        assert serve.stop() == 0
        assert "boundary" not in serve.proc.stderr.read()
