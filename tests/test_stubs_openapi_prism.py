"""OpenAPI stubs answer as Prism does, on the documents users already have: the OAI Petstore as published (response
codes unquoted), unquoted YAML dates in examples, a real public API document of 346 operations (Gitea's, MIT, as
APIs.guru publishes it), bodies that are not JSON, and Prism's refusal statuses. Every answer made from a schema is
checked by openapi-core (a validator mockpanel did not write) against the operation's response schema."""

from __future__ import annotations

import base64
import json
import random
import shutil
from pathlib import Path

import httpx2
import pytest

from mockpanel.testing import RunningHub, settings_for

DATA = Path(__file__).parent / "data"
DOCUMENTS = [DATA / "openapi" / "petstore-oai.yaml", DATA / "openapi" / "features.yaml", DATA / "openapi" / "gitea.json",
             DATA / "petstore.yaml"]
BASIC = {"Authorization": "Basic " + base64.b64encode(b"user:pass").decode()}


def serve(tmp_path: Path, document: Path) -> RunningHub:
    shutil.copy(document, tmp_path / document.name)
    config = tmp_path / "mockpanel.toml"
    config.write_text(f'[stubs.api]\nopenapi = "{document.name}"\n')
    return RunningHub(settings_for(["api"], config=config))


def test_the_oai_petstore_as_published_with_unquoted_codes_is_served(tmp_path):
    with serve(tmp_path, DATA / "openapi" / "petstore-oai.yaml") as running:
        url = running.urls["api"]
        pets = httpx2.get(f"{url}/pets")
        assert pets.status_code == 200 and isinstance(pets.json(), list)
        assert httpx2.post(f"{url}/pets").status_code == 201
        assert httpx2.get(f"{url}/pets/7", headers={"Prefer": "code=500"}).json().keys() == {"code", "message"}


def test_dates_in_examples_are_served_as_the_document_wrote_them(tmp_path):
    with serve(tmp_path, DATA / "openapi" / "features.yaml") as running:
        albums = httpx2.get(running.urls["api"] + "/albums", headers=BASIC)
        assert albums.status_code == 200
        assert albums.json() == [{"id": 1, "title": "Tago Mago", "release_date": "1971-02-01", "updated_at": "2021-03-04T05:06:07Z"}]


def _request_for(stub, method: str, route: str, rng: random.Random) -> dict:
    """A request the operation accepts: its path, required query and header parameters and body made from their
    schemas, and credentials for every scheme the document declares."""
    from mockpanel.servers.stubs.schemas import Sampler

    operation = stub._operation(route, method.lower())
    sampler = Sampler(stub.resolve, "request")
    path, query, headers = route, {}, dict(BASIC)
    for param in operation.params:
        value = sampler.value(param.schema, rng, use_examples=False)
        text = ",".join(map(str, value)) if isinstance(value, list) else json.dumps(value) if isinstance(value, (bool, dict)) else str(value)
        text = text.lower() if isinstance(value, bool) else text
        if param.where == "path":
            path = path.replace("{" + param.name + "}", httpx2.URL("http://x/" + text.replace("/", "-")).raw_path.decode()[1:])
        elif param.where == "query" and param.required:
            query[param.name] = text
        elif param.where == "header" and param.required:
            headers[param.name] = text
    for name, scheme in ((stub.document.get("components") or {}).get("securitySchemes") or {}).items():
        scheme = stub.resolve(scheme) or {}
        if scheme.get("type") == "apiKey" and scheme.get("in") == "query":
            query[scheme["name"]] = "key"
        elif scheme.get("type") == "apiKey" and scheme.get("in") == "header" and scheme["name"].lower() != "authorization":
            headers[scheme["name"]] = "key"
    body = None
    if operation.body is not None and operation.body.required:
        media, (schema, _) = next(iter(operation.body.media.items()))
        value = sampler.value(schema, rng, use_examples=False)
        if "json" in media:
            body, headers["Content-Type"] = json.dumps(value).encode(), media
        elif media == "application/x-www-form-urlencoded":
            body, headers["Content-Type"] = httpx2.QueryParams(value if isinstance(value, dict) else {}).__str__().encode(), media
        elif media == "multipart/form-data":
            fields = value if isinstance(value, dict) else {}
            built = httpx2.Request("POST", "http://x", files={k: (f"{k}.bin", b"data") for k in fields} or {"file": ("f.bin", b"data")})
            body, headers["Content-Type"] = built.read(), built.headers["content-type"]
        else:
            body, headers["Content-Type"] = b"data", media
    return {"method": method, "path": path, "query": query, "headers": headers, "body": body}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: d.name)
