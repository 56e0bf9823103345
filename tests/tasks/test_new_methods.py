"""Paying with a card Stripe.js collected a moment ago: kept for later or used once, against the emulator."""

import stripe
from sqlalchemy import func, select

from db.models import Account, Payment, PaymentMethod
from tasks import api
from tasks.domain.attempts import Answered
from tasks.domain.errors import RemitError
from tasks.domain.states import PaymentStatus as P
from tasks.flows import ach
from tasks.flows import payments as execution

VISA = {"kind": "card", "last4": "4242", "brand": "visa", "exp_month": 12, "exp_year": 2034}


def _new_card(emulator, token="tok_visa") -> str:
    """A PaymentMethod as Stripe.js creates it: not attached to any customer."""
    client = stripe.StripeClient("sk_test_remit_tests", base_addresses={"api": emulator.url})
    return client.v1.payment_methods.create({"type": "card", "card": {"token": token}}).id


def _pay_new(shop, pm_id, save, key="k-new", invoices=None):
    return api.pay_invoices(
        shop.account_id,
        invoices or shop.invoices[:1],
        None,
        key,
        now=shop.now,
        payment_method=pm_id,
        save_for_future=save,
        method_display=VISA,
    )


def _intent(emulator, payment_id):
    [intent] = [i for i in emulator.payment_intents() if i["metadata"].get("payment_id") == str(payment_id)]
    return intent


def _stripe_method(emulator, pm_id):
    [method] = [m for m in emulator.payment_methods() if m["id"] == pm_id]
    return method


def _customer(shop):
    with shop.db() as session:
        return session.get(Account, shop.account_id).stripe_customer_id


def _method_of(shop, payment_id) -> PaymentMethod:
    with shop.db() as session:
        payment = session.get(Payment, payment_id)
        return session.get(PaymentMethod, payment.payment_method_id)


def _listed(shop):
    return {m.id for m in api.list_payment_methods(shop.account_id)}


def test_a_new_card_kept_for_later_is_attached_by_its_own_payment(shop, emulator):
    pm_id = _new_card(emulator)
    receipt = _pay_new(shop, pm_id, save=True)
    assert execution.execute_payment(receipt.payment_id, shop.now) == Answered(P.SUCCEEDED)
    intent = _intent(emulator, receipt.payment_id)
    assert (intent["payment_method"], intent["setup_future_usage"]) == (pm_id, "off_session")
    assert _stripe_method(emulator, pm_id)["customer"] == _customer(shop)
    method = _method_of(shop, receipt.payment_id)
    assert (method.saved, method.status, method.last4) == (True, "verification_pending", "4242")
    assert method.id in _listed(shop)
    assert ach.sync_payment_method(method.id, shop.now) == "active"
    again = api.pay_invoices(shop.account_id, shop.invoices[1:2], method.id, "k-again", now=shop.now)
    assert execution.execute_payment(again.payment_id, shop.now) == Answered(P.SUCCEEDED)
    assert _intent(emulator, again.payment_id)["setup_future_usage"] is None


def test_a_card_used_once_is_neither_attached_nor_listed_nor_usable_again(shop, emulator):
    pm_id = _new_card(emulator)
    receipt = _pay_new(shop, pm_id, save=False)
    assert execution.execute_payment(receipt.payment_id, shop.now) == Answered(P.SUCCEEDED)
    assert _intent(emulator, receipt.payment_id)["setup_future_usage"] is None
    assert _stripe_method(emulator, pm_id)["customer"] is None
    method = _method_of(shop, receipt.payment_id)
    assert (method.saved, method.status) == (False, "active")
    assert method.id not in _listed(shop)
    refused = _refusal(lambda: _pay_new(shop, pm_id, save=False, key="k-2", invoices=shop.invoices[1:2]))
    assert refused == "method_used"
    by_id = _refusal(lambda: api.pay_invoices(shop.account_id, shop.invoices[1:2], method.id, "k-3"))
    assert by_id == "method_not_found"
    # Nor can it become the default or be removed: it is not a saved method.
    assert _refusal(lambda: api.set_default_payment_method(shop.account_id, method.id)) == "method_not_found"
    assert _refusal(lambda: api.remove_payment_method(shop.account_id, method.id)) == "method_not_found"


