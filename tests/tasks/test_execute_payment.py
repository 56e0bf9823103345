"""execute_payment against the Stripe emulator through the real SDK."""

from datetime import UTC, timedelta

import pytest
from sqlalchemy import select

from db.models import Allocation, Email, Payment, PaymentEvent
from tasks import api
from tasks.domain.attempts import Answered, FailedAtLastLook, NothingToDo
from tasks.domain.errors import StripeUnavailable
from tasks.domain.states import PaymentStatus as P
from tasks.flows import payments as execution


def _pay(shop, method="visa", invoices=None, key="k1"):
    return api.pay_invoices(
        shop.account_id, invoices or shop.invoices[:2], shop.methods[method], key, now=shop.now
    )


def _payment(shop, payment_id) -> Payment:
    with shop.db() as session:
        payment = session.get(Payment, payment_id)
        payment.allocations  # load
        return payment


def _allocation_states(shop, payment_id):
    with shop.db() as session:
        return sorted(session.scalars(select(Allocation.state).where(Allocation.payment_id == payment_id)))


def _emails(shop, payment_id):
    with shop.db() as session:
        return sorted(session.scalars(select(Email.kind).where(Email.payment_id == payment_id)))


def _intents_for(emulator, payment_id):
    return [pi for pi in emulator.payment_intents() if pi["metadata"].get("payment_id") == str(payment_id)]


def test_card_payment_succeeds_and_applies_allocations(shop, emulator):
    receipt = _pay(shop)
    assert execution.execute_payment(receipt.payment_id, shop.now) == Answered(P.SUCCEEDED)
    payment = _payment(shop, receipt.payment_id)
    assert payment.status == "succeeded"
    assert payment.stripe_payment_intent_id.startswith("pi_")
    assert payment.stripe_idempotency_key == f"remit-payment-{payment.id}-attempt-1"
    assert _allocation_states(shop, payment.id) == ["applied", "applied"]
    assert _emails(shop, payment.id) == ["payment_confirmation"]
    [intent] = _intents_for(emulator, payment.id)
    assert intent["amount"] == receipt.amount_minor == 21_000
    assert intent["status"] == "succeeded"


def test_running_execute_twice_creates_one_payment_intent(shop, emulator):
    receipt = _pay(shop)
    execution.execute_payment(receipt.payment_id, shop.now)
    assert execution.execute_payment(receipt.payment_id, shop.now) == NothingToDo(P.SUCCEEDED)
    assert len(_intents_for(emulator, receipt.payment_id)) == 1
    assert _emails(shop, receipt.payment_id) == ["payment_confirmation"]


def test_every_stripe_call_carries_our_idempotency_key(shop, emulator):
    receipt = _pay(shop)
    execution.execute_payment(receipt.payment_id, shop.now)
    creates = [r for r in emulator.requests() if r["method"] == "POST" and r["path"] == "/v1/payment_intents"]
    assert [r["idempotency_key"] for r in creates] == [f"remit-payment-{receipt.payment_id}-attempt-1"]


def test_decline_fails_payment_and_releases_invoices(shop, emulator):
    receipt = _pay(shop, method="insufficient")
    assert execution.execute_payment(receipt.payment_id, shop.now) == Answered(P.FAILED)
    payment = _payment(shop, receipt.payment_id)
    assert payment.failure_code == "insufficient_funds"
    assert payment.failure_message
    assert _allocation_states(shop, payment.id) == ["released", "released"]
    assert _emails(shop, payment.id) == ["payment_failed"]
    again = _pay(shop, method="visa", key="k2")
    assert execution.execute_payment(again.payment_id, shop.now) == Answered(P.SUCCEEDED)


def test_authentication_required_leaves_invoices_reserved(shop, emulator):
    receipt = _pay(shop, method="auth")
    assert execution.execute_payment(receipt.payment_id, shop.now) == Answered(P.REQUIRES_ACTION)
    assert _allocation_states(shop, receipt.payment_id) == ["reserved", "reserved"]
    assert _emails(shop, receipt.payment_id) == ["authentication_required"]


