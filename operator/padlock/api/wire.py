"""The codec between the models' Python form and the camelCase wire form of the API server.

Called through `Model.from_dict` / `Model.to_dict` by the controllers (decode a spec, encode a
status patch) and by the tests. Decoding checks types and enums and raises `WireError` with
the JSON path of the offending key (`spec.privateKey.size: expected an integer, got 'big'`),
so a handler can report a precise, permanent error. Unknown keys are refused: the API server
prunes them, so one seen here is a bug in the caller.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from padlock.api import fields


class WireError(ValueError):
    """A wire document does not fit the model; the message starts with the JSON path."""


class Model:
    """Base of every CRD model: a frozen, keyword-only dataclass with a wire codec.

    Subclasses may set `RULES` (CEL rules on the object, emitted by the CRD generator) and
    override `check()` to enforce the same invariants in Python.
    """

    RULES: ClassVar[tuple[fields.Rule, ...]] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: str = "") -> Self:
        """Decode a wire mapping; WireError names the path of the first bad key."""
        decoded = decode(cls, data, path or cls.__name__)
        assert isinstance(decoded, cls)
        return decoded

    def to_dict(self) -> dict[str, Any]:
        """Encode to the wire form, leaving out keys that are absent (None or empty list)."""
        encoded = encode(self)
        assert isinstance(encoded, dict)
        return encoded

    def check(self) -> None:
        """Raise ValueError when an invariant the CRD's CEL rules enforce is broken."""

    def __post_init__(self) -> None:
        self.check()


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def unwrap_optional(tp: Any) -> Any:
    """`X | None` → X; anything else unchanged."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"unsupported union type {tp!r}")
        return args[0]
    return tp


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def format_time(value: datetime.datetime) -> str:
    """RFC 3339 in UTC with second precision, as Kubernetes `metav1.Time` serialises."""
    if value.tzinfo is None:
        raise ValueError(f"timestamp {value.isoformat()} has no time zone")
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime.datetime:
    """Parse an RFC 3339 timestamp (`2026-01-02T03:04:05Z`); the result is timezone-aware."""
    try:
        value = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an RFC 3339 timestamp") from None
    if value.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone (append 'Z' for UTC)")
    return value


def decode(tp: Any, value: Any, path: str) -> Any:
    """Decode `value` into type `tp`; WireError(path: reason) on mismatch."""
    tp = unwrap_optional(tp)
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _decode_model(tp, value, path)
    if origin is tuple:
        (item_tp, _ellipsis) = typing.get_args(tp)
        if not isinstance(value, list | tuple):
            raise WireError(f"{path}: expected a list, got {_describe(value)}")
        return tuple(decode(item_tp, item, f"{path}[{i}]") for i, item in enumerate(value))
    if origin is dict:
        _key_tp, item_tp = typing.get_args(tp)
        if not isinstance(value, Mapping):
            raise WireError(f"{path}: expected an object, got {_describe(value)}")
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise WireError(f"{path}: key {k!r} is not a string")
            out[k] = decode(item_tp, v, f"{path}.{k}")
        return out
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in tp)
            raise WireError(f"{path}: {value!r} is not one of {allowed}") from None
    if tp is bool:
        if not isinstance(value, bool):
            raise WireError(f"{path}: expected true or false, got {_describe(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise WireError(f"{path}: expected an integer, got {_describe(value)}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise WireError(f"{path}: expected a string, got {_describe(value)}")
        return value
    if tp is datetime.datetime:
        if isinstance(value, datetime.datetime):
            if value.tzinfo is None:
                raise WireError(f"{path}: timestamp {value.isoformat()} has no time zone")
            return value
        if not isinstance(value, str):
            raise WireError(f"{path}: expected an RFC 3339 timestamp, got {_describe(value)}")
        try:
            return parse_time(value)
        except ValueError as exc:
            raise WireError(f"{path}: {exc}") from None
    raise TypeError(f"{path}: unsupported model type {tp!r}")


def _decode_model(cls: type, value: Any, path: str) -> Any:
    if not isinstance(value, Mapping):
        raise WireError(f"{path}: expected an object, got {_describe(value)}")
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    known: set[str] = set()
    for field in dataclasses.fields(cls):
        key = fields.wire_name(field)
        known.add(key)
        if key not in value or value[key] is None:
            if fields.is_required(field):
                raise WireError(f"{path}.{key}: required field is missing")
            continue
        decoded = decode(hints[field.name], value[key], f"{path}.{key}")
        check_constraints(fields.meta_of(field), decoded, f"{path}.{key}")
        kwargs[field.name] = decoded
    unknown = sorted(set(value) - known)
    if unknown:
        raise WireError(f"{path}: unknown field {unknown[0]!r} (known: {', '.join(sorted(known))})")
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise WireError(f"{path}: {exc}") from None


def check_constraints(meta: fields.Meta, value: Any, path: str) -> None:
    """Enforce the schema constraints a field declares (pattern, length, bounds, items, enum
    subset), so a decoded model holds only what the API server would have accepted.
    `format` (email, uri, date-time) is left to the API server."""
    if isinstance(value, enum.Enum) and meta.choices is not None:
        if value.value not in meta.choices:
            allowed = ", ".join(repr(c) for c in meta.choices)
            raise WireError(f"{path}: {value.value!r} is not one of {allowed}")
    elif isinstance(value, str):
        _check_string(value, meta.pattern, meta.max_length, path)
    elif isinstance(value, int) and not isinstance(value, bool):
        if meta.minimum is not None and value < meta.minimum:
            raise WireError(f"{path}: {value} is less than the minimum of {meta.minimum}")
        if meta.maximum is not None and value > meta.maximum:
            raise WireError(f"{path}: {value} is greater than the maximum of {meta.maximum}")
    elif isinstance(value, tuple):
        if meta.min_items is not None and len(value) < meta.min_items:
            raise WireError(f"{path}: needs at least {meta.min_items} items, has {len(value)}")
        if meta.max_items is not None and len(value) > meta.max_items:
            raise WireError(f"{path}: allows at most {meta.max_items} items, has {len(value)}")
        if meta.list_set and len(set(value)) != len(value):
            raise WireError(f"{path}: items must be unique")
        for i, item in enumerate(value):
            if isinstance(item, str):
                _check_string(item, meta.item_pattern, meta.item_max_length, f"{path}[{i}]")


def _check_string(value: str, pattern: str | None, max_length: int | None, path: str) -> None:
    if max_length is not None and len(value) > max_length:
        raise WireError(f"{path}: longer than {max_length} characters")
    if pattern is not None and re.search(pattern, value) is None:
        raise WireError(f"{path}: {value!r} does not match {pattern}")


def encode(value: Any) -> Any:
    """Encode a model (or a value inside one) to plain JSON-compatible Python."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            if item is None or item == ():
                continue
            out[fields.wire_name(field)] = encode(item)
        return out
    if isinstance(value, tuple | list):
        return [encode(item) for item in value]
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime.datetime):
        return format_time(value)
    return value
