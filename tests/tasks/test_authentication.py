"""Card authentication completes or ends: get_payment hands the web tier what Stripe.js needs, confirm_payment
applies Stripe's word, cancel_payment and the authentication window end the rest. Real PostgreSQL, the
emulator driven as Stripe.js drives it (publishable key, client secret, the test 3-D Secure page)."""

from __future__ import annotations

import threading
from datetime import timedelta
from urllib.error import HTTPError

import pytest
from sqlalchemy import select

from db.models import Allocation, Email, Payment, PaymentEvent, Seller
from sandbox.stripe_js import StripeJs, StripeJsError
from tasks import api
from tasks.domain.errors import RemitError
from tasks.domain.states import PaymentStatus as P
from tasks.flows import authentication
from tasks.flows import payments as execution
from tasks.flows.webhooks import process_event
from tests.tasks.handlers.support import store_event


def _waiting(shop, key="k1", pay_on=None, invoices=None):
    """A payment by the card that always needs 3-D Secure, executed: it waits for its customer."""
    receipt = api.pay_invoices(
        shop.account_id, invoices or shop.invoices[:2], shop.methods["auth"], key, pay_on=pay_on, now=shop.now
    )
    if pay_on is not None:
        execution.dispatch_due_payments(
            shop.now.replace(year=pay_on.year, month=pay_on.month, day=pay_on.day)
        )
    execution.execute_payment(receipt.payment_id, shop.now)
    assert _payment(shop, receipt.payment_id).status == P.REQUIRES_ACTION
    return receipt.payment_id


def _payment(shop, payment_id) -> Payment:
    with shop.db() as session:
        return session.get(Payment, payment_id)


def _allocations(shop, payment_id):
    with shop.db() as session:
        return sorted(session.scalars(select(Allocation.state).where(Allocation.payment_id == payment_id)))


def _emails(shop, payment_id):
    with shop.db() as session:
        return list(
            session.scalars(select(Email.kind).where(Email.payment_id == payment_id).order_by(Email.id))
        )


def _timeline(shop, payment_id):
    with shop.db() as session:
        rows = session.execute(
            select(PaymentEvent.to_status, PaymentEvent.applied, PaymentEvent.detail)
            .where(PaymentEvent.payment_id == payment_id)
            .order_by(PaymentEvent.id)
        )
        return [tuple(r) for r in rows]


def _intent(emulator, payment_id):
    [intent] = [i for i in emulator.payment_intents() if i["metadata"].get("payment_id") == str(payment_id)]
    return intent


def _set_seller(shop, **values):
    with shop.db() as session, session.begin():
        seller = session.get(Seller, shop.seller.id)
        for name, value in values.items():
            setattr(seller, name, value)


def test_get_payment_hands_the_web_tier_the_client_secret_while_the_payment_waits(shop, emulator):
    payment_id = _waiting(shop)
    view = api.get_payment(shop.account_id, payment_id)
    intent = _intent(emulator, payment_id)
    assert view.status == "requires_action"
    assert view.action.client_secret == intent["client_secret"]
    assert view.action.next_action == "use_stripe_sdk"
    assert view.action.payment_method == intent["payment_method"]
    assert view.action.expires_at == shop.now + timedelta(hours=24)
    assert view.method.last4 and view.method.kind == "card"
    assert [line.invoice_id for line in view.lines] == sorted(shop.invoices[:2])
    assert [entry.status for entry in view.timeline] == ["pending", "requires_action"]
    assert view.failure_reason is None


def test_get_payment_of_another_account_is_refused(shop, emulator, db):
    from tests import factories

    payment_id = _waiting(shop)
    with db() as session:
        other = factories.account(session, session.get(Seller, shop.seller.id), number="OTHER-1").id
        session.commit()
    with pytest.raises(RemitError) as refused:
        api.get_payment(other, payment_id)
    assert refused.value.code == "payment_not_found"
    with pytest.raises(RemitError):
        api.cancel_payment(other, payment_id)
    assert _payment(shop, payment_id).status == "requires_action"


