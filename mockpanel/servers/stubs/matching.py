"""WireMock's request matching: the request patterns of its JSON mappings (url, urlPath, urlPattern, urlPathPattern,
urlPathTemplate, method, headers, queryParameters, cookies, formParameters, basicAuthCredentials, bodyPatterns) and
its value matchers (equalTo, contains, matches, equalToJson, matchesJsonPath, ...), checked when a mapping is read so
a typo is an error naming its place, never a stub that silently never matches.

Every regex is compiled by the `regex` module and run with a time bound: a pattern that backtracks catastrophically
on some input fails that match (and says so) instead of holding the loop every server shares.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import json
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qsl, unquote

import regex

REGEX_TIMEOUT_S = 0.05  # one regex against one value; past it the value does not match
REQUEST_REGEX_BUDGET_S = 0.1  # every regex one request runs, matching and near-miss report together


class RegexBudget:
    """One request's regex time: until `deadline` (time.monotonic()), and the (regex, value) pairs that already ran
    past REGEX_TIMEOUT_S, so the near-miss report does not run them again."""

    __slots__ = ("deadline", "timed_out")

    def __init__(self, seconds: float = REQUEST_REGEX_BUDGET_S) -> None:
        self.deadline = time.monotonic() + seconds
        self.timed_out: set[tuple[int, int, int]] = set()


# The budget of the request being answered; None: no budget (the admin API's finds over the request log)
regex_budget: ContextVar[RegexBudget | None] = ContextVar("mockpanel_regex_budget", default=None)
MAX_PATTERN = 2000  # characters of one regex or JSONPath expression
JSON_UNIT = ("${json-unit.ignore}", "${json-unit.any-string}", "${json-unit.any-number}", "${json-unit.any-boolean}")


class MappingError(ValueError):
    """A mapping WireMock's format does not allow; the message names where (request.headers.Accept: ...)."""


class Unsupported(MappingError):
    """Something of WireMock's that mockpanel does not do: that mapping is refused, naming it; the others are served."""


class RegexTimeout(Exception):
    """A regex ran past REGEX_TIMEOUT_S on one value."""


class BudgetSpent(Exception):
    """The request's regex budget (REQUEST_REGEX_BUDGET_S) is spent: no further comparison is made."""


