"""A refund or dispute proves the charge succeeded: settle a payment still in flight before acting."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from tasks.domain.events import settled_first
from tasks.domain.states import PaymentStatus
from tasks.flows import ledger
from tasks.handlers.common import object_id

IMPLIED = {"implied_by": "refund or dispute on the charge"}


def missing_ids(payment: Any, charge_id: str | None, intent_id: str | None) -> dict[str, str]:
    """The Stripe ids the payment has not recorded yet, from a refund or dispute on its charge."""
    found = {"stripe_payment_intent_id": intent_id, "stripe_charge_id": charge_id}
    return {column: value for column, value in found.items() if value and not getattr(payment, column)}


def settle_in_batch(
    session: Session,
    batch: ledger.TransitionBatch,
    payment: Any,
    charge_id: str | None,
    intent_id: str | None,
    *,
    source: str,
) -> None:
    """Move a payment that never heard of its success to succeeded first, so out-of-order events converge."""
    batch.set_columns(payment, missing_ids(payment, charge_id, intent_id))
    if settled_first(payment.status):
        batch.add(session, payment, PaymentStatus.SUCCEEDED, source=source, detail=IMPLIED)


def charge_ids(charge_or_child: dict[str, Any]) -> tuple[str | None, str | None]:
    """(charge id, intent id) of a charge, refund or dispute object."""
    if charge_or_child.get("object") == "charge":
        return charge_or_child.get("id"), object_id(charge_or_child.get("payment_intent"))
    return object_id(charge_or_child.get("charge")), object_id(charge_or_child.get("payment_intent"))
