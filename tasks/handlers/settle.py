"""A refund or dispute proves the charge succeeded: settle a payment still in flight before acting."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from db.models import Payment
from tasks import ledger
from tasks.domain.events import settled_first
from tasks.domain.states import PaymentStatus
from tasks.handlers.common import object_id


def settle_if_in_flight(session: Session, payment: Payment, charge_id: str | None, intent_id: str | None, *,
                        source: str, now: datetime) -> None:
    """Move a payment that never heard of its success to succeeded, so out-of-order events converge."""
    payment.stripe_payment_intent_id = payment.stripe_payment_intent_id or intent_id
    payment.stripe_charge_id = payment.stripe_charge_id or charge_id
    if settled_first(payment.status):
        ledger.apply_transition(session, payment, PaymentStatus.SUCCEEDED, source=source, now=now,
                                detail={"implied_by": "refund or dispute on the charge"})


def charge_ids(charge_or_child: dict[str, Any]) -> tuple[str | None, str | None]:
    """(charge id, intent id) of a charge, refund or dispute object."""
    if charge_or_child.get("object") == "charge":
        return charge_or_child.get("id"), object_id(charge_or_child.get("payment_intent"))
    return object_id(charge_or_child.get("charge")), object_id(charge_or_child.get("payment_intent"))