def test_a_card_saved_a_moment_ago_pays_before_any_job_attached_it(shop, emulator):
    pm_id = _new_card(emulator)
    saved = api.save_payment_method(
        shop.account_id, stripe_payment_method_id=pm_id, idempotency_key="save-1", **VISA
    )
    assert saved.status == "verification_pending"
    receipt = api.pay_invoices(shop.account_id, shop.invoices[:1], saved.id, "k1", now=shop.now)
    assert execution.execute_payment(receipt.payment_id, shop.now) == Answered(P.SUCCEEDED)
    assert _intent(emulator, receipt.payment_id)["setup_future_usage"] == "off_session"
    assert _stripe_method(emulator, pm_id)["customer"] == _customer(shop)
    # The job that would have attached it finds it attached to the same customer: it only records it.
    assert ach.sync_payment_method(saved.id, shop.now) == "active"


def test_retrying_a_new_card_payment_replays_the_first_and_writes_one_method(shop, emulator):
    pm_id = _new_card(emulator)
    first = _pay_new(shop, pm_id, save=True)
    again = _pay_new(shop, pm_id, save=True)
    assert (again.payment_id, again.replayed) == (first.payment_id, True)
    assert _refusal(lambda: _pay_new(shop, pm_id, save=False)) == "idempotency_key_reused"
    with shop.db() as session:
        count = session.scalar(select(func.count()).where(PaymentMethod.stripe_payment_method_id == pm_id))
    assert count == 1


def test_a_new_bank_account_must_be_saved_and_verified_first_and_nothing_is_written(shop):
    bank = {"kind": "us_bank_account", "last4": "6789"}
    before = _counts(shop)
    refused = _refusal(
        lambda: api.pay_invoices(
            shop.account_id, shop.invoices[:1], None, "k", payment_method="pm_bank", method_display=bank
        )
    )
    assert refused == "method_needs_verification"
    assert _counts(shop) == before


def test_refusals_of_a_new_method_name_what_is_wrong(shop):
    cases = [
        (
            dict(payment_method_id=shop.methods["visa"], payment_method="pm_x", method_display=VISA),
            "invalid_payment_method",
        ),
        (
            dict(payment_method_id=None, payment_method="pm_x", method_display=VISA, save_for_future="yes"),
            "invalid_save_for_future",
        ),
        (
            dict(payment_method_id=None, payment_method="card_x", method_display=VISA),
            "invalid_payment_method",
        ),
        (dict(payment_method_id=None, payment_method="pm_x", method_display=None), "invalid_method_details"),
        (
            dict(payment_method_id=None, payment_method="pm_x", method_display={**VISA, "cvc": "123"}),
            "invalid_method_details",
        ),
        (dict(payment_method_id=shop.methods["visa"], save_for_future=True), "invalid_payment_method"),
    ]
    before = _counts(shop)
    for arguments, code in cases:
        assert (
            _refusal(lambda a=arguments: api.pay_amount(shop.account_id, 1_000, idempotency_key="k", **a))
            == code
        )
    assert _counts(shop) == before


def test_a_seller_without_cards_refuses_a_new_card(shop, emulator):
    with shop.db() as session:
        session.get(type(shop.seller), shop.seller.id).cards_enabled = False
        session.commit()
    assert _refusal(lambda: _pay_new(shop, _new_card(emulator), save=True)) == "method_not_accepted"


def _counts(shop):
    with shop.db() as session:
        return (
            session.scalar(select(func.count()).select_from(Payment)),
            session.scalar(select(func.count()).select_from(PaymentMethod)),
        )


def _refusal(call) -> str:
    try:
        call()
    except RemitError as refused:
        return refused.code
    raise AssertionError("not refused")
