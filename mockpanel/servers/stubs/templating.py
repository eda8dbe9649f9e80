"""WireMock's response templating (`"transformers": ["response-template"]`), the part stubs use most: values of the
request (`{{request.path.[1]}}`, `{{request.query.id}}`, `{{request.headers.X-Trace}}`, `{{request.body}}`) and the
helpers jsonPath, randomValue, now, lower, upper, trim, size, urlEncode and base64, HTML-escaped in `{{ }}` and raw in
`{{{ }}}` as Handlebars does. Block helpers ({{#if}}, {{#each}}) and partials are refused when the mapping is read,
never rendered wrong. A template is parsed once; rendering is linear in its size (no loops, no recursion)."""

from __future__ import annotations

import base64
import json
import random
import re
import string
import time
import uuid
from typing import Any, Callable
from urllib.parse import quote, unquote

from .matching import Incoming, MappingError, _NOT_JSON, _parsed, compile_jsonpath, _jsonpath_values

MAX_RANDOM = 10_000  # characters of one randomValue
MAX_OUTPUT = 1024 * 1024  # characters one response's templates may render, headers and body together


class TemplateTooLarge(Exception):
    """A response's templates rendered more than MAX_OUTPUT for this request (its values made it so)."""


class _Output:
    """What one response's rendering has made so far, against MAX_OUTPUT."""

    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = MAX_OUTPUT

    def take(self, text: str) -> str:
        self.left -= len(text)
        if self.left < 0:
            raise TemplateTooLarge(f"the response's templates render more than {MAX_OUTPUT // 1024} KiB for this request")
        return text
