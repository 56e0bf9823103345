"""Cards, customers and payment methods through the real SDK."""

import pytest
import stripe

from sandbox.stripe_emulator.errors import StripeError
from tests.sandbox.emulator_helpers import pay

DECLINES = [
    ("pm_card_visa_chargeDeclined", "card_declined", "generic_decline"),
    ("pm_card_chargeDeclined", "card_declined", "generic_decline"),
    ("pm_card_visa_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds"),
    ("pm_card_visa_chargeDeclinedLostCard", "card_declined", "lost_card"),
    ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card"),
    ("pm_card_chargeDeclinedProcessingError", "processing_error", "processing_error"),
]


def test_card_payment_succeeds_with_a_succeeded_charge(client, customer, emu):
    intent = pay(client, "pm_card_visa", customer.id)
    assert intent.status == "succeeded" and intent.amount_received == 1000
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert (charge.status, charge.paid, charge.payment_intent) == ("succeeded", True, intent.id)
    assert intent.payment_method.startswith("pm_") and intent.payment_method != "pm_card_visa"
    assert [e["type"] for e in emu.events()][-3:] == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
    ]


@pytest.mark.parametrize("token,code,decline_code", DECLINES)
def test_each_decline_answers_402_with_the_intent_back_in_requires_payment_method(
    client, token, code, decline_code
):
    with pytest.raises(stripe.CardError) as caught:
        pay(client, token)
    error = caught.value
    assert (error.http_status, error.code, error.error.decline_code) == (402, code, decline_code)
    assert error.user_message
    intent = error.error.payment_intent
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error.decline_code == decline_code
    assert client.v1.charges.retrieve(intent.latest_charge).status == "failed"


def test_off_session_payment_needing_authentication_is_declined(client, customer):
    with pytest.raises(stripe.CardError) as caught:
        pay(client, "pm_card_authenticationRequired", customer.id)
    assert caught.value.code == "authentication_required"
    assert caught.value.error.decline_code == "authentication_required"
    assert caught.value.error.payment_intent.status == "requires_payment_method"


def test_on_session_payment_needing_authentication_requires_action(client, emu):
    intent = client.v1.payment_intents.create(
        {
            "amount": 500,
            "currency": "usd",
            "confirm": True,
            "payment_method": "pm_card_authenticationRequired",
        }
    )
    assert intent.status == "requires_action"
    assert intent.next_action.type == "use_stripe_sdk"
    assert "payment_intent.requires_action" in [e["type"] for e in emu.events()]


def test_card_set_up_for_off_session_pays_off_session(client, customer):
    setup = client.v1.setup_intents.create(
        {
            "customer": customer.id,
            "confirm": True,
            "usage": "off_session",
            "payment_method": "pm_card_authenticationRequiredOnSetup",
        }
    )
    assert setup.status == "succeeded"
    assert pay(client, setup.payment_method, customer.id).status == "succeeded"


def test_card_needing_authentication_unless_set_up_is_declined_off_session_before_setup(client, customer):
    with pytest.raises(stripe.CardError) as caught:
        pay(client, "pm_card_authenticationRequiredOnSetup", customer.id)
    assert caught.value.code == "authentication_required"
    assert caught.value.error.payment_intent.status == "requires_payment_method"


def test_card_that_skips_authentication_off_session_pays_without_setup(client, customer):
    assert pay(client, "pm_card_authenticationRequiredSetupForOffSession", customer.id).status == "succeeded"


def test_create_then_confirm_then_retrieve_with_expansions(client, customer):
    intent = client.v1.payment_intents.create({"amount": 700, "currency": "usd", "customer": customer.id})
    assert intent.status == "requires_payment_method"
    intent = client.v1.payment_intents.confirm(intent.id, {"payment_method": "pm_card_mastercard"})
    shown = client.v1.payment_intents.retrieve(intent.id, {"expand": ["latest_charge", "payment_method"]})
    assert shown.latest_charge.status == "succeeded"
    assert (shown.payment_method.card.brand, shown.payment_method.card.last4) == ("mastercard", "4444")


def test_cancel_moves_an_unpaid_intent_to_canceled_and_refuses_a_paid_one(client):
    intent = client.v1.payment_intents.create({"amount": 700, "currency": "usd"})
    assert client.v1.payment_intents.cancel(intent.id).status == "canceled"
    paid = pay(client, "pm_card_visa")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.cancel(paid.id)
    assert caught.value.code == "payment_intent_unexpected_state"


