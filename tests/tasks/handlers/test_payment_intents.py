"""payment_intent.* handlers, called through the actor against real PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from db.models import Email, Payment, StripeEvent
from tasks.webhooks import process_stripe_event
from tests.tasks.handlers.support import make_event, ours, snapshot, store_event, timeline, world


def intent(intent_id: str, status: str, payment_id: int, **extra) -> dict:
    return {
        "id": intent_id,
        "object": "payment_intent",
        "status": status,
        "amount": 10_000,
        "currency": "usd",
        "latest_charge": f"ch_{intent_id}",
        "metadata": {"payment_id": str(payment_id)},
        **extra,
    }


def process(db, event: dict) -> StripeEvent:
    store_event(db, event)
    process_stripe_event(event["id"])
    with db() as session:
        return session.get(StripeEvent, event["id"])


def test_succeeded_applies_allocations_and_queues_the_confirmation(db):
    ids = world(db, intent_id="pi_ok")
    row = process(db, make_event("payment_intent.succeeded", intent("pi_ok", "succeeded", ids["payment"])))
    assert (row.status, row.attempts) == ("processed", 1)
    state = snapshot(db, ids["payment"])
    assert state["status"] == "succeeded" and state["charge"]
    assert [a[1] for a in state["allocations"]] == ["applied", "applied"]
    assert state["emails"] == [f"payment_confirmation:payment:{ids['payment']}"]


def test_unknown_intent_is_found_by_metadata_and_gets_its_ids(db):
    ids = world(db, intent_id=None)
    made = intent("pi_meta", "succeeded", ids["payment"], **ours(db, ids["payment"]))
    process(db, make_event("payment_intent.succeeded", made))
    with db() as session:
        payment = session.get(Payment, ids["payment"])
        assert (payment.status, payment.stripe_payment_intent_id, payment.stripe_charge_id) == (
            "succeeded",
            "pi_meta",
            "ch_pi_meta",
        )


def test_intent_that_is_not_ours_is_ignored(db):
    world(db, intent_id="pi_mine")
    row = process(db, make_event("payment_intent.succeeded", intent("pi_other", "succeeded", 0, metadata={})))
    assert row.status == "ignored" and "pi_other" in row.error


def test_intent_for_a_payment_with_another_intent_is_ignored_and_recorded(db):
    ids = world(db, intent_id="pi_current")
    row = process(db, make_event("payment_intent.succeeded", intent("pi_old", "succeeded", ids["payment"])))
    assert row.status == "ignored"
    assert snapshot(db, ids["payment"])["status"] == "submitting"
    assert timeline(db, ids["payment"]) == [("submitting", "submitting", True)]


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (
            {"code": "card_declined", "decline_code": "insufficient_funds", "message": "Insufficient funds."},
            "failed",
            "insufficient_funds",
        ),
        (
            {
                "code": "authentication_required",
                "decline_code": "authentication_required",
                "message": "Auth.",
            },
            "requires_action",
            "authentication_required",
        ),
    ],
)
def test_payment_failed_records_the_failure(db, error, status, code):
    ids = world(db, intent_id="pi_fail")
    event = make_event(
        "payment_intent.payment_failed",
        intent("pi_fail", "requires_payment_method", ids["payment"], last_payment_error=error),
    )
    process(db, event)
    state = snapshot(db, ids["payment"])
    assert (state["status"], state["failure_code"]) == (status, code)
    expected = "released" if status == "failed" else "reserved"
    assert [a[1] for a in state["allocations"]] == [expected, expected]
    kind = "payment_failed" if status == "failed" else "authentication_required"
    assert state["emails"] == [f"{kind}:payment:{ids['payment']}"]


def test_ach_processing_then_succeeded_sends_initiated_then_settled(db):
    ids = world(db, kind="us_bank_account", intent_id="pi_ach")
    process(db, make_event("payment_intent.processing", intent("pi_ach", "processing", ids["payment"])))
    assert snapshot(db, ids["payment"])["status"] == "processing"
    process(db, make_event("payment_intent.succeeded", intent("pi_ach", "succeeded", ids["payment"])))
    state = snapshot(db, ids["payment"])
    assert state["status"] == "succeeded"
    assert state["emails"] == sorted(
        [f"ach_initiated:payment:{ids['payment']}", f"ach_settled:payment:{ids['payment']}"]
    )


def test_late_processing_after_succeeded_is_recorded_and_changes_nothing(db):
    ids = world(db, kind="us_bank_account", intent_id="pi_late")
    process(db, make_event("payment_intent.succeeded", intent("pi_late", "succeeded", ids["payment"])))
    before = snapshot(db, ids["payment"])
    row = process(
        db, make_event("payment_intent.processing", intent("pi_late", "processing", ids["payment"]))
    )
    assert row.status == "processed"
    assert snapshot(db, ids["payment"]) == before
    assert timeline(db, ids["payment"])[-1] == ("succeeded", "succeeded", True)


def test_canceled_releases_the_invoices(db):
    ids = world(db, intent_id="pi_cancel", status="requires_action")
    process(db, make_event("payment_intent.canceled", intent("pi_cancel", "canceled", ids["payment"])))
    state = snapshot(db, ids["payment"])
    assert state["status"] == "canceled"
    assert [a[1] for a in state["allocations"]] == ["released", "released"]


def test_same_event_twice_is_processed_once(db):
    ids = world(db, intent_id="pi_twice")
    event = make_event("payment_intent.succeeded", intent("pi_twice", "succeeded", ids["payment"]))
    process(db, event)
    process_stripe_event(event["id"])
    with db() as session:
        assert session.get(StripeEvent, event["id"]).attempts == 1
        assert len(session.scalars(select(Email).where(Email.payment_id == ids["payment"])).all()) == 1
    assert len(timeline(db, ids["payment"])) == 1


def test_unknown_event_type_is_ignored(db):
    row = process(db, make_event("customer.created", {"id": "cus_1", "object": "customer"}))
    assert row.status == "ignored" and "customer.created" in row.error
