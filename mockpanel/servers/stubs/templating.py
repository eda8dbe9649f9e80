"""WireMock's response templating (`"transformers": ["response-template"]`), the Handlebars that mapping directories
use: values of the request (`{{request.path.[1]}}`, `{{request.path.userId}}` under a urlPathTemplate,
`{{request.query.id}}`, `{{request.headers.X-Trace}}`, `{{request.body}}`), the helpers jsonPath, randomValue, now,
lower, upper, trim, size, urlEncode, base64, eq, neq, gt, gte, lt, lte, and, or, not and contains (also as
sub-expressions: `{{#if (eq request.path.[0] 'v2')}}`), and the blocks {{#if}}, {{#unless}}, {{#each}} (with
`as |item|`, @index, @key, @first, @last) and {{#eq}}, with {{else}} and {{else if}}. Output is not HTML-escaped:
WireMock 3 renders `{{ }}` as `{{{ }}}`, so URLs, base64 and JSON come out as they are.

A template is parsed once, nesting at most 32 deep. Rendering is bounded: at most MAX_OUTPUT characters a response
and MAX_STEPS loop turns, past either the request is answered 422. What mockpanel does not render (partials, other
helpers) is refused when the mapping is read (`Unsupported`: that mapping, named, not the directory)."""

from __future__ import annotations

import base64
import json
import random
import re
import string
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import quote_plus, unquote

from .matching import Incoming, MappingError, Unsupported, _NOT_JSON, _parsed, compile_jsonpath, _jsonpath_values

MAX_RANDOM = 10_000  # characters of one randomValue
MAX_OUTPUT = 1024 * 1024  # characters one response's templates may render, headers and body together


MAX_STEPS = 100_000  # turns of {{#each}} loops one response may take, nested loops counted together
MAX_NESTING = 32


class TemplateTooLarge(Exception):
    """A response's templates rendered more than MAX_OUTPUT (or looped past MAX_STEPS) for this request."""


class _Output:
    """What one response's rendering has made so far, against MAX_OUTPUT and MAX_STEPS."""

    __slots__ = ("left", "steps")

    def __init__(self) -> None:
        self.left = MAX_OUTPUT
        self.steps = MAX_STEPS

    def take(self, text: str) -> str:
        self.left -= len(text)
        if self.left < 0:
            raise TemplateTooLarge(f"the response's templates render more than {MAX_OUTPUT // 1024} KiB for this request")
        return text

    def step(self) -> None:
        self.steps -= 1
        if self.steps < 0:
            raise TemplateTooLarge(f"the response's templates loop more than {MAX_STEPS:,} times for this request")
_TAG = re.compile(r"\{\{!--.*?--\}\}|\{\{\{(.*?)\}\}\}|\{\{(.*?)\}\}", re.S)
_TOKEN = re.compile(r"""\s*(?:([A-Za-z_][\w]*)=)?('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?![\w.])|[()]|[^\s'"=()]+)""")
CONDITIONS = ("eq", "neq", "gt", "gte", "lt", "lte", "and", "or", "not", "contains")
HELPERS = ("jsonPath", "randomValue", "now", "lower", "upper", "trim", "size", "urlEncode", "base64", *CONDITIONS)
BLOCKS = ("if", "unless", "each", "eq", "neq")
_RANDOM = {"ALPHANUMERIC": string.ascii_letters + string.digits, "ALPHABETIC": string.ascii_letters, "NUMERIC": string.digits,
           "HEXADECIMAL": "0123456789abcdef", "ALPHANUMERIC_AND_SYMBOLS": string.ascii_letters + string.digits + "!#$%&()*+,-./:;<>?@[]^_{|}~"}
_UNITS = {"seconds": 1, "second": 1, "minutes": 60, "minute": 60, "hours": 3600, "hour": 3600, "days": 86400, "day": 86400,
          "weeks": 604800, "week": 604800}
# Java's date patterns as WireMock's `now format=` takes them, for the ones stubs use
_JAVA_DATE = [("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S"), ("'T'", "T"), ("'Z'", "Z")]


class _Literal(str):
    """A quoted argument (a string, not a path)."""