def test_completed_authentication_is_confirmed_and_pays_the_invoices(shop, emulator):
    payment_id = _waiting(shop)
    action = api.get_payment(shop.account_id, payment_id).action
    intent = StripeJs(emulator.url).pay(action.client_secret, action.next_action, action.payment_method)
    assert intent["status"] == "succeeded"
    view = api.confirm_payment(shop.account_id, payment_id, now=shop.now)
    assert view.status == "succeeded" and view.action is None
    assert _allocations(shop, payment_id) == ["applied", "applied"]
    assert _emails(shop, payment_id) == ["authentication_required", "payment_confirmation"]
    lines = len(_timeline(shop, payment_id))
    # Again, and then the webhook Stripe sent: nothing moves, nothing is written twice.
    assert api.confirm_payment(shop.account_id, payment_id, now=shop.now).status == "succeeded"
    assert len(_timeline(shop, payment_id)) == lines
    succeeded = [e for e in emulator.events() if e["type"] == "payment_intent.succeeded"]
    process_event(store_event(shop.db, succeeded[-1]), shop.now)
    assert _payment(shop, payment_id).status == "succeeded"
    assert {status for status, _, _ in _timeline(shop, payment_id)[lines:]} <= {"succeeded"}
    assert _allocations(shop, payment_id) == ["applied", "applied"]
    assert _emails(shop, payment_id) == ["authentication_required", "payment_confirmation"]


def test_the_webhook_first_then_confirm_payment_changes_nothing(shop, emulator):
    payment_id = _waiting(shop)
    action = api.get_payment(shop.account_id, payment_id).action
    StripeJs(emulator.url).pay(action.client_secret, action.next_action, action.payment_method)
    succeeded = [e for e in emulator.events() if e["type"] == "payment_intent.succeeded"]
    process_event(store_event(shop.db, succeeded[-1]), shop.now)
    assert _payment(shop, payment_id).status == "succeeded"
    before = _timeline(shop, payment_id)
    assert api.confirm_payment(shop.account_id, payment_id, now=shop.now).status == "succeeded"
    assert _timeline(shop, payment_id) == before
    assert _emails(shop, payment_id) == ["authentication_required", "payment_confirmation"]


def test_failed_authentication_fails_the_payment_with_a_reason_a_person_reads(shop, emulator):
    payment_id = _waiting(shop)
    action = api.get_payment(shop.account_id, payment_id).action
    StripeJs(emulator.url).pay(
        action.client_secret, action.next_action, action.payment_method, complete=False
    )
    view = api.confirm_payment(shop.account_id, payment_id, now=shop.now)
    assert view.status == "failed"
    assert view.failure_code == "payment_intent_authentication_failure"
    assert view.failure_reason == "Your bank could not confirm the payment."
    assert _allocations(shop, payment_id) == ["released", "released"]
    assert _emails(shop, payment_id) == ["authentication_required", "payment_failed"]


def test_a_scheduled_charge_declined_for_authentication_is_confirmed_on_session(shop, emulator):
    day = shop.today + timedelta(days=3)
    payment_id = _waiting(shop, pay_on=day)
    view = api.get_payment(shop.account_id, payment_id)
    assert view.action.next_action == "confirm_on_session"
    assert view.action.expires_at == shop.now + timedelta(hours=72)
    intent = StripeJs(emulator.url).pay(
        view.action.client_secret, "confirm_on_session", view.action.payment_method
    )
    assert intent["status"] == "succeeded"
    assert api.confirm_payment(shop.account_id, payment_id, now=shop.now).status == "succeeded"
    assert _allocations(shop, payment_id) == ["applied", "applied"]


