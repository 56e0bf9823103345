"""Editing a saved method: nickname here, billing details and card expiry at Stripe (the emulator)."""

from datetime import UTC, datetime

import pytest

from db.models import PaymentMethod
from tasks import api
from tasks.domain.errors import RemitError
from tasks.flows.method_edits import push_method_update
from tests import factories
from tests.helpers import queued_messages

NOW = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
ADDRESS = {"line1": "1 Main St", "city": "Chicago", "state": "IL", "postal_code": "60601", "country": "us"}


def _row(shop, method_id) -> PaymentMethod:
    with shop.db() as session:
        return session.get(PaymentMethod, method_id)


def _stripe_method(emulator, pm_id):
    [method] = [m for m in emulator.payment_methods() if m["id"] == pm_id]
    return method


def _edit_messages(broker):
    return [list(m.args) for m in queued_messages(broker, "ach") if m.actor_name == "update_payment_method"]


def test_a_nickname_is_ours_alone_and_sends_nothing_to_stripe(shop, broker):
    visa = shop.methods["visa"]
    edited = api.update_payment_method(shop.account_id, visa, nickname="  Office card ", now=NOW)
    assert edited.nickname == "Office card"
    assert [m.nickname for m in api.list_payment_methods(shop.account_id) if m.id == visa] == ["Office card"]
    assert _edit_messages(broker) == []
    assert api.update_payment_method(shop.account_id, visa, nickname="", now=NOW).nickname is None


def test_billing_details_and_expiry_go_to_stripe_with_a_key_per_edit(shop, emulator, broker):
    visa = shop.methods["visa"]
    billing = {"name": "Pat Doe", "email": "Pat@Customer.TEST", "address": ADDRESS}
    edited = api.update_payment_method(
        shop.account_id, visa, billing_details=billing, exp_month=3, exp_year=2031, now=NOW
    )
    assert (edited.exp_month, edited.exp_year) == (3, 2031)
    assert edited.billing_details == {
        "name": "Pat Doe",
        "email": "Pat@customer.test",
        "address": {**ADDRESS, "country": "US"},
    }
    assert _edit_messages(broker) == [[visa, 1]]
    assert push_method_update(visa, 1, NOW) == "updated"
    pm_id = _row(shop, visa).stripe_payment_method_id
    at_stripe = _stripe_method(emulator, pm_id)
    assert (at_stripe["card"]["exp_month"], at_stripe["card"]["exp_year"]) == (3, 2031)
    assert at_stripe["billing_details"]["name"] == "Pat Doe"
    assert at_stripe["billing_details"]["address"]["postal_code"] == "60601"
    updates = [
        r
        for r in emulator.requests()
        if r["path"] == f"/v1/payment_methods/{pm_id}" and r["method"] == "POST"
    ]
    assert [r["idempotency_key"] for r in updates] == [f"remit-method-{visa}-update-1"]


def test_a_second_edit_keeps_the_first_and_sends_everything_once(shop, emulator):
    visa = shop.methods["visa"]
    api.update_payment_method(shop.account_id, visa, billing_details={"name": "Pat Doe"}, now=NOW)
    api.update_payment_method(shop.account_id, visa, billing_details={"phone": "+1 312 555 0199"}, now=NOW)
    assert push_method_update(visa, 1, NOW) == "nothing to do: a later edit sends the method's details"
    assert push_method_update(visa, 2, NOW) == "updated"
    assert push_method_update(visa, 2, NOW) == "updated"  # a redelivery replays the same key
    at_stripe = _stripe_method(emulator, _row(shop, visa).stripe_payment_method_id)
    assert (at_stripe["billing_details"]["name"], at_stripe["billing_details"]["phone"]) == (
        "Pat Doe",
        "+1 312 555 0199",
    )
    replays = [r for r in emulator.requests() if r["idempotency_key"] == f"remit-method-{visa}-update-2"]
    assert [r["replayed"] for r in replays] == [False, True]


def test_a_refusal_from_stripe_is_recorded_on_the_method(shop, emulator, db):
    with db() as session:
        account = session.get(factories.Account, shop.account_id)
        # A PaymentMethod Stripe holds but never attached: Stripe refuses to update it.
        loose = factories.method(session, account, stripe_payment_method_id=_loose_card(emulator))
        session.commit()
    api.update_payment_method(shop.account_id, loose.id, exp_month=4, exp_year=2032, now=NOW)
    assert push_method_update(loose.id, 1, NOW).startswith("refused: You must save this PaymentMethod")
    assert _row(shop, loose.id).verification_error.startswith("Stripe refused the last change")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({}, "nothing_to_change"),
        ({"exp_month": 10, "exp_year": 2026}, "invalid_expiry"),  # October 2026 is past on Nov 22
        ({"exp_month": 13, "exp_year": 2030}, "invalid_expiry"),
        ({"exp_month": 3}, "invalid_expiry"),
        ({"exp_month": 3, "exp_year": 2099}, "invalid_expiry"),
        ({"billing_details": {"fax": "1"}}, "invalid_billing_details"),
        ({"billing_details": {"email": "not an address"}}, "invalid_billing_details"),
        ({"billing_details": {"address": {"country": "USA"}}}, "invalid_billing_details"),
        ({"nickname": "x" * 61}, "invalid_nickname"),
        ({"nickname": "bad\x00name"}, "invalid_nickname"),
    ],
)
def test_a_bad_edit_is_refused_naming_what_is_wrong_and_changes_nothing(shop, broker, change, code):
    visa = shop.methods["visa"]
    before = _row(shop, visa)
    with pytest.raises(RemitError) as caught:
        api.update_payment_method(shop.account_id, visa, **change, now=NOW)
    assert caught.value.code == code
    after = _row(shop, visa)
    assert (after.exp_month, after.exp_year, after.nickname, after.billing_details, after.update_version) == (
        before.exp_month,
        before.exp_year,
        before.nickname,
        before.billing_details,
        before.update_version,
    )
    assert _edit_messages(broker) == []


def test_only_a_saved_ready_method_of_this_account_can_be_edited(shop, db):
    with db() as session:
        other = factories.account(session, session.get(factories.Seller, shop.seller.id))
        theirs = factories.method(session, other).id
        account = session.get(factories.Account, shop.account_id)
        pending = factories.method(session, account, status="verification_pending").id
        once = factories.method(session, account, saved=False).id
        session.commit()
    for method_id, code in (
        (theirs, "method_not_found"),
        (pending, "method_not_editable"),
        (once, "method_not_found"),  # a card used once is no saved method
    ):
        with pytest.raises(RemitError) as caught:
            api.update_payment_method(shop.account_id, method_id, nickname="x", now=NOW)
        assert caught.value.code == code
    with pytest.raises(RemitError) as caught:
        api.update_payment_method(shop.account_id, shop.methods["ach"], exp_month=1, exp_year=2030, now=NOW)
    assert caught.value.code == "invalid_expiry"  # a bank account has no expiry


def _loose_card(emulator) -> str:
    import stripe

    client = stripe.StripeClient("sk_test_remit_tests", base_addresses={"api": emulator.url})
    return client.v1.payment_methods.create({"type": "card", "card": {"token": "tok_visa"}}).id
