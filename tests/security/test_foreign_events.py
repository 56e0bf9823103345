"""Issue 13, item 1: a signed event about someone else's Stripe object never moves our money.

Payments are found by the Stripe ids they recorded; a PaymentIntent's metadata counts only when the
intent was made by this deployment and agrees with our row; Stripe taking money our row says it did
not is flagged, never dropped. Each case replays what was tried against the real handlers.
"""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import select

from db.models import Allocation, Email, Payment, PaymentEvent, StripeEvent
from db.queries import payments as payment_rows
from db.session import transaction
from tasks import api
from tasks.domain.events import DEPLOYMENT_KEY, WAIT_FOR_PAYMENT_S
from tasks.domain.states import PaymentStatus as P
from tasks.flows import ledger
from tasks.flows import payments as execution
from tasks.flows.reconcile import sweep_received_events
from tasks.gateways.stripe import IntentResult
from tasks.webhooks import process_stripe_event
from tests.helpers import queued_messages
from tests.tasks.handlers.support import make_event, now, ours, store_event, world


def _run(db, event: dict) -> StripeEvent:
    store_event(db, event)
    process_stripe_event(event["id"])
    with db() as session:
        return session.get(StripeEvent, event["id"])


def _state(db, payment_id: int) -> tuple:
    with db() as session:
        payment = session.get(Payment, payment_id)
        states = sorted(session.scalars(select(Allocation.state).where(Allocation.payment_id == payment_id)))
        kinds = sorted(session.scalars(select(Email.kind).where(Email.payment_id == payment_id)))
        return payment.status, payment.refunded_minor, payment.needs_review, states, kinds


def _foreign_intent(intent_id: str, payment_id: int, status: str, **fields) -> dict:
    """Another integration's PaymentIntent on the same Stripe account whose metadata names our payment."""
    return {
        "id": intent_id,
        "object": "payment_intent",
        "status": status,
        "amount": 1,
        "currency": "eur",
        "customer": "cus_someone_else",
        "latest_charge": f"ch_{intent_id}",
        "metadata": {"payment_id": str(payment_id)},
        **fields,
    }


def _mark_succeeded(db, ids: dict, intent_id: str = "pi_ours") -> None:
    """What execute_payment does with Stripe's answer: record the ids and the success."""
    result = IntentResult(id=intent_id, status="succeeded", charge_id=f"ch_{intent_id}")
    execution._record_outcome(ids["payment"], result, now())


def test_a_foreign_payment_failed_naming_our_payment_fails_nothing_and_our_success_still_lands(db):
    ids = world(db, intent_id=None)  # submitting: our create's answer not recorded yet
    error = {"code": "card_declined", "message": "Declined."}
    foreign = _foreign_intent(
        "pi_foreign", ids["payment"], "requires_payment_method", last_payment_error=error
    )
    row = _run(db, make_event("payment_intent.payment_failed", foreign))
    assert row.status == "ignored" and "not this payment's" in row.error
    assert _state(db, ids["payment"]) == ("submitting", 0, False, ["reserved", "reserved"], [])
    ours_succeeded = {"id": "pi_ours", "object": "payment_intent", "status": "succeeded"}
    ours_succeeded |= {"latest_charge": "ch_pi_ours", **ours(db, ids["payment"])}
    assert _run(db, make_event("payment_intent.succeeded", ours_succeeded)).status == "processed"
    assert _state(db, ids["payment"]) == (
        "succeeded",
        0,
        False,
        ["applied", "applied"],
        ["payment_confirmation"],
    )


def test_an_intent_with_our_marker_but_other_facts_is_still_not_ours(db):
    ids = world(db, intent_id=None)
    made = ours(db, ids["payment"])
    foreign = {"id": "pi_copy", "object": "payment_intent", "status": "succeeded", **made, "amount": 1}
    row = _run(db, make_event("payment_intent.succeeded", foreign))
    assert row.status == "ignored" and "amount differs" in row.error
    assert _state(db, ids["payment"])[0] == "submitting"


def test_another_deployments_intent_is_ignored_even_when_every_fact_agrees(db):
    ids = world(db, intent_id=None)
    made = ours(db, ids["payment"])
    made["metadata"] = {**made["metadata"], DEPLOYMENT_KEY: "staging"}
    row = _run(
        db, make_event("payment_intent.succeeded", {"id": "pi_staging", "status": "succeeded", **made})
    )
    assert row.status == "ignored" and "deployment" in row.error
    assert _state(db, ids["payment"])[0] == "submitting"


def _succeeded(db) -> dict:
    ids = world(db, intent_id=None)
    _mark_succeeded(db, ids)
    return ids


def test_a_foreign_charge_refunded_naming_our_payment_refunds_nothing(db):
    ids = _succeeded(db)
    charge = {
        "id": "ch_foreign",
        "object": "charge",
        "amount": 10_000,
        "amount_refunded": 10_000,
        "currency": "usd",
        "payment_intent": "pi_foreign",
        "metadata": {"payment_id": str(ids["payment"])},
    }
    row = _run(db, make_event("charge.refunded", charge))
    assert row.status == "received"  # waits for a payment that records ch_foreign; none ever will
    old = make_event("charge.refunded", charge, created=int(time.time()) - WAIT_FOR_PAYMENT_S - 60)
    assert _run(db, old).status == "ignored"
    expected = ("succeeded", 0, False, ["applied", "applied"], ["payment_confirmation"])
    assert _state(db, ids["payment"]) == expected


