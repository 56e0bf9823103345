"""Path ids and query parameters checked before they reach SQL: a malformed one is a 404 or 400, not a 500."""

from __future__ import annotations

from collections.abc import Collection

# The id columns are PostgreSQL integers; a larger id names no row (and would make the query fail).
MAX_ID = 2**31 - 1
# Fifty rows a page: nobody reads past five million rows, and OFFSET stays far inside bigint.
MAX_PAGE = 100_000
# Longer than any queue, actor, status or account number Remit writes.
MAX_FILTER_CHARS = 200


class BadParameter(Exception):
    """A query parameter the dashboard cannot use; the message names it and never echoes its value."""


def path_id(raw: str) -> int | None:
    """The id a path names, or None when no row can have it."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(MAX_ID)):
        return None
    return int(raw) if 1 <= int(raw) <= MAX_ID else None


def page_number(query: dict[str, str]) -> int:
    raw = query.get("page", "").strip()
    if not raw:
        return 1
    if (
        not (raw.isascii() and raw.isdigit())
        or len(raw) > len(str(MAX_PAGE))
        or not 1 <= int(raw) <= MAX_PAGE
    ):
        raise BadParameter(f"page must be a whole number from 1 to {MAX_PAGE}.")
    return int(raw)


def text_filter(query: dict[str, str], name: str) -> str:
    value = query.get(name, "")
    if len(value) > MAX_FILTER_CHARS:
        raise BadParameter(f"{name} is longer than {MAX_FILTER_CHARS} characters.")
    if not value.isprintable():  # before strip(), which would quietly drop a trailing CR or LF
        raise BadParameter(f"{name} holds a control character.")
    return value.strip()


def choice_filter(query: dict[str, str], name: str, allowed: Collection[str]) -> str:
    value = text_filter(query, name)
    if value and value not in allowed:
        raise BadParameter(f"{name} must be one of: {', '.join(a for a in allowed if a)}.")
    return value


def safe_next(target: str) -> str:
    """Where a sign-in returns: a path on this dashboard, never another site or the sign-in page itself."""
    ok = target.startswith("/") and not target.startswith(("//", "/\\", "/login")) and target.isprintable()
    return target if ok and len(target) <= 2000 else "/"


def id_list(values: list[str], name: str) -> list[int]:
    """Row ids a form's checkboxes sent; a malformed one is a 400."""
    ids = [path_id(v) for v in values]
    if None in ids:
        raise BadParameter(f"{name} holds something that is not a row id.")
    return [i for i in ids if i is not None]