@dataclass
class Incoming:
    """A request as the matchers see it."""

    method: str
    path: str  # as sent (still percent-encoded)
    query: str  # as sent, without '?'
    headers: dict[str, list[str]]  # lower-case names
    body: bytes = b""
    client: str = ""
    logged: float = 0.0
    _query: dict[str, list[str]] | None = field(default=None, repr=False)
    _cookies: dict[str, list[str]] | None = field(default=None, repr=False)
    _json: Any = field(default=None, repr=False)
    _text: str | None = field(default=None, repr=False)
    cut_short: str = ""  # why the mappings were not all compared (the request's regex budget ran out)

    @property
    def url(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path

    @property
    def query_params(self) -> dict[str, list[str]]:
        if self._query is None:
            found: dict[str, list[str]] = {}
            for key, value in parse_qsl(self.query, keep_blank_values=True):
                found.setdefault(key, []).append(value)
            self._query = found
        return self._query

    @property
    def cookies(self) -> dict[str, list[str]]:
        if self._cookies is None:
            found: dict[str, list[str]] = {}
            for header in self.headers.get("cookie", ()):
                for part in header.split(";"):
                    name, _, value = part.strip().partition("=")
                    if name:
                        found.setdefault(name, []).append(value)
            self._cookies = found
        return self._cookies

    @property
    def text(self) -> str:
        """The body as text, decoded once: every body matcher of every mapping gets the same string (and its JSON
        is parsed once, see _parsed)."""
        if self._text is None:
            self._text = self.body.decode("utf-8", "replace")
        return self._text

    def json(self) -> Any:
        """The body as JSON, or a marker that it is not JSON."""
        if self._json is None:
            try:
                self._json = ("ok", json.loads(self.body))
            except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested past Python's stack
                self._json = ("bad", None)
        return self._json


def bounded_regex(pattern: Any, where: str) -> Any:
    if not isinstance(pattern, str):
        raise MappingError(f"{where}: a regex is a string")
    if len(pattern) > MAX_PATTERN:
        raise MappingError(f"{where}: a regex is at most {MAX_PATTERN} characters")
    try:
        return regex.compile(pattern, regex.V0)
    except regex.error as exc:
        raise MappingError(f"{where}: invalid regex {pattern[:80]!r}: {exc}") from None


def _fullmatch(compiled: Any, value: str) -> Any:
    """compiled.fullmatch, bounded by REGEX_TIMEOUT_S and by what is left of the request's budget."""
    budget = regex_budget.get()
    timeout = REGEX_TIMEOUT_S
    if budget is not None:
        if (id(compiled), len(value), hash(value)) in budget.timed_out:
            raise RegexTimeout(compiled.pattern[:80])  # it ran past its time once in this request already
        left = budget.deadline - time.monotonic()
        if left <= 0:
            raise BudgetSpent()
        timeout = min(timeout, left)
    try:
        return compiled.fullmatch(value, timeout=timeout)
    except TimeoutError:
        if budget is not None:
            if timeout < REGEX_TIMEOUT_S:
                raise BudgetSpent() from None
            budget.timed_out.add((id(compiled), len(value), hash(value)))
        raise RegexTimeout(compiled.pattern[:80]) from None


def full_match(compiled: Any, value: str) -> bool:
    return _fullmatch(compiled, value) is not None


# --- JSONPath (Jayway's syntax as WireMock uses it; python-jsonpath without its regex functions) ---

_jsonpath_env: Any = None


def _jsonpath() -> Any:
    global _jsonpath_env
    if _jsonpath_env is None:
        import jsonpath

        env = jsonpath.JSONPathEnvironment()
        for name in ("match", "search"):  # unbounded regexes inside a filter: not on the shared loop
            env.function_extensions.pop(name, None)
        _jsonpath_env = env
    return _jsonpath_env


def compile_jsonpath(expression: Any, where: str) -> Any:
    if not isinstance(expression, str) or not expression.startswith("$"):
        raise MappingError(f"{where}: a JSONPath expression starts with $")
    if len(expression) > MAX_PATTERN:
        raise MappingError(f"{where}: a JSONPath expression is at most {MAX_PATTERN} characters")
    try:
        return _jsonpath().compile(expression)
    except Exception as exc:  # python-jsonpath's syntax errors have several classes
        raise MappingError(f"{where}: invalid JSONPath {expression[:80]!r}: {exc}") from None


def _jsonpath_values(compiled: Any, document: Any) -> list[Any]:
    # Jayway applies a filter at the root ($[?(@.total == 10)]) to the root object itself; RFC 9535 to its members.
    if isinstance(document, dict) and str(compiled).startswith("$[?"):
        document = [document]
    try:
        return compiled.findall(document)
    except Exception:  # a filter comparing unlike types: no match
        return []


# --- value matchers ---

ValueCheck = Callable[[str | None], bool]

STRING_MATCHERS = ("equalTo", "contains", "doesNotContain", "matches", "doesNotMatch", "absent", "equalToJson",
                   "matchesJsonPath", "binaryEqualTo", "and", "or", "not", "equalToXml", "matchesXPath")
_OPTIONS = {"caseInsensitive", "ignoreArrayOrder", "ignoreExtraElements", "enablePlaceholders", "xPathNamespaces",
            "placeholderOpeningDelimiterRegex", "placeholderClosingDelimiterRegex", "exemptedComparisons", "namespaceAwareness"}


@dataclass
class ValueMatcher:
    """One WireMock value matcher: `check` says whether a value (None: absent) matches; `expected` is what the
    near-miss report shows."""

    spec: Any
    check: ValueCheck
    expected: str


def value_matcher(spec: Any, where: str, *, body: bool = False) -> ValueMatcher:
    """A matcher from its JSON form ({"equalTo": "x"}); a plain string means equalTo (as WireMock's short form)."""
    if isinstance(spec, str):
        spec = {"equalTo": spec}
    if not isinstance(spec, dict):
        raise MappingError(f"{where}: a matcher is an object such as {{\"equalTo\": \"value\"}}")
    keys = [k for k in spec if k not in _OPTIONS]
    if "matchesXPath" in keys:  # its value matcher sits beside it: {"matchesXPath": "//id", "equalTo": "1"}
        keys = ["matchesXPath"]
    if len(keys) != 1 or keys[0] not in STRING_MATCHERS:
        named = ", ".join(keys) or "none"
        raise MappingError(f"{where}: unknown matcher {named} (one of {', '.join(STRING_MATCHERS)})")
    kind = keys[0]
    operand = spec[kind]
    check = _MAKERS[kind](operand, spec, f"{where}.{kind}")
    shown = f"{kind} {operand if isinstance(operand, str) else json.dumps(operand)[:200]}"
    return ValueMatcher(spec, check, shown)


def _need_str(operand: Any, where: str) -> str:
    if not isinstance(operand, str):
        raise MappingError(f"{where}: expected a string")
    return operand


def _equal_to(operand: Any, spec: dict, where: str) -> ValueCheck:
    expected = _need_str(operand, where)
    if spec.get("caseInsensitive"):
        folded = expected.casefold()
        return lambda v: v is not None and v.casefold() == folded
    return lambda v: v == expected


def _contains(operand: Any, spec: dict, where: str) -> ValueCheck:
    part = _need_str(operand, where)
    return lambda v: v is not None and part in v


def _not_contains(operand: Any, spec: dict, where: str) -> ValueCheck:
    part = _need_str(operand, where)
    return lambda v: v is None or part not in v


def _matches(operand: Any, spec: dict, where: str) -> ValueCheck:
    compiled = bounded_regex(operand, where)
    return lambda v: v is not None and full_match(compiled, v)


def _not_matches(operand: Any, spec: dict, where: str) -> ValueCheck:
    compiled = bounded_regex(operand, where)
    return lambda v: v is None or not full_match(compiled, v)


def _absent(operand: Any, spec: dict, where: str) -> ValueCheck:
    if not isinstance(operand, bool):
        raise MappingError(f"{where}: absent is true or false")
    return (lambda v: v is None) if operand else (lambda v: v is not None)


def _binary(operand: Any, spec: dict, where: str) -> ValueCheck:
    try:
        expected = base64.b64decode(_need_str(operand, where), validate=True)
    except binascii.Error:
        raise MappingError(f"{where}: binaryEqualTo is base64") from None
    return lambda v: v is not None and v.encode("utf-8", "surrogateescape") == expected


def json_equal(expected: Any, actual: Any, ignore_order: bool, ignore_extra: bool) -> bool:
    """WireMock's equalToJson, with json-unit placeholders (${json-unit.ignore}, any-string, any-number, any-boolean)."""
    if isinstance(expected, str) and expected in JSON_UNIT:
        kind = expected[len("${json-unit."):-1]
        return {"ignore": True, "any-string": isinstance(actual, str),
                "any-number": isinstance(actual, (int, float)) and not isinstance(actual, bool),
                "any-boolean": isinstance(actual, bool)}[kind]
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return False
        if not ignore_extra and set(actual) - set(expected):
            return False
        return all(k in actual and json_equal(v, actual[k], ignore_order, ignore_extra) for k, v in expected.items())
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return False
        if not ignore_extra and len(actual) != len(expected):
            return False
        if not ignore_order:
            if len(actual) < len(expected):
                return False
            return all(json_equal(e, a, ignore_order, ignore_extra) for e, a in zip(expected, actual))
        remaining = list(actual)
        for item in expected:
            for index, candidate in enumerate(remaining):
                if json_equal(item, candidate, ignore_order, ignore_extra):
                    del remaining[index]
                    break
            else:
                return False
        return True
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    return expected == actual


_last_parsed: list[Any] = [None, None]  # [the string, its JSON (or _NOT_JSON)]: the body every body matcher sees
_NOT_JSON = object()


def _parsed(value: str) -> Any:
    """json.loads(value), once for the same string object: 50 equalToJson mappings parse a body once, not 50 times."""
    if _last_parsed[0] is not value:
        try:
            document = json.loads(value)
        except (ValueError, RecursionError):  # RecursionError: nested past Python's stack
            document = _NOT_JSON
        _last_parsed[0], _last_parsed[1] = value, document
    return _last_parsed[1]


def _equal_to_json(operand: Any, spec: dict, where: str) -> ValueCheck:
    if isinstance(operand, str):
        try:
            expected = json.loads(operand)
        except ValueError as exc:
            raise MappingError(f"{where}: not JSON: {exc}") from None
    else:
        expected = operand
    order, extra = bool(spec.get("ignoreArrayOrder")), bool(spec.get("ignoreExtraElements"))

    def check(value: str | None) -> bool:
        if value is None:
            return False
        actual = _parsed(value)
        return actual is not _NOT_JSON and json_equal(expected, actual, order, extra)

    return check


def _matches_json_path(operand: Any, spec: dict, where: str) -> ValueCheck:
    if isinstance(operand, dict):
        expression = operand.get("expression")
        rest = {k: v for k, v in operand.items() if k != "expression"}
        compiled = compile_jsonpath(expression, f"{where}.expression")
        inner = value_matcher(rest, where)
    else:
        compiled = compile_jsonpath(operand, where)
        inner = None

    def check(value: str | None) -> bool:
        if value is None:
            return False
        document = _parsed(value)
        if document is _NOT_JSON:
            return False
        found = _jsonpath_values(compiled, document)
        if inner is None:
            return bool(found) and not (len(found) == 1 and found[0] in ([], {}))
        return any(inner.check(v if isinstance(v, str) else json.dumps(v)) for v in found)

    return check


def _combine(operand: Any, spec: dict, where: str) -> ValueCheck:
    kind = where.rsplit(".", 1)[1]
    if kind == "not":
        inner = value_matcher(operand, where)
        return lambda v: not inner.check(v)
    if not isinstance(operand, list) or not operand:
        raise MappingError(f"{where}: a list of matchers")
    inners = [value_matcher(item, f"{where}[{i}]") for i, item in enumerate(operand)]
    if kind == "and":
        return lambda v: all(m.check(v) for m in inners)
    return lambda v: any(m.check(v) for m in inners)


# --- XML: equalToXml (XMLUnit's "similar", as WireMock: siblings in any order, whitespace between elements ignored)
# and matchesXPath (XPath 1.0, by lxml). Bodies are parsed with no entity expanded, no DTD and nothing fetched.

_last_xml: list[Any] = [None, None]  # [the string, its document (or None)]: as _last_parsed, for XML matchers


def _xml(text: str) -> Any:
    """The text's XML document (None when it is not XML), parsed once for the same string object."""
    from lxml import etree

    if _last_xml[0] is not text:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                                 remove_comments=True, remove_pis=True)
        try:
            document = etree.fromstring(text.encode("utf-8"), parser)
        except (etree.XMLSyntaxError, ValueError):
            document = None
        _last_xml[0], _last_xml[1] = text, document
    return _last_xml[1]