class _Multi(list):
    """A request parameter's values (a query parameter, a header, a cookie): rendered as its first value, iterated by
    {{#each}}, counted by size, indexed by .[n]; as in WireMock, never equal to a string in eq (compare `.[0]`)."""

    def __str__(self) -> str:
        return self[0] if self else ""


class _Method(str):
    """The request's method: rendered as its name; as in WireMock (an enum there), never equal to a string in eq."""


@dataclass
class _Call:
    """A helper applied to arguments (each a literal, a path or another _Call), or a path alone (helper None)."""

    helper: str | None
    args: list[Any]
    named: dict[str, Any]


@dataclass
class _Tag:
    call: _Call


@dataclass
class _Block:
    name: str
    call: _Call  # the block's condition or list
    body: list[Any]
    otherwise: list[Any]
    params: list[str]  # each's `as |item index|`


def _tokens(source: str, where: str) -> list[tuple[str | None, Any]]:
    out: list[tuple[str | None, Any]] = []
    position = 0
    source = source.strip()
    while position < len(source):
        if source[position].isspace():
            position += 1
            continue
        found = _TOKEN.match(source, position)
        if found is None or found.end() == position:
            raise MappingError(f"{where}: cannot read {source[position:position + 40]!r}")
        key, raw = found.group(1), found.group(2)
        if raw[0] in "'\"":
            value: Any = _Literal(raw[1:-1].replace("\\" + raw[0], raw[0]))
        elif re.fullmatch(r"-?\d+(?:\.\d+)?", raw):
            value = float(raw) if "." in raw else int(raw)
        elif raw in ("true", "false"):
            value = raw == "true"
        else:
            value = raw  # a path, or a parenthesis
        out.append((key, value))
        position = found.end()
    return out


def _call(tokens: list[tuple[str | None, Any]], where: str, depth: int = 0) -> _Call:
    """tokens -> a call: the first token names a helper (or is a path), the rest are its arguments; ( ) nest."""
    if depth > MAX_NESTING:
        raise MappingError(f"{where}: sub-expressions nested more than {MAX_NESTING} deep")
    items: list[tuple[str | None, Any]] = []
    index = 0
    while index < len(tokens):
        key, value = tokens[index]
        if value == "(" and not isinstance(value, _Literal):
            level, end = 1, index + 1
            while end < len(tokens) and level:
                level += {"(": 1, ")": -1}.get(tokens[end][1], 0) if not isinstance(tokens[end][1], _Literal) else 0
                end += 1
            if level:
                raise MappingError(f"{where}: a ( without its )")
            items.append((key, _call(tokens[index + 1:end - 1], where, depth + 1)))
            index = end
            continue
        if value == ")" and not isinstance(value, _Literal):
            raise MappingError(f"{where}: a ) without its (")
        items.append((key, value))
        index += 1
    if not items:
        raise MappingError(f"{where}: an empty tag")
    head = items[0][1]
    positional = [v for k, v in items[1:] if k is None]
    named = {k: v for k, v in items[1:] if k is not None}
    if isinstance(head, str) and not isinstance(head, _Literal) and head in HELPERS:
        if head == "jsonPath":
            if len(positional) != 2:
                raise MappingError(f"{where}: jsonPath takes a value and an expression: {{{{jsonPath request.body '$.id'}}}}")
            named["compiled"] = compile_jsonpath(str(positional[1]), f"{where}: jsonPath")
        return _Call(head, positional, named)
    if isinstance(head, _Call) and not positional and not named:
        return head
    if isinstance(head, str) and not isinstance(head, _Literal) and _is_path(head):
        if positional or named:
            raise Unsupported(f"{where}: {head!r} is not a helper mockpanel renders (helpers: {', '.join(HELPERS)})")
        return _Call(None, [head], {})
    if isinstance(head, (_Literal, int, float, bool)) and not positional and not named:
        return _Call(None, [head], {})
    raise Unsupported(f"{where}: {str(head)[:40]!r}: a helper or value mockpanel does not render (helpers: {', '.join(HELPERS)}; "
                      "values: request.url, request.path.[n], request.query.NAME, request.headers.NAME, request.body, this, @index, …)")


def _is_path(text: str) -> bool:
    first = re.split(r"[.\[]", text, maxsplit=1)[0]
    return first in ("request", "this", "@index", "@key", "@first", "@last", "..") or bool(re.fullmatch(r"[A-Za-z_][\w-]*", first))