def test_every_operation_answers_a_body_its_response_schema_accepts(tmp_path, document):
    """Each operation, each response it declares (chosen with Prefer: code=…): openapi-core validates the answer
    (status, content type, headers, body) against the document. Answers made from a schema must pass every time; a
    document's own examples are served as written, as Prism serves them."""
    from openapi_core import OpenAPI
    from openapi_core.testing import MockRequest, MockResponse

    from mockpanel.servers.stubs.openapi import OpenApiStub

    stub = OpenApiStub(document)
    api = OpenAPI.from_dict({**stub.document, "servers": [{"url": "/"}]})
    rng = random.Random(7)
    checked, failures = 0, []
    with serve(tmp_path, document) as running, httpx2.Client(base_url=running.urls["api"]) as client:
        for method, route, _ in stub.operations():
            operation = stub._operation(route, method.lower())
            request = _request_for(stub, method, route, rng)
            for code, response in (operation.raw.get("responses") or {}).items():
                media = next((t for t in (stub.resolve(response) or {}).get("content") or {} if "json" in t), None)
                if media is None:
                    continue
                code = code if code.isdigit() else "599"  # default: any status the operation declares no other for
                entry = stub.resolve(stub.resolve(response)["content"][media]) or {}
                if "example" in entry or entry.get("examples"):
                    continue  # the document's own example, served as written
                answer = client.request(request["method"], request["path"], params=request["query"], content=request["body"],
                                        headers={**request["headers"], "Prefer": f"code={code}"})
                assert answer.status_code == int(code), (method, route, code, answer.status_code, answer.text[:300])
                checked += 1
                try:
                    api.validate_response(MockRequest("http://stub", method.lower(), route),
                                          MockResponse(answer.content, status_code=answer.status_code,
                                                       content_type=answer.headers["content-type"], headers=dict(answer.headers)))
                except Exception as exc:
                    failures.append(f"{method} {route} {code}: {str(getattr(exc, '__cause__', None) or exc)[:300]}")
    assert checked >= (250 if document.name == "gitea.json" else 4)
    assert failures == []


def test_bodies_that_are_not_json_are_checked_as_their_media_type_says(tmp_path):
    with serve(tmp_path, DATA / "openapi" / "features.yaml") as running:
        url = running.urls["api"]
        jpeg = {"Content-Type": "image/jpeg"}
        assert httpx2.put(f"{url}/albums/1/cover", content=b"\xff\xd8\xff\xe0data", headers={**BASIC, **jpeg}).status_code == 204
        anonymous = httpx2.put(f"{url}/albums/1/cover", content=b"\xff\xd8", headers={**jpeg, "Prefer": "code=401"})
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == 'Basic realm="*"'
        assert set(anonymous.json()) == {"title", "status"}  # the operation's declared 401 body
        note = httpx2.post(f"{url}/albums/1/notes", content=b"short note", headers={**BASIC, "Content-Type": "text/plain"})
        assert (note.status_code, note.headers["content-type"]) == (200, "text/plain")
        long_note = httpx2.post(f"{url}/albums/1/notes", content=b"n" * 30, headers={**BASIC, "Content-Type": "text/plain"})
        assert long_note.status_code == 400  # the operation declares a 400 (and no 422): Prism answers it
        assert "longer than 20 characters" in long_note.headers["sl-violations"]
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        made = httpx2.post(f"{url}/albums", content=b"title=Ege+Bamyasi&year=1972", headers={**BASIC, **form})
        assert made.status_code == 201 and {"id", "title", "release_date"} <= set(made.json())
        refused = httpx2.post(f"{url}/albums", content=b"year=12", headers={**BASIC, **form})
        assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
        assert any("year: 12 is less than the minimum of 1900" in e for e in refused.json()["errors"])
        csv = httpx2.post(f"{url}/albums", content=b"a,b", headers={**BASIC, "Content-Type": "text/csv"})
        assert csv.status_code == 415 and "application/json" in csv.json()["detail"]


def test_hostile_bodies_and_parameters_are_refused_in_the_documents_shape(tmp_path):
    """From an attacker's side: JSON nested past Python's stack, a regex-shaped parameter, a thousand repeats of a
    query parameter; each refused (400/422), the server answering the next request."""
    with serve(tmp_path, DATA / "openapi" / "features.yaml") as running:
        url = running.urls["api"]
        json_headers = {**BASIC, "Content-Type": "application/json"}
        deep = httpx2.post(f"{url}/albums", content=b"[" * 200_000 + b"]" * 200_000, headers=json_headers)
        assert deep.status_code == 400
        tags = httpx2.get(f"{url}/albums", params=[("tags", "a" * 10)] * 1000, headers=BASIC)
        assert tags.status_code == 422 and "has more than 3 items" in tags.json()["detail"]
        assert httpx2.get(f"{url}/albums", params={"year": "9" * 5000}, headers=BASIC).status_code == 422
        nested = httpx2.get(f"{url}/search", params={"filter": "[" * 3000 + "]" * 3000})  # a JSON parameter past the stack
        assert nested.status_code == 422 and "query parameter filter: not JSON" in nested.json()["detail"]
        assert httpx2.get(f"{url}/search", params={"filter": '{"artist": "Can"}'}).status_code == 200
        assert httpx2.get(f"{url}/artists").status_code == 200


def test_a_flood_of_example_names_keeps_the_answers_the_document_names():
    """Prefer: example=NAME is the client's: each unknown name is answered 404 but never kept, so the answers kept
    (and the validators compiled) stay those the document can name, however many names a client sends."""
    from mockpanel.servers.stubs.matching import Incoming
    from mockpanel.servers.stubs.openapi import OpenApiStub

    stub = OpenApiStub(DATA / "openapi" / "features.yaml")
    for index in range(5000):
        answer = stub.answer(Incoming("GET", "/artists", "", {"prefer": [f"example=name{index}"]}))
        assert answer.status == 404
    assert stub.answer(Incoming("GET", "/artists", "", {})).status == 200
    assert len(stub._answers) == 1 and len(stub._checkers) < 10
