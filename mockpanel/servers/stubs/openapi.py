"""An OpenAPI 3 document as a stub, answering as Prism does: every operation answers with its example (or one made
from its schema that the schema accepts, the same for the same seed), requests are checked against the document
(parameters, bodies in their media types, content types, security) and a mismatch is refused naming what is wrong
(422, or the 400 the operation declares; 401 for missing credentials, 415 for a content type it does not take);
`Prefer: code=404` and `Prefer: example=name` choose a response. The document's paths answer at the server's root.

Each operation is compiled at its first request (its validators by jsonschema-rs), and an answer that does not
depend on the request is made once."""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

from .matching import Incoming
from .schemas import Checker, Sampler, convert

MAX_DOCUMENT = 20 * 1024 * 1024
_PREFER = re.compile(r"\s*([a-z]+)\s*=\s*\"?([^,;\"]*)\"?\s*", re.I)


class OpenApiError(ValueError):
    """The document cannot be served; the message names the document and the problem."""


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    route: str | None = None  # the path of the operation that answered: "/pets/{petId}"
    refused: bool = False  # the request does not match the document (401, 400, 405, 406, 415, 422)


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
    """PyYAML's safe loader read as JavaScript tools (Prism, js-yaml) and the OpenAPI specification's YAML 1.2 read
    a document: only true and false are booleans (YAML 1.1 also reads on, off, yes and no, so a property named `on`
    would become True), a date stays the text written (`release_date: 1981-12-15` is the string "1981-12-15", not a
    date that JSON cannot hold), and a key is text (`200:`, unquoted, is the response "200")."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))

    def mapping(loader: Any, node: Any) -> dict[str, Any]:
        loader.flatten_mapping(node)
        out = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            out[key if isinstance(key, str) else key_node.value] = loader.construct_object(value_node, deep=True)
        return out

    Loader.add_constructor("tag:yaml.org,2002:map", mapping)
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


METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
MAX_ANSWERS = 4096  # answers (operation, status, example, media) and validators kept: the document bounds them, and this
_INT = re.compile(r"-?\d+")
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


@dataclass
class _Param:
    name: str
    where: str  # path, query, header, cookie
    required: bool
    schema: dict[str, Any]  # resolved, allOf folded: what values are coerced to
    check: Checker
    style: str
    explode: bool
    json_content: bool  # `content: {application/json: …}` instead of a schema


@dataclass
class _Body:
    required: bool
    media: dict[str, tuple[dict[str, Any], Checker | None]]  # declared type: (resolved schema, validator)


@dataclass
class _Operation:
    route: str
    method: str
    raw: dict[str, Any]
    params: list[_Param]
    body: _Body | None
    security: list[list[tuple[str, dict[str, Any]]]]  # alternatives, each the schemes it needs all of; [] none


class OpenApiStub:
    """Answers requests from one OpenAPI 3 document."""

    def __init__(self, path: Path, seed: int = 0) -> None:
        from openapi_spec_validator import validate

        self.path = path
        document = load_document(path)
        try:
            validate(document)
        except Exception as exc:  # openapi-spec-validator's errors name the place in the document
            raise OpenApiError(f"{path}: not a valid OpenAPI document: {str(exc)[:400]}") from None
        self.document = document
        self.v30 = str(document.get("openapi")).startswith("3.0")
        self.seed = seed
        self.title = str((document.get("info") or {}).get("title") or path.name)
        self._components: dict[str, Any] = {}  # direction: the document's components as plain JSON Schema
        self._operations: dict[tuple[str, str], _Operation] = {}
        self._answers: dict[tuple, Answer] = {}
        self._checkers: dict[tuple[int, str], tuple[Any, Checker]] = {}  # (id of a schema, direction): (it, its validator)
        self._refusals: dict[tuple[str, str, int], tuple[str | None, Any, dict[str, str], Checker | None]] = {}
        self.routes: list[tuple[re.Pattern, str, dict[str, Any], list[str]]] = []  # pattern, path, item, parameter names
        for route, item in (document.get("paths") or {}).items():
            if isinstance(item, dict):
                parts = re.split(r"\{([^}/]+)\}", route)  # text, name, text, name, …
                pattern = "".join("([^/]+)" if i % 2 else re.escape(part) for i, part in enumerate(parts))
                self.routes.append((re.compile(pattern), route, item, parts[1::2]))
        # segment by segment, a literal before a part-templated one before a parameter (/pets/mine before
        # /pets/{id}.{format} before /pets/{id}); else the document's order
        self.routes.sort(key=lambda r: [0 if "{" not in part else 2 if re.fullmatch(r"\{[^}]*\}", part) else 1
                                        for part in r[1].split("/")])

    def operations(self) -> list[tuple[str, str, str]]:
        """(method, path, operationId or summary) of every operation."""
        found = []
        for route, item in (self.document.get("paths") or {}).items():
            for method, operation in (item or {}).items():
                if method in METHODS and isinstance(operation, dict):
                    found.append((method.upper(), route, str(operation.get("operationId") or operation.get("summary") or "")))
        return found

    def resolve(self, node: Any, depth: int = 0) -> Any:
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and depth < 64:
            target: Any = self.document
            for part in node["$ref"][2:].split("/"):
                part = unquote(part).replace("~1", "/").replace("~0", "~")  # a URI fragment: percent-encoded
                if isinstance(target, list):
                    target = target[int(part)] if part.isdigit() and int(part) < len(target) else None
                else:
                    target = target.get(part) if isinstance(target, dict) else None
            node = target
            depth += 1
        return node

    # --- compiling ---

    def components(self, direction: str) -> dict[str, Any]:
        if direction not in self._components:
            self._components[direction] = convert({k: v for k, v in self.document.items() if k in ("components", "paths", "webhooks")},
                                                  direction, self.v30)
        return self._components[direction]

    def checker(self, schema: Any, direction: str) -> Checker:
        """The schema's validator, compiled once per schema object (kept beside it, so its id is never another's)."""
        key = (id(schema), direction)
        if key not in self._checkers:
            made = Checker(convert(schema, direction, self.v30) if schema is not None else {}, self.components(direction), self.v30)
            if len(self._checkers) >= MAX_ANSWERS:
                return made
            self._checkers[key] = (schema, made)
        return self._checkers[key][1]

    def _operation(self, route: str, method: str) -> _Operation:
        key = (route, method)
        if key not in self._operations:
            self._operations[key] = self._compile(route, method)
        return self._operations[key]

    def _compile(self, route: str, method: str) -> _Operation:
        item = self.document["paths"][route]
        raw = item[method]
        sampler = Sampler(self.resolve, "request")
        declared: dict[tuple[str, str], dict] = {}
        for entry in [*(item.get("parameters") or []), *(raw.get("parameters") or [])]:
            entry = self.resolve(entry)
            if isinstance(entry, dict) and "name" in entry and "in" in entry:
                declared[(str(entry["name"]), str(entry["in"]))] = entry  # the operation's replaces the path's
        params = []
        for (name, where), entry in declared.items():
            schema, json_content = entry.get("schema"), False
            if schema is None and isinstance(entry.get("content"), dict) and entry["content"]:
                media, media_entry = next(iter(entry["content"].items()))
                schema, json_content = (self.resolve(media_entry) or {}).get("schema"), "json" in media
            style = entry.get("style") or ("form" if where in ("query", "cookie") else "simple")
            params.append(_Param(name, where, bool(entry.get("required")) or where == "path", sampler.merged(schema) or {},
                                 self.checker(schema, "request"), style, bool(entry.get("explode", style == "form")), json_content))
        body = None
        request_body = self.resolve(raw.get("requestBody"))
        if isinstance(request_body, dict):
            media = {}
            for kind, entry in (request_body.get("content") or {}).items():
                schema = (self.resolve(entry) or {}).get("schema")
                media[kind.split(";")[0].strip().lower()] = (sampler.merged(schema) or {}, self.checker(schema, "request") if schema is not None else None)
            body = _Body(bool(request_body.get("required")), media)
        schemes = ((self.document.get("components") or {}).get("securitySchemes") or {})
        requirements = raw.get("security", self.document.get("security")) or []
        security = [[(name, self.resolve(schemes.get(name)) or {}) for name in requirement]
                    for requirement in requirements if isinstance(requirement, dict)]
        return _Operation(route, method, raw, params, body, security)

    # --- answering ---

    def answer(self, request: Incoming) -> Answer | None:
        """The document's answer, or None when no operation has this path (the caller's 404)."""
        path = decoded_path(request.path)
        method = request.method.lower()
        allowed: list[str] = []
        for pattern, route, item, names in self.routes:
            found = pattern.fullmatch(path)
            if found is None:
                continue
            if not isinstance(item.get(method), dict):
                allowed = allowed or [m.upper() for m in METHODS if isinstance(item.get(m), dict)]
                continue
            values = [unquote(v) for v in found.groups()]
            answer = self._answer_operation(request, self._operation(route, method), dict(zip(names, values)))
            answer.route = route
            return answer
        if allowed:
            return _error(405, f"{request.method} is not an operation of {request.path} in {self.path.name}",
                          [f"allowed: {', '.join(allowed)}"], [("allow", ", ".join(allowed))], problem=True, refused=True)
        return None

    def _answer_operation(self, request: Incoming, operation: _Operation, path_values: dict[str, str]) -> Answer:
        prefer = dict((k.lower(), v) for k, v in _PREFER.findall(",".join(request.headers.get("prefer", []))))
        unsupported = self._unsupported_media(request, operation)
        if unsupported is not None:
            return unsupported
        reasons = self._check_parameters(request, operation, path_values) + self._check_body(request, operation)
        missing = self._check_security(request, operation)
        if missing is not None:
            return self._refusal(operation, 401, f"{request.method} {request.path}: {missing}", [missing, *reasons],
                                 [("www-authenticate", self._challenge(operation))])
        if "body: not JSON" in reasons:  # as Prism: a body that cannot be read is a 400, in the document's shape
            return self._refusal(operation, 400, f"{request.method} {request.path}: the body is not JSON", ["body: not JSON"], [])
        if reasons:
            responses = operation.raw.get("responses") or {}
            status = 400 if "400" in responses and "422" not in responses else 422
            return self._refusal(operation, status, f"{request.method} {request.path} does not match {self.path.name}: "
                                 + "; ".join(reasons)[:1000], reasons, [])
        return self._response(request, operation, prefer)

    def _unsupported_media(self, request: Incoming, operation: _Operation) -> Answer | None:
        body = operation.body
        sent = (request.headers.get("content-type") or [""])[0].split(";")[0].strip().lower()
        if body is None or not body.media or (not request.body and not sent):
            return None
        if self._media_of(body, sent) is None:
            return _error(415, f"{request.method} {request.path} takes {', '.join(body.media)}, not {sent or 'a body without a content type'}",
                          [f"supported: {', '.join(body.media)}"], problem=True, refused=True)
        return None

    @staticmethod
    def _media_of(body: _Body, sent: str) -> str | None:
        if sent in body.media:
            return sent
        for declared in body.media:
            if declared == "*/*" or (declared.endswith("/*") and sent.startswith(declared[:-1])):
                return declared
        return None

    def _check_parameters(self, request: Incoming, operation: _Operation, path_values: dict[str, str]) -> list[str]:
        reasons = []
        for param in operation.params:
            label = f"{param.where} parameter {param.name}"
            value = self._parameter(request, param, path_values)
            if value is _ABSENT:
                if param.required:
                    reasons.append(f"{label} is required")
                continue
            if value is _NOT_JSON:
                reasons.append(f"{label}: not JSON")
                continue
            reasons.extend(f"{label}: {e}" for e in param.check.errors(value))
        return reasons

    def _parameter(self, request: Incoming, param: _Param, path_values: dict[str, str]) -> Any:
        if param.where == "path":
            raw: list[str] = [path_values[param.name]] if param.name in path_values else []
        elif param.where == "query":
            if param.style == "deepObject":
                prefix = f"{param.name}["
                found = {k[len(prefix):-1]: vs[0] for k, vs in request.query_params.items() if k.startswith(prefix) and k.endswith("]")}
                return _coerce_object(found, param.schema) if found else _ABSENT
            raw = request.query_params.get(param.name, [])
        elif param.where == "header":
            raw = request.headers.get(param.name.lower(), [])
        else:
            raw = request.cookies.get(param.name, [])
        if not raw:
            return _ABSENT
        if param.json_content:
            try:
                return json.loads(raw[0])
            except (ValueError, RecursionError):
                return _NOT_JSON
        kinds = _types(param.schema)
        if "array" in kinds:
            separator = {"spaceDelimited": " ", "pipeDelimited": "|"}.get(param.style, ",")
            parts = raw if (param.explode and param.where == "query") else [p for v in raw for p in v.split(separator)]
            items = param.schema.get("items") if isinstance(param.schema.get("items"), dict) else {}
            return [_coerce(p, _types(items)) for p in parts]
        return _coerce(raw[0], kinds)

    def _check_body(self, request: Incoming, operation: _Operation) -> list[str]:
        body = operation.body
        if body is None:
            return []
        sent = (request.headers.get("content-type") or [""])[0].split(";")[0].strip().lower()
        if not request.body and not sent:
            return ["the request body is required"] if body.required else []
        media = self._media_of(body, sent)
        if media is None:
            return []  # answered 415 before
        schema, check = body.media[media]
        if check is None:
            return []
        if media.endswith("json") or "+json" in media:
            try:
                value = json.loads(request.body)
            except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested past Python's stack
                return ["body: not JSON"]
        elif media == "application/x-www-form-urlencoded":
            fields: dict[str, list[str]] = {}
            for key, item in parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True):
                fields.setdefault(key, []).append(item)
            value = _coerce_object(fields, schema)
        elif media.startswith("multipart/"):
            value = _multipart(request, schema)
            if value is None:
                return ["body: not a multipart body with its boundary"]
        elif "string" in _types(schema) and schema.get("format") not in ("binary", "byte") and (media.startswith("text/") or "charset" in (request.headers.get("content-type") or [""])[0]):
            try:
                value = request.body.decode("utf-8")
            except UnicodeDecodeError:
                return ["body: not UTF-8 text"]
        else:
            return []  # bytes (an image, a file): any bytes are such a body
        return [f"body: {e}" for e in check.errors(value)]

    def _check_security(self, request: Incoming, operation: _Operation) -> str | None:
        """None when one of the operation's security alternatives is met, else what is missing."""
        if not operation.security or any(not alternative for alternative in operation.security):
            return None
        missing = []
        for alternative in operation.security:
            lacking = [name for name, scheme in alternative if not self._has_credential(request, scheme)]
            if not lacking:
                return None
            missing.extend(lacking)
        return f"no credentials for the security scheme {', '.join(dict.fromkeys(missing))}"

    @staticmethod
    def _has_credential(request: Incoming, scheme: dict[str, Any]) -> bool:
        kind = scheme.get("type")
        if kind == "apiKey":
            name, place = str(scheme.get("name", "")), scheme.get("in")
            if place == "header":
                return bool(request.headers.get(name.lower()))
            if place == "query":
                return name in request.query_params
            return name in request.cookies
        authorization = (request.headers.get("authorization") or [""])[0]
        if kind == "http":
            wanted = str(scheme.get("scheme", "")).lower()
            return authorization.lower().startswith(wanted + " ") and len(authorization) > len(wanted) + 1
        if kind in ("oauth2", "openIdConnect"):
            return authorization.lower().startswith("bearer ")
        return True  # mutualTLS: the connection's business

    def _challenge(self, operation: _Operation) -> str:
        for alternative in operation.security:
            for _, scheme in alternative:
                if scheme.get("type") == "http" and str(scheme.get("scheme", "")).lower() == "basic":
                    return 'Basic realm="*"'
        return "Bearer"

    def _refusal(self, operation: _Operation, status: int, message: str, reasons: list[str],
                 headers: list[tuple[str, str]]) -> Answer:
        """A request the document refuses. As Prism: the reasons in the `sl-violations` header, and the body of the
        response the operation declares for the status (else 4XX, else default) — made from its schema, its
        message-like field holding the reasons, its code-like field the status, when the schema still accepts it — so
        a client generated from the document reads it; else a problem+json body of mockpanel's."""
        violations = ("sl-violations", json.dumps([{"location": [], "severity": "Error", "message": r[:300]} for r in reasons[:20]]))
        media, body, fields, check = self._refusal_base(operation, status)
        if media is None:
            return _error(status, message, reasons, [*headers, violations], problem=True, refused=True)
        if fields:
            filled = {**body, **{name: message if kind == "message" else status for name, kind in fields.items()}}
            if check is None or check.valid(filled):
                body = filled
        return Answer(status, [("content-type", media), *headers, violations], json.dumps(body).encode(), refused=True)

    def _refusal_base(self, operation: _Operation, status: int) -> tuple[str | None, Any, dict[str, str], Checker | None]:
        """What a refusal with this status answers in, made once per operation and status: the JSON media type of the
        response declared for it (else 4XX, else default; None when none is declared), its body, the fields that get
        the message and the status, and its validator."""
        key = (operation.route, operation.method, status)
        if key not in self._refusals:
            responses = operation.raw.get("responses") or {}
            declared = next((responses[k] for k in (str(status), f"{str(status)[0]}XX", "default") if k in responses), None)
            content = (self.resolve(declared) or {}).get("content") or {} if declared is not None else {}
            media = next((t for t in content if "json" in t), None)
            if media is None:
                self._refusals[key] = (None, None, {}, None)
                return self._refusals[key]
            entry = self.resolve(content[media]) or {}
            schema = entry.get("schema")
            check = self.checker(schema, "response") if schema is not None else None
            rng = random.Random(f"{self.seed}:{operation.method}:{operation.route}:{status}")
            body = self._example_of(entry, None, rng, check)
            fields: dict[str, str] = {}
            if isinstance(body, dict) and schema is not None:
                properties = (Sampler(self.resolve).merged(schema) or {}).get("properties") or {}
                kinds = {name: (self.resolve(prop) or {}).get("type") for name, prop in properties.items()}
                message = next((n for n, k in kinds.items() if k == "string" and n.lower() in _MESSAGE_FIELDS), None)
                fields = {**({message: "message"} if message else {}),
                          **{n: "status" for n, k in kinds.items() if k == "integer" and n.lower() in _STATUS_FIELDS}}
            self._refusals[key] = (media, body, fields, check)
        return self._refusals[key]

    def _response(self, request: Incoming, operation: _Operation, prefer: dict[str, str]) -> Answer:
        responses = operation.raw.get("responses") or {}
        method, route = operation.method, operation.route
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
        content = response.get("content") or {}
        media = self._negotiate(content, request.headers.get("accept", [])) if content else None
        if content and media is None:
            offered = ", ".join(content)
            return _error(406, f"no response of {method.upper()} {route} is in a type the Accept header takes", [f"offered: {offered}"],
                          problem=True, refused=True)
        example = prefer.get("example")
        if example and media is not None and example not in ((self.resolve(content[media]) or {}).get("examples") or {}):
            return self._make(operation, status, response, media, example)  # a name the client chose: answered, not kept
        cache_key = (route, method, status, key, media, example)
        made = self._answers.get(cache_key)
        if made is None:
            made = self._make(operation, status, response, media, example)
            if len(self._answers) < MAX_ANSWERS:
                self._answers[cache_key] = made
        return Answer(made.status, list(made.headers), made.body)

    def _make(self, operation: _Operation, status: int, response: dict, media: str | None, example: str | None) -> Answer:
        rng = random.Random(f"{self.seed}:{operation.method}:{operation.route}:{status}")
        sampler = Sampler(self.resolve)
        headers: list[tuple[str, str]] = []
        for name, header in (response.get("headers") or {}).items():
            header = self.resolve(header) or {}
            value = header.get("example", sampler.value(header.get("schema") or {"type": "string"}, rng))
            headers.append((name.lower(), value if isinstance(value, str) else json.dumps(value)))
        if media is None:
            return Answer(status, headers, b"")
        entry = self.resolve(response["content"][media]) or {}
        schema = entry.get("schema")
        value = self._example_of(entry, example, rng, self.checker(schema, "response") if schema is not None else None)
        if isinstance(value, Answer):
            return value
        if isinstance(value, (bytes, str)) and not (media.endswith("json") or "+json" in media):
            body = value.encode() if isinstance(value, str) else value
        else:
            body = json.dumps(value).encode()
        return Answer(status, [("content-type", media), *headers], body)

    def _example_of(self, entry: dict, name: str | None, rng: random.Random, check: Checker | None) -> Any:
        """The media type's example (named, or the first), else a value made from its schema: first with the
        schema's own examples, and if the schema refuses what they make, without them."""
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
        sampler = Sampler(self.resolve, checker=lambda schema: self.checker(schema, "response"))
        schema = entry.get("schema") or {}
        state = rng.getstate()
        value = sampler.value(schema, rng)
        if check is not None and not check.valid(value):
            rng.setstate(state)
            value = sampler.value(schema, rng, use_examples=False)
        return value

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


