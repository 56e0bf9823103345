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
from tasks.domain import requests as checks
from tasks.domain.credit import NO_CREDIT, CreditPiece, CreditUse, spend_credit
from tasks.domain.errors import RemitError
from tasks.domain.states import PaymentStatus
from tasks.flows.ledger import apply_transition


def check_request(account_id: object, invoice_ids: object, amount: object, key: object) -> None:
    """What apply_credit is refused for before any row is read: ids, key, and invoices or an amount."""
    checks.check_id(account_id, "account_not_found", "Account")
    checks.check_idempotency_key(key)
    if (invoice_ids is None) == (amount is None):
        raise RemitError(
            "invoices_or_amount", "Name the invoices to pay from credit, or an amount; not both."
        )
    if invoice_ids is not None:
        checks.check_invoice_ids(invoice_ids)
    else:
        checks.check_amount(amount)


def require_no_remainder(plan: plans.Plan, amount: int) -> None:
    """Credit applied never becomes credit again: an amount above what is owed is refused."""
    if plan.credit_minor:
        owed = amount - plan.credit_minor
        raise RemitError("amount_exceeds_balance", f"The amount {amount} is more than the {owed} owed.")


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
