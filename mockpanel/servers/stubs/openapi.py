"""An OpenAPI 3 document as a stub: every operation answers with its example (or one made from the schema, the
same for the same seed), requests are validated against the document by openapi-core (parameters, bodies, content
types, security) and a mismatch is a 400 naming what is wrong; `Prefer: code=404` and `Prefer: example=name` choose
a response, as with Prism. The document's paths answer at the server's root (its `servers` are not required)."""

from __future__ import annotations

import json
import random
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .matching import Incoming

MAX_DOCUMENT = 20 * 1024 * 1024
MAX_DEPTH = 8  # a recursive schema's example stops here
_PREFER = re.compile(r"\s*([a-z]+)\s*=\s*\"?([^,;\"]*)\"?\s*", re.I)


class OpenApiError(ValueError):
    """The document cannot be served; the message names the document and the problem."""


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    route: str | None = None  # the path of the operation that answered: "/pets/{petId}"


def _local_refs(node: Any, where: str) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            raise OpenApiError(f"{where}: $ref {ref!r} points outside the document (bundle it into one file first)")
        for value in node.values():
            _local_refs(value, where)
    elif isinstance(node, list):
        for value in node:
            _local_refs(value, where)


def _yaml_loader() -> Any:
    """PyYAML's safe loader with YAML 1.2's booleans: only true and false. YAML 1.1 also reads on, off, yes and no as
    booleans, so a property named `on` (a flag's, an event's) would become True, which JavaScript tools (Prism, js-yaml)
    and the OpenAPI specification's YAML 1.2 do not do."""
    import re as _re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
                                      for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver("tag:yaml.org,2002:bool", _re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
    return Loader


def load_document(path: Path) -> dict[str, Any]:
    import yaml

    try:
        if path.stat().st_size > MAX_DOCUMENT:
            raise OpenApiError(f"{path}: larger than {MAX_DOCUMENT // (1024 * 1024)} MiB")
        text = path.read_text()
    except OSError as exc:
        raise OpenApiError(f"cannot read {path}: {exc.strerror}") from None
    try:
        document = json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=_yaml_loader())
    except (ValueError, yaml.YAMLError) as exc:
        raise OpenApiError(f"{path}: not YAML or JSON: {str(exc)[:300]}") from None
    if not isinstance(document, dict) or not str(document.get("openapi", "")).startswith("3."):
        raise OpenApiError(f"{path}: not an OpenAPI 3 document (its openapi field says {str(document.get('openapi') if isinstance(document, dict) else None)!r})")
    _local_refs(document, str(path))
    return document


def decoded_path(path: str) -> str:
    """The path with its percent-escapes decoded (`/pets/a%20b` is the pet `a b`, as Prism reads it), unless one
    encodes a slash: decoded, it would make another path."""
    from urllib.parse import unquote

    if "%" not in path:
        return path
    decoded = unquote(path)
    return decoded if decoded.count("/") == path.count("/") else path


class _Request:
    """openapi-core's request protocol over an Incoming request."""

    def __init__(self, request: Incoming) -> None:
        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import Headers, ImmutableMultiDict

        self.host_url = "http://stub"
        self.path = decoded_path(request.path)
        self.method = request.method.lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict([(k, v) for k, vs in request.query_params.items() for v in vs]),
            header=Headers([(k, v) for k, vs in request.headers.items() for v in vs]),
            cookie=ImmutableMultiDict([(k, v) for k, vs in request.cookies.items() for v in vs]),
        )
        self.body = request.body or None
        self.content_type = (request.headers.get("content-type") or [""])[0]


def _text(error: BaseException) -> str:
    """An exception's message; some of openapi-core's cannot be printed (one decodes the body as UTF-8 to say it is
    not JSON, and raises again when it is not UTF-8 either)."""
    try:
        return str(error)
    except Exception:
        return "the body cannot be read as its content type says: it is not UTF-8 text"