def _xml_similar(expected: Any, actual: Any, placeholders: bool) -> bool:
    if expected.tag != actual.tag or dict(expected.attrib) != dict(actual.attrib):
        if not (placeholders and expected.tag == actual.tag and all(
                v == "${xmlunit.ignore}" or actual.attrib.get(k) == v for k, v in expected.attrib.items())
                and set(expected.attrib) == set(actual.attrib)):
            return False
    want, got = (expected.text or "").strip(), (actual.text or "").strip()
    if want != got and not (placeholders and want == "${xmlunit.ignore}"):
        return False
    remaining = list(actual)
    if len(remaining) != len(expected):
        return False
    for child in expected:
        match = next((i for i, candidate in enumerate(remaining) if _xml_similar(child, candidate, placeholders)), None)
        if match is None:
            return False
        remaining.pop(match)
    return True


def _equal_to_xml(operand: Any, spec: dict, where: str) -> ValueCheck:
    expected = _xml(_need_str(operand, where))
    if expected is None:
        raise MappingError(f"{where}: not well-formed XML")
    placeholders = spec.get("enablePlaceholders") is True

    def check(value: str | None) -> bool:
        actual = _xml(value) if value else None
        return actual is not None and _xml_similar(expected, actual, placeholders)

    return check


def _matches_xpath(operand: Any, spec: dict, where: str) -> ValueCheck:
    from lxml import etree

    nested_spec = {k: v for k, v in spec.items() if k not in ("matchesXPath", "xPathNamespaces") and k not in _OPTIONS}
    if isinstance(operand, dict):  # {"matchesXPath": {"expression": "...", "equalTo": "..."}}
        nested_spec = {k: v for k, v in operand.items() if k != "expression"}
        operand = operand.get("expression")
    expression = _need_str(operand, where)
    if len(expression) > MAX_PATTERN:
        raise MappingError(f"{where}: longer than {MAX_PATTERN} characters")
    namespaces = spec.get("xPathNamespaces") or {}
    if not isinstance(namespaces, dict) or not all(isinstance(v, str) for v in namespaces.values()):
        raise MappingError(f"{where}: xPathNamespaces is an object of prefix to namespace URI")
    try:
        compiled = etree.XPath(expression, namespaces=namespaces)
    except etree.XPathSyntaxError as exc:
        raise MappingError(f"{where}: not an XPath expression: {exc}") from None
    nested = value_matcher(nested_spec, where) if nested_spec else None

    def texts(result: Any) -> list[str]:
        if isinstance(result, list):
            return [r if isinstance(r, str) else "".join(r.itertext()) if hasattr(r, "itertext") else str(r) for r in result]
        if isinstance(result, bool):
            return ["true" if result else "false"]
        if isinstance(result, float):
            return [str(int(result)) if result.is_integer() else str(result)]
        return [str(result)]

    def check(value: str | None) -> bool:
        document = _xml(value) if value else None
        if document is None:
            return False
        try:
            result = compiled(document)
        except etree.XPathError:
            return False
        if nested is None:
            return bool(result) if not isinstance(result, (str, float)) else result != ""
        return any(nested.check(text) for text in texts(result))

    return check