_ABSENT = object()
_NOT_JSON = object()
_MESSAGE_FIELDS = ("message", "detail", "error", "title", "description", "reason")  # what a refusal's reasons fill
_STATUS_FIELDS = ("code", "status", "statuscode")


def _types(schema: dict[str, Any]) -> set[str]:
    kind = schema.get("type")
    if isinstance(kind, list):
        return {str(k) for k in kind}
    if isinstance(kind, str):
        return {kind}
    if "properties" in schema:
        return {"object"}
    if "items" in schema:
        return {"array"}
    return set()


def _coerce(text: str, kinds: set[str]) -> Any:
    """A parameter's text as the type its schema says (what is not one stays text, for the schema to refuse)."""
    if len(text) > 400:  # no number is written so (Python reads at most 4,300 digits): text, refused as such
        return text
    if "integer" in kinds and _INT.fullmatch(text):
        return int(text)
    if "number" in kinds and _NUMBER.fullmatch(text):
        number = float(text)
        return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
    if "boolean" in kinds and text in ("true", "false"):
        return text == "true"
    if "null" in kinds and text == "":
        return None
    return text


def _coerce_object(fields: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    out: dict[str, Any] = {}
    for key, values in fields.items():
        values = values if isinstance(values, list) else [values]
        prop = properties.get(key) if isinstance(properties.get(key), dict) else {}
        kinds = _types(prop)
        if "array" in kinds:
            items = prop.get("items") if isinstance(prop.get("items"), dict) else {}
            out[key] = [_coerce(v, _types(items)) for v in values]
        else:
            out[key] = _coerce(values[0], kinds)
    return out


def _multipart(request: Incoming, schema: dict[str, Any]) -> dict[str, Any] | None:
    """A multipart/form-data body's fields (a file's as its text, or "" when it is not text), or None when it is not
    one."""
    from email.parser import BytesParser
    from email.policy import HTTP

    content_type = (request.headers.get("content-type") or [""])[0]
    if "boundary=" not in content_type:
        return None
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + request.body)
    if not message.is_multipart():
        return None
    fields: dict[str, list[str]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True) or b""
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            text = ""
        fields.setdefault(name, []).append(text)
    return _coerce_object(fields, schema)


def _error(status: int, message: str, reasons: list[str], headers: list[tuple[str, str]] | None = None,
           problem: bool = False, refused: bool = False) -> Answer:
    """mockpanel's own error body: {"detail", "errors"}; where Prism answers application/problem+json, that type with
    its type, title and status too."""
    if not problem:
        return Answer(status, [("content-type", "application/json"), *(headers or [])],
                      json.dumps({"detail": message, "errors": reasons}).encode(), refused=refused)
    body = {"type": f"https://mockpanel.dev/errors#{status}", "title": _TITLES.get(status, "Refused"), "status": status,
            "detail": message, "errors": reasons}
    return Answer(status, [("content-type", "application/problem+json"), *(headers or [])], json.dumps(body).encode(), refused=refused)


_TITLES = {405: "Method not allowed", 401: "Invalid security scheme used", 406: "Not acceptable", 415: "Invalid content type", 422: "Invalid request"}