def test_ach_payment_is_processing_with_invoices_still_pending(shop, emulator):
    receipt = _pay(shop, method="ach")
    assert execution.execute_payment(receipt.payment_id, shop.now) == Answered(P.PROCESSING)
    assert _allocation_states(shop, receipt.payment_id) == ["reserved", "reserved"]
    assert _emails(shop, receipt.payment_id) == ["ach_initiated"]
    [intent] = _intents_for(emulator, receipt.payment_id)
    assert intent["status"] == "processing"


def test_crash_after_recording_the_key_and_before_stripe_ends_with_one_charge(shop, emulator, monkeypatch):
    receipt = _pay(shop)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("worker killed")

    monkeypatch.setattr(execution, "_call_stripe", crash)
    with pytest.raises(KeyboardInterrupt):
        execution.execute_payment(receipt.payment_id, shop.now)
    assert _payment(shop, receipt.payment_id).status == "submitting"
    assert _intents_for(emulator, receipt.payment_id) == []
    monkeypatch.undo()
    assert execution.execute_payment(receipt.payment_id, shop.now) == Answered(P.SUCCEEDED)
    assert len(_intents_for(emulator, receipt.payment_id)) == 1


def _without_sdk_retries(emulator, timeout_s=5.0):
    """A gateway whose SDK does not retry, so the job itself must recover from a lost answer."""
    import os

    from tasks.gateways.stripe import build_gateway, use_gateway

    use_gateway(
        build_gateway(
            "sk_test_remit_tests", emulator.url, timeout_s, os.environ["BROKER_URL"], 1000, network_retries=0
        )
    )


def test_charge_committed_at_stripe_but_response_lost_is_replayed_not_repeated(shop, emulator):
    receipt = _pay(shop)
    _without_sdk_retries(emulator)
    emulator.inject_fault("drop_after_commit", count=1, path="/v1/payment_intents")
    with pytest.raises(StripeUnavailable):
        execution.execute_payment(receipt.payment_id, shop.now)
    assert _payment(shop, receipt.payment_id).status == "submitting"
    assert len(_intents_for(emulator, receipt.payment_id)) == 1
    assert execution.execute_payment(receipt.payment_id, shop.now) == Answered(P.SUCCEEDED)
    assert len(_intents_for(emulator, receipt.payment_id)) == 1
    creates = [r for r in emulator.requests() if r["path"] == "/v1/payment_intents" and r["method"] == "POST"]
    assert {r["idempotency_key"] for r in creates} == {f"remit-payment-{receipt.payment_id}-attempt-1"}
    assert any(r["replayed"] for r in creates)


@pytest.mark.parametrize("fault", ["500", "drop_after_commit"])
def test_transient_faults_are_retried_without_a_duplicate_charge(shop, emulator, fault):
    receipt = _pay(shop)
    _without_sdk_retries(emulator)
    emulator.inject_fault(fault, count=1, path="/v1/payment_intents")
    with pytest.raises(StripeUnavailable):
        execution.execute_payment(receipt.payment_id, shop.now)
    assert execution.execute_payment(receipt.payment_id, shop.now) == Answered(P.SUCCEEDED)
    assert len(_intents_for(emulator, receipt.payment_id)) == 1


def test_a_500_stripe_keeps_for_the_key_leaves_the_payment_submitting_until_the_search_starts_anew(
    shop, emulator
):
    receipt = _pay(shop)
    _without_sdk_retries(emulator)
    emulator.inject_fault("500_stored", count=1, path="/v1/payment_intents")
    for _ in range(
        3
    ):  # every retry with the same key gets the same 500 back: never a new charge, never failed
        with pytest.raises(StripeUnavailable):
            execution.execute_payment(receipt.payment_id, shop.now)
        assert _payment(shop, receipt.payment_id).status == "submitting"
    assert _intents_for(emulator, receipt.payment_id) == []
    # Past the search window, Stripe is searched, holds nothing for the payment, and a new attempt runs.
    later = shop.now + timedelta(hours=21)
    assert execution.execute_payment(receipt.payment_id, later) == Answered(P.SUCCEEDED)
    assert _payment(shop, receipt.payment_id).attempt == 2
    assert len(_intents_for(emulator, receipt.payment_id)) == 1


