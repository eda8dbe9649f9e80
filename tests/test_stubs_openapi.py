"""A stub server from an OpenAPI 3 document: the OpenAPI Specification's own Petstore example, served unchanged,
answering examples and refusing bad requests with reasons; named examples and Prefer; a document that is not one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx2
import pytest

from mockpanel.settings import SettingsError
from mockpanel.testing import RunningHub, settings_for

PETSTORE = Path(__file__).parent / "data" / "petstore.yaml"


def petstore(tmp_path: Path, seed: int = 0) -> RunningHub:
    shutil.copy(PETSTORE, tmp_path / "petstore.yaml")
    config = tmp_path / "mockpanel.toml"
    config.write_text(f'[stubs.petstore]\nopenapi = "petstore.yaml"\nseed = {seed}\n')
    return RunningHub(settings_for(["petstore"], config=config))


def test_the_petstore_answers_from_its_schemas_the_same_for_the_same_seed(tmp_path):
    with petstore(tmp_path) as running:
        url = running.urls["petstore"]
        pets = httpx2.get(f"{url}/pets", params={"limit": 10})
        assert pets.status_code == 200
        assert pets.headers["content-type"] == "application/json"
        assert isinstance(pets.json(), list) and pets.json()
        for pet in pets.json():
            assert isinstance(pet["id"], int) and isinstance(pet["name"], str)
        assert "x-next" in pets.headers  # the response's declared header, with a value
        pet = httpx2.get(f"{url}/pets/12")
        assert pet.status_code == 200 and set(pet.json()) >= {"id", "name"}
        assert httpx2.get(f"{url}/pets/Rex%20the%20dog").status_code == 200  # a path parameter, percent-encoded
        created = httpx2.post(f"{url}/pets", json={"id": 3, "name": "Rex", "tag": "dog"})
        assert (created.status_code, created.content) == (201, b"")
        again = httpx2.get(f"{url}/pets", params={"limit": 10}).json()
        assert again == pets.json()
    with petstore(tmp_path, seed=7) as running:
        assert httpx2.get(running.urls["petstore"] + "/pets").json() != pets.json()


def violations(response: httpx2.Response) -> list[str]:
    """The reasons a refusal gives in Prism's sl-violations header."""
    return [v["message"] for v in json.loads(response.headers["sl-violations"])]


def test_the_petstore_refuses_bad_requests_saying_why(tmp_path):
    """As Prism: the Petstore declares neither a 422 nor a 400, so a refusal is a 422 in the shape of its `default`
    response (its Error schema: code, message), the status as code and the reasons as message, the reasons one by one
    in the sl-violations header; a body in a type the operation does not take is a 415, a body that is not JSON a 400."""
    with petstore(tmp_path) as running:
        url = running.urls["petstore"]
        too_many = httpx2.get(f"{url}/pets", params={"limit": 500})
        assert too_many.status_code == 422
        assert too_many.json()["code"] == 422 and "500 is greater than the maximum of 100" in too_many.json()["message"]
        assert "query parameter limit: 500 is greater than the maximum of 100" in violations(too_many)
        not_a_number = httpx2.get(f"{url}/pets", params={"limit": "ten"})
        assert not_a_number.status_code == 422 and "limit" in not_a_number.json()["message"]

        missing = httpx2.post(f"{url}/pets", json={"id": "three"})
        assert missing.status_code == 422
        reasons = violations(missing)
        assert 'body: "name" is a required property' in reasons
        assert 'body: id: "three" is not of type "integer"' in reasons
        assert set(missing.json()) == {"code", "message"}
        wrong_type = httpx2.post(f"{url}/pets", content=b"name=Rex", headers={"content-type": "application/x-www-form-urlencoded"})
        assert wrong_type.status_code == 415 and "application/json" in wrong_type.json()["detail"]
        assert wrong_type.headers["content-type"] == "application/problem+json"
        broken = httpx2.post(f"{url}/pets", content=b"{not json", headers={"content-type": "application/json"})
        assert broken.status_code == 400 and "not JSON" in broken.json()["message"]

        assert httpx2.delete(f"{url}/pets").status_code == 405
        assert httpx2.delete(f"{url}/pets").headers["allow"] == "GET, POST"
        unknown = httpx2.get(f"{url}/owners")
        assert unknown.status_code == 404 and "no stub mapping matches GET /owners" in unknown.json()["detail"]


