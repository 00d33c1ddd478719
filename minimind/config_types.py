"""Config values from text and YAML: conversion to a dataclass field's type, type checks, and
did-you-mean suggestions for unknown names. Stdlib only."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from minimind.errors import ConfigError

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NULL = {"null", "none", "~", ""}


def field_type(cls: type, name: str) -> Any:
    return typing.get_type_hints(cls)[name]


def unwrap_optional(typ: Any) -> tuple[Any, bool]:
    args = typing.get_args(typ)
    if typing.get_origin(typ) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return typ, False


def _int_or_word(typ: Any) -> bool:
    """``int | str``: a number or a keyword (``batch_size: auto``); the section validates the word."""
    return typing.get_origin(typ) in (typing.Union, types.UnionType) and set(typing.get_args(typ)) == {int, str}


def type_name(typ: Any) -> str:
    if _int_or_word(typ):
        return "int or str"
    base, optional = unwrap_optional(typ)
    return base.__name__ + (" or null" if optional else "")


def with_article(name: str) -> str:
    """"an int", "a float", "a str or null"."""
    return f"{'an' if name[:1] in ('a', 'e', 'i', 'o', 'u') else 'a'} {name}"


def convert_string(key: str, raw: str, typ: Any) -> Any:
    """Convert a command-line string to ``typ`` (bool/int/float/str, optionally null)."""
    if _int_or_word(typ):
        try:
            return convert_string(key, raw, int)
        except ConfigError:
            return raw.strip()
    base, optional = unwrap_optional(typ)
    low = raw.strip().lower()
    if optional and low in _NULL:
        return None
    try:
        if base is bool:
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError
        if base is int:
            value = float(raw) if any(c in raw for c in ".eE") else int(raw)
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError
                value = int(value)
            return value
        if base is float:
            return float(raw)
        return raw
    except ValueError:
        raise ConfigError(f"{key}={raw!r} is not a valid {type_name(typ)}") from None


def check_type(key: str, value: Any, typ: Any, source: str) -> Any:
    if _int_or_word(typ) and isinstance(value, str):
        return value
    if _int_or_word(typ):
        typ = int
    base, optional = unwrap_optional(typ)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{source}: {key} must be {with_article(type_name(typ))}, got null")
    if base is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if base is float and isinstance(value, str):
        # YAML reads 5e-4 (no dot) as a string; accept numeric strings for floats.
        try:
            return float(value)
        except ValueError:
            pass
    if base is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, base) and not (base is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{source}: {key} must be {with_article(type_name(typ))}, got {value!r}")


def suggest(word: str, choices: Any, prefix: str = "") -> str:
    match = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {prefix}{match[0]}?)" if match else ""