_MAKERS: dict[str, Callable[[Any, dict, str], ValueCheck]] = {
    "equalTo": _equal_to, "contains": _contains, "doesNotContain": _not_contains, "matches": _matches,
    "doesNotMatch": _not_matches, "absent": _absent, "binaryEqualTo": _binary, "equalToJson": _equal_to_json,
    "matchesJsonPath": _matches_json_path, "and": _combine, "or": _combine, "not": _combine,
    "equalToXml": _equal_to_xml, "matchesXPath": _matches_xpath,
}


# --- multi-valued matchers (headers, query parameters, cookies, form parameters) ---


def multi_matcher(spec: Any, where: str, absent_is_none: bool = False) -> Callable[[list[str]], bool]:
    """hasExactly / includes over every value, else a value matcher that any value (or absence) satisfies."""
    if isinstance(spec, dict) and ("hasExactly" in spec or "includes" in spec):
        kind = "hasExactly" if "hasExactly" in spec else "includes"
        items = spec[kind]
        if not isinstance(items, list):
            raise MappingError(f"{where}.{kind}: a list of matchers")
        inners = [value_matcher(item, f"{where}.{kind}[{i}]") for i, item in enumerate(items)]
        if kind == "includes":
            return lambda values: all(any(m.check(v) for v in values) for m in inners)
        return lambda values: len(values) == len(inners) and all(any(m.check(v) for v in values) for m in inners)
    inner = value_matcher(spec, where)
    if absent_is_none:  # a cookie: WireMock matches an absent one only with absent: true
        absent = isinstance(spec, dict) and spec.get("absent") is True
        return lambda values: absent if not values else any(inner.check(v) for v in values)
    return lambda values: inner.check(None) if not values else any(inner.check(v) for v in values)


