"""An OpenAPI document's schemas, two ways: as compiled JSON Schema validators (jsonschema-rs, Rust: a schema is
compiled once, a value checked in microseconds, a `pattern` run by a regex engine with no catastrophic backtracking),
and as values made from them that those validators accept (a response no example was written for).

OpenAPI 3.0's schema dialect is JSON Schema draft 4 with a few words of its own; they are turned into draft 4 here
(`nullable` becomes a type list, a readOnly property is not required in a request, a writeOnly one not in a
response). OpenAPI 3.1's dialect is JSON Schema 2020-12 and is taken as it is."""

from __future__ import annotations

import base64
import math
import random
import re
import string
try:  # the parser re itself uses (Python 3.11 moved it; the old names warn there)
    from re import _constants as sre_constants, _parser as sre_parse
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]
from typing import Any, Iterator

import jsonschema_rs

MAX_DEPTH = 8  # nesting of a made value: a recursive schema's optional parts stop here
HARD_DEPTH = 32  # past this even required parts stop (a schema that requires itself)
MAX_NODES = 5000  # values one answer is made of: past it only what the schema requires is made
MAX_ERRORS = 20


def convert(node: Any, direction: str, v30: bool) -> Any:
    """A schema (and everything under it) as plain JSON Schema for one direction, "request" or "response"."""
    if isinstance(node, list):
        return [convert(v, direction, v30) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: convert(v, direction, v30) for k, v in node.items()}
    if "$ref" in out:
        return out  # siblings of $ref: ignored by draft 4, read by 2020-12, as each dialect says
    hidden = "readOnly" if direction == "request" else "writeOnly"
    properties = out.get("properties")
    if isinstance(properties, dict) and isinstance(out.get("required"), list):
        out["required"] = [name for name in out["required"]
                           if not (isinstance(properties.get(name), dict) and properties[name].get(hidden) is True)]
        if not out["required"]:
            del out["required"]
    if out.pop("nullable", False) is True:
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        elif isinstance(kind, list) and "null" not in kind:
            out["type"] = [*kind, "null"]
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out  # OpenAPI's own formats (int32, int64, binary…) are unknown to the validators: not checked


