"""payment_method.* events: mirror detaches and new card details onto the saved method."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from db.queries import methods as method_rows
from tasks.domain.states import MethodStatus
from tasks.handlers.common import PROCESSED, Handled, ignored, obj


def handle(session: Session, event: dict[str, Any], now: datetime) -> Handled:
    """Detached at Stripe means removed here; updates refresh display data of a method still in use."""
    pm = obj(event)
    method = method_rows.lock_method_by_stripe_id(session, pm.get("id"))
    if method is None:
        return ignored(f"no payment method {pm.get('id')}")
    if method.status == MethodStatus.REMOVED or event["type"] == "payment_method.attached":
        return PROCESSED
    if event["type"] == "payment_method.detached":
        method.status, method.is_default = MethodStatus.REMOVED, False
        return PROCESSED
    card = pm.get("card") if pm.get("type") == "card" else None
    if card:
        method.brand = card.get("brand") or method.brand
        method.last4 = card.get("last4") or method.last4
        method.exp_month = card.get("exp_month") or method.exp_month
        method.exp_year = card.get("exp_year") or method.exp_year
    return PROCESSED
