"""Invoice list rules: the filters a request may carry, the sort orders and the keyset cursor. Pure.

Status and overdue are derived (tasks/domain/invoices.py), so they are filtered on here, after the rows
are read; the stored columns (due date, layout, site, search) are selected in SQL, and every sort (the
amount owed computed there by the same rule) pages there too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from tasks.domain import paging
from tasks.domain.errors import RemitError
from tasks.domain.history import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MAX_SEARCH_LENGTH, check_limit  # noqa: F401
from tasks.domain.invoices import InvoiceStatus
from tasks.domain.requests import MAX_AMOUNT_MINOR, check_text, quoted

# Invoice numbers are at most 64 characters (invoices.number), site names 200 (invoices.site_name).
MAX_NUMBER_LENGTH = 64
MAX_SITE_LENGTH = 200
# single: an invoice with no parent and no children; multi: a parent and its children.
LAYOUTS = ("single", "multi")


@dataclass(frozen=True)
class Sort:
    """An order of the list: the view's field it sorts on, then invoice id, both in one direction."""

    field: str
    descending: bool


SORTS = {
    "due_asc": Sort("due_on", False),
    "due_desc": Sort("due_on", True),
    "number_asc": Sort("number", False),
    "number_desc": Sort("number", True),
    "owed_asc": Sort("owed_minor", False),
    "owed_desc": Sort("owed_minor", True),
}
DEFAULT_SORT = "due_asc"


@dataclass(frozen=True)
class InvoiceFilter:
    """What an invoice list request selects; None is no condition. Due dates are both included."""

    statuses: tuple[str, ...] | None = None
    overdue: bool | None = None
    due_from: date | None = None
    due_to: date | None = None
    layout: str | None = None
    site: str | None = None
    search: str | None = None

    @property
    def search_pattern(self) -> str | None:
        """The case-insensitive contains-pattern for the search, wildcards in it taken literally."""
        return None if self.search is None else paging.contains_pattern(self.search)


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: its sort, the last invoice's sort key and its id."""

    sort: str
    key: date | str | int
    invoice_id: int


class Listed(Protocol):
    """What the rules read of an invoice view."""

    invoice_id: int
    number: str
    owed_minor: int
    due_on: date
    status: str
    overdue: bool


def check_sort(sort: Any) -> Sort:
    if not isinstance(sort, str) or sort not in SORTS:
        raise RemitError("invalid_sort", f"The sort must be one of {sorted(SORTS)}, not {quoted(sort)}.")
    return SORTS[sort]


def check_filter(
    *,
    status: Any = None,
    overdue: Any = None,
    due_from: Any = None,
    due_to: Any = None,
    layout: Any = None,
    site: Any = None,
    search: Any = None,
) -> InvoiceFilter:
    """The request's filters checked; empty or blank text is no condition."""
    low, high = _check_day(due_from, "due_from"), _check_day(due_to, "due_to")
    if low and high and low > high:
        raise RemitError("invalid_date_range", f"due_from {low} is after due_to {high}.")
    if overdue is not None and not isinstance(overdue, bool):
        raise RemitError("invalid_overdue", f"overdue must be True or False, not {quoted(overdue)}.")
    if layout is not None and layout not in LAYOUTS:
        raise RemitError(
            "invalid_layout", f"The layout must be one of {list(LAYOUTS)}, not {quoted(layout)}."
        )
    return InvoiceFilter(
        statuses=_check_statuses(status),
        overdue=overdue,
        due_from=low,
        due_to=high,
        layout=layout,
        site=_check_words(site, "site", "invalid_site", MAX_SITE_LENGTH),
        search=_check_words(search, "search", "invalid_search", MAX_SEARCH_LENGTH),
    )


def matches(view: Listed, chosen: InvoiceFilter) -> bool:
    """Whether a view passes the derived conditions (status and overdue); SQL applied the rest."""
    if chosen.statuses is not None and view.status not in chosen.statuses:
        return False
    return chosen.overdue is None or view.overdue is chosen.overdue


def has_derived_filter(chosen: InvoiceFilter) -> bool:
    return chosen.statuses is not None or chosen.overdue is not None


def sort_key(view: Listed, order: Sort) -> date | str | int:
    return getattr(view, order.field)


def page_of(views: Sequence[Listed], order: Sort, after: Cursor | None, size: int) -> tuple[list[Any], bool]:
    """Up to size views in the sort's order (then id, same direction) after the cursor's row, and whether
    more follow."""
    ranked = sorted(views, key=lambda v: (sort_key(v, order), v.invoice_id), reverse=order.descending)
    if after is not None:
        bound = (after.key, after.invoice_id)
        if order.descending:
            ranked = [v for v in ranked if (sort_key(v, order), v.invoice_id) < bound]
        else:
            ranked = [v for v in ranked if (sort_key(v, order), v.invoice_id) > bound]
    return ranked[:size], len(ranked) > size


def encode_cursor(sort: str, view: Listed) -> str:
    return paging.encode_cursor(sort, sort_key(view, SORTS[sort]), view.invoice_id)


def decode_cursor(token: Any, sort: str) -> Cursor:
    """The cursor a previous page of this sort returned, or invalid_cursor."""
    name, value, invoice_id = paging.decode_cursor(token, sort, SORTS, "invoice list")
    field = SORTS[name].field
    key: Any = value
    if field == "due_on":
        try:
            key = date.fromisoformat(value)
        except (ValueError, TypeError):
            key = None
    valid = {
        "due_on": isinstance(key, date),
        "number": isinstance(key, str) and 0 < len(key) <= MAX_NUMBER_LENGTH,
        "owed_minor": isinstance(key, int) and not isinstance(key, bool) and 0 <= key <= MAX_AMOUNT_MINOR,
    }[field]
    if not valid:
        raise RemitError("invalid_cursor", "The page cursor is not one this invoice list returned.")
    return Cursor(name, key, invoice_id)


def _check_statuses(status: Any) -> tuple[str, ...] | None:
    if status is None:
        return None
    values = [status] if isinstance(status, str) else status
    known = {s.value for s in InvoiceStatus}
    if not isinstance(values, (list, tuple)) or not values or not all(v in known for v in values):
        raise RemitError("invalid_status", f"The status must be among {sorted(known)}, not {quoted(status)}.")
    return tuple(sorted(set(values)))


def _check_day(value: Any, name: str) -> date | None:
    if value is not None and (isinstance(value, datetime) or not isinstance(value, date)):
        raise RemitError("invalid_date_range", f"{name} must be a date, not {quoted(value)}.")
    return value


def _check_words(value: Any, name: str, code: str, limit: int) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return check_text(value, name, code, limit).strip()