def test_cancel_payment_cancels_the_intent_with_our_key_frees_the_invoices_and_emails(shop, emulator):
    payment_id = _waiting(shop)
    intent_id = _payment(shop, payment_id).stripe_payment_intent_id
    view = api.cancel_payment(shop.account_id, payment_id, now=shop.now)
    assert view.status == "canceled" and not view.replayed
    assert _intent(emulator, payment_id)["status"] == "canceled"
    assert _intent(emulator, payment_id)["cancellation_reason"] == "requested_by_customer"
    [cancel] = [r for r in emulator.requests() if r["path"].endswith("/cancel")]
    assert cancel["idempotency_key"] == f"remit-payment-{payment_id}-cancel-{intent_id}"
    assert _allocations(shop, payment_id) == ["released", "released"]
    assert _emails(shop, payment_id) == ["authentication_required", "scheduled_canceled"]
    # The invoices can be paid again at once, and a second cancel is the first one's answer.
    api.pay_invoices(shop.account_id, shop.invoices[:2], shop.methods["visa"], "k2", now=shop.now)
    assert api.cancel_payment(shop.account_id, payment_id, now=shop.now).replayed
    canceled = [e for e in emulator.events() if e["type"] == "payment_intent.canceled"]
    process_event(store_event(shop.db, canceled[-1]), shop.now)
    assert _emails(shop, payment_id) == ["authentication_required", "scheduled_canceled"]


def test_cancel_payment_still_cancels_a_scheduled_payment_without_stripe(shop, emulator):
    day = shop.today + timedelta(days=5)
    receipt = api.pay_invoices(
        shop.account_id, shop.invoices[:1], shop.methods["visa"], "k1", pay_on=day, now=shop.now
    )
    assert api.cancel_payment(shop.account_id, receipt.payment_id).status == "canceled"
    assert [r for r in emulator.requests() if "payment_intents" in r["path"]] == []


def test_cancel_after_stripe_took_the_payment_is_refused_and_on_the_timeline(shop, emulator):
    payment_id = _waiting(shop)
    action = api.get_payment(shop.account_id, payment_id).action
    StripeJs(emulator.url).pay(action.client_secret, action.next_action, action.payment_method)
    with pytest.raises(RemitError) as refused:
        api.cancel_payment(shop.account_id, payment_id, now=shop.now)
    assert refused.value.code == "not_cancelable"
    assert _payment(shop, payment_id).status == "succeeded"
    assert _allocations(shop, payment_id) == ["applied", "applied"]
    notes = [detail for _, _, detail in _timeline(shop, payment_id) if "cancel_refused" in detail]
    assert len(notes) == 1
    view = api.get_payment(shop.account_id, payment_id)
    assert "too late" in view.timeline[-1].text


