"""setup_intent.*, payment_method.* and mandate.updated handlers against real PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from db.models import Email, PaymentMethod, StripeEvent
from tasks.webhooks import process_stripe_event
from tests import factories
from tests.tasks.handlers.support import make_event, store_event


def saved(db, kind="us_bank_account", **overrides) -> int:
    with db() as session, session.begin():
        account = factories.account(session)
        values = dict(
            status="verification_pending", stripe_setup_intent_id="seti_1", stripe_payment_method_id="pm_1"
        )
        return factories.method(session, account, kind=kind, **{**values, **overrides}).id


def run(db, event: dict) -> str:
    store_event(db, event)
    process_stripe_event(event["id"])
    with db() as session:
        return session.get(StripeEvent, event["id"]).status


def method_and_emails(db, method_id):
    with db() as session:
        return session.get(PaymentMethod, method_id), sorted(session.scalars(select(Email.kind)))


def setup_intent(status, **extra):
    return {"id": "seti_1", "object": "setup_intent", "status": status, "payment_method": "pm_1", **extra}


def test_microdeposits_needed_then_verified(db):
    method_id = saved(db)
    action = {
        "type": "verify_with_microdeposits",
        "verify_with_microdeposits": {"arrival_date": 1, "microdeposit_type": "amounts"},
    }
    run(db, make_event("setup_intent.requires_action", setup_intent("requires_action", next_action=action)))
    run(db, make_event("setup_intent.succeeded", setup_intent("succeeded")))
    run(db, make_event("setup_intent.requires_action", setup_intent("requires_action", next_action=action)))
    method, emails = method_and_emails(db, method_id)
    assert method.status == "active"
    assert emails == ["bank_verification_needed", "bank_verified"]


def test_setup_failed_records_the_reason(db):
    method_id = saved(db)
    run(
        db,
        make_event(
            "setup_intent.setup_failed",
            setup_intent(
                "requires_payment_method", last_setup_error={"message": "Microdeposit verification failed."}
            ),
        ),
    )
    method, emails = method_and_emails(db, method_id)
    assert (method.status, method.verification_error) == (
        "verification_failed",
        "Microdeposit verification failed.",
    )
    assert emails == ["bank_verification_failed"]


def test_detached_method_is_removed_and_no_longer_default(db):
    method_id = saved(db, kind="card", status="active", is_default=True)
    run(db, make_event("payment_method.detached", {"id": "pm_1", "object": "payment_method", "type": "card"}))
    method, _ = method_and_emails(db, method_id)
    assert (method.status, method.is_default) == ("removed", False)


def test_automatically_updated_card_gets_new_details(db):
    method_id = saved(db, kind="card", status="active")
    card = {"brand": "visa", "last4": "1881", "exp_month": 4, "exp_year": 2031}
    run(
        db,
        make_event(
            "payment_method.automatically_updated",
            {"id": "pm_1", "object": "payment_method", "type": "card", "card": card},
        ),
    )
    method, _ = method_and_emails(db, method_id)
    assert (method.last4, method.exp_month, method.exp_year) == ("1881", 4, 2031)


def test_revoked_mandate_fails_the_bank_account(db):
    method_id = saved(db, status="active", is_default=True)
    run(
        db,
        make_event(
            "mandate.updated",
            {"id": "mandate_1", "object": "mandate", "status": "inactive", "payment_method": "pm_1"},
        ),
    )
    method, _ = method_and_emails(db, method_id)
    assert (method.status, method.is_default) == ("verification_failed", False)


def test_events_for_unknown_methods_are_ignored(db):
    assert (
        run(db, make_event("payment_method.attached", {"id": "pm_x", "object": "payment_method"}))
        == "ignored"
    )
    assert (
        run(db, make_event("setup_intent.succeeded", {"id": "seti_x", "object": "setup_intent"})) == "ignored"
    )