def test_prefer_chooses_the_response_and_a_named_example(tmp_path):
    document = tmp_path / "payments.yaml"
    document.write_text("""
openapi: 3.0.3
info: {title: Payments, version: "1"}
paths:
  /charges/{id}:
    get:
      parameters:
        - {name: id, in: path, required: true, schema: {type: string, pattern: "^ch_[a-z0-9]+$"}}
        - {name: X-Api-Key, in: header, required: true, schema: {type: string}}
      responses:
        "200":
          description: a charge
          content:
            application/json:
              examples:
                paid: {value: {id: ch_1, status: paid, amount: 500}}
                refunded: {value: {id: ch_1, status: refunded, amount: 0}}
        "404":
          description: none
          content:
            application/json:
              example: {error: {code: resource_missing}}
""")
    config = tmp_path / "mockpanel.toml"
    config.write_text('[stubs.payments]\nopenapi = "payments.yaml"\n')
    with RunningHub(settings_for(["payments"], config=config)) as running:
        url = running.urls["payments"]
        key = {"X-Api-Key": "k"}
        assert httpx2.get(f"{url}/charges/ch_1", headers=key).json() == {"id": "ch_1", "status": "paid", "amount": 500}
        refunded = httpx2.get(f"{url}/charges/ch_1", headers={**key, "Prefer": "example=refunded"})
        assert refunded.json()["status"] == "refunded"
        missing = httpx2.get(f"{url}/charges/ch_1", headers={**key, "Prefer": "code=404"})
        assert (missing.status_code, missing.json()) == (404, {"error": {"code": "resource_missing"}})
        assert httpx2.get(f"{url}/charges/ch_1", headers={**key, "Prefer": "example=nope"}).json()["errors"] == ["examples: paid, refunded"]
        no_key = httpx2.get(f"{url}/charges/ch_1")  # this document declares no error body: mockpanel's own
        assert no_key.status_code == 422 and "X-Api-Key" in no_key.json()["detail"] and no_key.json()["errors"] == violations(no_key)
        bad_id = httpx2.get(f"{url}/charges/card_1", headers=key)
        assert bad_id.status_code == 422 and "does not match" in bad_id.json()["detail"]
        assert httpx2.get(f"{url}/charges/ch_1", headers={**key, "Accept": "text/csv"}).status_code == 406


def test_an_openapi_3_1_document_with_nullable_types_and_consts(tmp_path):
    (tmp_path / "flags.yaml").write_text("""
openapi: 3.1.0
info: {title: Flags, version: "1"}
paths:
  /flags/{key}:
    get:
      parameters: [{name: key, in: path, required: true, schema: {type: string, enum: [dark-mode, beta]}}]
      responses:
        "200":
          description: a flag
          content:
            application/json:
              schema:
                type: object
                required: [key, on, kind]
                properties:
                  key: {type: string}
                  on: {type: boolean}
                  rollout: {type: [integer, "null"], minimum: 0, maximum: 100}
                  kind: {const: release}
""")
    config = tmp_path / "mockpanel.toml"
    config.write_text('[stubs.flags]\nopenapi = "flags.yaml"\n')
    with RunningHub(settings_for(["flags"], config=config)) as running:
        url = running.urls["flags"]
        flag = httpx2.get(f"{url}/flags/beta").json()
        assert set(flag) == {"key", "on", "rollout", "kind"} and flag["kind"] == "release"
        assert isinstance(flag["on"], bool) and 0 <= flag["rollout"] <= 100
        refused = httpx2.get(f"{url}/flags/unknown")
        assert refused.status_code == 422 and "key" in refused.json()["detail"]
        assert httpx2.get(f"{url}/flags/dark%2Dmode").status_code == 200  # read decoded, as the enum says
        slash = httpx2.get(f"{url}/flags/beta%2Fx")  # an encoded slash stays in its segment: one key, not in the enum
        assert slash.status_code == 422 and "key" in slash.json()["detail"]


def test_a_document_that_is_not_openapi_stops_the_start_naming_it(tmp_path):
    config = tmp_path / "mockpanel.toml"
    config.write_text('[stubs.partner]\nopenapi = "partner.yaml"\n')
    for text, message in (("openapi: 2.0\n", "not an OpenAPI 3 document"), ("{{{", "not YAML or JSON"),
                          ("openapi: 3.0.0\ninfo: {}\npaths: {}\n", "not a valid OpenAPI document"),
                          ("openapi: 3.0.0\ninfo: {title: x, version: '1'}\npaths:\n  /a:\n    $ref: 'file:///etc/passwd'\n", "points outside")):
        (tmp_path / "partner.yaml").write_text(text)
        with pytest.raises(SettingsError, match=message):
            RunningHub(settings_for(["partner"], config=config)).start()


def test_a_large_body_is_validated_and_a_body_past_the_limit_refused(tmp_path):
    """A large body is validated (by compiled validators, on the loop); past the server's body limit, refused before parsing."""
    with petstore(tmp_path) as running:
        url = running.urls["petstore"]
        big = httpx2.post(f"{url}/pets", json={"id": 1, "name": "Rex", "tag": "t" * 200_000})
        assert big.status_code == 201
        wrong = httpx2.post(f"{url}/pets", json={"id": 1, "name": ["x"] * 50_000})
        assert wrong.status_code == 422 and 'is not of type "string"' in wrong.json()["message"]
        huge = httpx2.post(f"{url}/pets", content=b"[" + b"1," * 700_000 + b"1]", headers={"content-type": "application/json"})
        assert huge.status_code == 413
        assert httpx2.get(f"{url}/pets/1").status_code == 200
