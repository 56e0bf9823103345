"""setup_intent.* events: a saved bank account's verification outcome, forwards only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from db.queries import methods as method_rows
from tasks.domain.states import EmailKind, MethodKind, MethodStatus
from tasks.handlers.common import PROCESSED, Handled, ignored, obj, object_id, queue_method_email

S = MethodStatus


def handle(session: Session, event: dict[str, Any], now: datetime) -> Handled:
    """Verified, needs microdeposits, or failed: only a method still pending verification moves."""
    intent = obj(event)
    method = method_rows.lock_method_for_setup_intent(
        session, intent["id"], object_id(intent.get("payment_method"))
    )
    if method is None:
        return ignored(f"no payment method for SetupIntent {intent['id']}")
    method.stripe_setup_intent_id = method.stripe_setup_intent_id or intent["id"]
    bank = method.kind == MethodKind.US_BANK_ACCOUNT
    if method.status != S.VERIFICATION_PENDING:
        return PROCESSED
    if event["type"] == "setup_intent.succeeded":
        method.status, method.verification_error = S.ACTIVE, None
        if bank:
            queue_method_email(session, method, EmailKind.BANK_VERIFIED, now)
    elif event["type"] == "setup_intent.setup_failed":
        error = intent.get("last_setup_error") or {}
        method.status = S.VERIFICATION_FAILED
        method.verification_error = error.get("message") or "The account could not be verified."
        if bank:
            queue_method_email(
                session,
                method,
                EmailKind.BANK_VERIFICATION_FAILED,
                now,
                {"failure_message": method.verification_error},
            )
    elif bank and (intent.get("next_action") or {}).get("type") == "verify_with_microdeposits":
        details = intent["next_action"].get("verify_with_microdeposits") or {}
        queue_method_email(
            session,
            method,
            EmailKind.BANK_VERIFICATION_NEEDED,
            now,
            {
                "arrival_date": details.get("arrival_date"),
                "microdeposit_type": details.get("microdeposit_type"),
            },
        )
    return PROCESSED