# --- the request pattern ---

URL_KEYS = ("url", "urlPattern", "urlPath", "urlPathPattern", "urlPathTemplate")
PATTERN_KEYS = {*URL_KEYS, "method", "headers", "queryParameters", "cookies", "formParameters", "bodyPatterns",
                "basicAuthCredentials", "host", "port", "scheme", "pathParameters", "customMatcher"}


def _template(template: str, where: str) -> tuple[Any, list[str]]:
    parts = []
    names = []
    for segment in template.split("/"):
        if segment.startswith("{") and segment.endswith("}") and len(segment) > 2:
            names.append(segment[1:-1])
            parts.append("([^/]+)")
        else:
            parts.append(regex.escape(segment))
    return bounded_regex("/".join(parts), where), names


class RequestPattern:
    """A mapping's `request`: checked part by part, so a miss can say which parts differed and how far."""

    def __init__(self, spec: Any, where: str = "request") -> None:
        if not isinstance(spec, dict):
            raise MappingError(f"{where}: an object")
        unknown = set(spec) - PATTERN_KEYS
        if unknown:
            raise MappingError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        if "customMatcher" in spec:
            raise MappingError(f"{where}.customMatcher: WireMock extensions are Java code; mockpanel cannot run them")
        self.spec = spec
        method = spec.get("method", "ANY")
        if not isinstance(method, str):
            raise MappingError(f"{where}.method: a string such as GET, or ANY")
        self.method = method.upper()
        urls = [k for k in URL_KEYS if k in spec]
        if len(urls) > 1:
            raise MappingError(f"{where}: one of {', '.join(URL_KEYS)}, not {' and '.join(urls)}")
        self.url_kind = urls[0] if urls else None
        self.url_value = spec[urls[0]] if urls else None
        self._url_check: Callable[[Incoming], bool] = lambda r: True
        self._path_params: dict[str, Callable[[list[str]], bool]] = {}
        self._template: tuple[Any, list[str]] | None = None
        if self.url_kind is not None:
            value = self.url_value
            if not isinstance(value, str):
                raise MappingError(f"{where}.{self.url_kind}: a string")
            if self.url_kind == "url":
                self._url_check = lambda r: r.url == value
            elif self.url_kind == "urlPath":
                self._url_check = lambda r: r.path == value
            elif self.url_kind in ("urlPattern", "urlPathPattern"):
                compiled = bounded_regex(value, f"{where}.{self.url_kind}")
                on_path = self.url_kind == "urlPathPattern"
                self._url_check = lambda r: full_match(compiled, r.path if on_path else r.url)
            else:
                compiled, names = self._template = _template(value, f"{where}.urlPathTemplate")
                params = spec.get("pathParameters") or {}
                if not isinstance(params, dict) or set(params) - set(names):
                    raise MappingError(f"{where}.pathParameters: names from the template ({', '.join(names)})")
                checks = {n: multi_matcher(m, f"{where}.pathParameters.{n}") for n, m in params.items()}

                def template_check(r: Incoming) -> bool:
                    found = _fullmatch(compiled, r.path)
                    if found is None:
                        return False
                    values = dict(zip(names, (unquote(g) for g in found.groups())))
                    return all(check([values[n]]) for n, check in checks.items())

                self._url_check = template_check
        self.headers = self._multi(spec, "headers", where)
        self.query = self._multi(spec, "queryParameters", where)
        self.cookies = self._multi(spec, "cookies", where)
        self.form = self._multi(spec, "formParameters", where)
        bodies = spec.get("bodyPatterns", [])
        if not isinstance(bodies, list):
            raise MappingError(f"{where}.bodyPatterns: a list of matchers")
        self.bodies = [value_matcher(b, f"{where}.bodyPatterns[{i}]", body=True) for i, b in enumerate(bodies)]
        auth = spec.get("basicAuthCredentials")
        self.basic: str | None = None
        if auth is not None:
            if not isinstance(auth, dict) or not all(isinstance(auth.get(k), str) for k in ("username", "password")):
                raise MappingError(f"{where}.basicAuthCredentials: username and password, both strings")
            self.basic = "Basic " + base64.b64encode(f"{auth['username']}:{auth['password']}".encode()).decode()

    def path_values(self, request: Incoming) -> dict[str, str]:
        """The named segments of a urlPathTemplate in this request's path ({} for other URL patterns)."""
        if self._template is None:
            return {}
        compiled, names = self._template
        found = _fullmatch(compiled, request.path)
        return dict(zip(names, (unquote(g) for g in found.groups()))) if found is not None else {}

    @staticmethod
    def _multi(spec: dict, key: str, where: str) -> dict[str, Callable[[list[str]], bool]]:
        table = spec.get(key, {})
        if not isinstance(table, dict):
            raise MappingError(f"{where}.{key}: an object of name to matcher")
        return {name: multi_matcher(m, f"{where}.{key}.{name}", absent_is_none=key == "cookies") for name, m in table.items()}

    def differences(self, request: Incoming, stop_early: bool = False) -> tuple[list[str], float]:
        """What differs (for people), and a distance from 0 (a match) to 1. A regex that timed out is a difference."""
        found: list[str] = []
        weights = 0.0
        total = 0.0

        def part(weight: float, ok: bool, text: str, distance: float | None = None) -> bool:
            nonlocal weights, total
            weights += weight
            if not ok:
                total += weight * (1.0 if distance is None else max(distance, 0.05))  # a difference is never distance 0
                found.append(text)
            return ok

        def safe(check: Callable[[], bool]) -> tuple[bool, str]:
            try:
                return check(), ""
            except RegexTimeout as exc:
                return False, f" (regex {exc} ran past {int(REGEX_TIMEOUT_S * 1000)} ms)"

        if not part(1.0, self.method in ("ANY", request.method), f"method: expected {self.method}, got {request.method}") and stop_early:
            return found, 1.0
        if self.url_kind is not None:
            ok, why = safe(lambda: self._url_check(request))
            actual = request.path if self.url_kind in ("urlPath", "urlPathPattern", "urlPathTemplate") else request.url
            similarity = 1.0 if ok or stop_early else difflib.SequenceMatcher(None, str(self.url_value)[:200], actual[:200]).quick_ratio()
            if not part(2.0, ok, f"{self.url_kind}: expected {self.url_value}, got {actual}{why}", 1.0 - similarity) and stop_early:
                return found, 1.0
        for label, table, values in (("header", self.headers, request.headers), ("query parameter", self.query, request.query_params),
                                     ("cookie", self.cookies, request.cookies)):
            for name, check in table.items():
                key = name.lower() if label == "header" else name
                ok, why = safe(lambda: check(values.get(key, [])))
                shown = values.get(key)
                if not part(1.0, ok, f"{label} {name}: expected {_shown(self.spec, label, name)}, got "
                                     f"{', '.join(shown)[:200] if shown else 'none'}{why}") and stop_early:
                    return found, 1.0
        if self.form:
            form: dict[str, list[str]] = {}
            for key, value in parse_qsl(request.text, keep_blank_values=True):
                form.setdefault(key, []).append(value)
            for name, check in self.form.items():
                ok, why = safe(lambda: check(form.get(name, [])))
                if not part(1.0, ok, f"form parameter {name}: no match{why}") and stop_early:
                    return found, 1.0
        if self.basic is not None:
            if not part(1.0, self.basic in request.headers.get("authorization", []), "basic auth: other credentials") and stop_early:
                return found, 1.0
        text = request.text if self.bodies else ""
        for matcher in self.bodies:
            ok, why = safe(lambda: matcher.check(text))
            if not part(1.0, ok, f"body: expected {matcher.expected}, got {text[:200]!r}{why}") and stop_early:
                return found, 1.0
        return found, (total / weights if weights else 0.0)

    def matches(self, request: Incoming) -> bool:
        """differences() without the words: every request tries the mappings in turn, so this is the hot path (a
        regex that times out does not match)."""
        if self.method != "ANY" and self.method != request.method:
            return False
        try:
            if self.url_kind is not None and not self._url_check(request):
                return False
            if self.headers:
                headers = request.headers
                for name, check in self.headers.items():
                    if not check(headers.get(name.lower(), ())):
                        return False
            if self.query:
                params = request.query_params
                for name, check in self.query.items():
                    if not check(params.get(name, ())):
                        return False
            if self.cookies:
                cookies = request.cookies
                for name, check in self.cookies.items():
                    if not check(cookies.get(name, ())):
                        return False
            if self.form or self.basic is not None:
                return not self.differences(request, stop_early=True)[0]
            if self.bodies:
                text = request.text
                for matcher in self.bodies:
                    if not matcher.check(text):
                        return False
        except RegexTimeout:
            return False
        return True


def _shown(spec: dict, label: str, name: str) -> str:
    key = {"header": "headers", "query parameter": "queryParameters", "cookie": "cookies"}[label]
    value = spec.get(key, {}).get(name)
    return json.dumps(value)[:200]
