"""Available credit paying invoices: with a payment (use_credit) or on its own (apply_credit).

Credit goes first, oldest credit first, onto the plan's invoice lines oldest first; Stripe is charged only
the rest. Each credit row spent names the payment and the invoice it went to (db/queries/credits.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from db.queries import credits as credit_rows
from db.queries import payments as payment_rows
from tasks.domain import allocation as plans
from tasks.domain.credit import NO_CREDIT, CreditPiece, CreditUse, spend_credit
from tasks.domain.errors import RemitError
from tasks.domain.states import PaymentStatus
from tasks.flows.ledger import apply_transition


def plan_use(session: Session, account_id: int, currency: str, plan: plans.Plan) -> CreditUse:
    """What the account's available credit pays of the plan's invoice lines (locked until commit)."""
    credits = [
        CreditPiece(r.id, r.amount_minor)
        for r in credit_rows.lock_available_credits(session, account_id, currency)
    ]
    if not credits:
        return NO_CREDIT
    return spend_credit(credits, [(line.invoice_id, line.amount_minor) for line in plan.lines])


def require_covered(use: CreditUse, plan: plans.Plan) -> None:
    """apply_credit pays from credit alone: refused when the credit falls short of the plan."""
    if use.used_minor < plan.total_minor:
        raise RemitError(
            "insufficient_credit",
            f"The available credit, {use.used_minor}, does not cover the {plan.total_minor} to apply.",
        )


def record_use(session: Session, payment_id: int, use: CreditUse) -> None:
    """The credit rows the new payment spends, reserved for it on their invoices."""
    if use.spent:
        credit_rows.spend_credits(session, payment_id, use.spent)


def settle_from_credit(session: Session, payment_id: int, now: datetime) -> None:
    """A payment credit pays in full moves no money at Stripe: it succeeds now, in the request's
    transaction."""
    payment = payment_rows.lock_payment(session, payment_id)
    detail = {"paid_from_credit": payment.credit_used_minor, "stripe": "nothing to charge"}
    apply_transition(session, payment, PaymentStatus.SUCCEEDED, source="api", now=now, detail=detail)