@pytest.mark.parametrize("fault", ["429", "429_retry"])
def test_rate_limited_calls_are_retried_in_place_with_the_same_key(shop, emulator, fault):
    receipt = _pay(shop)
    _without_sdk_retries(emulator)
    emulator.inject_fault(fault, count=2, path="/v1/payment_intents")
    assert execution.execute_payment(receipt.payment_id, shop.now) == Answered(P.SUCCEEDED)
    creates = [r for r in emulator.requests() if r["path"] == "/v1/payment_intents" and r["method"] == "POST"]
    assert [r["status"] for r in creates] == [429, 429, 200]
    assert {r["idempotency_key"] for r in creates} == {f"remit-payment-{receipt.payment_id}-attempt-1"}
    assert len(_intents_for(emulator, receipt.payment_id)) == 1


def test_rate_limiting_that_persists_leaves_the_payment_submitting_for_a_retry(shop, emulator):
    receipt = _pay(shop)
    _without_sdk_retries(emulator)
    emulator.inject_fault("429", count=3, path="/v1/payment_intents")
    with pytest.raises(StripeUnavailable):
        execution.execute_payment(receipt.payment_id, shop.now)
    assert _payment(shop, receipt.payment_id).status == "submitting"
    assert execution.execute_payment(receipt.payment_id, shop.now) == Answered(P.SUCCEEDED)


def test_timeout_is_retried_without_a_duplicate_charge(shop, emulator, gateway):
    from tasks.gateways.stripe import use_gateway

    _without_sdk_retries(emulator, timeout_s=0.5)
    emulator.hang_seconds = 2
    receipt = _pay(shop)
    emulator.inject_fault("hang", count=1, path="/v1/payment_intents")
    with pytest.raises(StripeUnavailable):
        execution.execute_payment(receipt.payment_id, shop.now)
    use_gateway(gateway)
    outcomes = _retry_while_unavailable(lambda: execution.execute_payment(receipt.payment_id, shop.now))
    # While the hung request still runs at the emulator, the same key answers 409: retried, never duplicated.
    assert outcomes[-1] == Answered(P.SUCCEEDED)
    assert len(_intents_for(emulator, receipt.payment_id)) == 1


def _retry_while_unavailable(run, deadline_s=15.0):
    import time

    outcomes, deadline = [], time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            outcomes.append(run())
            return outcomes
        except StripeUnavailable as exc:
            outcomes.append(str(exc))
            time.sleep(0.2)
    raise AssertionError(f"still unavailable after {deadline_s}s: {outcomes[-3:]}")


def test_after_twenty_hours_it_searches_stripe_instead_of_creating(shop, emulator):
    receipt = _pay(shop)
    _without_sdk_retries(emulator)
    emulator.inject_fault("drop_after_commit", count=1, path="/v1/payment_intents")
    with pytest.raises(StripeUnavailable):
        execution.execute_payment(receipt.payment_id, shop.now)
    later = shop.now + timedelta(hours=21)
    assert execution.execute_payment(receipt.payment_id, later) == Answered(P.SUCCEEDED)
    assert len(_intents_for(emulator, receipt.payment_id)) == 1
    creates = [r for r in emulator.requests() if r["path"] == "/v1/payment_intents" and r["method"] == "POST"]
    assert len(creates) == 1  # the dropped one; the late run only searched
    assert any(r["path"].startswith("/v1/payment_intents/search") for r in emulator.requests())