def _parse(text: str, where: str) -> list[Any]:
    """The template as a tree: text, tags and blocks."""
    stack: list[tuple[_Block | None, list[Any]]] = [(None, [])]
    position = 0
    for found in _TAG.finditer(text):
        stack[-1][1].append(text[position:found.start()])
        position = found.end()
        if found.group(1) is None and found.group(2) is None:
            continue  # {{!-- a comment --}}
        inner = (found.group(1) if found.group(1) is not None else found.group(2)).strip()
        if inner.startswith("!"):
            continue  # a comment
        if inner.startswith("#"):
            head, _, rest = inner[1:].partition(" ")
            if head not in BLOCKS:
                raise Unsupported(f"{where}: {{{{#{head[:30]}}}}}: a block mockpanel does not render (blocks: {', '.join(BLOCKS)})")
            if len(stack) > MAX_NESTING:
                raise MappingError(f"{where}: blocks nested more than {MAX_NESTING} deep")
            params: list[str] = []
            rest_match = re.fullmatch(r"(.*?)\s+as\s+\|([^|]*)\|\s*", rest, re.S)
            if rest_match:
                rest, params = rest_match.group(1), rest_match.group(2).split()
            call = _call(_tokens(f"{head} {rest}" if head in CONDITIONS else rest, where), where)
            block = _Block(head, call, [], [], params)
            stack[-1][1].append(block)
            stack.append((block, block.body))
            continue
        if inner == "else" or inner.startswith("else "):
            block = stack[-1][0]
            if block is None or stack[-1][1] is block.otherwise:
                raise MappingError(f"{where}: {{{{else}}}} outside a block")
            stack[-1] = (block, block.otherwise)
            chained = inner[4:].strip()
            if chained:  # {{else if x}}: a block of its own in the else part, closed by the same {{/if}}
                head, _, rest = chained.partition(" ")
                if head not in BLOCKS:
                    raise Unsupported(f"{where}: {{{{else {head[:30]}}}}}: a block mockpanel does not render")
                nested = _Block(head, _call(_tokens(f"{head} {rest}" if head in CONDITIONS else rest, where), where), [], [], [])
                nested.chained = True  # type: ignore[attr-defined]
                block.otherwise.append(nested)
                stack.append((nested, nested.body))
            continue
        if inner.startswith("/"):
            name = inner[1:].strip()
            while True:
                block = stack[-1][0]
                if block is None or (block.name != name and not getattr(block, "chained", False)):
                    raise MappingError(f"{where}: {{{{/{name[:30]}}}}} closes no open {{{{#{name[:30]}}}}}")
                stack.pop()
                if not getattr(block, "chained", False):
                    break
            continue
        if inner[:1] in (">", "^", "&", "*") or inner.startswith("#>"):
            raise Unsupported(f"{where}: {{{{{inner[:30]}}}}}: partials and decorators are not rendered by mockpanel")
        stack[-1][1].append(_Tag(_call(_tokens(inner, where), where)))
    if len(stack) > 1:
        raise MappingError(f"{where}: {{{{#{stack[-1][0].name}}}}} is not closed")  # type: ignore[union-attr]
    stack[0][1].append(text[position:])
    return [node for node in stack[0][1] if node != ""]


class Template:
    """One templated string, parsed once into text, tags and blocks."""

    def __init__(self, text: str, where: str) -> None:
        self.nodes = _parse(text, where)
        self.static = all(isinstance(n, str) for n in self.nodes)
        self.text = "".join(self.nodes) if self.static else ""
        # What the mapping alone makes this render outside loops (its text and random values): known when read.
        self.fixed = _fixed_nodes(self.nodes)

    def render(self, scope: "_Scope", output: "_Output") -> str:
        if self.static:
            return output.take(self.text)
        out: list[str] = []
        _render(self.nodes, scope, output, out)
        return "".join(out)


def _fixed_nodes(nodes: list[Any]) -> int:
    total = 0
    for node in nodes:
        if isinstance(node, str):
            total += len(node)
        elif isinstance(node, _Tag):
            total += _random_length(node.call)
        elif isinstance(node, _Block) and node.name != "each":
            total += max(_fixed_nodes(node.body), _fixed_nodes(node.otherwise))
    return total


