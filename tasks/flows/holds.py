"""Changes from the seller's ERP meeting payments that hold the invoices they touch.

A changed invoice is accepted and noted on the holding payment's timeline: a scheduled or pending payment's
last look decides what it charges; one whose charge may already be at Stripe (submitting, processing,
requires_action) is flagged for ops. An invoice paid outside Remit is taken out of a scheduled or pending
payment holding it (the customer is told); beside a payment whose charge may be at Stripe, that money is
kept as account credit and the payment flagged, so the invoice is never paid twice.

Locks follow every writer's order: the accounts (KEY SHARE), the holding payments, then the invoices.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from db.queries import accounts as account_rows
from db.queries import credits as credit_rows
from db.queries import invoices as invoice_rows
from db.queries import payments as payment_rows
from tasks.domain.states import EmailKind, PaymentStatus
from tasks.flows.ledger import TransitionBatch

# A payment in these statuses may already be charged at Stripe: nothing about it is changed, only flagged.
CHARGE_MAY_BE_AT_STRIPE = frozenset(
    {PaymentStatus.SUBMITTING, PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION}
)
SOURCE = "erp"


def lock_holders(session: Session, account_ids: Iterable[int], invoice_ids: Iterable[int]) -> dict[int, Any]:
    """{invoice id: view of the payment holding it}, the accounts and then those payments locked.

    Once the accounts are held no request can reserve one of their invoices, so the holders read after are
    all there are until commit.
    """
    account_rows.lock_accounts_shared(session, sorted(set(account_ids)))
    holders = invoice_rows.list_reserved_holders(session, list(invoice_ids))
    views = {
        v.id: v for v in payment_rows.lock_payment_views(session, payment_ids=sorted(set(holders.values())))
    }
    return {invoice_id: views[payment_id] for invoice_id, payment_id in holders.items()}


def note_changed(session: Session, holders: dict[int, Any], numbers: dict[int, str], now: datetime) -> None:
    """The ERP changed invoices these payments hold: on each timeline; flagged where the charge may be at
    Stripe, since the last look has already run for those."""
    batch = TransitionBatch(now)
    for payment, invoice_ids in _by_payment(holders):
        changed = sorted(numbers[i] for i in invoice_ids)
        detail = {"erp_changed_invoices": changed}
        if payment.status in CHARGE_MAY_BE_AT_STRIPE:
            batch.set_columns(payment, {"needs_review": True})
            detail["needs_review"] = "invoice_changed_in_flight"
        batch.note(payment, source=SOURCE, detail=detail)
    batch.flush(session)


def settle_outside(
    session: Session, holders: dict[int, Any], paid: dict[int, str], reference: str, now: datetime
) -> frozenset[int]:
    """Invoices paid outside Remit ({invoice id: number}) meet the payments holding them: each is taken out
    of a scheduled or pending payment; returns those whose money must be kept as credit instead, as their
    payment may already be charged (that payment is flagged)."""
    batch, as_credit = TransitionBatch(now), set()
    for payment, invoice_ids in _by_payment({i: holders[i] for i in paid if i in holders}):
        lines = [f"Invoice {paid[i]} was paid outside the portal ({reference})." for i in sorted(invoice_ids)]
        if payment.status in CHARGE_MAY_BE_AT_STRIPE:
            as_credit.update(invoice_ids)
            detail = {"needs_review": "paid_outside_in_flight", "reference": reference, "changes": lines}
            batch.set_columns(payment, {"needs_review": True})
            batch.note(payment, source=SOURCE, detail=detail)
            continue
        _take_out(session, batch, payment, sorted(invoice_ids), lines)
    batch.flush(session)
    return frozenset(as_credit)


def _take_out(
    session: Session, batch: TransitionBatch, payment: Any, invoice_ids: list[int], lines: list
) -> None:
    """Release the invoices from a payment not yet charged, lower what it charges, tell the customer; one
    left with nothing to pay is canceled."""
    cut = used_back = 0
    for invoice_id in invoice_ids:
        allocation = invoice_rows.find_reserved_allocation(session, payment.id, invoice_id)
        credit = _give_back_credit(session, payment.id, invoice_id)
        invoice_rows.resize_reserved_allocations(session, {}, [allocation.id])
        cut, used_back = cut + allocation.amount_minor - credit, used_back + credit
    changes = [*(payment.last_look_changes or []), *[f"{line} Removed from this payment." for line in lines]]
    batch.balance_moved(payment.account_id)
    charge, used = payment.amount_minor - cut, payment.credit_used_minor - used_back
    if invoice_rows.count_reserved(session, payment.id) == 0 and charge <= 0:
        batch.set_columns(payment, {"last_look_changes": changes})
        batch.add(session, payment, PaymentStatus.CANCELED, source=SOURCE, detail={"changes": changes})
        return
    values = {"amount_minor": charge, "credit_used_minor": used, "last_look_changes": changes}
    batch.set_columns(payment, values)
    batch.note(payment, source=SOURCE, detail={"changes": changes, "charge_minor": charge})
    if payment.status == PaymentStatus.SCHEDULED:
        batch.email(payment, EmailKind.SCHEDULED_CONFIRMED, dedupe_suffix=f":changed:{len(changes)}")


def _give_back_credit(session: Session, payment_id: int, invoice_id: int) -> int:
    """All the credit the payment spent on the invoice, available again; returns the amount."""
    rows = credit_rows.list_reserved_on(session, payment_id, invoice_id)
    credit_rows.release_credits(session, [r.id for r in rows])
    return sum(r.amount_minor for r in rows)


def _by_payment(holders: dict[int, Any]) -> list[tuple[Any, list[int]]]:
    """(payment view, the invoice ids it holds) per payment, in payment id order."""
    grouped: dict[int, tuple[Any, list[int]]] = {}
    for invoice_id, payment in holders.items():
        grouped.setdefault(payment.id, (payment, []))[1].append(invoice_id)
    return [grouped[payment_id] for payment_id in sorted(grouped)]
