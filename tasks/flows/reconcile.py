"""Queue `maintenance`: re-send webhook events left `received`, and ask Stripe what we never heard.

Both return counts so the clock's actors and tests can call them directly.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from db.queries import inbox as inbox_rows
from db.queries import payments as payment_rows
from db.session import transaction
from tasks.domain.errors import StripeMisconfigured, StripeUnavailable
from tasks.domain.events import intent_event_target, intent_event_type, route_for
from tasks.domain.states import PaymentStatus
from tasks.flows import messages
from tasks.flows.webhooks import process_event
from tasks.gateways.stripe import IntentResult, StripeGateway, get_gateway
from tasks.handlers.payment_intents import apply_intent

_log = logging.getLogger(__name__)
P = PaymentStatus
# A stored event is normally processed within a second; two minutes means its message was lost.
RECEIVED_GRACE_SECONDS = 120
# One sweep's worth; the next run takes the rest.
SWEEP_LIMIT = 1_000
# Stripe gives up on a delivery after three days; looking back four covers every event it dropped.
UNDELIVERED_LOOKBACK_SECONDS = 4 * 86_400
# How long each in-flight status normally lasts before we ask Stripe: a card answers in seconds,
# 3-D Secure waits on a person, an ACH debit settles in about four business days.
STUCK_AFTER_SECONDS = {
    P.SUBMITTING: 15 * 60,
    P.REQUIRES_ACTION: 6 * 3_600,
    P.PROCESSING: 5 * 86_400,
}
# Retrieves per run, kept well under Stripe's test-mode rate limit for a one-minute job.
RECONCILE_LIMIT = 200
SOURCE = "reconciler"


def sweep_received_events(
    now: datetime, grace_seconds: int = RECEIVED_GRACE_SECONDS, limit: int = SWEEP_LIMIT
) -> dict[str, int]:
    """Send process_stripe_event again for every event still `received` past the grace period."""
    with transaction() as session:
        due = inbox_rows.list_due_received_events(session, now, timedelta(seconds=grace_seconds), limit)
    messages.send_now("process_stripe_event", [(event_id,) for event_id in due])
    return {"resent": len(due)}


def reconcile_with_stripe(
    now: datetime,
    gateway: StripeGateway | None = None,
    lookback_seconds: int = UNDELIVERED_LOOKBACK_SECONDS,
    limit: int = RECONCILE_LIMIT,
) -> dict[str, int]:
    """Store and apply undelivered events we lack, then settle payments stuck in flight from Stripe's word."""
    gateway = gateway or get_gateway()
    counts = _recover_undelivered(gateway, now, lookback_seconds)
    counts.update(_check_stuck_payments(gateway, now, limit))
    return counts


def _recover_undelivered(gateway: StripeGateway, now: datetime, lookback_seconds: int) -> dict[str, int]:
    since = int(now.timestamp()) - lookback_seconds
    listed = gateway.list_events({"delivery_success": False, "created": {"gte": since}, "limit": 100})
    wanted = [e for e in listed if route_for(e.get("type", ""))]
    with transaction() as session:
        known = inbox_rows.list_known_event_ids(session, [e["id"] for e in wanted])
        fresh = [e for e in wanted if e["id"] not in known]
        for event in fresh:
            inbox_rows.insert_event(session, event, now)
    # Oldest first, as Stripe created them; each is applied and marked in its own transaction.
    for event in sorted(fresh, key=lambda e: e.get("created") or 0):
        process_event(event["id"], now)
    return {"events_listed": len(listed), "events_recovered": len(fresh)}


def _check_stuck_payments(gateway: StripeGateway, now: datetime, limit: int) -> dict[str, int]:
    checked = moved = failed = 0
    for status, seconds in STUCK_AFTER_SECONDS.items():
        with transaction() as session:
            due = payment_rows.list_due_unsettled_payments(
                session, now, status, timedelta(seconds=seconds), limit
            )
        for payment_id in due:
            checked += 1
            try:
                moved += _settle_from_stripe(gateway, payment_id, now)
            except (StripeUnavailable, StripeMisconfigured):
                # Stripe down or our key refused: every other payment would fail alike; the run is retried
                raise
            except Exception:
                # One payment Stripe will not tell us about (or whose answer we cannot apply) must not
                # stop the run each time: it is reported, goes to the back of the line, and the rest go on.
                _log.exception("reconciler could not settle payment %s from Stripe", payment_id)
                with transaction() as session:
                    payment_rows.mark_reconciled(session, payment_id, now)
                failed += 1
    return {"payments_checked": checked, "payments_moved": moved, "payments_failed": failed}


def _settle_from_stripe(gateway: StripeGateway, payment_id: int, now: datetime) -> int:
    with transaction() as session:
        intent_id = payment_rows.find_payment(session, payment_id).stripe_payment_intent_id
    intent = gateway.retrieve_payment_intent(intent_id)
    event_type = intent_event_type(intent.status)
    with transaction() as session:
        payment = payment_rows.lock_payment_by(session, "stripe_payment_intent_id", intent.id)
        before = payment.status
        snapshot = intent_snapshot(intent)
        if (
            event_type is not None
            and intent_event_target(event_type, snapshot["last_payment_error"]) != before
        ):
            apply_intent(session, payment, event_type, snapshot, source=SOURCE, now=now)
        moved = int(payment.status != before)
        payment_rows.mark_reconciled(session, payment.id, now)
        return moved


def intent_snapshot(intent: IntentResult) -> dict[str, Any]:
    """An IntentResult in the shape handlers read from webhook payloads."""
    error = None
    if intent.error_code or intent.decline_code or intent.error_message:
        error = {
            "code": intent.error_code,
            "decline_code": intent.decline_code,
            "message": intent.error_message,
        }
    return {
        "id": intent.id,
        "object": "payment_intent",
        "status": intent.status,
        "amount": intent.amount,
        "currency": intent.currency,
        "latest_charge": intent.charge_id,
        "last_payment_error": error,
        "metadata": intent.metadata or {},
    }