def _has_ref(node: Any) -> bool:
    if isinstance(node, dict):
        return "$ref" in node or any(_has_ref(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_ref(v) for v in node)
    return False


class Checker:
    """One schema, compiled: `errors(value)` is [] for a valid value, else what is wrong and where."""

    __slots__ = ("validator",)

    def __init__(self, schema: Any, document: dict[str, Any] | None, v30: bool) -> None:
        root = schema if isinstance(schema, dict) else {}
        if document and _has_ref(root):  # "#/components/schemas/X" (or "#/paths/…") resolves inside the root
            root = {**{k: v for k, v in document.items() if k in ("components", "paths", "webhooks")}, **root}
        kind = jsonschema_rs.Draft4Validator if v30 else jsonschema_rs.Draft202012Validator
        try:
            self.validator = kind(root, validate_formats=True)
        except (ValueError, jsonschema_rs.ValidationError):  # a schema that cannot be compiled refuses nothing
            self.validator = None

    def valid(self, value: Any) -> bool:
        return self.validator is None or self.validator.is_valid(value)

    def errors(self, value: Any, where: str = "") -> list[str]:
        if self.validator is None or self.validator.is_valid(value):
            return []
        found = []
        for error in self.validator.iter_errors(value):
            place = "/".join(str(p) for p in error.instance_path)
            place = f"{where}/{place}" if where and place else where or place
            message = error.message
            if len(message) > 300:
                message = message[:140] + " … " + message[-140:]  # a large value is never echoed back whole
            found.append(f"{place}: {message}" if place else message)
            if len(found) >= MAX_ERRORS:
                break
        return found


class Sampler:
    """Values made from schemas, the same for the same seed; `resolve` follows a document's local $ref."""

    def __init__(self, resolve: Any, direction: str = "response", checker: Any = None) -> None:
        self.resolve = resolve
        self.checker = checker  # schema -> Checker: a oneOf's value is checked to match one branch only
        self.hidden = "writeOnly" if direction == "response" else "readOnly"
        self.nodes = 0

    def value(self, schema: Any, rng: random.Random, use_examples: bool = True, depth: int = 0) -> Any:
        if depth == 0:
            self.nodes = 0
        self.nodes += 1
        schema = self.merged(schema)
        if not isinstance(schema, dict) or depth > HARD_DEPTH:
            return None
        if use_examples:
            for key in ("example", "default"):
                if key in schema:
                    return schema[key]
            if isinstance(schema.get("examples"), list) and schema["examples"]:
                return schema["examples"][0]
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return next((v for v in schema["enum"] if v is not None), schema["enum"][0])
        for key in ("oneOf", "anyOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                base = {k: v for k, v in schema.items() if k not in (key, "discriminator")}
                first = None
                for index, branch in enumerate(schema[key][:8]):
                    candidate = self.value({"allOf": [base, branch]} if base else branch, rng, use_examples, depth + 1)
                    if key == "anyOf" or self.checker is None or self.checker(schema).valid(candidate):
                        return candidate
                    first = candidate if index == 0 else first
                return first
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = ("object" if "properties" in schema or "additionalProperties" in schema else "array" if "items" in schema
                    else "integer" if "minimum" in schema or "maximum" in schema or "multipleOf" in schema else "string")
        if kind == "object":
            return self._object(schema, rng, use_examples, depth)
        if kind == "array":
            return self._array(schema, rng, use_examples, depth)
        if kind == "integer":
            return _integer(schema, rng)
        if kind == "number":
            return _number(schema, rng)
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "null":
            return None
        return _string(schema, rng)

    def merged(self, schema: Any, depth: int = 0) -> Any:
        """The schema with its $ref followed and its allOf folded in (properties and required joined, the tighter
        bound of each limit kept)."""
        schema = self.resolve(schema)
        if not isinstance(schema, dict) or not isinstance(schema.get("allOf"), list) or depth > 16:
            return schema
        out: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = self.merged(part, depth + 1)
            if not isinstance(part, dict):
                continue
            for key, value in part.items():
                if key == "properties" and isinstance(value, dict):
                    out["properties"] = {**value, **(out.get("properties") or {})}
                elif key == "required" and isinstance(value, list):
                    out["required"] = list(dict.fromkeys([*(out.get("required") or []), *value]))
                elif key in ("minimum", "minLength", "minItems", "minProperties") and key in out:
                    out[key] = max(out[key], value)
                elif key in ("maximum", "maxLength", "maxItems", "maxProperties") and key in out:
                    out[key] = min(out[key], value)
                else:
                    out.setdefault(key, value)
        return out

    def _object(self, schema: dict, rng: random.Random, use_examples: bool, depth: int) -> dict[str, Any]:
        properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        required = [r for r in schema.get("required") or [] if isinstance(r, str)]
        out: dict[str, Any] = {}
        for name, prop in properties.items():
            resolved = self.resolve(prop)
            if isinstance(resolved, dict) and resolved.get(self.hidden) is True and name not in required:
                continue
            if name not in required and (depth >= MAX_DEPTH or self.nodes > MAX_NODES):
                continue
            out[name] = self.value(prop, rng, use_examples, depth + 1)
        for name in required:
            if name not in out:  # required but not described: a value of what additionalProperties allows
                extra = schema.get("additionalProperties")
                out[name] = self.value(extra if isinstance(extra, dict) else {"type": "string"}, rng, use_examples, depth + 1)
        most = schema.get("maxProperties")
        if isinstance(most, int) and len(out) > most:
            keep = [n for n in out if n in required] + [n for n in out if n not in required]
            out = {n: out[n] for n in keep[:max(most, len(required))]}
        least = schema.get("minProperties")
        extra = schema.get("additionalProperties", True)
        index = 1
        while isinstance(least, int) and len(out) < least and extra is not False and index < 100:
            name = f"additionalProp{index}"
            if name not in out:
                out[name] = self.value(extra if isinstance(extra, dict) else {"type": "string"}, rng, use_examples, depth + 1)
            index += 1
        return out

    def _array(self, schema: dict, rng: random.Random, use_examples: bool, depth: int) -> list[Any]:
        least = schema.get("minItems") if isinstance(schema.get("minItems"), int) else 0
        most = schema.get("maxItems") if isinstance(schema.get("maxItems"), int) else None
        count = max(least, 1 if depth < MAX_DEPTH and self.nodes <= MAX_NODES else 0)
        if most is not None:
            count = min(count, most)
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        prefix = schema.get("prefixItems") if isinstance(schema.get("prefixItems"), list) else []
        out: list[Any] = [self.value(p, rng, use_examples, depth + 1) for p in prefix[:count] if True]
        unique = schema.get("uniqueItems") is True
        enum = (self.merged(items) or {}).get("enum") if unique else None
        tries = 0
        while len(out) < count and tries < count * 20 + 20:
            tries += 1
            if isinstance(enum, list) and len(out) < len(enum):
                candidate = enum[len(out)]
            else:
                candidate = self.value(items, rng, use_examples and not unique, depth + 1)
            if unique and candidate in out:
                continue
            out.append(candidate)
        return out


def _integer(schema: dict, rng: random.Random) -> int:
    low, high = _bounds(schema, integer=True)
    step = schema.get("multipleOf")
    if isinstance(step, (int, float)) and step > 0:
        first = math.ceil(low / step)
        last = math.floor(high / step)
        if last >= first:
            return int(rng.randint(first, last) * step) if float(step).is_integer() else int(first * step)
    return rng.randint(low, high) if high >= low else low


def _number(schema: dict, rng: random.Random) -> float | int:
    step = schema.get("multipleOf")
    if isinstance(step, (int, float)) and step > 0:
        low, high = _bounds(schema, integer=False)
        first = math.ceil(low / step)
        return first * step if float(step).is_integer() else round(first * step, 10)
    low, high = _bounds(schema, integer=False)
    value = round(rng.uniform(low, high), 2)
    return min(max(value, low), high)


def _bounds(schema: dict, integer: bool) -> tuple[Any, Any]:
    low, high = schema.get("minimum"), schema.get("maximum")
    unit = 1 if integer else 0.01
    # 3.0 writes exclusiveMinimum: true beside minimum; 3.1 writes the bound itself in exclusiveMinimum
    if isinstance(schema.get("exclusiveMinimum"), bool):
        low = low + unit if schema["exclusiveMinimum"] and isinstance(low, (int, float)) else low
    elif isinstance(schema.get("exclusiveMinimum"), (int, float)):
        low = schema["exclusiveMinimum"] + unit
    if isinstance(schema.get("exclusiveMaximum"), bool):
        high = high - unit if schema["exclusiveMaximum"] and isinstance(high, (int, float)) else high
    elif isinstance(schema.get("exclusiveMaximum"), (int, float)):
        high = schema["exclusiveMaximum"] - unit
    if not isinstance(low, (int, float)) or isinstance(low, bool):
        low = None
    if not isinstance(high, (int, float)) or isinstance(high, bool):
        high = None
    if low is None and high is None:
        low, high = 1, 1000
    elif low is None:
        low = min(1, high) if high >= 1 else high - 1000
    elif high is None:
        high = max(low, 0) + 1000
    if integer:
        low, high = math.ceil(low), math.floor(high)
    return low, high


_FORMATS = {
    "date-time": lambda r: f"2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:00Z",
    "date": lambda r: f"2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
    "time": lambda r: f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:00Z",
    "uuid": lambda r: "%08x-%04x-4%03x-8%03x-%012x" % (r.getrandbits(32), r.getrandbits(16), r.getrandbits(12), r.getrandbits(12), r.getrandbits(48)),
    "email": lambda r: f"user{r.randint(1, 999)}@example.com",
    "idn-email": lambda r: f"user{r.randint(1, 999)}@example.com",
    "uri": lambda r: f"https://example.com/{r.randint(1, 999)}",
    "url": lambda r: f"https://example.com/{r.randint(1, 999)}",
    "iri": lambda r: f"https://example.com/{r.randint(1, 999)}",
    "uri-reference": lambda r: f"/items/{r.randint(1, 999)}",
    "iri-reference": lambda r: f"/items/{r.randint(1, 999)}",
    "uri-template": lambda r: "https://example.com/{id}",
    "hostname": lambda r: f"host{r.randint(1, 99)}.example.com",
    "idn-hostname": lambda r: f"host{r.randint(1, 99)}.example.com",
    "ipv4": lambda r: f"192.0.2.{r.randint(1, 254)}",
    "ipv6": lambda r: f"2001:db8::{r.randint(1, 65535):x}",
    "byte": lambda r: base64.b64encode(bytes(r.getrandbits(8) for _ in range(6))).decode(),
    "duration": lambda r: f"P{r.randint(1, 30)}D",
    "json-pointer": lambda r: "/items/0",
    "regex": lambda r: "^[a-z]+$",
}


def _string(schema: dict, rng: random.Random) -> str:
    least = schema.get("minLength") if isinstance(schema.get("minLength"), int) else 0
    most = schema.get("maxLength") if isinstance(schema.get("maxLength"), int) else None
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        made = from_pattern(pattern, rng)
        if made is not None and len(made) >= least and (most is None or len(made) <= most):
            return made
    made_format = _FORMATS.get(str(schema.get("format")))
    if made_format is not None:
        text = made_format(rng)
        if len(text) >= least and (most is None or len(text) <= most):
            return text
    length = max(least, min(most if most is not None else 8, 8))
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(length))


# --- a string a regex matches (the parts of regexes documents use: classes, repeats, groups, alternatives) ---

MAX_REPEAT = 8  # how many times an open-ended repeat (*, +, {2,}) repeats


def from_pattern(pattern: str, rng: random.Random) -> str | None:
    """A string matching `pattern` (searched, as JSON Schema does: unanchored), or None for a pattern beyond this
    (lookarounds, back references)."""
    try:
        parsed = sre_parse.parse(pattern)
        text = "".join(_walk(parsed, rng, {}))
    except (_Unsupported, re.error, RecursionError, OverflowError, ValueError):
        return None
    try:
        return text if re.search(pattern, text) else None
    except re.error:
        return None


class _Unsupported(Exception):
    pass


_CATEGORIES = {
    sre_constants.CATEGORY_DIGIT: string.digits, sre_constants.CATEGORY_WORD: string.ascii_letters + string.digits + "_",
    sre_constants.CATEGORY_SPACE: " ", sre_constants.CATEGORY_NOT_DIGIT: string.ascii_letters,
    sre_constants.CATEGORY_NOT_WORD: "-.", sre_constants.CATEGORY_NOT_SPACE: string.ascii_letters,
}


def _walk(parsed: Any, rng: random.Random, groups: dict[int, str]) -> Iterator[str]:
    for op, arg in parsed:
        if op is sre_constants.LITERAL:
            yield chr(arg)
        elif op is sre_constants.NOT_LITERAL:
            yield "a" if chr(arg) != "a" else "b"
        elif op is sre_constants.ANY:
            yield rng.choice(string.ascii_letters)
        elif op is sre_constants.IN:
            yield _one_of(arg, rng)
        elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            low, high, inner = arg
            high = low + MAX_REPEAT if high is sre_constants.MAXREPEAT else min(high, low + MAX_REPEAT)
            for _ in range(rng.randint(low, max(low, min(high, low + 2)))):
                yield from _walk(inner, rng, groups)
        elif op is sre_constants.SUBPATTERN:
            group, _, _, inner = arg
            text = "".join(_walk(inner, rng, groups))
            if group is not None:
                groups[group] = text
            yield text
        elif op is sre_constants.BRANCH:
            _, branches = arg
            yield from _walk(rng.choice(branches), rng, groups)
        elif op is sre_constants.AT:
            continue  # ^ $ \b: the text made is whole
        elif op is sre_constants.GROUPREF:
            yield groups.get(arg, "")
        else:
            raise _Unsupported(str(op))


def _one_of(items: list, rng: random.Random) -> str:
    if items and items[0][0] is sre_constants.NEGATE:
        excluded = set()
        for op, arg in items[1:]:
            if op is sre_constants.LITERAL:
                excluded.add(chr(arg))
            elif op is sre_constants.RANGE:
                excluded.update(chr(c) for c in range(arg[0], min(arg[1], 0x2FF) + 1))
            elif op is sre_constants.CATEGORY:
                excluded.update(_CATEGORIES.get(arg, ""))
        choices = [c for c in string.ascii_letters + string.digits + "-_." if c not in excluded]
        if not choices:
            raise _Unsupported("negated class")
        return rng.choice(choices)
    op, arg = rng.choice(items)
    if op is sre_constants.LITERAL:
        return chr(arg)
    if op is sre_constants.RANGE:
        return chr(rng.randint(arg[0], arg[1]))
    if op is sre_constants.CATEGORY:
        return rng.choice(_CATEGORIES.get(arg, "a"))
    raise _Unsupported(str(op))