def test_a_cancel_racing_a_completed_authentication_has_exactly_one_winner(shop, emulator):
    stripe_js = StripeJs(emulator.url)
    for n in range(4):
        payment_id = _waiting(shop, key=f"race-{n}", invoices=[shop.invoices[n]])
        action = api.get_payment(shop.account_id, payment_id).action
        outcomes = {}
        start = threading.Barrier(2)

        def customer_pays(action=action, payment_id=payment_id, outcomes=outcomes, start=start):
            start.wait()
            try:
                stripe_js.handle_next_action(action.client_secret)
            except (HTTPError, StripeJsError) as exc:
                outcomes["pay_error"] = exc
            outcomes["confirmed"] = api.confirm_payment(shop.account_id, payment_id).status

        def customer_cancels(payment_id=payment_id, outcomes=outcomes, start=start):
            start.wait()
            try:
                outcomes["canceled"] = api.cancel_payment(shop.account_id, payment_id).status
            except RemitError as exc:
                outcomes["cancel_error"] = exc.code

        threads = [threading.Thread(target=customer_pays), threading.Thread(target=customer_cancels)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        status = _payment(shop, payment_id).status
        intent = _intent(emulator, payment_id)
        refused = [d for _, _, d in _timeline(shop, payment_id) if "cancel_refused" in d]
        if status == "succeeded":
            assert intent["status"] == "succeeded" and outcomes["cancel_error"] == "not_cancelable"
            assert len(refused) == 1 and _allocations(shop, payment_id) == ["applied"]
        else:
            assert status == "canceled" and intent["status"] == "canceled"
            assert outcomes["canceled"] == "canceled" and refused == []
            assert _allocations(shop, payment_id) == ["released"]
        assert outcomes["confirmed"] == status


def test_the_window_cancels_a_payment_left_waiting_and_tells_the_customer(shop, emulator):
    payment_id = _waiting(shop)
    assert authentication.expire_waiting(shop.now + timedelta(hours=23)) == {
        "waiting": 1,
        "expired": 0,
        "canceled": 0,
        "refused": 0,
    }
    assert _payment(shop, payment_id).status == "requires_action"
    counts = authentication.expire_waiting(shop.now + timedelta(hours=24, minutes=1))
    assert counts == {"waiting": 1, "expired": 1, "canceled": 1, "refused": 0}
    payment = _payment(shop, payment_id)
    assert payment.status == "canceled" and payment.failure_code == "authentication_window_expired"
    assert _intent(emulator, payment_id)["cancellation_reason"] == "abandoned"
    assert _allocations(shop, payment_id) == ["released", "released"]
    assert _emails(shop, payment_id) == ["authentication_required", "scheduled_canceled"]
    with shop.db() as session:
        email = session.scalars(select(Email).where(Email.kind == "scheduled_canceled")).one()
        assert email.context["failure_code"] == "authentication_window_expired"
    assert authentication.expire_waiting(shop.now + timedelta(hours=48))["expired"] == 0
    view = api.get_payment(shop.account_id, payment_id)
    assert view.failure_reason == "The payment was not confirmed in time, so it was canceled."


def test_a_sellers_own_window_wins_over_the_default(shop, emulator):
    _set_seller(shop, auth_window_on_session_hours=2)
    payment_id = _waiting(shop)
    assert api.get_payment(shop.account_id, payment_id).action.expires_at == shop.now + timedelta(hours=2)
    assert authentication.expire_waiting(shop.now + timedelta(hours=3))["canceled"] == 1
    assert _payment(shop, payment_id).status == "canceled"


def test_a_scheduled_charge_gets_the_off_session_window(shop, emulator):
    payment_id = _waiting(shop, pay_on=shop.today + timedelta(days=2))
    assert authentication.expire_waiting(shop.now + timedelta(hours=48))["expired"] == 0
    assert authentication.expire_waiting(shop.now + timedelta(hours=73))["canceled"] == 1
    assert _payment(shop, payment_id).status == "canceled"


def test_the_window_keeps_stripes_outcome_when_the_customer_finished_just_before(shop, emulator):
    payment_id = _waiting(shop)
    action = api.get_payment(shop.account_id, payment_id).action
    StripeJs(emulator.url).pay(action.client_secret, action.next_action, action.payment_method)
    counts = authentication.expire_waiting(shop.now + timedelta(hours=25))
    assert counts == {"waiting": 1, "expired": 1, "canceled": 0, "refused": 0}
    assert _payment(shop, payment_id).status == "succeeded"
    assert _allocations(shop, payment_id) == ["applied", "applied"]


def test_the_authentication_email_links_to_the_sellers_portal_page(shop, emulator):
    _set_seller(shop, portal_payment_url="https://portal.example/pay/{payment_id}")
    payment_id = _waiting(shop)
    with shop.db() as session:
        email = session.scalars(select(Email).where(Email.kind == "authentication_required")).one()
    from emails.rendering import render

    rendered = render(email.kind, email.context)
    assert f"https://portal.example/pay/{payment_id}" in rendered.text
    assert f'href="https://portal.example/pay/{payment_id}"' in rendered.html
    assert "sign in" not in rendered.text


def test_confirming_a_payment_that_already_ended_is_noted_once(shop, emulator):
    payment_id = _waiting(shop)
    api.cancel_payment(shop.account_id, payment_id, now=shop.now)
    assert api.confirm_payment(shop.account_id, payment_id, now=shop.now).status == "canceled"
    view = api.confirm_payment(shop.account_id, payment_id, now=shop.now)
    late = [entry for entry in view.timeline if "after the payment was" in entry.text]
    assert len(late) == 1


def test_every_paying_entry_point_returns_the_get_payment_shape(shop, emulator):
    receipt = api.pay_invoices(shop.account_id, shop.invoices[:1], shop.methods["visa"], "k1", now=shop.now)
    assert receipt.method.kind == "card" and [e.status for e in receipt.timeline] == ["pending"]
    execution.execute_payment(receipt.payment_id, shop.now)
    view = api.get_payment(shop.account_id, receipt.payment_id)
    assert type(view) is type(receipt)
    assert view.status == "succeeded" and view.lines == receipt.lines
    assert [e.status for e in view.timeline] == ["pending", "succeeded"]
    assert view.finished_at is not None and view.action is None


def test_the_window_passes_over_an_intent_stripe_refuses_and_cancels_the_rest(shop, emulator):
    lost = _waiting(shop, key="k1", invoices=shop.invoices[:1])
    kept = _waiting(shop, key="k2", invoices=shop.invoices[1:2])
    with shop.db() as session, session.begin():
        session.get(Payment, lost).stripe_payment_intent_id = "pi_unknown_to_stripe"
    counts = authentication.expire_waiting(shop.now + timedelta(hours=25))
    assert counts == {"waiting": 2, "expired": 2, "canceled": 1, "refused": 1}
    assert (_payment(shop, lost).status, _payment(shop, kept).status) == ("requires_action", "canceled")


def test_a_seller_window_outside_one_hour_to_a_week_is_refused_by_postgresql(shop):
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        _set_seller(shop, auth_window_off_session_hours=0)
    with pytest.raises(IntegrityError):
        _set_seller(shop, portal_payment_url="https://portal.example/pay")


def test_a_bank_debit_waiting_on_microdeposits_has_no_card_window(shop, emulator):
    receipt = api.pay_invoices(shop.account_id, shop.invoices[:1], shop.methods["ach"], "k1", now=shop.now)
    with shop.db() as session, session.begin():
        session.get(Payment, receipt.payment_id).status = "requires_action"
        session.add(
            PaymentEvent(
                payment_id=receipt.payment_id, at=shop.now, to_status="requires_action", source="test"
            )
        )
    assert authentication.expire_waiting(shop.now + timedelta(days=5))["waiting"] == 0
    assert _payment(shop, receipt.payment_id).status == "requires_action"


def test_stripe_out_of_reach_is_a_refusal_the_web_tier_retries(shop, emulator):
    payment_id = _waiting(shop)
    emulator.inject_fault("500", count=10, path="/v1/payment_intents", method="*")
    for call in (api.get_payment, api.confirm_payment, api.cancel_payment):
        with pytest.raises(RemitError) as refused:
            call(shop.account_id, payment_id)
        assert refused.value.code == "stripe_unavailable"
    emulator.clear_faults()
    assert _payment(shop, payment_id).status == "requires_action"
    assert _allocations(shop, payment_id) == ["reserved", "reserved"]
    assert api.cancel_payment(shop.account_id, payment_id).status == "canceled"


def test_a_note_written_while_the_payment_waits_does_not_restart_its_window(shop, emulator):
    from tasks.flows.ledger import record_event
    from tasks.flows.payments import lock_in_order

    payment_id = _waiting(shop)
    with shop.db() as session, session.begin():
        payment = lock_in_order(session, payment_id)
        record_event(session, payment, source="test", now=shop.now + timedelta(hours=20), detail={"x": 1})
    assert api.get_payment(shop.account_id, payment_id).action.expires_at == shop.now + timedelta(hours=24)
    assert authentication.expire_waiting(shop.now + timedelta(hours=25))["canceled"] == 1


def test_the_window_pages_past_payments_whose_longer_windows_have_not_ended(shop, emulator, monkeypatch):
    monkeypatch.setattr(authentication, "WAITING_PAGE", 1)
    scheduled = _waiting(shop, key="k1", pay_on=shop.today + timedelta(days=2), invoices=shop.invoices[:1])
    at_portal = _waiting(shop, key="k2", invoices=shop.invoices[1:2])
    counts = authentication.expire_waiting(shop.now + timedelta(hours=25))
    assert counts == {"waiting": 2, "expired": 1, "canceled": 1, "refused": 0}
    assert (_payment(shop, scheduled).status, _payment(shop, at_portal).status) == (
        "requires_action",
        "canceled",
    )