_TAG = re.compile(r"\{\{\{(.*?)\}\}\}|\{\{(.*?)\}\}", re.S)
_TOKEN = re.compile(r"""\s*(?:([A-Za-z_][\w]*)=)?('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|[^\s'"=]+)""")
HELPERS = ("jsonPath", "randomValue", "now", "lower", "upper", "trim", "size", "urlEncode", "base64")
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;", "`": "&#x60;", "=": "&#x3D;"}
_RANDOM = {"ALPHANUMERIC": string.ascii_letters + string.digits, "ALPHABETIC": string.ascii_letters, "NUMERIC": string.digits,
           "HEXADECIMAL": "0123456789abcdef", "ALPHANUMERIC_AND_SYMBOLS": string.ascii_letters + string.digits + "!#$%&()*+,-./:;<>?@[]^_{|}~"}
_UNITS = {"seconds": 1, "second": 1, "minutes": 60, "minute": 60, "hours": 3600, "hour": 3600, "days": 86400, "day": 86400,
          "weeks": 604800, "week": 604800}
# Java's date patterns as WireMock's `now format=` takes them, for the ones stubs use
_JAVA_DATE = [("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S"), ("'T'", "T"), ("'Z'", "Z")]


class _Literal(str):
    """A quoted argument (a string, not a path)."""


def _escape(text: str) -> str:
    return "".join(_ESCAPES.get(c, c) for c in text)


def _arguments(source: str, where: str) -> tuple[list[Any], dict[str, Any]]:
    positional: list[Any] = []
    named: dict[str, Any] = {}
    position = 0
    source = source.strip()
    while position < len(source):
        found = _TOKEN.match(source, position)
        if found is None or found.end() == position:
            raise MappingError(f"{where}: cannot read {source[position:position + 40]!r}")
        key, raw = found.group(1), found.group(2)
        if raw[0] in "'\"":
            value: Any = _Literal(raw[1:-1].replace("\\" + raw[0], raw[0]))
        elif re.fullmatch(r"-?\d+(?:\.\d+)?", raw):
            value = float(raw) if "." in raw else int(raw)
        else:
            value = raw  # a path into the request
        if key:
            named[key] = value
        else:
            positional.append(value)
        position = found.end()
    return positional, named


class Template:
    """One templated string, parsed: literal text and tags, each a helper (or a path) with its arguments."""

    def __init__(self, text: str, where: str) -> None:
        self.parts: list[Any] = []
        position = 0
        for found in _TAG.finditer(text):
            self.parts.append(text[position:found.start()])
            raw = found.group(1) is not None
            inner = (found.group(1) if raw else found.group(2)).strip()
            position = found.end()
            if inner.startswith("!"):
                continue  # a comment
            if inner[:1] in ("#", "/", ">", "^") or inner == "else":
                raise MappingError(f"{where}: {{{{{inner[:30]}}}}}: block helpers and partials are not supported by mockpanel's templating")
            positional, named = _arguments(inner, where)
            if not positional:
                raise MappingError(f"{where}: an empty tag")
            head = positional[0]
            if isinstance(head, str) and head in HELPERS:
                if head == "jsonPath":
                    if len(positional) != 3:
                        raise MappingError(f"{where}: jsonPath takes a value and an expression: {{{{jsonPath request.body '$.id'}}}}")
                    named["compiled"] = compile_jsonpath(str(positional[2]), f"{where}: jsonPath")
                self.parts.append((raw, head, positional[1:], named))
            elif isinstance(head, str) and not isinstance(head, _Literal) and head.split(".")[0] == "request":
                if len(positional) > 1 or named:
                    raise MappingError(f"{where}: {{{{{inner[:40]}}}}}: unknown helper {positional[0]!r}")
                self.parts.append((raw, None, [head], {}))
            else:
                raise MappingError(f"{where}: {{{{{inner[:40]}}}}}: unknown helper or value (helpers: {', '.join(HELPERS)}; "
                                   "values: request.url, request.path.[n], request.query.NAME, request.headers.NAME, request.body, …)")
        self.parts.append(text[position:])
        self.static = len(self.parts) == 1
        # What the mapping alone makes this render (its text and its random values): known when it is read.
        self.fixed = sum(len(p) if isinstance(p, str) else _random_length(p) for p in self.parts)

    def render(self, request: Incoming, base_url: str, output: "_Output | None" = None) -> str:
        output = output or _Output()
        if self.static:
            return output.take(self.parts[0])
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(output.take(part))
                continue
            raw, helper, positional, named = part
            value = _helper(helper, [_value(p, request, base_url) for p in positional], named, request) if helper else \
                _value(positional[0], request, base_url)
            text = "" if value is None else value if isinstance(value, str) else json.dumps(value) if isinstance(value, (dict, list)) else str(value)
            out.append(output.take(text if raw else _escape(text)))
        return "".join(out)


def _random_length(part: Any) -> int:
    _, helper, _, named = part
    if helper != "randomValue":
        return 0
    try:
        return 36 if str(named.get("type", "")).upper() == "UUID" else max(0, min(int(named.get("length", 36)), MAX_RANDOM))
    except (TypeError, ValueError):
        return 0


def _value(item: Any, request: Incoming, base_url: str) -> Any:
    """A helper's argument: a literal as it is, a path into the request model resolved."""
    if not isinstance(item, str) or isinstance(item, _Literal):
        return item
    steps = [s[1:-1] if s.startswith("[") and s.endswith("]") else s for s in re.findall(r"\[[^\]]*\]|[^.\[\]]+", item)]
    if not steps or steps[0] != "request":
        return item
    segments = [unquote(s) for s in request.path.split("/") if s]
    host = (request.headers.get("host") or [""])[0]
    model: dict[str, Any] = {
        "url": request.url, "path": request.path, "pathSegments": segments, "method": request.method, "body": request.text,
        "baseUrl": base_url, "host": host.rsplit(":", 1)[0] if host.count(":") == 1 else host,
        "port": host.rsplit(":", 1)[1] if host.count(":") == 1 else "", "scheme": base_url.split(":", 1)[0],
        "clientIp": request.client, "query": request.query_params, "headers": request.headers, "cookies": request.cookies,
    }
    value: Any = model
    for index, step in enumerate(steps[1:]):
        if value is model and step == "path" and index + 2 < len(steps):
            value = segments  # request.path.[1]: the path's segments
            continue
        if isinstance(value, dict):
            value = value.get(step.lower() if value is request.headers else step)
        elif isinstance(value, list) and step.isdigit():
            value = value[int(step)] if int(step) < len(value) else None
        else:
            return None
        if value is None:
            return None
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value) and steps[1] in ("query", "headers", "cookies"):
        return value[0]  # a parameter's first value, as WireMock renders it
    return value


def _helper(name: str, args: list[Any], named: dict[str, Any], request: Incoming) -> Any:
    first = args[0] if args else None
    if name == "jsonPath":
        document = _parsed(first) if isinstance(first, str) else first
        if document is _NOT_JSON or document is None:
            return ""
        found = _jsonpath_values(named["compiled"], document)
        return found[0] if len(found) == 1 else (found or "")
    if name == "randomValue":
        kind = str(named.get("type", "ALPHANUMERIC")).upper()
        if kind == "UUID":
            return str(uuid.uuid4())
        length = max(0, min(int(named.get("length", 36)), MAX_RANDOM))
        alphabet = _RANDOM.get(kind, _RANDOM["ALPHANUMERIC"])
        value = "".join(random.choices(alphabet, k=length))
        return value.upper() if named.get("uppercase") in (True, "true") else value
    if name == "now":
        moment = time.time() + _offset(str(named.get("offset", "")))
        fmt = str(named.get("format", ""))
        if fmt == "epoch":
            return int(moment * 1000)
        if fmt == "unix":
            return int(moment)
        pattern = fmt or "yyyy-MM-dd'T'HH:mm:ss'Z'"
        for java, python in _JAVA_DATE:
            pattern = pattern.replace(java, python)
        return time.strftime(pattern, time.gmtime(moment))
    text = "" if first is None else first if isinstance(first, str) else json.dumps(first)
    if name == "lower":
        return text.lower()
    if name == "upper":
        return text.upper()
    if name == "trim":
        return text.strip()
    if name == "size":
        return len(first) if isinstance(first, (list, dict, str)) else 0
    if name == "urlEncode":
        return quote(text, safe="")
    return base64.b64encode(text.encode()).decode()  # base64


def _offset(text: str) -> float:
    found = re.fullmatch(r"\s*(-?\d+)\s+([a-z]+)\s*", text.lower())
    if not found or found.group(2) not in _UNITS:
        return 0.0
    return int(found.group(1)) * _UNITS[found.group(2)]


def compile_response(response: dict[str, Any], where: str) -> Callable[[Incoming, str], tuple[dict[str, list[str]], str | None]]:
    """The templated parts of a response (headers, body, jsonBody's strings), parsed; a function rendering them."""
    headers = {name: [Template(v, f"{where}.headers.{name}") for v in (value if isinstance(value, list) else [value])]
               for name, value in (response.get("headers") or {}).items()}
    body: Any = None
    if "body" in response:
        body = Template(response["body"], f"{where}.body")
    elif "jsonBody" in response:
        body = _json_templates(response["jsonBody"], f"{where}.jsonBody")

    fixed = sum(t.fixed for values in headers.values() for t in values) + _fixed(body)
    if fixed > MAX_OUTPUT:
        raise MappingError(f"{where}: its templates render {fixed} characters before any request value (text and randomValue "
                           f"lengths): at most {MAX_OUTPUT} a response")

    def render(request: Incoming, base_url: str) -> tuple[dict[str, list[str]], str | None]:
        """Raises TemplateTooLarge when this request's values make the output pass MAX_OUTPUT."""
        output = _Output()
        rendered_headers = {name: [t.render(request, base_url, output) for t in values] for name, values in headers.items()}
        if isinstance(body, Template):
            return rendered_headers, body.render(request, base_url, output)
        if body is not None:
            return rendered_headers, json.dumps(_render_json(body, request, base_url, output))
        return rendered_headers, None

    return render


def _fixed(node: Any) -> int:
    if isinstance(node, Template):
        return node.fixed
    if isinstance(node, dict):
        return sum(_fixed(v) for v in node.values())
    if isinstance(node, list):
        return sum(_fixed(v) for v in node)
    return 0


def _json_templates(node: Any, where: str) -> Any:
    if isinstance(node, str):
        return Template(node, where)
    if isinstance(node, dict):
        return {k: _json_templates(v, f"{where}.{k}") for k, v in node.items()}
    if isinstance(node, list):
        return [_json_templates(v, f"{where}[{i}]") for i, v in enumerate(node)]
    return node


def _render_json(node: Any, request: Incoming, base_url: str, output: _Output) -> Any:
    if isinstance(node, Template):
        return node.render(request, base_url, output)
    if isinstance(node, dict):
        return {k: _render_json(v, request, base_url, output) for k, v in node.items()}
    if isinstance(node, list):
        return [_render_json(v, request, base_url, output) for v in node]
    return node
