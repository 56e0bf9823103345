"""An account's payment history for the portal: filtered, searched and sorted pages, and the same as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.orm import Session

from db.queries import payments as payment_rows
from tasks.api.guard import api_transaction
from tasks.api.selection import find_account
from tasks.domain import history as rules
from tasks.domain.history import Cursor, HistoryFilter, Sort

# Rows an export reads per transaction: big enough that the round trips cost little next to the rows
# (at 1000 they were a tenth of the time), small enough that a read takes milliseconds; a slow download
# holds no transaction open at all, since each page is read whole before its lines go out.
EXPORT_PAGE_SIZE = 5000
CSV_HEADER = (
    "payment_id",
    "reference",
    "created_at",
    "finished_at",
    "status",
    "kind",
    "amount_minor",
    "refunded_minor",
    "currency",
    "method_kind",
    "brand",
    "last4",
    "bank_name",
    "invoice_numbers",
)


@dataclass(frozen=True)
class MethodDisplay:
    kind: str
    brand: str | None
    last4: str
    bank_name: str | None


@dataclass(frozen=True)
class PaymentSummary:
    payment_id: int
    status: str
    kind: str
    amount_minor: int
    refunded_minor: int
    currency: str
    scheduled_for: date | None
    created_at: datetime
    finished_at: datetime | None
    method: MethodDisplay
    invoice_numbers: tuple[str, ...]
    reference: str | None = None


@dataclass(frozen=True)
class PaymentPage:
    items: tuple[PaymentSummary, ...]
    next_cursor: str | None


def list_payments(
    account_id: int,
    *,
    status: str | list[str] | None = None,
    method_kind: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    amount_min: int | None = None,
    amount_max: int | None = None,
    search: str | None = None,
    sort: str = "newest",
    after: str | None = None,
    limit: int = rules.DEFAULT_PAGE_SIZE,
) -> PaymentPage:
    """One page of the account's payments; pass next_cursor back as after for the next. Writes nothing.

    Dates are whole days at the seller, both included; search matches an invoice number, the payment's id
    (with or without '#'), its reference, the method's last 4, or the note or short-payment comment,
    ignoring case.
    """
    order, size = rules.check_sort(sort), rules.check_limit(limit)
    cursor = rules.decode_cursor(after, sort) if after is not None else None
    filters = dict(status=status, method_kind=method_kind, date_from=date_from, date_to=date_to)
    filters.update(amount_min=amount_min, amount_max=amount_max, search=search)
    with api_transaction() as session:
        account = find_account(session, account_id)
        chosen = rules.check_filter(**filters, timezone=account.seller.timezone)
        return _page(session, account.id, chosen, sort, order, cursor, size)


def export_payments_csv(
    account_id: int,
    *,
    status: str | list[str] | None = None,
    method_kind: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    amount_min: int | None = None,
    amount_max: int | None = None,
    search: str | None = None,
    sort: str = "newest",
) -> Iterator[str]:
    """Every payment list_payments selects with these filters and sort, as CSV lines (a header first),
    read EXPORT_PAGE_SIZE rows per transaction. Refusals come at the call, before any line."""
    order = rules.check_sort(sort)
    filters = dict(status=status, method_kind=method_kind, date_from=date_from, date_to=date_to)
    filters.update(amount_min=amount_min, amount_max=amount_max, search=search)
    with api_transaction() as session:
        account = find_account(session, account_id)
        chosen = rules.check_filter(**filters, timezone=account.seller.timezone)
        account_id = account.id
    return _export(account_id, chosen, sort, order)


def _export(account_id: int, chosen: HistoryFilter, sort: str, order: Sort) -> Iterator[str]:
    lines = _LineWriter()
    yield lines.line(CSV_HEADER)
    cursor: Cursor | None = None
    while True:
        with api_transaction() as session:
            rows, numbers, following = _rows(
                session, account_id, chosen, sort, order, cursor, EXPORT_PAGE_SIZE
            )
        for row in rows:
            yield lines.line(_csv_row(row, numbers.get(row[0], ())))
        if following is None:
            return
        cursor = rules.decode_cursor(following, sort)


def _page(
    session: Session,
    account_id: int,
    chosen: HistoryFilter,
    sort: str,
    order: Sort,
    cursor: Cursor | None,
    size: int,
) -> PaymentPage:
    rows, numbers, following = _rows(session, account_id, chosen, sort, order, cursor, size)
    return PaymentPage(tuple(_summary(row, numbers.get(row.id, ())) for row in rows), following)


def _rows(
    session: Session,
    account_id: int,
    chosen: HistoryFilter,
    sort: str,
    order: Sort,
    cursor: Cursor | None,
    size: int,
) -> tuple[list[Row], dict[int, tuple[str, ...]], str | None]:
    """A page's rows, their invoice numbers, and the cursor of the next page (None on the last)."""
    rows = payment_rows.list_history_page(session, account_id, chosen, order, cursor, size + 1)
    shown = rows[:size]
    numbers = payment_rows.list_invoice_numbers_of(session, [row.id for row in shown])
    following = None
    if len(rows) > size:
        last = shown[-1]
        following = rules.encode_cursor(sort, getattr(last, order.column), last.id)
    return shown, numbers, following


def _summary(row: Row, numbers: tuple[str, ...]) -> PaymentSummary:
    return PaymentSummary(
        row.id,
        row.status,
        row.kind,
        row.amount_minor,
        row.refunded_minor,
        row.currency,
        row.scheduled_for,
        row.created_at,
        row.finished_at,
        MethodDisplay(row.method_kind, row.brand, row.last4, row.bank_name),
        numbers,
        row.reference,
    )


def _csv_row(row: Row, numbers: tuple[str, ...]) -> tuple[Any, ...]:
    """A history row as CSV cells, by position: an export writes a hundred thousand of them."""
    payment_id, status, kind, amount, refunded, currency, _, created, finished, reference, *method = row
    method_kind, brand, last4, bank_name = method
    return (
        payment_id,
        reference or "",
        created.isoformat(),
        finished.isoformat() if finished else "",
        status,
        kind,
        amount,
        refunded,
        currency,
        method_kind,
        brand or "",
        last4,
        rules.spreadsheet_safe(bank_name or ""),
        rules.spreadsheet_safe(" ".join(numbers)),
    )


class _LineWriter:
    """One csv writer for a whole export, each row taken out of its buffer as a line."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)

    def line(self, values: tuple[Any, ...]) -> str:
        self._writer.writerow(values)
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text
