"""The `ach` queue's method actors against real Postgres and the Stripe emulator through the real SDK."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from db.models import PaymentMethod
from tasks import api
from tasks.api import methods
from tasks.domain.attempts import Answered
from tasks.domain.errors import StripeUnavailable
from tasks.domain.states import PaymentStatus as P
from tasks.flows import ach as method_flow
from tasks.flows import payments as execution
from tests.tasks.test_methods import NOW, Portal, portal  # noqa: F401  (the portal fixture)


def _sync(portal, method_id):
    return method_flow.sync_payment_method(method_id, NOW)


def _verify(portal, method_id, amounts=None, code=None):
    methods.verify_microdeposits(
        portal.account_id, method_id, amounts, code
    )  # the web tier's call: checks, enqueues
    return method_flow.verify_bank_account(method_id, amounts, code, NOW)


def _posts(emulator, suffix):
    return [r for r in emulator.requests() if r["method"] == "POST" and r["path"].endswith(suffix)]


def _microdeposit_bank(portal, account_number="000123456789"):
    saved = portal.save_bank(token=portal.raw_bank_method(account_number))
    assert _sync(portal, saved.id) == "verification_pending"
    return saved.id


# -- sync_payment_method: cards ------------------------------------------------------------------------------


def test_a_saved_card_is_attached_once_and_takes_stripes_display_data(portal, emulator):
    saved = portal.save_card(last4="0000", brand="unknown", exp_month=1, exp_year=2030)
    assert _sync(portal, saved.id) == "active"
    assert _sync(portal, saved.id) == "nothing to do: method is active"
    row = portal.method(saved.id)
    assert (row.status, row.brand, row.last4, row.exp_month, row.exp_year) == (
        "active",
        "visa",
        "4242",
        12,
        2034,
    )
    assert row.stripe_payment_method_id.startswith("pm_") and row.stripe_payment_method_id != "pm_card_visa"
    [attach] = _posts(emulator, "/attach")
    assert attach["idempotency_key"] == f"remit-attach-{saved.id}"
    [customer] = _posts(emulator, "/v1/customers")
    assert customer["idempotency_key"] == f"remit-customer-{portal.account_id}"
    [stripe_method] = [m for m in emulator.payment_methods() if m["id"] == row.stripe_payment_method_id]
    assert stripe_method["customer"] == emulator.customers()[0]["id"]
    assert portal.emails() == []


def test_a_crash_after_the_attach_is_finished_by_the_next_run_with_the_same_key(
    portal, emulator, monkeypatch
):
    saved = portal.save_card()
    real = method_flow._record
    monkeypatch.setattr(
        method_flow, "_record", lambda *a, **k: (_ for _ in ()).throw(StripeUnavailable("crash"))
    )
    with pytest.raises(StripeUnavailable):
        _sync(portal, saved.id)
    monkeypatch.setattr(method_flow, "_record", real)
    assert _sync(portal, saved.id) == "active"
    attaches = _posts(emulator, "/attach")
    assert [(r["idempotency_key"], r["replayed"]) for r in attaches] == [
        (f"remit-attach-{saved.id}", False),
        (f"remit-attach-{saved.id}", True),
    ]
    assert len([m for m in emulator.payment_methods() if m["customer"]]) == 1


def test_a_card_stripe_refuses_to_attach_fails_without_an_email(portal, emulator):
    saved = portal.save_card(token="pm_doesNotExist")
    assert _sync(portal, saved.id) == "verification_failed"
    row = portal.method(saved.id)
    assert row.status == "verification_failed" and row.verification_error
    assert portal.emails() == []


def test_a_bank_account_saved_as_a_card_is_failed(portal):
    saved = portal.save_card(token="pm_usBankAccount_success")
    assert _sync(portal, saved.id) == "verification_failed"
    assert "us_bank_account" in portal.method(saved.id).verification_error


# -- sync_payment_method: bank accounts ----------------------------------------------------------------------


def test_a_verified_bank_token_is_set_up_once_and_becomes_active(portal, emulator):
    saved = portal.save_bank()
    assert _sync(portal, saved.id) == "active"
    assert _sync(portal, saved.id).startswith("nothing to do")
    row = portal.method(saved.id)
    [setup] = emulator.setup_intents()
    assert (row.status, row.stripe_setup_intent_id, row.stripe_payment_method_id) == (
        "active",
        setup["id"],
        setup["payment_method"],
    )
    assert setup["status"] == "succeeded" and setup["usage"] == "off_session"
    assert setup["metadata"] == {"payment_method_id": str(saved.id), "account_id": str(portal.account_id)}
    assert [r["idempotency_key"] for r in _posts(emulator, "/v1/setup_intents")] == [
        f"remit-setup-{saved.id}"
    ]
    assert portal.emails() == ["bank_verified"]


def test_raw_bank_details_wait_for_microdeposits_and_say_so_once(portal, emulator):
    method_id = _microdeposit_bank(portal)
    assert _sync(portal, method_id).startswith("nothing to do")
    row = portal.method(method_id)
    [setup] = emulator.setup_intents()
    assert (row.status, row.stripe_setup_intent_id) == ("verification_pending", setup["id"])
    assert setup["next_action"]["type"] == "verify_with_microdeposits"
    assert len(_posts(emulator, "/v1/setup_intents")) == 1
    assert portal.emails() == ["bank_verification_needed"]


def test_a_crash_after_the_setup_intent_is_finished_with_the_same_setup_intent(portal, emulator, monkeypatch):
    saved = portal.save_bank(token=portal.raw_bank_method())
    monkeypatch.setattr(
        method_flow.get_gateway(),
        "retrieve_payment_method",
        lambda pm: (_ for _ in ()).throw(StripeUnavailable("lost")),
    )
    with pytest.raises(StripeUnavailable):
        _sync(portal, saved.id)
    monkeypatch.undo()
    assert _sync(portal, saved.id) == "verification_pending"
    assert len(emulator.setup_intents()) == 1
    assert [r["replayed"] for r in _posts(emulator, "/v1/setup_intents")] == [False, True]


# -- verify_bank_account -------------------------------------------------------------------------------------


@pytest.mark.parametrize("amounts,code", [([32, 45], None), (None, "SM11AA")])
def test_correct_microdeposits_verify_the_account(portal, emulator, amounts, code):
    method_id = _microdeposit_bank(portal)
    assert _verify(portal, method_id, amounts, code) == "active"
    assert method_flow.verify_bank_account(method_id, amounts, code, NOW).startswith("nothing to do")
    row = portal.method(method_id)
    assert (row.status, row.verification_error) == ("active", None)
    [verify] = _posts(emulator, "/verify_microdeposits")
    assert verify["idempotency_key"].startswith(f"remit-verify-{method_id}-")
    assert emulator.setup_intents()[0]["status"] == "succeeded"
    assert portal.emails() == ["bank_verification_needed", "bank_verified"]


def test_wrong_amounts_keep_the_account_waiting_until_stripe_gives_up(portal, emulator):
    method_id = _microdeposit_bank(portal)
    assert _verify(portal, method_id, [1, 2]) == "verification_pending"
    assert "2 verification attempts remaining" in portal.method(method_id).verification_error
    assert _verify(portal, method_id, [3, 4]) == "verification_pending"
    assert _verify(portal, method_id, [5, 6]) == "verification_failed"
    row = portal.method(method_id)
    assert row.status == "verification_failed" and "exceeded" in row.verification_error
    assert portal.emails() == ["bank_verification_failed", "bank_verification_needed"]


def test_the_same_wrong_amounts_twice_count_as_one_attempt(portal, emulator):
    method_id = _microdeposit_bank(portal)
    _verify(portal, method_id, [1, 2])
    _verify(portal, method_id, [1, 2])
    assert [r["replayed"] for r in _posts(emulator, "/verify_microdeposits")] == [False, True]
    assert "2 verification attempts remaining" in portal.method(method_id).verification_error


@pytest.mark.parametrize(
    "amounts,code,reason",
    [
        ([10, 11], None, "exceeded"),
        (None, "SM33CC", "exceeded"),
        ([40, 41], None, "within the required period"),
    ],
)
def test_stripes_final_verdicts_fail_the_account(portal, amounts, code, reason):
    method_id = _microdeposit_bank(portal)
    portal.save_card(set_default=True)
    methods.set_default_payment_method(portal.account_id, method_id)
    assert _verify(portal, method_id, amounts, code) == "verification_failed"
    row = portal.method(method_id)
    assert reason in row.verification_error and row.is_default is False
    assert portal.emails() == ["bank_verification_failed", "bank_verification_needed"]
    assert (
        _refused_code(methods.verify_microdeposits, portal.account_id, method_id, [32, 45])
        == "not_verifiable"
    )


def test_a_verification_stripe_already_finished_takes_stripes_word(portal, emulator):
    method_id = _microdeposit_bank(portal)
    portal.gateway._client.v1.setup_intents.verify_microdeposits(
        portal.method(method_id).stripe_setup_intent_id, {"amounts": [32, 45]}
    )
    assert method_flow.verify_bank_account(method_id, [1, 2], None, NOW) == "active"
    assert portal.emails() == ["bank_verification_needed", "bank_verified"]


def test_a_verified_account_pays_off_session_with_its_mandate(portal, emulator):
    method_id = _microdeposit_bank(portal)
    _verify(portal, method_id, [32, 45])
    with portal.db() as session:
        from db.models import Account
        from tests import factories

        invoice = factories.invoice(session, session.get(Account, portal.account_id), total_minor=12_345)
        session.commit()
    receipt = api.pay_invoices(portal.account_id, [invoice.id], method_id, "pay-1", now=NOW)
    assert execution.execute_payment(receipt.payment_id, NOW) == Answered(P.PROCESSING)


# -- detach_payment_method -----------------------------------------------------------------------------------


def test_a_removed_method_is_detached_at_stripe_once(portal, emulator):
    saved = portal.save_card()
    _sync(portal, saved.id)
    stripe_id = portal.method(saved.id).stripe_payment_method_id
    methods.remove_payment_method(portal.account_id, saved.id)
    assert method_flow.detach_payment_method(saved.id, NOW) == "detached"
    assert method_flow.detach_payment_method(saved.id, NOW) == "detached"
    [stripe_method] = [m for m in emulator.payment_methods() if m["id"] == stripe_id]
    assert stripe_method["customer"] is None
    assert [r["replayed"] for r in _posts(emulator, "/detach")] == [False, True]


def test_a_method_removed_before_it_was_attached_is_never_attached(portal, emulator):
    saved = portal.save_card()
    methods.remove_payment_method(portal.account_id, saved.id)
    assert _sync(portal, saved.id) == "nothing to do: method is removed"
    assert method_flow.detach_payment_method(saved.id, NOW) == "nothing to do: not attached at Stripe"
    assert _posts(emulator, "/attach") == []


def test_a_method_removed_while_it_was_being_attached_is_detached_after(
    portal, emulator, monkeypatch, broker
):
    saved = portal.save_card()
    gateway = method_flow.get_gateway()
    real_attach = gateway.attach_payment_method

    def attach_then_removed(**kwargs):
        details = real_attach(**kwargs)
        methods.remove_payment_method(portal.account_id, saved.id)
        return details

    monkeypatch.setattr(gateway, "attach_payment_method", attach_then_removed)
    assert _sync(portal, saved.id) == "nothing to do: method is removed"
    row = portal.method(saved.id)
    assert row.stripe_payment_method_id != "pm_card_visa"
    assert method_flow.detach_payment_method(saved.id, NOW) == "detached"


def test_an_active_method_is_not_detached(portal, emulator):
    saved = portal.save_card()
    _sync(portal, saved.id)
    assert method_flow.detach_payment_method(saved.id, NOW) == "nothing to do: method is active"
    assert _posts(emulator, "/detach") == []


# -- lost messages and real workers --------------------------------------------------------------------------


def test_a_method_whose_sync_was_lost_is_sent_again(portal, broker):
    old = portal.save_card()
    fresh = portal.save_card(token="pm_card_mastercard")
    bank = _microdeposit_bank(portal)
    with portal.db() as session:
        session.execute(
            update(PaymentMethod)
            .where(PaymentMethod.id.in_([old.id, bank]))
            .values(updated_at=func.now() - timedelta(hours=1))
        )
        session.commit()
    now = datetime.now(UTC)
    assert method_flow.resend_stuck_methods(now) == {"resent": 1}
    assert method_flow.resend_stuck_methods(now) == {"resent": 0}
    assert portal.method(fresh.id).status == "verification_pending"


def test_a_saved_card_becomes_active_through_a_real_worker(portal, emulator, worker, broker):
    saved = portal.save_card()
    broker.join("ach", timeout=10_000)
    worker.join()
    assert portal.method(saved.id).status == "active"


def _refused_code(fn, *args):
    from tasks.domain.errors import RemitError

    with pytest.raises(RemitError) as caught:
        fn(*args)
    return caught.value.code


# -- webhooks for the same changes ---------------------------------------------------------------------------


def _apply_stripe_events(portal, emulator):
    """Store and process every event the emulator emitted so far, as the webhook receiver and worker would."""
    from db.queries.inbox import insert_event as store_event
    from tasks.flows.webhooks import process_event

    for event in emulator.events():
        with portal.db() as session:
            new = store_event(session, event, NOW)
            session.commit()
        if new:
            process_event(event["id"], NOW)


def test_webhooks_before_or_after_the_actors_owe_each_email_once(portal, emulator, monkeypatch):
    saved = portal.save_bank(token=portal.raw_bank_method())
    gateway = method_flow.get_gateway()
    real_retrieve = gateway.retrieve_payment_method

    def webhooks_first(pm):
        _apply_stripe_events(portal, emulator)
        return real_retrieve(pm)

    monkeypatch.setattr(gateway, "retrieve_payment_method", webhooks_first)
    assert _sync(portal, saved.id) == "verification_pending"
    assert portal.emails() == ["bank_verification_needed"]
    with portal.db() as session:
        from db.models import StripeEvent

        handled = dict(session.execute(select(StripeEvent.type, StripeEvent.status)).all())
    assert handled["setup_intent.requires_action"] == "processed"
    assert _verify(portal, saved.id, [32, 45]) == "active"
    _apply_stripe_events(portal, emulator)
    assert portal.method(saved.id).status == "active"
    assert portal.emails() == ["bank_verification_needed", "bank_verified"]
