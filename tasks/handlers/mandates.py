"""mandate.updated events: a bank account whose ACH mandate is no longer active cannot be debited."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from db.queries import methods as method_rows
from tasks.domain.states import MethodStatus
from tasks.handlers.common import PROCESSED, Handled, ignored, obj, object_id

MANDATE_INACTIVE_MESSAGE = "The authorization to debit this bank account was revoked; add the account again."


def handle(session: Session, event: dict[str, Any], now: datetime) -> Handled:
    """An inactive mandate fails the method's verification so the customer re-adds it."""
    mandate = obj(event)
    method = method_rows.lock_method_by_stripe_id(session, object_id(mandate.get("payment_method")))
    if method is None:
        return ignored(f"no payment method for mandate {mandate.get('id')}")
    if mandate.get("status") == "inactive" and method.status in (
        MethodStatus.ACTIVE,
        MethodStatus.VERIFICATION_PENDING,
    ):
        method.status, method.is_default = MethodStatus.VERIFICATION_FAILED, False
        method.verification_error = MANDATE_INACTIVE_MESSAGE
    return PROCESSED