@pytest.mark.parametrize(
    "params,param,code",
    [
        ({"currency": "usd"}, "amount", "parameter_missing"),
        ({"amount": "abc", "currency": "usd"}, "amount", "parameter_invalid_integer"),
        ({"amount": 0, "currency": "usd"}, "amount", "parameter_invalid_integer"),
        ({"amount": 100}, "currency", "parameter_missing"),
        (
            {"amount": 100, "currency": "usd", "payment_method": "pm_nope"},
            "payment_method",
            "resource_missing",
        ),
    ],
)
def test_invalid_create_parameters_answer_stripe_errors(client, params, param, code):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.create(params)
    assert (caught.value.param, caught.value.code) == (param, code)


def test_unknown_payment_method_is_404_resource_missing(client):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_methods.retrieve("pm_missing")
    assert (caught.value.http_status, caught.value.code) == (404, "resource_missing")
    assert caught.value.error.type == "invalid_request_error"


def test_wrong_api_key_is_401(emu):
    bad = stripe.StripeClient("sk_test_wrong", base_addresses={"api": emu.url})
    with pytest.raises(stripe.AuthenticationError):
        bad.v1.customers.list()


def test_attaching_a_token_creates_a_new_method_on_the_customer(client, customer, emu):
    method = client.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    assert method.id != "pm_card_visa" and method.customer == customer.id
    assert (method.card.brand, method.card.last4, method.card.exp_month) == ("visa", "4242", 12)
    listed = client.v1.customers.payment_methods.list(customer.id)
    assert [m.id for m in listed.data] == [method.id]
    detached = client.v1.payment_methods.detach(method.id)
    assert detached.customer is None
    types = [e["type"] for e in emu.events()]
    assert "payment_method.attached" in types and "payment_method.detached" in types


def test_attached_method_that_fails_every_charge(client, customer):
    method = client.v1.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": customer.id})
    with pytest.raises(stripe.CardError):
        pay(client, method.id, customer.id)


def test_card_from_a_tok_token(client):
    method = client.v1.payment_methods.create({"type": "card", "card": {"token": "tok_visa"}})
    assert method.card.last4 == "4242"


def test_card_network_update_emits_automatically_updated(client, customer, emu):
    method = client.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    emu.update_card(method.id, 1, 2031)
    assert client.v1.payment_methods.retrieve(method.id).card.exp_year == 2031
    assert emu.events()[-1]["type"] == "payment_method.automatically_updated"


def test_list_filters_by_customer_and_created_and_pages(client, customer, emu):
    mine = [pay(client, "pm_card_visa", customer.id).id for _ in range(3)]
    pay(client, "pm_card_visa")
    listed = client.v1.payment_intents.list({"customer": customer.id, "limit": 2})
    assert listed.has_more and listed.url == "/v1/payment_intents"
    assert [i.id for i in listed.auto_paging_iter()] == list(reversed(mine))
    later = client.v1.payment_intents.list({"created": {"gt": emu.now() + 60}})
    assert later.data == []


def test_search_by_payment_id_metadata(client):
    wanted = pay(client, "pm_card_visa", metadata={"payment_id": "77"})
    pay(client, "pm_card_visa", metadata={"payment_id": "78"})
    found = client.v1.payment_intents.search({"query": "metadata['payment_id']:'77'"})
    assert [i.id for i in found.data] == [wanted.id]
    assert (found.object, found.has_more, found.url, found.next_page) == (
        "search_result",
        False,
        "/v1/payment_intents/search",
        None,
    )


def test_capitalised_booleans_and_empty_bracket_arrays_are_accepted(client):
    intent = client.raw_request(
        "post",
        "/v1/payment_intents",
        amount=900,
        currency="usd",
        confirm="True",
        payment_method="pm_card_visa",
        **{"payment_method_types[]": "card", "metadata[payment_id]": "9"},
    )
    body = client.deserialize(intent, api_mode="V1")
    assert body.status == "succeeded" and body.payment_method_types == ["card"]
    assert body.metadata["payment_id"] == "9"


def test_every_response_carries_a_request_id(client):
    customer = client.v1.customers.create({"email": "x@example.com"})
    assert customer.last_response.request_id.startswith("req_")


@pytest.mark.parametrize("success,status", [(True, "succeeded"), (False, "requires_payment_method")])
def test_completing_authentication_settles_the_intent(client, emu, success, status):
    intent = client.v1.payment_intents.create(
        {
            "amount": 500,
            "currency": "usd",
            "confirm": True,
            "payment_method": "pm_card_authenticationRequired",
        }
    )
    emu.authenticate(intent.id, success=success)
    assert client.v1.payment_intents.retrieve(intent.id).status == status