def _first_call_never_reaches_stripe(shop, monkeypatch, payment_id: int) -> None:
    """Run the payment once with Stripe unreachable: it is left submitting, with nothing at Stripe."""
    monkeypatch.setattr(
        execution, "_call_stripe", lambda *a, **k: (_ for _ in ()).throw(StripeUnavailable("down"))
    )
    with pytest.raises(StripeUnavailable):
        execution.execute_payment(payment_id, shop.now)
    monkeypatch.undo()


def test_after_twenty_hours_with_nothing_at_stripe_it_starts_a_new_attempt(shop, emulator, monkeypatch):
    receipt = _pay(shop)
    _first_call_never_reaches_stripe(shop, monkeypatch, receipt.payment_id)
    later = shop.now + timedelta(hours=21)
    assert execution.execute_payment(receipt.payment_id, later) == Answered(P.SUCCEEDED)
    payment = _payment(shop, receipt.payment_id)
    assert payment.attempt == 2
    assert payment.stripe_idempotency_key == f"remit-payment-{payment.id}-attempt-2"
    assert len(_intents_for(emulator, payment.id)) == 1


def test_a_voided_invoice_drops_out_at_the_last_look_and_the_rest_is_charged(shop, emulator):
    receipt = _pay(shop)
    _void_first_invoice(shop)
    assert execution.execute_payment(receipt.payment_id, shop.now) == Answered(P.SUCCEEDED)
    [intent] = _intents_for(emulator, receipt.payment_id)
    assert intent["amount"] == 11_000  # the second invoice only
    assert _allocation_states(shop, receipt.payment_id) == ["applied", "released"]


def test_every_invoice_voided_fails_the_payment_before_stripe(shop, emulator):
    from db.models import Invoice

    receipt = _pay(shop)
    with shop.db() as session:
        for invoice_id in shop.invoices[:2]:
            session.get(Invoice, invoice_id).voided = True
        session.commit()
    assert execution.execute_payment(receipt.payment_id, shop.now) == FailedAtLastLook("nothing_owed")
    assert _intents_for(emulator, receipt.payment_id) == []
    assert _allocation_states(shop, receipt.payment_id) == ["released", "released"]


def _void_first_invoice(shop):
    from db.models import Invoice

    with shop.db() as session:
        session.get(Invoice, shop.invoices[0]).voided = True
        session.commit()


def _remove_method(shop):
    from db.models import PaymentMethod

    with shop.db() as session:
        session.get(PaymentMethod, shop.methods["visa"]).status = "removed"
        session.commit()


@pytest.mark.parametrize(
    ("change", "code"), [(_void_first_invoice, "invoices_changed"), (_remove_method, "method_unavailable")]
)
def test_retry_after_a_lost_answer_replays_the_charge_and_flags_what_changed_instead_of_failing(
    shop, emulator, change, code
):
    receipt = _pay(shop)
    _without_sdk_retries(emulator)
    emulator.inject_fault("drop_after_commit", count=1, path="/v1/payment_intents")
    with pytest.raises(StripeUnavailable):
        execution.execute_payment(receipt.payment_id, shop.now)  # charged at Stripe, answer lost
    assert [pi["status"] for pi in _intents_for(emulator, receipt.payment_id)] == ["succeeded"]
    change(shop)  # the seller's ERP voids an invoice, or the customer removes the card, meanwhile
    assert execution.execute_payment(receipt.payment_id, shop.now) == Answered(P.SUCCEEDED)
    payment = _payment(shop, receipt.payment_id)
    assert (payment.status, payment.needs_review, payment.failure_code) == ("succeeded", True, None)
    assert _allocation_states(shop, receipt.payment_id) == ["applied", "applied"]
    assert "payment_failed" not in _emails(shop, receipt.payment_id)
    creates = [r for r in emulator.requests() if r["path"] == "/v1/payment_intents" and r["method"] == "POST"]
    assert {r["idempotency_key"] for r in creates} == {f"remit-payment-{receipt.payment_id}-attempt-1"}
    with shop.db() as session:
        flagged = [
            e.detail
            for e in session.scalars(
                select(PaymentEvent).where(PaymentEvent.payment_id == receipt.payment_id)
            )
            if "needs_review" in e.detail
        ]
    assert [(d["needs_review"], d["attempt"]) for d in flagged] == [(code, 1)]


