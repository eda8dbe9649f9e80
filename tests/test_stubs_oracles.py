"""mockpanel's stubs beside the real tools: the requests of tests/oracle/cases.json were sent once to WireMock 3.13
(serving tests/data/wiremock/root) and to Prism 5.14 (serving each document of tests/data/openapi/), their answers
kept in tests/oracle/recorded.json (tests/oracle/record.py re-records them). Here mockpanel serves the same root and
documents and answers the same requests; each answer must agree as its case says (see cases.json's "about").
KNOWN lists where mockpanel differs on purpose, and why; the test also fails if one of those starts agreeing."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import httpx2

from mockpanel.testing import RunningHub, settings_for

HERE = Path(__file__).parent
ORACLE = HERE / "oracle"
DATA = HERE / "data"
KNOWN: dict[str, str] = {}  # case name: why mockpanel answers otherwise (README's table says the same)


def _media(value: str) -> str:
    return value.split(";")[0].strip().lower()


def _shape(value: object) -> object:
    if isinstance(value, dict):
        return ("object", sorted(value))
    if isinstance(value, list):
        return ("array", _shape(value[0]) if value else None)
    return type(value).__name__


def agrees(case: dict, theirs: dict, ours: httpx2.Response) -> str | None:
    """None when the answers agree as the case compares them, else how they differ."""
    if ours.status_code != theirs["status"]:
        return f"status {ours.status_code}, theirs {theirs['status']}"
    compare = case["compare"]
    if compare == "status":
        return None
    if compare == "nearest":
        mine = [m["stubMapping"]["request"] for m in ours.json()["nearMisses"]][:1]
        their = [m["stubMapping"]["request"] for m in json.loads(theirs["body"])["nearMisses"]][:1]
        return None if mine == their else f"nearest {mine}, theirs {their}"
    if _media(ours.headers.get("content-type", "")) != _media(theirs["content_type"]):
        return f"content type {ours.headers.get('content-type')!r}, theirs {theirs['content_type']!r}"
    if compare == "exact":
        return None if ours.text == theirs["body"] else f"body {ours.text[:200]!r}, theirs {theirs['body'][:200]!r}"
    if compare == "json":
        return None if ours.json() == json.loads(theirs["body"]) else f"JSON {ours.text[:200]}, theirs {theirs['body'][:200]}"
    mine, their = _shape(ours.json()), _shape(json.loads(theirs["body"]))
    return None if mine == their else f"shape {mine}, theirs {their}"


def test_mockpanel_answers_as_wiremock_and_prism_answered(tmp_path):
    cases = json.loads((ORACLE / "cases.json").read_text())["cases"]
    recorded = json.loads((ORACLE / "recorded.json").read_text())["answers"]
    shutil.copytree(DATA / "wiremock" / "root", tmp_path / "wiremock")
    documents = sorted({c["document"] for c in cases if c["tool"] == "prism"})
    config = ['[stubs.wm]\nmappings = "wiremock"\n']  # a WireMock root, as --root-dir: mappings/ and __files/ in it
    for index, document in enumerate(documents):
        shutil.copy(DATA / "openapi" / document, tmp_path / document)
        config.append(f'[stubs.doc{index}]\nopenapi = "{document}"\n')
    (tmp_path / "mockpanel.toml").write_text("\n".join(config))
    names = ["wm", *(f"doc{i}" for i in range(len(documents)))]
    differ: dict[str, str] = {}
    with RunningHub(settings_for(names, config=tmp_path / "mockpanel.toml")) as running:
        for case in cases:
            server = "wm" if case["tool"] == "wiremock" else f"doc{documents.index(case['document'])}"
            body = base64.b64decode(case["bodyBase64"]) if "bodyBase64" in case else case.get("body", "").encode()
            headers = dict(case.get("headers") or {})
            if case["path"].startswith("/__admin/") and body:
                headers.setdefault("Content-Type", "application/json")
            ours = httpx2.request(case["method"], running.urls[server] + case["path"], headers=headers, content=body or None)
            difference = agrees(case, recorded[case["name"]], ours)
            if difference is not None:
                differ[case["name"]] = difference
    assert len(cases) == len(recorded) >= 40
    assert {name: why for name, why in differ.items() if name not in KNOWN} == {}
    assert set(KNOWN) <= set(differ), "a known difference is gone: take it out of KNOWN and README's table"