def _random_length(call: _Call) -> int:
    if call.helper != "randomValue":
        return 0
    try:
        return 36 if str(call.named.get("type", "")).upper() == "UUID" else max(0, min(int(call.named.get("length", 36)), MAX_RANDOM))
    except (TypeError, ValueError):
        return 0


class _Scope:
    __slots__ = ("request", "base_url", "path_values", "this", "names", "model")

    def __init__(self, request: Incoming, base_url: str, path_values: dict[str, str], this: Any, names: dict[str, Any],
                 model: dict[str, Any] | None = None) -> None:
        self.request, self.base_url, self.path_values, self.this, self.names = request, base_url, path_values, this, names
        self.model = model

    def inner(self, this: Any, names: dict[str, Any]) -> "_Scope":
        return _Scope(self.request, self.base_url, self.path_values, this, {**self.names, **names}, self.model)


def _render(nodes: list[Any], scope: _Scope, output: _Output, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(output.take(node))
        elif isinstance(node, _Tag):
            out.append(output.take(_text(_evaluate(node.call, scope))))
        elif node.name == "each":
            items = _evaluate(node.call, scope)
            pairs = list(items.items()) if isinstance(items, dict) else list(enumerate(items)) if isinstance(items, list) else []
            if not pairs:
                _render(node.otherwise, scope, output, out)
            for index, (key, item) in enumerate(pairs):
                output.step()
                names = {"@index": index, "@key": key, "@first": index == 0, "@last": index == len(pairs) - 1}
                if node.params:
                    names[node.params[0]] = item
                    if len(node.params) > 1:
                        names[node.params[1]] = key
                _render(node.body, scope.inner(item, names), output, out)
        else:
            value = _evaluate(node.call, scope)
            chosen = _truthy(value) if node.name != "unless" else not _truthy(value)
            _render(node.body if chosen else node.otherwise, scope, output, out)


def _truthy(value: Any) -> bool:
    """Handlebars' truth: false, null, "", 0 and [] are false."""
    if isinstance(value, _Multi):
        return bool(value) and value[0] != "" or len(value) > 1
    return not (value is None or value is False or value == "" or value == 0 or value == [] or value == {})


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, _Multi)):
        return str(value)  # a parameter's values: its first
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _evaluate(call: _Call, scope: _Scope) -> Any:
    args = [_evaluate(a, scope) if isinstance(a, _Call) else _value(a, scope) for a in call.args]
    if call.helper is None:
        return args[0]
    named = {k: (_evaluate(v, scope) if isinstance(v, _Call) else v) for k, v in call.named.items()}
    return _helper(call.helper, args, named, scope.request)


def _request_model(scope: _Scope) -> dict[str, Any]:
    if scope.model is None:
        request, base_url = scope.request, scope.base_url
        segments = [unquote(s) for s in request.path.split("/") if s]
        host = (request.headers.get("host") or [""])[0]
        path = _PathValue(request.path)
        path.segments = segments
        path.names = scope.path_values
        scope.model = {
            "url": request.url, "path": path, "pathSegments": segments, "method": _Method(request.method), "body": request.text,
            "baseUrl": base_url, "host": host.rsplit(":", 1)[0] if host.count(":") == 1 else host,
            "port": host.rsplit(":", 1)[1] if host.count(":") == 1 else "", "scheme": base_url.split(":", 1)[0],
            "clientIp": request.client, "query": _Multis(request.query_params), "headers": _Multis(request.headers, fold=True),
            "cookies": _Multis(request.cookies),
        }
    return scope.model


class _PathValue(str):
    """request.path: the path as text; .[n] its segments, .NAME a urlPathTemplate's named segment."""

    segments: list[str]
    names: dict[str, str]

    def step(self, name: str) -> Any:
        if name.isdigit():
            index = int(name)
            return self.segments[index] if index < len(self.segments) else None
        return self.names.get(name)


class _Multis:
    """query, headers or cookies: each name's values as a _Multi (headers by their name in any case)."""

    def __init__(self, table: dict[str, list[str]], fold: bool = False) -> None:
        self.table, self.fold = table, fold

    def step(self, name: str) -> Any:
        values = self.table.get(name.lower() if self.fold else name)
        return _Multi(values) if values is not None else None


