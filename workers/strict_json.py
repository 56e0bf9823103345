"""JSON the workers can always read back: bounded nesting, finite numbers within what Stripe sends.

Python's parser accepts NaN and Infinity, turns 1e5000 into inf and recurses once per nesting level
(5,000 levels raise RecursionError, not ValueError). A signed body like that was stored and then
dead-lettered, or answered with an empty 500. `loads` refuses all of them with JsonRefused.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# Stripe's events nest about ten levels deep (event, data, object, a list, its items, their details).
MAX_DEPTH = 64
# The largest integer JSON carries exactly; Stripe's amounts and timestamps are far below it.
MAX_MAGNITUDE = 2**53
# 2**53 has 16 digits: a longer number is refused before int() or float() spends time on it.
_MAX_DIGITS = 24

_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class JsonRefused(ValueError):
    """The body is JSON Remit will not store; the message says why."""


def nesting_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in the JSON text (strings skipped), in linear time."""
    brackets = _STRINGS.sub(b"", raw).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def loads(raw: bytes) -> Any:
    """Parse UTF-8 JSON, refusing deep nesting, NaN/Infinity, overflowing and absurdly large numbers."""
    if nesting_depth(raw) > MAX_DEPTH:
        raise JsonRefused(f"nested deeper than {MAX_DEPTH} levels")
    return json.loads(raw.decode("utf-8"), parse_constant=_constant, parse_float=_float, parse_int=_int)


def _constant(name: str) -> Any:
    raise JsonRefused(f"{name} is not a number Remit accepts")


def _float(text: str) -> float:
    value = float(text) if len(text) <= _MAX_DIGITS + 8 else math.inf
    if not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
        raise JsonRefused(f"number {text[:_MAX_DIGITS]} is out of range")
    return value


def _int(text: str) -> int:
    value = int(text) if len(text) <= _MAX_DIGITS else MAX_MAGNITUDE + 1
    if abs(value) > MAX_MAGNITUDE:
        raise JsonRefused(f"integer {text[:_MAX_DIGITS]} is out of range")
    return value