def test_a_foreign_refund_object_naming_our_payment_flags_nothing(db):
    ids = _succeeded(db)
    refund = {
        "id": "re_foreign",
        "object": "refund",
        "amount": 10_000,
        "currency": "usd",
        "charge": "ch_foreign",
        "payment_intent": "pi_foreign",
        "status": "failed",
        "metadata": {"payment_id": str(ids["payment"])},
    }
    old = int(time.time()) - WAIT_FOR_PAYMENT_S - 60
    assert _run(db, make_event("refund.updated", refund, created=old)).status == "ignored"
    assert _state(db, ids["payment"])[:3] == ("succeeded", 0, False)


def test_stripe_taking_money_our_row_says_it_did_not_is_flagged_never_dropped(db):
    ids = world(db, intent_id="pi_taken", status="failed")
    intent = {
        "id": "pi_taken",
        "object": "payment_intent",
        "status": "succeeded",
        "latest_charge": "ch_pi_taken",
    }
    assert _run(db, make_event("payment_intent.succeeded", intent)).status == "processed"
    status, _, needs_review, states, _ = _state(db, ids["payment"])
    assert (status, needs_review) == ("failed", True)
    with db() as session:
        details = session.scalars(
            select(PaymentEvent.detail).where(PaymentEvent.payment_id == ids["payment"])
        )
        assert any("Stripe reports succeeded" in (d.get("contradiction") or "") for d in details)


def test_the_workers_own_answer_contradicting_our_row_is_flagged_too(db):
    ids = world(db, intent_id=None, status="canceled")
    result = IntentResult(id="pi_late", status="succeeded", charge_id="ch_pi_late")
    execution._record_outcome(ids["payment"], result, now())
    status, _, needs_review, _, _ = _state(db, ids["payment"])
    assert (status, needs_review) == ("canceled", True)


def test_the_workers_late_answer_never_moves_a_disputed_payment_back_to_succeeded(db):
    # Issue 17, found by a chaos run: payment_intent.succeeded and a dispute both landed before the
    # worker recorded Stripe's answer, which then moved the payment back with its dispute standing.
    ids = world(db, intent_id="pi_d")
    with transaction() as session:
        payment = payment_rows.lock_payment(session, ids["payment"])
        ledger.apply_transition(session, payment, P.SUCCEEDED, source="t", now=now())
        ledger.apply_transition(session, payment, P.DISPUTED, source="t", now=now())
    assert execution._record_outcome(ids["payment"], IntentResult(id="pi_d", status="succeeded"), now())
    assert _state(db, ids["payment"])[0] == "disputed"
    assert _state(db, ids["payment"])[3] == ["reversed", "reversed"]


def test_a_dispute_before_the_payment_recorded_its_charge_waits_and_then_applies(db, broker):
    # Issue 17, found by a chaos run: a dispute delivered before the worker recorded Stripe's ids was
    # ignored for good, leaving the invoices paid while the chargeback stood.
    ids = world(db, intent_id=None)
    dispute = {
        "id": "dp_early",
        "object": "dispute",
        "amount": 10_000,
        "currency": "usd",
        "charge": "ch_pi_late_ids",
        "payment_intent": "pi_late_ids",
        "reason": "fraudulent",
        "status": "needs_response",
    }
    event = make_event("charge.dispute.created", dispute)
    assert _run(db, event).status == "received"
    _mark_succeeded(db, ids, intent_id="pi_late_ids")  # the worker records Stripe's answer
    assert sweep_received_events(now() + timedelta(minutes=5)) == {"resent": 1}
    assert [list(m.args) for m in queued_messages(broker, "webhooks")] == [[event["id"]]]
    process_stripe_event(event["id"])
    status, _, needs_review, states, kinds = _state(db, ids["payment"])
    assert (status, needs_review, states) == ("disputed", True, ["reversed", "reversed"])
    assert kinds == ["payment_confirmation", "payment_reversed"]


def test_every_payment_intent_we_create_carries_our_deployment_and_search_finds_only_ours(
    shop, emulator, gateway
):
    receipt = api.pay_invoices(
        shop.account_id, shop.invoices[:1], shop.methods["visa"], "k-marker", now=shop.now
    )
    execution.execute_payment(receipt.payment_id, shop.now)
    (made,) = [
        pi for pi in emulator.payment_intents() if pi["metadata"].get("payment_id") == str(receipt.payment_id)
    ]
    assert made["metadata"][DEPLOYMENT_KEY] == gateway.deployment == "remit"
    assert made["metadata"]["account_id"] == str(shop.account_id)
    gateway.deployment = "another"
    try:
        assert gateway.find_payment_intent(receipt.payment_id) is None
    finally:
        gateway.deployment = "remit"
    assert gateway.find_payment_intent(receipt.payment_id).id == made["id"]
