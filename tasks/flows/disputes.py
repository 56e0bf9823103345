"""A dispute's money: what a chargeback reverses is remembered, and a won dispute puts exactly that back.

The webhook path (tasks/handlers/disputes.py) and the ops console (reinstate_won_dispute) reinstate
through the same function, in the same transaction as the payment's transition.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from db.models import Dispute
from db.queries import invoices as invoice_rows
from db.queries import payments as payment_rows
from db.session import transaction
from tasks.domain.disputes import Reinstatement, Reversed, split_reinstatement
from tasks.domain.errors import RemitError
from tasks.domain.states import AllocationState, CreditState, PaymentKind, PaymentStatus
from tasks.flows import ledger

_log = logging.getLogger(__name__)
P = PaymentStatus
# An operator name is a label on the timeline, not an identity check (the console authenticates).
MAX_OPERATOR_LENGTH = 100


def reverse(
    session: Session, batch: ledger.TransitionBatch, payment: Any, dispute: Dispute, **line: Any
) -> None:
    """The chargeback takes the money back; the dispute row remembers which allocations and credits."""
    batch.flush(session)  # a payment settled by this event has its allocations applied first
    applied = invoice_rows.list_applied_allocations_of(session, [payment.id])[payment.id]
    # The transition reverses credit only for payments that can carry it (plan_transition).
    carries_credit = payment.kind != PaymentKind.INVOICES
    credits = (
        invoice_rows.lock_available_credits_of(session, [payment.id])[payment.id] if carries_credit else []
    )
    dispute.reversal = {"allocations": [r.id for r in applied], "credits": [r.id for r in credits]}
    batch.add(session, payment, P.DISPUTED, **line)


def reinstate(
    session: Session,
    batch: ledger.TransitionBatch,
    payment: Any,
    dispute: Dispute,
    *,
    source: str,
    detail: dict,
) -> Reinstatement | None:
    """A won dispute: its reversed allocations go back on invoices still owing them, the rest becomes credit,
    and the payment is succeeded again (partially refunded if it was). None when the dispute's reversal is
    unknown and cannot be told apart from a refund's."""
    batch.flush(session)
    reversed_rows = _reversed_by(session, payment, dispute)
    if reversed_rows is None:
        return None
    room = invoice_rows.lock_room_on_invoices(session, [r.invoice_id for r in reversed_rows])
    plan = split_reinstatement(reversed_rows, room)
    changes: dict[int, dict[str, Any]] = {i: {"state": AllocationState.APPLIED} for i in plan.whole}
    changes.update({i: {"state": AllocationState.APPLIED, "amount_minor": kept} for i, kept in plan.reduced})
    if changes:
        invoice_rows.update_allocations(session, changes)
    _reinstate_credits(session, payment, dispute)
    for invoice_id, amount in plan.credit:
        invoice_rows.insert_credit(
            session,
            account_id=payment.account_id,
            payment_id=payment.id,
            amount_minor=amount,
            currency=payment.currency,
            state=CreditState.AVAILABLE,
            note=f"dispute {dispute.stripe_dispute_id} won; invoice {invoice_id} was paid meanwhile",
        )
    target = P.PARTIALLY_REFUNDED if payment.refunded_minor else P.SUCCEEDED
    outcome = {
        "reinstated_allocations": list(plan.whole),
        "reduced_allocations": [list(pair) for pair in plan.reduced],
        "credit": [list(pair) for pair in plan.credit],
        "credit_minor": plan.credit_minor,
    }
    batch.add(session, payment, target, source=source, detail={**detail, **outcome})
    dispute.reinstated_at = batch.now
    _log.warning(
        "dispute %s won: payment %s reinstated on its invoices, %s minor units became credit",
        dispute.stripe_dispute_id,
        payment.id,
        plan.credit_minor,
    )
    return plan


def _reversed_by(session: Session, payment: Any, dispute: Dispute) -> list[Reversed] | None:
    """The allocations the dispute reversed and that are still reversed.

    A dispute recorded before disputes remembered their reversal: every reversed allocation is its own
    only when no refund reversed any.
    """
    ids = (dispute.reversal or {}).get("allocations")
    if ids is None and payment.refunded_minor:
        return None
    rows = invoice_rows.list_reversed_allocations(session, payment.id, ids)
    return [Reversed(r.id, r.invoice_id, r.amount_minor, r.discount_minor) for r in rows]


def _reinstate_credits(session: Session, payment: Any, dispute: Dispute) -> None:
    credit_ids = (dispute.reversal or {}).get("credits") or []
    if credit_ids:
        invoice_rows.update_credits(session, {i: {"state": CreditState.AVAILABLE} for i in credit_ids})


def reinstate_won_dispute(payment_id: int, operator: str, now: datetime | None = None) -> dict[str, Any]:
    """Ops: put a won dispute's money back for a payment still disputed, as the webhook path does.

    Returns {"payment_id", "status", "reinstated_minor", "credit_minor"}; raises RemitError when the
    operator is missing, the payment does not exist, has no won dispute left to reinstate, or its
    reversal cannot be told apart from a refund's.
    """
    if not isinstance(operator, str) or not operator.strip() or len(operator) > MAX_OPERATOR_LENGTH:
        raise RemitError(
            "invalid_operator", f"operator must be a name of 1 to {MAX_OPERATOR_LENGTH} characters"
        )
    now = now or datetime.now(UTC)
    with transaction() as session:
        return reinstate_won_dispute_in(session, payment_id, operator.strip(), now)


def reinstate_won_dispute_in(
    session: Session, payment_id: int, operator: str, now: datetime
) -> dict[str, Any]:
    """reinstate_won_dispute in the caller's transaction (the ops console commits its audit row with it)."""
    payment = payment_rows.lock_payment(session, payment_id)
    if payment is None:
        raise RemitError("payment_not_found", f"payment {payment_id} does not exist")
    dispute = payment_rows.find_won_dispute_of(session, payment_id)
    if dispute is None or payment.status != P.DISPUTED:
        raise RemitError(
            "no_won_dispute", f"payment {payment_id} is {payment.status} with no won dispute to reinstate"
        )
    batch = ledger.TransitionBatch(now)
    detail = {"dispute": dispute.stripe_dispute_id, "dispute_status": "won", "operator": operator}
    plan = reinstate(session, batch, payment, dispute, source=f"ops:{operator}", detail=detail)
    if plan is None:
        raise RemitError(
            "reversal_unknown",
            f"payment {payment_id} was refunded in part and its dispute did not record what it reversed:"
            " re-apply its money by hand",
        )
    batch.set_columns(payment, {"needs_review": plan.credit_minor > 0})
    batch.flush(session)
    return {
        "payment_id": payment_id,
        "status": payment.status,
        "reinstated_minor": plan.reinstated_minor,
        "credit_minor": plan.credit_minor,
    }
