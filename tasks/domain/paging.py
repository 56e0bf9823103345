"""Keyset paging and search rules shared by the portal's lists (payment history, invoices). Pure."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection
from datetime import date
from typing import Any

from tasks.domain.errors import RemitError
from tasks.domain.requests import is_id

# A cursor we issued is well under this; anything longer is not ours and is refused before decoding.
MAX_CURSOR_LENGTH = 200
# Spreadsheets run a cell starting with one of these as a formula: a seller's invoice number must not.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def encode_cursor(sort: str, key: int | str | date, row_id: int) -> str:
    """An opaque, URL-safe token for the page after the row with this sort key and id (a date or
    datetime key travels as its ISO text)."""
    value = key.isoformat() if isinstance(key, date) else key
    raw = json.dumps([sort, value, row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: Any, sort: str, sorts: Collection[str], what: str) -> tuple[str, Any, int]:
    """(sort, raw key, row id) of a token encode_cursor made for this sort, or invalid_cursor naming what
    list it is not from; the caller checks and parses the key."""
    foreign = RemitError("invalid_cursor", f"The page cursor is not one this {what} returned.")
    if not isinstance(token, str) or not 0 < len(token) <= MAX_CURSOR_LENGTH:
        raise foreign
    try:
        name, value, row_id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise foreign from None
    if not isinstance(name, str) or name not in sorts:
        raise foreign
    if name != sort:
        raise RemitError("invalid_cursor", f"The page cursor belongs to sort {name!r}, not {sort!r}.")
    if not is_id(row_id):
        raise foreign
    return name, value, row_id


def contains_pattern(text: str) -> str:
    """A LIKE pattern matching text anywhere, its %, _ and backslash taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def spreadsheet_safe(value: str) -> str:
    """Text for a CSV cell that a spreadsheet shows as text, never runs as a formula."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value
