"""The last look of execute_payment: read what each invoice owes now, decide (tasks/domain/last_look.py),
and write what changed from what the customer approved before any money moves."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from db.queries import credits as credit_rows
from db.queries import invoices as invoice_rows
from tasks.domain.credit import CreditPiece, give_back
from tasks.domain.last_look import HeldLine, Review, Terms, review
from tasks.domain.states import CreditState, PaymentKind
from tasks.flows.balances import balance_moved
from tasks.flows.ledger import record_event

SOURCE = "worker:execute_payment"


def read(session: Session, payment: Any, paid_now: dict[int, int] | None = None) -> Review:
    """The last look's decision for the payment, its invoices locked; writes nothing.

    paid_now: money about to settle invoices ({invoice id: amount}, an external payment being recorded);
    with it the payment is reviewed as paying in full, so what it no longer needs is not charged.
    """
    rows = invoice_rows.lock_held_lines(session, payment.id)
    settled = {r.invoice_id: r.settled_minor for r in rows}
    for invoice_id, amount in (paid_now or {}).items():
        settled[invoice_id] = settled.get(invoice_id, 0) + amount
    credit = credit_rows.sum_spent_per_invoice(session, payment)
    lines = [
        HeldLine(
            r.allocation_id,
            r.invoice_id,
            r.number,
            r.amount_minor,
            r.discount_minor,
            credit.get(r.invoice_id, 0),
            r.voided,
            r.customer_visible,
            r.total_minor,
            settled.get(r.invoice_id, 0),
        )
        for r in rows
    ]
    checks_method = paid_now is None and payment.payment_method_id is not None
    terms = Terms(
        in_full=paid_now is not None or (payment.kind == PaymentKind.INVOICES and not payment.short_reason),
        charge_minor=payment.amount_minor,
        deposits_enabled=payment.seller.deposits_enabled,
        method_status=payment.method.status if checks_method else None,
        saves_method=bool(getattr(payment, "saves_method", False)),
    )
    return review(lines, terms)


def write(
    session: Session, payment: Any, decided: Review, now: datetime, source: str = SOURCE, said: tuple = ()
) -> None:
    """Lower or release the changed allocations, give back credit no invoice needs, keep the difference of a
    custom amount as credit, and record the new amounts and every change (after what was said first) on
    the payment and its timeline."""
    invoice_rows.resize_reserved_allocations(session, decided.amounts, decided.dropped)
    returned = sum(_give_back(session, payment.id, i, a) for i, a in decided.credit_back.items())
    if decided.new_credit_minor:
        invoice_rows.insert_credit(
            session,
            account_id=payment.account_id,
            payment_id=payment.id,
            amount_minor=decided.new_credit_minor,
            currency=payment.currency,
            state=CreditState.PENDING,
            note="the last look: more than the invoices owe now",
        )
    changes = [*said, *decided.changes]
    values = {
        "amount_minor": decided.charge_minor,
        "credit_used_minor": payment.credit_used_minor - returned,
        "last_look_changes": [*(payment.last_look_changes or []), *changes],
    }
    detail = {"last_look": changes, "charge_minor": decided.charge_minor, "was": payment.amount_minor}
    record_event(session, payment, source=source, now=now, detail=detail, values=values)
    balance_moved(session, payment.account_id, now)


def _give_back(session: Session, payment_id: int, invoice_id: int, amount: int) -> int:
    """Spent credit on one invoice back to available, newest first; returns the amount."""
    pieces = [
        CreditPiece(r.id, r.amount_minor)
        for r in credit_rows.list_reserved_on(session, payment_id, invoice_id)
    ]
    whole, split = give_back(pieces, amount)
    credit_rows.release_credits(session, whole)
    if split is not None:
        credit_rows.split_reserved(session, *split)
    return amount
