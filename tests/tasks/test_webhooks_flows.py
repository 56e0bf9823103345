"""End to end: the emulator signs and delivers each flow's events to the receiver; a real worker applies them.

Each flow runs twice on fresh payments: once delivered once in order, once delivered three times in a
shuffled order. Both must end in the same state.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from db.models import StripeEvent
from tests.conftest import TEST_WEBHOOK_SECRETS
from tests.tasks.handlers.support import receiver, snapshot, wait_until, world

ACH_SETTLE_S = 5 * 86400
MANDATE = {
    "customer_acceptance": {"type": "online", "online": {"ip_address": "203.0.113.9", "user_agent": "pytest"}}
}


@pytest.fixture()
def endpoint(db, emulator, gateway, worker):
    with receiver() as url:
        emulator.add_webhook_endpoint(url, secrets=[TEST_WEBHOOK_SECRETS[0]])
        yield emulator


def pay(gateway, payment_id: int, pm: str, bank: bool = False):
    params = {
        "amount": 10_000,
        "currency": "usd",
        "payment_method": pm,
        "confirm": True,
        "metadata": {"payment_id": str(payment_id)},
        "payment_method_types": ["us_bank_account" if bank else "card"],
    }
    if bank:
        params["mandate_data"] = MANDATE
    intent = gateway.create_payment_intent(params=params, idempotency_key=f"test-pay-{payment_id}")
    _record_intent(payment_id, intent)
    return intent


def _record_intent(payment_id: int, intent) -> None:
    """What execute_payment does with Stripe's answer: remember the intent and apply a processing status."""
    from db.queries import payments as payment_rows
    from db.session import transaction
    from tasks.flows import ledger
    from tasks.handlers.payment_intents import apply_intent
    from tests.tasks.handlers.support import now

    with transaction() as session:
        payment = payment_rows.lock_payment(session, payment_id)
        if payment.stripe_payment_intent_id is None:
            ledger.update_payment(session, payment, {"stripe_payment_intent_id": intent.id}, now=now())
        if intent.status == "processing":
            snapshot = {"id": intent.id, "status": intent.status, "latest_charge": intent.charge_id}
            apply_intent(session, payment, "payment_intent.processing", snapshot, source="api", now=now())


def card_refund_partial_then_full(emulator, gateway, payment_id):
    intent = pay(gateway, payment_id, "pm_card_visa")
    gateway._client.v1.refunds.create({"payment_intent": intent.id, "amount": 3_000})
    gateway._client.v1.refunds.create({"payment_intent": intent.id})


def card_decline(emulator, gateway, payment_id):
    pay(gateway, payment_id, "pm_card_visa_chargeDeclinedInsufficientFunds")


def card_dispute_lost(emulator, gateway, payment_id):
    pay(gateway, payment_id, "pm_card_createDispute")
    dispute = [d for d in emulator.disputes() if d["metadata"] == {} and d["status"] == "needs_response"][-1]
    gateway._client.v1.disputes.close(dispute["id"])


def card_dispute_won(emulator, gateway, payment_id):
    intent = pay(gateway, payment_id, "pm_card_createDispute")
    [dispute] = gateway._client.v1.disputes.list({"payment_intent": intent.id}).data
    gateway._client.v1.disputes.update(dispute.id, {"evidence": {"uncategorized_text": "winning_evidence"}})


def card_inquiry_closed(emulator, gateway, payment_id):
    intent = pay(gateway, payment_id, "pm_card_createDisputeInquiry")
    [dispute] = gateway._client.v1.disputes.list({"payment_intent": intent.id}).data
    gateway._client.v1.disputes.update(dispute.id, {"evidence": {"uncategorized_text": "winning_evidence"}})


def ach_settles(emulator, gateway, payment_id):
    pay(gateway, payment_id, "pm_usBankAccount_success", bank=True)
    emulator.advance(ACH_SETTLE_S)


def ach_fails(emulator, gateway, payment_id):
    pay(gateway, payment_id, "pm_usBankAccount_insufficientFunds", bank=True)
    emulator.advance(ACH_SETTLE_S)


def ach_late_return(emulator, gateway, payment_id):
    pay(gateway, payment_id, "pm_usBankAccount_dispute", bank=True)
    emulator.advance(ACH_SETTLE_S)


FLOWS = {
    "card_refund_partial_then_full": (
        card_refund_partial_then_full,
        "card",
        {"status": "refunded", "refunded_minor": 10_000},
    ),
    "card_decline": (card_decline, "card", {"status": "failed", "failure_code": "insufficient_funds"}),
    "card_dispute_lost": (card_dispute_lost, "card", {"status": "disputed", "needs_review": False}),
    "card_dispute_won": (
        card_dispute_won,
        "card",
        {
            "status": "succeeded",
            "needs_review": False,
            "allocations": [("applied", 6_000), ("applied", 4_000)],
        },
    ),
    "card_inquiry_closed": (card_inquiry_closed, "card", {"status": "succeeded", "needs_review": False}),
    "ach_settles": (ach_settles, "us_bank_account", {"status": "succeeded"}),
    "ach_fails": (ach_fails, "us_bank_account", {"status": "failed"}),
    "ach_late_return": (ach_late_return, "us_bank_account", {"status": "disputed", "needs_review": False}),
}


def run_flow(db, emulator, gateway, flow, kind, **delivery) -> dict:
    ids = world(db, kind=kind, invoices=(6_000, 4_000))
    emulator.webhook_options(**delivery)
    flow(emulator, gateway, ids["payment"])
    if delivery.get("hold"):
        assert emulator.release_held() > 0
    assert emulator.wait_for_deliveries(timeout=20)
    wait_until(lambda: _all_done(db), timeout_s=20)
    state = snapshot(db, ids["payment"])
    # Refunds overtaking each other coalesce into one email and one reversal; compare kinds and states.
    state["emails"] = sorted({k.split(":", 1)[0] for k in state["emails"]})
    state["allocations"] = [(s, amount if s == "applied" else None) for _, s, amount in state["allocations"]]
    return state


def _all_done(db) -> bool:
    with db() as session:
        return not session.scalars(
            select(StripeEvent.id).where(StripeEvent.status == "received").limit(1)
        ).first()


@pytest.mark.parametrize("name", FLOWS)
def test_flow_delivered_thrice_shuffled_ends_like_once_in_order(db, endpoint, gateway, name):
    flow, kind, expected = FLOWS[name]
    in_order = run_flow(db, endpoint, gateway, flow, kind)
    shuffled = run_flow(db, endpoint, gateway, flow, kind, duplicates=3, shuffle=True, hold=True)
    assert {k: in_order[k] for k in expected} == expected
    assert shuffled == in_order
    with db() as session:
        assert not session.scalars(select(StripeEvent).where(StripeEvent.status == "failed")).all()
