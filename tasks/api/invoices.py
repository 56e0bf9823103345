"""What the portal shows for an account's invoices: amounts owed and the derived status of each, as a
whole list, as filtered, searched and sorted pages, or as CSV; and the account's scheduled payments."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.orm import Session

from db.models import Account
from db.queries import invoices as invoice_rows
from db.queries import payments as payment_rows
from tasks.api.guard import api_transaction
from tasks.api.history import MethodDisplay
from tasks.api.selection import find_account
from tasks.domain import invoice_list as rules
from tasks.domain.dates import seller_today
from tasks.domain.invoices import combine_holds, invoice_state
from tasks.domain.paging import spreadsheet_safe

# Rows a page with a status or overdue filter reads at a time: a few pages' worth, so a common status
# fills a page in one read and a rare one takes a few round trips, not the whole account.
SCAN_BATCH = 200
CSV_HEADER = (
    "invoice_id",
    "number",
    "parent_id",
    "site_name",
    "currency",
    "total_minor",
    "paid_minor",
    "owed_minor",
    "issued_on",
    "due_on",
    "status",
    "overdue",
)


@dataclass(frozen=True)
class InvoiceView:
    invoice_id: int
    number: str
    parent_id: int | None
    site_name: str | None
    currency: str
    total_minor: int
    paid_minor: int
    owed_minor: int
    issued_on: date
    due_on: date
    discount_minor: int
    discount_until: date | None
    status: str
    overdue: bool


@dataclass(frozen=True)
class InvoicePage:
    items: tuple[InvoiceView, ...]
    next_cursor: str | None


@dataclass(frozen=True)
class ScheduledPayment:
    payment_id: int
    scheduled_for: date
    amount_minor: int
    currency: str
    method: MethodDisplay
    invoice_numbers: tuple[str, ...]
    reference: str | None = None


def list_invoices(
    account_id: int,
    now: datetime | None = None,
    *,
    status: str | list[str] | None = None,
    overdue: bool | None = None,
    due_from: date | None = None,
    due_to: date | None = None,
    layout: str | None = None,
    site: str | None = None,
    search: str | None = None,
    sort: str | None = None,
    after: str | None = None,
    limit: int | None = None,
) -> list[InvoiceView] | InvoicePage:
    """Every customer-visible invoice of the account, due date first; a parent sums its children.

    With any keyword argument it is one InvoicePage instead; pass next_cursor back as after for the next.
    status is one or more derived statuses (void, paid, pending, scheduled, partially_paid, open);
    overdue True or False; due_from/due_to whole days, both included; layout "single" (no parent, no
    children) or "multi" (a parent and its children); site a site name, ignoring case; search a part of
    the invoice number or site name, ignoring case, % and _ taken literally. sort is due_asc (default),
    due_desc, number_asc, number_desc, owed_asc or owed_desc, each then by id; limit 1 to 200 (50).
    Refusals come before any read; writes nothing.
    """
    asked = dict(status=status, overdue=overdue, due_from=due_from, due_to=due_to, layout=layout)
    asked.update(site=site, search=search, sort=sort, after=after, limit=limit)
    if any(value is not None for value in asked.values()):
        return _list_page(account_id, now, **asked)
    with api_transaction() as session:
        account = find_account(session, account_id)
        today = seller_today(account.seller, now or datetime.now(UTC))
        rows = invoice_rows.list_visible_invoices(session, account.id)
        settled, holds = _standing_of(session, rows)
        children: dict[int, list[Row]] = {}
        for row in rows:
            if row.parent_id is not None:
                children.setdefault(row.parent_id, []).append(row)
        return [_view(row, children.get(row.id, []), settled, holds, today) for row in rows]


def _view(
    row: Row, kids: list[Row], settled: dict[int, int], holds: dict[int, str], today: date
) -> InvoiceView:
    live_kids = [k for k in kids if not k.voided]
    paid = sum(settled.get(k.id, 0) for k in live_kids) if kids else settled.get(row.id, 0)
    held = combine_holds([holds.get(k.id) for k in live_kids]) if kids else holds.get(row.id)
    total = sum(k.total_minor for k in live_kids) if kids else row.total_minor
    state = invoice_state(
        voided=row.voided or (bool(kids) and not live_kids),
        total_minor=total,
        settled_minor=paid,
        held_by=held,
        due_on=row.due_on,
        today=today,
    )
    return InvoiceView(
        row.id,
        row.number,
        row.parent_id,
        row.site_name,
        row.currency,
        total,
        paid,
        state.owed_minor,
        row.issued_on,
        row.due_on,
        row.discount_minor,
        row.discount_until,
        state.status,
        state.overdue,
    )


def export_invoices_csv(
    account_id: int,
    now: datetime | None = None,
    *,
    status: str | list[str] | None = None,
    overdue: bool | None = None,
    due_from: date | None = None,
    due_to: date | None = None,
    layout: str | None = None,
    site: str | None = None,
    search: str | None = None,
    sort: str = rules.DEFAULT_SORT,
) -> Iterator[str]:
    """Every invoice list_invoices selects with these filters and sort, as CSV lines (a header first).

    Refusals come at the call; the selection is read there too, in one transaction (an account's
    invoices fit in memory, and the derived statuses need all of a parent's children), so a slow
    download holds no transaction open.
    """
    order = rules.check_sort(sort)
    chosen = rules.check_filter(
        status=status,
        overdue=overdue,
        due_from=due_from,
        due_to=due_to,
        layout=layout,
        site=site,
        search=search,
    )
    with api_transaction() as session:
        views = _selected(session, find_account(session, account_id), chosen, now)
    shown, _ = rules.page_of(views, order, None, len(views))
    return _lines(shown)


def list_scheduled_payments(account_id: int) -> tuple[ScheduledPayment, ...]:
    """The account's scheduled payments, soonest first: id, day, amount, how the method shows, and the
    numbers of the invoices each pays. Writes nothing."""
    with api_transaction() as session:
        account = find_account(session, account_id)
        rows = payment_rows.list_scheduled_payments(session, account.id)
        numbers = payment_rows.list_invoice_numbers_of(session, [row.id for row in rows])
    return tuple(
        ScheduledPayment(
            row.id,
            row.scheduled_for,
            row.amount_minor,
            row.currency,
            MethodDisplay(row.method_kind, row.brand, row.last4, row.bank_name),
            numbers.get(row.id, ()),
            row.reference,
        )
        for row in rows
    )


def _list_page(
    account_id: int,
    now: datetime | None,
    *,
    sort: str | None,
    after: str | None,
    limit: int | None,
    **filters,
) -> InvoicePage:
    name = rules.DEFAULT_SORT if sort is None else sort
    order = rules.check_sort(name)
    size = rules.check_limit(rules.DEFAULT_PAGE_SIZE if limit is None else limit)
    cursor = rules.decode_cursor(after, name) if after is not None else None
    chosen = rules.check_filter(**filters)
    with api_transaction() as session:
        account = find_account(session, account_id)
        after = None if cursor is None else (cursor.key, cursor.invoice_id)
        views = _read_in_order(session, account, chosen, order, after, size + 1, now)
        shown, more = views[:size], len(views) > size
    return InvoicePage(tuple(shown), rules.encode_cursor(name, shown[-1]) if more else None)


def _read_in_order(
    session: Session,
    account: Account,
    chosen: rules.InvoiceFilter,
    order: rules.Sort,
    after: tuple[Any, int] | None,
    wanted: int,
    now: datetime | None,
) -> list[InvoiceView]:
    """Up to wanted views the filter selects, in the sort's order after the position: rows read in that
    order a batch at a time, each batch derived and filtered on status and overdue, until enough."""
    batch = wanted if not rules.has_derived_filter(chosen) else max(wanted, SCAN_BATCH)
    views: list[InvoiceView] = []
    while len(views) < wanted:
        rows = invoice_rows.list_listed_page(session, account.id, chosen, order, after, batch)
        views += [v for v in _views_of(session, account, rows, now) if rules.matches(v, chosen)]
        if len(rows) < batch:
            break
        after = (getattr(rows[-1], order.field), rows[-1].id)
    return views[:wanted]


def _selected(
    session: Session, account: Account, chosen: rules.InvoiceFilter, now: datetime | None
) -> list[InvoiceView]:
    """The views of the invoices the filter selects: stored conditions in SQL, derived ones here."""
    rows = invoice_rows.list_listed_invoices(session, account.id, chosen)
    views = _views_of(session, account, rows, now)
    return [view for view in views if rules.matches(view, chosen)]


def _views_of(session: Session, account: Account, rows: list[Row], now: datetime | None) -> list[InvoiceView]:
    """The rows as the portal shows them, in their order: a parent sums its visible children."""
    today = seller_today(account.seller, now or datetime.now(UTC))
    kids = invoice_rows.list_visible_children(session, [r.id for r in rows if r.parent_id is None])
    settled, holds = _standing_of(session, [*rows, *kids])
    children: dict[int, list[Row]] = {}
    for kid in kids:
        children.setdefault(kid.parent_id, []).append(kid)
    return [_view(row, children.get(row.id, []), settled, holds, today) for row in rows]


def _standing_of(session: Session, rows: list[Row]) -> tuple[dict[int, int], dict[int, str]]:
    """What settled each invoice row and which payment status holds it. Settled is the row's
    settled_minor, which PostgreSQL keeps equal to the ledger's sum in the statement moving it (migration
    0014), as the sort by the amount owed reads it; only the holds are read here."""
    settled = {row.id: row.settled_minor for row in rows}
    return settled, invoice_rows.list_holds(session, sorted(settled))


def _lines(views: list[InvoiceView]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for values in [CSV_HEADER, *(_csv_row(view) for view in views)]:
        writer.writerow(values)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def _csv_row(view: InvoiceView) -> tuple[Any, ...]:
    return (
        view.invoice_id,
        spreadsheet_safe(view.number),
        view.parent_id or "",
        spreadsheet_safe(view.site_name or ""),
        view.currency,
        view.total_minor,
        view.paid_minor,
        view.owed_minor,
        view.issued_on.isoformat(),
        view.due_on.isoformat(),
        view.status,
        "true" if view.overdue else "false",
    )
