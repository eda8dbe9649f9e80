"""S3 XML is escaped by construction: a value a client sent can never become an element of a response."""

from __future__ import annotations

import httpx2
import pytest

from conftest import make_s3_client
from mockpanel.servers.s3.xml import Xml, document, el


def test_values_are_text_and_only_el_makes_elements():
    assert el("Key", "a<b>&c") == "<Key>a&lt;b&gt;&amp;c</Key>"
    assert el("Part", el("Size", 3), "<Forged/>") == "<Part><Size>3</Size>&lt;Forged/&gt;</Part>"
    assert b"<Root" in document("Root", ["<x/>", el("Y", 1)]) and b"&lt;x/&gt;<Y>1</Y>" in document("Root", ["<x/>", el("Y", 1)])
    with pytest.raises(ValueError):
        el("Checksum<x>", "1")
    assert isinstance(el("A"), Xml) and not isinstance("<A/>", Xml)


def test_a_checksum_value_with_markup_comes_back_escaped_in_list_parts(s3_url):
    s3 = make_s3_client(s3_url)
    s3.create_bucket(Bucket="parts")
    upload = s3.create_multipart_upload(Bucket="parts", Key="big")["UploadId"]
    forged = "AAAA</ChecksumCRC64NVME></Part><Part><PartNumber>7777</PartNumber><ETag>x</ETag><Size>1</Size><ChecksumCRC64NVME>A"
    r = httpx2.put(f"{s3_url}/parts/big", params={"partNumber": "1", "uploadId": upload}, content=b"data",
                  headers={"x-amz-checksum-crc64nvme": forged})
    # A crc64nvme value is the base64 of 8 bytes: anything else is refused before it is stored (and were it stored,
    # el() would still render it as text).
    assert r.status_code == 400 and "<Code>InvalidDigest</Code>" in r.text
    assert s3.list_parts(Bucket="parts", Key="big", UploadId=upload).get("Parts", []) == []
