"""What the portal shows for an account's invoices: amounts owed and the derived status of each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from db.models import Invoice
from db.queries import invoices as invoice_rows
from tasks.api.guard import api_transaction
from tasks.api.selection import find_account
from tasks.domain.dates import seller_today
from tasks.domain.invoices import combine_holds, invoice_state


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


def list_invoices(account_id: int, now: datetime | None = None) -> list[InvoiceView]:
    """Every customer-visible invoice of the account, due date first; a parent sums its children."""
    with api_transaction() as session:
        account = find_account(session, account_id)
        today = seller_today(account.seller, now or datetime.now(UTC))
        rows = invoice_rows.list_visible_invoices(session, account.id)
        ids = [r.id for r in rows]
        standing = invoice_rows.list_standing(session, ids)
        settled = {invoice_id: paid for invoice_id, (paid, _) in standing.items()}
        holds = {invoice_id: held for invoice_id, (_, held) in standing.items() if held is not None}
        children: dict[int, list[Invoice]] = {}
        for row in rows:
            if row.parent_id is not None:
                children.setdefault(row.parent_id, []).append(row)
        return [_view(row, children.get(row.id, []), settled, holds, today) for row in rows]


def _view(
    row: Invoice, kids: list[Invoice], settled: dict[int, int], holds: dict[int, str], today: date
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