def _value(item: Any, scope: _Scope) -> Any:
    """An argument: a literal as it is, a path resolved in the scope (this, block parameters, @index, the request)."""
    if not isinstance(item, str) or isinstance(item, _Literal):
        return item
    steps = [s[1:-1] if s.startswith("[") and s.endswith("]") else s for s in re.findall(r"\[[^\]]*\]|[^.\[\]]+", item)]
    if not steps:
        return None
    first = steps[0]
    if first == "request":
        value: Any = _request_model(scope)
    elif first == "this":
        value = scope.this
    elif first in scope.names:
        value = scope.names[first]
    elif isinstance(scope.this, dict) and first in scope.this:
        value = scope.this[first]  # a field of the item {{#each}} is at
    else:
        return None
    for step in steps[1:]:
        if isinstance(value, (_PathValue, _Multis)):
            value = value.step(step)
        elif isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and step.isdigit():
            value = value[int(step)] if int(step) < len(value) else None
        else:
            return None
        if value is None:
            return None
    if isinstance(value, _PathValue):
        return str(value)
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def _helper(name: str, args: list[Any], named: dict[str, Any], request: Incoming) -> Any:
    first = args[0] if args else None
    if name in CONDITIONS:
        second = args[1] if len(args) > 1 else None
        if name in ("eq", "neq"):
            same = type(first) is type(second) and first == second if isinstance(first, (_Multi, _Method)) or isinstance(second, (_Multi, _Method)) \
                else first == second
            return same if name == "eq" else not same
        if name in ("gt", "gte", "lt", "lte"):
            a, b = _number(first), _number(second)
            if a is None or b is None:
                return False
            return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[name]
        if name == "and":
            return all(_truthy(a) for a in args)
        if name == "or":
            return any(_truthy(a) for a in args)
        if name == "not":
            return not _truthy(first)
        if isinstance(first, (list, dict)):  # contains
            return second in first
        return _text(second) in _text(first)
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
        moment = (request.logged or time.time()) + _offset(str(named.get("offset", "")))  # the mocks' clock at arrival
        fmt = str(named.get("format", ""))
        if fmt == "epoch":
            return int(moment * 1000)
        if fmt == "unix":
            return int(moment)
        pattern = fmt or "yyyy-MM-dd'T'HH:mm:ss'Z'"
        for java, python in _JAVA_DATE:
            pattern = pattern.replace(java, python)
        return time.strftime(pattern, time.gmtime(moment))
    if name == "size":
        return len(first) if isinstance(first, (list, dict, str)) else 0
    text = _text(first)
    if name == "lower":
        return text.lower()
    if name == "upper":
        return text.upper()
    if name == "trim":
        return text.strip()
    if name == "urlEncode":  # as Java's URLEncoder, which WireMock uses: a space is +, ~ is escaped, * is not
        return quote_plus(text, safe="*").replace("~", "%7E")
    return base64.b64encode(text.encode()).decode()  # base64


def _offset(text: str) -> float:
    found = re.fullmatch(r"\s*(-?\d+)\s+([a-z]+)\s*", text.lower())
    if not found or found.group(2) not in _UNITS:
        return 0.0
    return int(found.group(1)) * _UNITS[found.group(2)]


def compile_response(response: dict[str, Any], where: str) -> Callable[..., tuple[dict[str, list[str]], str | None]]:
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

    def render(request: Incoming, base_url: str, path_values: dict[str, str] | None = None) -> tuple[dict[str, list[str]], str | None]:
        """Raises TemplateTooLarge when this request's values make the output pass MAX_OUTPUT (or loop past MAX_STEPS)."""
        output = _Output()
        scope = _Scope(request, base_url, path_values or {}, None, {})  # one request model for every template
        rendered_headers = {name: [t.render(scope, output) for t in values] for name, values in headers.items()}
        if isinstance(body, Template):
            return rendered_headers, body.render(scope, output)
        if body is not None:
            return rendered_headers, json.dumps(_render_json(body, scope, output))
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


def _render_json(node: Any, scope: "_Scope", output: _Output) -> Any:
    if isinstance(node, Template):
        return node.render(scope, output)
    if isinstance(node, dict):
        return {k: _render_json(v, scope, output) for k, v in node.items()}
    if isinstance(node, list):
        return [_render_json(v, scope, output) for v in node]
    return node