def test_fresh_attempt_after_the_search_window_gets_the_last_look(shop, emulator, monkeypatch):
    receipt = _pay(shop)
    _first_call_never_reaches_stripe(shop, monkeypatch, receipt.payment_id)
    _void_first_invoice(shop)
    later = shop.now + timedelta(hours=21)
    assert execution.execute_payment(receipt.payment_id, later) == Answered(P.SUCCEEDED)
    [intent] = _intents_for(emulator, receipt.payment_id)
    assert intent["amount"] == 11_000  # the fresh attempt charges what is owed now
    assert _allocation_states(shop, receipt.payment_id) == ["applied", "released"]


def test_timeline_records_each_step(shop, emulator):
    receipt = _pay(shop)
    execution.execute_payment(receipt.payment_id, shop.now)
    with shop.db() as session:
        steps = [
            (e.from_status, e.to_status, e.source)
            for e in session.scalars(
                select(PaymentEvent)
                .where(PaymentEvent.payment_id == receipt.payment_id)
                .order_by(PaymentEvent.id)
            )
        ]
    assert steps == [
        (None, "pending", "api"),
        ("pending", "submitting", "worker:execute_payment"),
        ("submitting", "succeeded", "worker:execute_payment"),
    ]


def test_get_payment_reads_the_timeline_with_the_payment_and_its_method_in_one_statement(shop, emulator):
    from sqlalchemy import event

    from db.session import get_engine

    receipt = _pay(shop)
    execution.execute_payment(receipt.payment_id, shop.now)
    statements = []

    def note(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(get_engine(), "before_cursor_execute", note)
    try:
        shown = api.get_payment(shop.account_id, receipt.payment_id)
    finally:
        event.remove(get_engine(), "before_cursor_execute", note)
    # The lines the customer reads, oldest first, each at the moment of its timeline row.
    with shop.db() as session:
        moments = list(
            session.scalars(
                select(PaymentEvent.at)
                .where(PaymentEvent.payment_id == receipt.payment_id)
                .order_by(PaymentEvent.id)
            )
        )
    assert [(entry.status, entry.at) for entry in shown.timeline] == [
        ("pending", moments[0]),
        ("succeeded", moments[2]),
    ]
    assert shown.method is not None and shown.method.last4
    reading_timeline = [s for s in statements if "payment_events" in s]
    assert len(reading_timeline) == 1 and "payment_methods" in reading_timeline[0]


def test_stripe_customer_is_created_once_on_first_use(db, emulator, gateway):
    from db.models import Account
    from tests import factories

    with db() as session:
        account = factories.account(session, stripe_customer_id=None)
        method = factories.method(session, account, stripe_payment_method_id="pm_card_visa")
        invoices = [factories.invoice(session, account).id for _ in range(2)]
        session.commit()
        account_id, method_id = account.id, method.id
    first = api.pay_invoices(account_id, invoices[:1], method_id, "c1")
    second = api.pay_invoices(account_id, invoices[1:], method_id, "c2")
    assert execution.execute_payment(first.payment_id, datetime_now()) == Answered(P.SUCCEEDED)
    assert execution.execute_payment(second.payment_id, datetime_now()) == Answered(P.SUCCEEDED)
    with db() as session:
        customer_id = session.get(Account, account_id).stripe_customer_id
    assert customer_id and [c["id"] for c in emulator.customers()] == [customer_id]
    creates = [r for r in emulator.requests() if r["path"] == "/v1/customers"]
    assert [r["idempotency_key"] for r in creates] == [f"remit-customer-{account_id}"]
    assert {pi["customer"] for pi in emulator.payment_intents()} == {customer_id}


def datetime_now():
    from datetime import datetime

    return datetime.now(UTC)
