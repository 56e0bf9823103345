"""Payment history rules: which filters a request may carry, the sort orders, and the keyset cursor. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tasks.domain import paging
from tasks.domain.errors import RemitError
from tasks.domain.paging import MAX_CURSOR_LENGTH, spreadsheet_safe  # noqa: F401  (part of this module's rules)
from tasks.domain.requests import MAX_AMOUNT_MINOR, check_text, is_id, quoted
from tasks.domain.states import MethodKind, PaymentStatus

# A page the portal shows; more than this per request is a scrape, which the CSV export serves.
MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50
# Longer than any invoice number (64), note excerpt or reference a person would type into a search box.
MAX_SEARCH_LENGTH = 100


@dataclass(frozen=True)
class Sort:
    """An order of the history: the payments column it sorts on, then id, both in one direction."""

    column: str
    descending: bool


SORTS = {
    "newest": Sort("created_at", True),
    "oldest": Sort("created_at", False),
    "amount_desc": Sort("amount_minor", True),
    "amount_asc": Sort("amount_minor", False),
}


@dataclass(frozen=True)
class HistoryFilter:
    """What a history request selects; None is no condition. Created bounds are instants: [from, until)."""

    statuses: tuple[str, ...] | None = None
    method_kind: str | None = None
    created_from: datetime | None = None
    created_until: datetime | None = None
    amount_min: int | None = None
    amount_max: int | None = None
    search: str | None = None


@dataclass(frozen=True)
class SearchTerms:
    """What one search box text can match: a LIKE pattern for text, a payment id, a method's last 4."""

    pattern: str
    payment_id: int | None
    last4: str | None


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the sort it belongs to, the last row's sort key and its id."""

    sort: str
    key: int | datetime
    payment_id: int


def check_sort(sort: Any) -> Sort:
    if not isinstance(sort, str) or sort not in SORTS:
        raise RemitError("invalid_sort", f"The sort must be one of {sorted(SORTS)}, not {quoted(sort)}.")
    return SORTS[sort]


def check_limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise RemitError(
            "invalid_limit",
            f"The page size must be a whole number from 1 to {MAX_PAGE_SIZE}, not {quoted(limit)}.",
        )
    return limit


def check_filter(
    *,
    status: Any = None,
    method_kind: Any = None,
    date_from: Any = None,
    date_to: Any = None,
    amount_min: Any = None,
    amount_max: Any = None,
    search: Any = None,
    timezone: str,
) -> HistoryFilter:
    """The request's filters checked and made exact; dates are whole days at the seller (date_to included)."""
    low, high = _check_day(date_from, "date_from"), _check_day(date_to, "date_to")
    if low and high and low > high:
        raise RemitError("invalid_date_range", f"date_from {low} is after date_to {high}.")
    smallest, largest = _check_bound(amount_min, "amount_min"), _check_bound(amount_max, "amount_max")
    if smallest is not None and largest is not None and smallest > largest:
        raise RemitError("invalid_amount_range", f"amount_min {smallest} is above amount_max {largest}.")
    return HistoryFilter(
        statuses=_check_statuses(status),
        method_kind=_check_kind(method_kind),
        created_from=_start_of(low, timezone),
        created_until=_start_of(high + timedelta(days=1), timezone) if high else None,
        amount_min=smallest,
        amount_max=largest,
        search=_check_search(search),
    )


def encode_cursor(sort: str, key: int | datetime, payment_id: int) -> str:
    """An opaque, URL-safe token for the page after the row with this sort key and id."""
    return paging.encode_cursor(sort, key, payment_id)


def decode_cursor(token: Any, sort: str) -> Cursor:
    """The cursor a previous page of this sort returned, or invalid_cursor."""
    name, value, payment_id = paging.decode_cursor(token, sort, SORTS, "history")
    try:
        key = datetime.fromisoformat(value) if SORTS[name].column == "created_at" else value
    except (ValueError, TypeError):
        raise RemitError("invalid_cursor", "The page cursor is not one this history returned.") from None
    if not _is_key(key):
        raise RemitError("invalid_cursor", "The page cursor is not one this history returned.")
    return Cursor(name, key, payment_id)


def search_terms(search: str) -> SearchTerms:
    """A case-insensitive contains-pattern (LIKE wildcards in the text taken literally); digits, with or
    without a leading '#', are also a payment id; exactly four digits also a method's last 4."""
    number = search.removeprefix("#")
    payment_id = int(number) if number.isascii() and number.isdigit() and is_id(int(number)) else None
    last4 = search if len(search) == 4 and search.isascii() and search.isdigit() else None
    return SearchTerms(paging.contains_pattern(search), payment_id, last4)


def _is_key(key: Any) -> bool:
    if isinstance(key, datetime):
        return key.tzinfo is not None
    return isinstance(key, int) and not isinstance(key, bool) and 0 <= key <= MAX_AMOUNT_MINOR


def _check_statuses(status: Any) -> tuple[str, ...] | None:
    if status is None:
        return None
    values = [status] if isinstance(status, str) else status
    known = {s.value for s in PaymentStatus}
    if not isinstance(values, (list, tuple)) or not values or not all(v in known for v in values):
        raise RemitError("invalid_status", f"The status must be among {sorted(known)}, not {quoted(status)}.")
    return tuple(sorted(set(values)))


def _check_kind(kind: Any) -> str | None:
    known = {k.value for k in MethodKind}
    if kind is not None and kind not in known:
        raise RemitError(
            "invalid_method_kind", f"The method kind must be one of {sorted(known)}, not {quoted(kind)}."
        )
    return kind


def _check_day(value: Any, name: str) -> date | None:
    if value is not None and (isinstance(value, datetime) or not isinstance(value, date)):
        raise RemitError("invalid_date_range", f"{name} must be a date, not {quoted(value)}.")
    return value


def _check_bound(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_AMOUNT_MINOR:
        raise RemitError(
            "invalid_amount_range", f"{name} must be a whole number of cents from 0 to {MAX_AMOUNT_MINOR}."
        )
    return value


def _check_search(search: Any) -> str | None:
    if search is None or (isinstance(search, str) and not search.strip()):
        return None
    return check_text(search, "search", "invalid_search", MAX_SEARCH_LENGTH).strip()


def _start_of(day: date | None, timezone: str) -> datetime | None:
    return None if day is None else datetime.combine(day, time(), ZoneInfo(timezone))