def _describe(error: Exception) -> list[str]:
    """openapi-core's error, with the schema errors under it (where in the value, and what)."""
    found = [_text(error).split(": Value ")[0][:300]]
    cause = error.__cause__
    for schema_error in getattr(cause, "schema_errors", None) or ():
        place = "/".join(str(p) for p in getattr(schema_error, "absolute_path", ()))
        message = schema_error.message
        shown = repr(getattr(schema_error, "instance", None))
        if len(shown) > 80 and message.startswith(shown):  # never echo a large value back
            message = shown[:60] + "…" + message[len(shown):]
        found.append((f"{place}: {message}" if place else message)[:300])
    if cause is not None and not getattr(cause, "schema_errors", None) and _text(cause) not in found[0]:
        found.append(_text(cause)[:300])
    return found


class OpenApiStub:
    """Answers requests from one OpenAPI 3 document."""

    def __init__(self, path: Path, seed: int = 0) -> None:
        from openapi_core import OpenAPI
        from openapi_core.templating.paths.finders import APICallPathFinder

        self.path = path
        document = load_document(path)
        document = {**document, "servers": [{"url": "/"}]}  # the paths answer at the root, as Prism serves them
        for item in (document.get("paths") or {}).values():
            if isinstance(item, dict):
                item.pop("servers", None)
                for operation in item.values():
                    if isinstance(operation, dict):
                        operation.pop("servers", None)
        try:
            self.api = OpenAPI.from_dict(document)
        except Exception as exc:  # openapi-spec-validator's errors name the place in the document
            raise OpenApiError(f"{path}: not a valid OpenAPI document: {str(exc)[:400]}") from None
        self.document = document
        self.finder = APICallPathFinder(self.api.spec)
        self.seed = seed
        self.title = str((document.get("info") or {}).get("title") or path.name)

    def operations(self) -> list[tuple[str, str, str]]:
        """(method, path, operationId or summary) of every operation."""
        found = []
        for route, item in (self.document.get("paths") or {}).items():
            for method, operation in (item or {}).items():
                if method in ("get", "put", "post", "delete", "patch", "head", "options", "trace") and isinstance(operation, dict):
                    found.append((method.upper(), route, str(operation.get("operationId") or operation.get("summary") or "")))
        return found

    def resolve(self, node: Any, depth: int = 0) -> Any:
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and depth < 64:
            target: Any = self.document
            for part in node["$ref"][2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                target = target.get(part) if isinstance(target, dict) else None
            node = target
            depth += 1
        return node

    def answer(self, request: Incoming) -> Answer | None:
        """The document's answer, or None when no operation has this path (the caller's 404)."""
        from openapi_core.templating.paths.exceptions import OperationNotFound, PathError

        try:
            found = self.finder.find(request.method.lower(), f"http://stub{decoded_path(request.path)}")
        except OperationNotFound:
            allowed = [m for m, p, _ in self.operations() if self._same_route(p, request.path)]
            return _error(405, f"{request.method} is not an operation of {request.path} in {self.path.name}",
                          [f"allowed: {', '.join(allowed)}"] if allowed else [], [("allow", ", ".join(allowed))] if allowed else [])
        except PathError:
            return None
        route, method = found.path.parts[1], found.operation.parts[2]
        answer = self._answer_operation(request, route, method)
        answer.route = route
        return answer

    def _answer_operation(self, request: Incoming, route: str, method: str) -> Answer:
        operation = self.document["paths"][route][method]
        prefer = dict((k.lower(), v) for k, v in _PREFER.findall(",".join(request.headers.get("prefer", []))))
        result = self.api.unmarshal_request(_Request(request))
        if result.errors:
            from openapi_core.validation.request.exceptions import SecurityValidationError

            security = any(isinstance(e, SecurityValidationError) for e in result.errors)
            reasons = [line for error in result.errors for line in _describe(error)]
            status = 401 if security else 400
            message = f"{request.method} {request.path} does not match {self.path.name}: " + "; ".join(reasons)[:1000]
            headers = [("www-authenticate", "Bearer")] if security else []
            return self._refusal(operation, method, route, status, message, reasons, headers)
        return self._response(request, method, route, operation, prefer)

    def _refusal(self, operation: dict, method: str, route: str, status: int, message: str, reasons: list[str],
                 headers: list[tuple[str, str]]) -> Answer:
        """A request the document refuses. As Prism: the reasons in the `sl-violations` header, and the body the
        operation declares for the status (or 4XX, or default) when it declares one — made from its schema, its
        message-like field holding the reasons, its code-like field the status — so a client generated from the
        document reads it; else {"detail", "errors"}."""
        violations = ("sl-violations", json.dumps([{"location": [], "severity": "Error", "message": r[:300]} for r in reasons[:20]]))
        responses = operation.get("responses") or {}
        declared = next((responses[k] for k in (str(status), f"{str(status)[0]}XX", "default") if k in responses), None)
        content = (self.resolve(declared) or {}).get("content") or {} if declared is not None else {}
        media = next((t for t in content if "json" in t), None)
        if media is None:
            return _error(status, message, reasons, [*headers, violations])
        entry = self.resolve(content[media]) or {}
        schema = self.resolve(entry.get("schema")) or {}
        body = self._example_of(entry, None, random.Random(f"{self.seed}:{method}:{route}:{status}"))
        if isinstance(body, dict):
            properties = schema.get("properties") or {}
            for name, prop in properties.items():
                kind = (self.resolve(prop) or {}).get("type")
                if kind == "string" and name.lower() in ("message", "detail", "error", "title", "description", "reason"):
                    body[name] = message
                    break
            for name, prop in properties.items():
                if (self.resolve(prop) or {}).get("type") == "integer" and name.lower() in ("code", "status", "statuscode"):
                    body[name] = status
        return Answer(status, [("content-type", media), *headers, violations], json.dumps(body).encode())

    def _same_route(self, route: str, path: str) -> bool:
        pattern = "/".join("[^/]+" if s.startswith("{") else re.escape(s) for s in route.split("/"))
        return re.fullmatch(pattern, path) is not None

    def _response(self, request: Incoming, method: str, route: str, operation: dict, prefer: dict[str, str]) -> Answer:
        responses = operation.get("responses") or {}
        wanted = prefer.get("code")
        if wanted:
            key = next((k for k in (wanted, f"{wanted[:1]}XX", "default") if k in responses), None)
            if key is None or not (wanted.isdigit() and 100 <= int(wanted) <= 599):
                return _error(404, f"Prefer: code={wanted}: {method.upper()} {route} declares no {wanted} response",
                              [f"declared: {', '.join(map(str, responses))}"])
            status = int(wanted)
        else:
            codes = sorted(str(c) for c in responses if str(c)[:1] == "2")
            key = codes[0] if codes else ("default" if "default" in responses else None)
            if key is None:
                return Answer(204, [], b"")
            status = int(key.replace("XX", "00")) if key != "default" else 200
        response = self.resolve(responses[key]) or {}
        rng = random.Random(f"{self.seed}:{method}:{route}:{status}")
        headers: list[tuple[str, str]] = []
        for name, header in (response.get("headers") or {}).items():
            header = self.resolve(header) or {}
            value = header.get("example", self.example(header.get("schema") or {"type": "string"}, rng))
            headers.append((name.lower(), value if isinstance(value, str) else json.dumps(value)))
        content = response.get("content") or {}
        if not content:
            return Answer(status, headers, b"")
        media = self._negotiate(content, request.headers.get("accept", []))
        if media is None:
            offered = ", ".join(content)
            return _error(406, f"no response of {method.upper()} {route} is in a type the Accept header takes", [f"offered: {offered}"])
        entry = self.resolve(content[media]) or {}
        value = self._example_of(entry, prefer.get("example"), rng)
        if isinstance(value, Answer):
            return value
        if isinstance(value, (bytes, str)) and not media.endswith("json"):
            body = value.encode() if isinstance(value, str) else value
        else:
            body = json.dumps(value).encode()
        return Answer(status, [("content-type", media), *headers], body)

    def _example_of(self, entry: dict, name: str | None, rng: random.Random) -> Any:
        examples = entry.get("examples") or {}
        if name:
            if name not in examples:
                return _error(404, f"Prefer: example={name}: no such example", [f"examples: {', '.join(examples) or 'none'}"])
            return (self.resolve(examples[name]) or {}).get("value")
        if "example" in entry:
            return entry["example"]
        for example in examples.values():
            example = self.resolve(example) or {}
            if "value" in example:
                return example["value"]
        return self.example(entry.get("schema") or {}, rng)

    @staticmethod
    def _negotiate(content: dict, accept: list[str]) -> str | None:
        types = list(content)
        wanted = [part.split(";")[0].strip().lower() for header in accept for part in header.split(",") if part.strip()]
        if not wanted or "*/*" in wanted:
            return next((t for t in types if "json" in t), types[0])
        for want in wanted:
            for offered in types:
                if want == offered.lower() or (want.endswith("/*") and offered.lower().startswith(want[:-1])):
                    return offered
        return None

    def example(self, schema: Any, rng: random.Random, depth: int = 0) -> Any:
        """A value of the schema: its example or default when it has one, else made from its type, formats and limits."""
        schema = self.resolve(schema)
        if not isinstance(schema, dict) or depth > MAX_DEPTH:
            return None
        for key in ("example", "default"):
            if key in schema:
                return schema[key]
        if schema.get("enum"):
            return schema["enum"][0]
        if "const" in schema:
            return schema["const"]
        if schema.get("allOf"):
            merged: dict[str, Any] = {}
            for part in schema["allOf"]:
                value = self.example(part, rng, depth + 1)
                if isinstance(value, dict):
                    merged.update(value)
            return merged
        for key in ("oneOf", "anyOf"):
            if schema.get(key):
                return self.example(schema[key][0], rng, depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
        if kind == "object":
            properties = schema.get("properties") or {}
            return {name: self.example(prop, rng, depth + 1) for name, prop in properties.items()}
        if kind == "array":
            count = max(int(schema.get("minItems", 1)), 1)
            count = min(count, int(schema.get("maxItems", count)), 3)
            return [self.example(schema.get("items") or {}, rng, depth + 1) for _ in range(count)]
        if kind in ("integer", "number"):
            low = schema.get("minimum", 1)
            high = schema.get("maximum", max(low, 0) + 1000)
            value = rng.randint(int(low), int(high)) if kind == "integer" else round(rng.uniform(float(low), float(high)), 2)
            return value
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "null":
            return None
        return _string(schema, rng)


def _string(schema: dict, rng: random.Random) -> str:
    fmt = schema.get("format")
    if fmt == "date-time":
        return f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z"
    if fmt == "date":
        return f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if fmt == "uuid":
        return "%08x-%04x-4%03x-8%03x-%012x" % (rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(12), rng.getrandbits(12), rng.getrandbits(48))
    if fmt == "email":
        return f"user{rng.randint(1, 999)}@example.com"
    if fmt in ("uri", "url"):
        return f"https://example.com/{rng.randint(1, 999)}"
    if fmt == "ipv4":
        return f"192.0.2.{rng.randint(1, 254)}"
    low = int(schema.get("minLength", 0))
    high = max(low, min(int(schema.get("maxLength", 12)), 64))
    length = max(low, min(high, 8))
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(length))


def _error(status: int, message: str, reasons: list[str], headers: list[tuple[str, str]] | None = None) -> Answer:
    body = json.dumps({"detail": message, "errors": reasons}).encode()
    return Answer(status, [("content-type", "application/json"), *(headers or [])], body)
