"""Money the ERP recorded outside Remit (check, cash, wire, credit memo, write-off), settling invoices."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from db.queries import accounts as account_rows
from db.queries import external_payments as external_rows
from db.queries import invoices as invoice_rows
from db.queries import sync as sync_rows
from tasks.api.guard import api_transaction
from tasks.domain import sync as rules
from tasks.domain.errors import RemitError
from tasks.domain.feed import EXTERNAL_PAYMENT_RECORDED
from tasks.domain.states import CreditState
from tasks.domain.sync import RecordRefused
from tasks.flows import feed, holds
from tasks.flows.balances import balance_moved


@dataclass(frozen=True)
class ExternalPaymentReceipt:
    id: int
    reference: str
    kind: str
    amount_minor: int
    currency: str
    lines: tuple[tuple[str, int, int], ...]  # (invoice ERP id, invoice id, amount)
    replayed: bool = False
    # Invoices (ERP ids) a payment in flight held: their lines' money was kept as account credit.
    credited: tuple[str, ...] = ()


def record_external_payment(
    seller_id: int,
    account_external_id: str,
    reference: str,
    kind: str,
    lines: list[tuple[str, int]],
    now: datetime | None = None,
) -> ExternalPaymentReceipt:
    """Record a payment made outside Remit; the same reference again returns the first, changing nothing.

    An invoice a scheduled or pending payment holds is taken out of it (the customer is told); the money on
    one a payment in flight holds is kept as account credit and that payment flagged (tasks/flows/holds.py).
    """
    try:
        kind, checked = rules.external_lines(kind, reference, lines)
    except RecordRefused as refused:
        raise RemitError(refused.code, refused.message) from None
    with api_transaction() as session:
        if account_rows.find_seller(session, seller_id) is None:
            raise RemitError("seller_not_found", f"Seller {seller_id} was not found.")
        sync_rows.lock_seller_sync(session, seller_id)
        account = _account(session, seller_id, account_external_id)
        first = external_rows.find_external_payment(session, seller_id, reference)
        if first is not None:
            return _replay(session, first, account.id, kind, checked)
        now = now or datetime.now(UTC)
        invoices, holders = _invoices(session, seller_id, account.id, checked)
        currency = _one_currency(invoices.values())
        amount = sum(a for _, a in checked)
        paid = {invoices[e].id: (invoices[e].number, a) for e, a in checked}
        as_credit = holds.settle_outside(session, holders, paid, reference, now)
        payment_id = external_rows.insert_external_payment(
            session,
            [(invoices[e].id, a) for e, a in checked],
            as_credit,
            seller_id=seller_id,
            account_id=account.id,
            reference=reference,
            kind=kind,
            amount_minor=amount,
            currency=currency,
        )
        credited = _keep_as_credit(
            session, account.id, currency, reference, invoices, checked, as_credit, holders
        )
        balance_moved(session, account.id, now)
        receipt_lines = tuple((e, invoices[e].id, a) for e, a in checked)
        receipt = ExternalPaymentReceipt(
            payment_id, reference, kind, amount, currency, receipt_lines, False, credited
        )
        feed.emit(
            session, EXTERNAL_PAYMENT_RECORDED, feed.external_data(receipt, account), seller_id=seller_id
        )
        return receipt


def _keep_as_credit(session, account_id, currency, reference, invoices, checked, as_credit, holders) -> tuple:
    """The lines on invoices a payment in flight holds, as available credit on the account; their ERP ids."""
    kept = [(e, a) for e, a in checked if invoices[e].id in as_credit]
    for external_id, amount in kept:
        invoice = invoices[external_id]
        note = (
            f"{reference} on invoice {invoice.number} while payment #{holders[invoice.id].id} was in flight"
        )
        invoice_rows.insert_credit(
            session,
            account_id=account_id,
            payment_id=None,
            amount_minor=amount,
            currency=currency,
            state=CreditState.AVAILABLE,
            note=note,
        )
    return tuple(e for e, _ in kept)


def _account(session: Session, seller_id: int, external_id: object):
    found = sync_rows.list_synced_accounts(session, seller_id, [str(external_id)], [])
    if not found or found[0].external_id != external_id:
        raise RemitError("account_not_found", f"No account of this seller has external_id {external_id}.")
    return found[0]


def _replay(session: Session, first, account_id: int, kind: str, checked: list) -> ExternalPaymentReceipt:
    stored = external_rows.list_external_lines(session, first.id)
    if first.account_id != account_id or first.kind != kind or [(e, a) for e, _, a in stored] != checked:
        raise RemitError(
            "reference_reused",
            f"Reference {first.reference} was recorded with another account, kind or lines; "
            "nothing was changed.",
        )
    return ExternalPaymentReceipt(
        first.id, first.reference, first.kind, first.amount_minor, first.currency, tuple(stored), True
    )


def _invoices(session: Session, seller_id: int, account_id: int, checked: list) -> tuple[dict, dict]:
    """The lines' invoices, locked, each owing at least its line (refused otherwise, naming the invoice), and
    the payments holding any of them, locked first ({invoice id: payment view})."""
    rows = {
        r.external_id: r for r in sync_rows.list_synced_invoices(session, seller_id, [e for e, _ in checked])
    }
    for external_id, _ in checked:
        row = rows.get(external_id)
        if row is None or row.account_id != account_id:
            raise RemitError("invoice_not_found", f"Invoice {external_id} is not an invoice of this account.")
        if row.voided:
            raise RemitError("invoice_voided", f"Invoice {row.number} is void.")
    ids = [r.id for r in rows.values()]
    holders = holds.lock_holders(
        session, [account_id], ids
    )  # accounts, payments, invoices: every writer's order
    invoice_rows.lock_invoices(session, ids)
    if any(r.parent_id in ids for r in invoice_rows.list_invoices_with_children(session, ids)):
        raise RemitError(
            "invoice_is_parent", "A line names a parent invoice; record payments on its children."
        )
    standing = invoice_rows.list_standing(session, ids)
    for external_id, amount in checked:
        row = rows[external_id]
        settled, _ = standing.get(row.id, (0, None))
        owed = row.total_minor - settled
        if amount > owed:
            raise RemitError("over_payment", f"Invoice {row.number} owes {owed}; the line pays {amount}.")
    return rows, holders


def _one_currency(invoices) -> str:
    currencies = {r.currency for r in invoices}
    if len(currencies) != 1:
        raise RemitError("currency_mismatch", "The lines' invoices are in different currencies.")
    return currencies.pop()
