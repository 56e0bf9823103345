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
from db.queries import invoices as invoice_rows
from db.queries import payments as payment_rows
from tasks.domain.states import EmailKind, PaymentStatus
from tasks.flows import last_look
from tasks.flows.ledger import TransitionBatch, apply_transition, record_event

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
    invoice_ids = list(invoice_ids)
    holders = invoice_rows.list_reserved_holders(session, invoice_ids)
    views = {
        v.id: v for v in payment_rows.lock_payment_views(session, payment_ids=sorted(set(holders.values())))
    }
    # Read again under the payments' locks: one that moved on meanwhile (failed, say) holds nothing now.
    held = invoice_rows.list_reserved_holders(session, invoice_ids)
    return {invoice_id: views[payment_id] for invoice_id, payment_id in held.items() if payment_id in views}


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
    session: Session, holders: dict[int, Any], paid: dict[int, tuple[str, int]], reference: str, now: datetime
) -> frozenset[int]:
    """Invoices paid outside Remit ({invoice id: (number, amount)}) meet the payments holding them: a
    scheduled or pending payment is looked at again as its last look would, with that money counted (what
    it no longer needs is not charged; an invoice paid in full leaves it); returns the invoices whose money
    must be kept as credit instead, as their payment may already be charged (that payment is flagged)."""
    as_credit = set()
    for payment, invoice_ids in _by_payment({i: holders[i] for i in paid if i in holders}):
        said = [
            f"Invoice {paid[i][0]} was paid outside the portal ({reference})." for i in sorted(invoice_ids)
        ]
        if payment.status in CHARGE_MAY_BE_AT_STRIPE:
            as_credit.update(invoice_ids)
            detail = {"needs_review": "paid_outside_in_flight", "reference": reference, "changes": said}
            record_event(
                session, payment, source=SOURCE, now=now, detail=detail, values={"needs_review": True}
            )
            continue
        _look_again(session, payment, {i: paid[i][1] for i in invoice_ids}, said, now)
    return frozenset(as_credit)


def _look_again(
    session: Session, payment: Any, paid_now: dict[int, int], said: list[str], now: datetime
) -> None:
    """The payment not yet charged, changed before its day as its last look would; canceled when nothing is
    left to pay; the customer of a scheduled payment is sent its updated confirmation."""
    decided = last_look.read(session, payment, paid_now)
    if decided.refusal is not None:
        changes = [*(payment.last_look_changes or []), *said, *decided.changes]
        detail = {"changes": changes}
        values = {"last_look_changes": changes}
        apply_transition(
            session, payment, PaymentStatus.CANCELED, source=SOURCE, now=now, detail=detail, values=values
        )
        return
    last_look.write(session, payment, decided, now, source=SOURCE, said=tuple(said))
    if payment.status == PaymentStatus.SCHEDULED:
        suffix = f":changed:{len(payment.last_look_changes)}"
        batch = TransitionBatch(now)
        batch.email(payment, EmailKind.SCHEDULED_CONFIRMED, dedupe_suffix=suffix)
        batch.flush(session)


def _by_payment(holders: dict[int, Any]) -> list[tuple[Any, list[int]]]:
    """(payment view, the invoice ids it holds) per payment, in payment id order."""
    grouped: dict[int, tuple[Any, list[int]]] = {}
    for invoice_id, payment in holders.items():
        grouped.setdefault(payment.id, (payment, []))[1].append(invoice_id)
    return [grouped[payment_id] for payment_id in sorted(grouped)]
