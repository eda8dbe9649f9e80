"""What crosses between an attached panel and the mocks (`mockpanel attach`): the panel's reads and commands by name,
their arguments and results, and the bus items of the event stream, as JSON.

JSON plus a few tagged forms — {"$t": [...]} a tuple, {"$b": "base64"} bytes, {"$d": [[k, v], ...]} a dict whose
keys are not all strings, {"$p": "path"} a path, {"$o": "Name", "v": ...} one of the registered record types (named
tuples, dataclasses, pydantic models the panel reads). Decoding builds only those types, and only where the caller
allows them (the mocks decode a panel's arguments as plain data), so a message can name nothing else to construct."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import PurePath
from typing import Any

MAX_DEPTH = 64


class WireError(ValueError):
    """A message that is not what the other side sends: a tag, a type or a shape it does not know."""


_TYPES: dict[str, type] = {}


def record(cls: type) -> type:
    """Register a record type (named tuple, dataclass or pydantic model) the panel may receive; its class name is
    its name on the wire (decorator)."""
    if _TYPES.get(cls.__name__, cls) is not cls:
        raise ValueError(f"two record types named {cls.__name__}")
    _TYPES[cls.__name__] = cls
    return cls


def encode(value: Any, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise WireError("nested too deep")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    down = depth + 1
    name = type(value).__name__
    if _TYPES.get(name) is type(value):
        if hasattr(value, "_fields"):  # a named tuple
            return {"$o": name, "v": [encode(v, down) for v in value]}
        if dataclasses.is_dataclass(value):
            return {"$o": name, "v": {f.name: encode(getattr(value, f.name), down) for f in dataclasses.fields(value)}}
        return {"$o": name, "v": encode(value.model_dump(), down)}  # a pydantic model
    if isinstance(value, list):
        return [encode(v, down) for v in value]
    if isinstance(value, tuple):
        if hasattr(value, "_fields"):  # a named tuple nobody registered: its reader would get a bare tuple
            raise WireError(f"cannot send a {name} (not a registered record type)")
        return {"$t": [encode(v, down) for v in value]}
    if isinstance(value, (set, frozenset)):
        return {"$t": [encode(v, down) for v in sorted(value, key=repr)]}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$b": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: encode(v, down) for k, v in value.items()}
        return {"$d": [[encode(k, down), encode(v, down)] for k, v in value.items()]}
    if isinstance(value, PurePath):
        return {"$p": str(value)}
    raise WireError(f"cannot send a {name}")


def decode(value: Any, records: bool = True, depth: int = 0) -> Any:
    """The value `encode` was given; `records=False` refuses every record type (plain data only)."""
    if depth > MAX_DEPTH:
        raise WireError("nested too deep")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    down = depth + 1
    if isinstance(value, list):
        return [decode(v, records, down) for v in value]
    if not isinstance(value, dict):
        raise WireError(f"unexpected {type(value).__name__}")
    tag = next(iter(value), None) if value else None
    if tag is None or not tag.startswith("$"):
        return {k: decode(v, records, down) for k, v in value.items()}
    body = value[tag]
    if tag == "$t" and isinstance(body, list):
        return tuple(decode(v, records, down) for v in body)
    if tag == "$b" and isinstance(body, str):
        try:
            return base64.b64decode(body, validate=True)
        except ValueError:
            raise WireError("bytes that are not base64") from None
    if tag == "$d" and isinstance(body, list) and all(isinstance(p, list) and len(p) == 2 for p in body):
        return {_hashable(decode(k, records, down)): decode(v, records, down) for k, v in body}
    if tag == "$p" and isinstance(body, str):
        from pathlib import Path

        return Path(body)
    if tag == "$o" and isinstance(body, str) and records:
        cls = _TYPES.get(body)
        if cls is None:
            raise WireError(f"unknown record type {body[:40]!r}")
        fields = decode(value.get("v"), records, down)
        try:
            if hasattr(cls, "_fields"):
                return cls(*fields)
            if dataclasses.is_dataclass(cls):
                return cls(**fields)
            return cls.model_validate(fields)
        except (TypeError, ValueError) as exc:
            raise WireError(f"a {body} that does not fit it: {exc}") from None
    raise WireError(f"unknown tag {tag[:20]!r}")


def _hashable(key: Any) -> Any:
    try:
        hash(key)
    except TypeError:
        raise WireError("a dict key that cannot be one") from None
    return key


def dumps(value: Any) -> str:
    return json.dumps(encode(value), separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes, records: bool = True) -> Any:
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        raise WireError("not JSON") from None
    return decode(raw, records)