@pytest.mark.parametrize("first", [True, False])
def test_an_intent_authenticated_once_cannot_be_authenticated_again(client, emu, first):
    intent = client.v1.payment_intents.create(
        {
            "amount": 500,
            "currency": "usd",
            "confirm": True,
            "payment_method": "pm_card_authenticationRequired",
        }
    )
    settled = emu.authenticate(intent.id, success=first)
    with pytest.raises(StripeError):
        emu.authenticate(intent.id, success=not first)
    assert settled["next_action"] is None
    assert client.v1.payment_intents.retrieve(intent.id).status == settled["status"]
    assert len([c for c in emu.charges() if c["payment_intent"] == intent.id]) == (1 if first else 0)


def test_unknown_customer_in_a_parameter_is_400_resource_missing(client):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.create({"amount": 100, "currency": "usd", "customer": "cus_missing"})
    assert (caught.value.http_status, caught.value.code, caught.value.param) == (
        400,
        "resource_missing",
        "customer",
    )


def test_emulator_restarts_after_stop_and_still_delivers(receiver):
    from sandbox.stripe_emulator import Emulator

    emu = Emulator().start()
    emu.stop()
    emu.start()
    try:
        emu.add_webhook_endpoint(receiver.url, ["whsec_a"])
        stripe.StripeClient("sk_test_emulator", base_addresses={"api": emu.url}).v1.customers.create({})
        assert emu.wait_for_deliveries(10) and len(receiver.received) == 1
    finally:
        emu.stop()


def test_setup_future_usage_attaches_the_method_once_the_payment_succeeds(client, customer, emu):
    method = client.v1.payment_methods.create({"type": "card", "card": {"token": "tok_visa"}})
    intent = pay(client, method.id, customer.id, off_session=False, setup_future_usage="off_session")
    assert (intent.status, intent.setup_future_usage) == ("succeeded", "off_session")
    assert client.v1.payment_methods.retrieve(method.id).customer == customer.id
    assert "payment_method.attached" in [e["type"] for e in emu.events()]


def test_setup_future_usage_attaches_nothing_when_the_card_is_declined(client, customer):
    method = client.v1.payment_methods.create({"type": "card", "card": {"token": "tok_chargeDeclined"}})
    with pytest.raises(stripe.CardError):
        pay(client, method.id, customer.id, setup_future_usage="off_session")
    assert client.v1.payment_methods.retrieve(method.id).customer is None


def test_a_payment_without_setup_future_usage_leaves_the_method_unattached(client, customer):
    method = client.v1.payment_methods.create({"type": "card", "card": {"token": "tok_visa"}})
    pay(client, method.id, customer.id)
    assert client.v1.payment_methods.retrieve(method.id).customer is None


def test_an_unknown_setup_future_usage_is_refused(client, customer):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        pay(client, "pm_card_visa", customer.id, setup_future_usage="always")
    assert caught.value.error.param == "setup_future_usage"


def _attached_card(client, customer):
    method = client.v1.payment_methods.create({"type": "card", "card": {"token": "tok_visa"}})
    return client.v1.payment_methods.attach(method.id, {"customer": customer.id})


def test_updating_a_card_changes_its_expiry_and_billing_details_and_emits_updated(client, customer, emu):
    method = _attached_card(client, customer)
    updated = client.v1.payment_methods.update(
        method.id,
        {
            "card": {"exp_month": 4, "exp_year": 2040},
            "billing_details": {"name": "Pat", "address": {"city": "Chicago"}},
        },
    )
    assert (updated.card.exp_month, updated.card.exp_year) == (4, 2040)
    assert (updated.billing_details.name, updated.billing_details.address.city) == ("Pat", "Chicago")
    assert emu.events()[-1]["type"] == "payment_method.updated"


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({"card": {"exp_month": 13}}, "card[exp_month]", "invalid_expiry_month"),
        ({"card": {"exp_month": 1, "exp_year": 2001}}, "card[exp_year]", "invalid_expiry_year"),
        ({"card": {"cvc": "123"}}, "card[cvc]", "parameter_unknown"),
        ({"nickname": "x"}, "nickname", "parameter_unknown"),
    ],
)
def test_an_invalid_payment_method_update_is_refused(client, customer, params, param, code):
    method = _attached_card(client, customer)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_methods.update(method.id, params)
    assert (caught.value.error.param, caught.value.code) == (param, code)


def test_a_payment_method_must_be_attached_before_it_can_be_updated(client):
    method = client.v1.payment_methods.create({"type": "card", "card": {"token": "tok_visa"}})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_methods.update(method.id, {"billing_details": {"name": "Pat"}})
    assert "must save this PaymentMethod to a customer" in caught.value.user_message
