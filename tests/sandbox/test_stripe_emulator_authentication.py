"""3-D Secure as Stripe.js drives it (publishable key, client secret, the test page); canceling intents."""

import pytest
import stripe

from sandbox.stripe_js import StripeJs, StripeJsError
from tests.sandbox.emulator_helpers import pay


def _on_session(client, customer, method="pm_card_authenticationRequired"):
    return client.v1.payment_intents.create(
        {"amount": 500, "currency": "usd", "customer": customer.id, "confirm": True, "payment_method": method}
    )


def _types(emu):
    return [e["type"] for e in emu.events()]


@pytest.mark.parametrize(
    "complete, status, event",
    [
        (True, "succeeded", "payment_intent.succeeded"),
        (False, "requires_payment_method", "payment_intent.payment_failed"),
    ],
)
def test_the_test_3ds_page_completes_or_fails_the_intent(client, customer, emu, complete, status, event):
    intent = _on_session(client, customer)
    assert intent.status == "requires_action" and intent.next_action.type == "use_stripe_sdk"
    assert intent.next_action.use_stripe_sdk["stripe_js"].startswith(emu.url + "/3d_secure_2/hosted?")
    after = StripeJs(emu.url).handle_next_action(intent.client_secret, complete=complete)
    assert after["status"] == status
    assert _types(emu)[-1] == event
    if not complete:
        assert after["last_payment_error"]["code"] == "payment_intent_authentication_failure"


def test_an_off_session_decline_is_confirmed_on_session_with_the_client_secret(client, customer, emu):
    with pytest.raises(stripe.CardError) as declined:
        pay(client, "pm_card_authenticationRequired", customer.id)
    intent = declined.value.error.payment_intent
    stripe_js = StripeJs(emu.url)
    confirmed = stripe_js.confirm_card_payment(intent.client_secret, intent.payment_method)
    assert confirmed["status"] == "requires_action"
    assert stripe_js.handle_next_action(intent.client_secret)["status"] == "succeeded"


def test_a_publishable_key_needs_the_intents_client_secret(client, customer, emu):
    intent = _on_session(client, customer)
    stripe_js = StripeJs(emu.url)
    with pytest.raises(StripeJsError) as wrong:
        stripe_js.retrieve(intent.id + "_secret_guessed")
    assert (wrong.value.status, wrong.value.error["param"]) == (400, "client_secret")
    with pytest.raises(StripeJsError) as missing:
        stripe_js._api("GET", f"/v1/payment_intents/{intent.id}", None)
    assert (missing.value.status, missing.value.error["code"]) == (400, "parameter_missing")
    assert stripe_js.retrieve(intent.client_secret)["id"] == intent.id


def test_a_publishable_key_cannot_do_what_a_secret_key_does(emu):
    stripe_js = StripeJs(emu.url)
    for method, path in [
        ("POST", "/v1/payment_intents"),
        ("GET", "/v1/payment_intents"),
        ("POST", "/v1/customers"),
    ]:
        with pytest.raises(StripeJsError) as refused:
            stripe_js._api(method, path, {"amount": "100", "currency": "usd"} if method == "POST" else None)
        assert refused.value.status == 401
        assert "publishable API key" in refused.value.error["message"]
    assert emu.payment_intents() == []


def test_canceling_an_intent_waiting_for_authentication_sends_payment_intent_canceled(client, customer, emu):
    intent = _on_session(client, customer)
    canceled = client.v1.payment_intents.cancel(
        intent.id, {"cancellation_reason": "abandoned"}, {"idempotency_key": "cancel-1"}
    )
    assert (canceled.status, canceled.cancellation_reason, canceled.next_action) == (
        "canceled",
        "abandoned",
        None,
    )
    assert _types(emu)[-1] == "payment_intent.canceled"
    # The customer's late try at the test page changes nothing.
    assert StripeJs(emu.url).handle_next_action(intent.client_secret)["status"] == "canceled"


def test_an_intent_declined_off_session_can_be_canceled(client, customer, emu):
    with pytest.raises(stripe.CardError) as declined:
        pay(client, "pm_card_authenticationRequired", customer.id)
    intent_id = declined.value.error.payment_intent.id
    assert client.v1.payment_intents.cancel(intent_id).status == "canceled"


def test_canceling_a_succeeded_intent_is_400_unexpected_state_and_changes_nothing(client, customer, emu):
    intent = pay(client, "pm_card_visa", customer.id)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.payment_intents.cancel(intent.id)
    assert (refused.value.http_status, refused.value.code) == (400, "payment_intent_unexpected_state")
    assert refused.value.error.payment_intent.status == "succeeded"
    assert "payment_intent.canceled" not in _types(emu)


def test_an_unknown_cancellation_reason_is_refused(client, customer, emu):
    intent = _on_session(client, customer)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.payment_intents.cancel(intent.id, {"cancellation_reason": "changed_my_mind"})
    assert (refused.value.http_status, refused.value.param) == (400, "cancellation_reason")
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_action"


def test_cancel_refuses_a_parameter_stripe_does_not_take(client, customer, emu):
    intent = _on_session(client, customer)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.payment_intents.cancel(intent.id, {"reason": "abandoned"})  # type: ignore[typeddict-unknown-key]
    assert (refused.value.http_status, refused.value.code, refused.value.param) == (
        400,
        "parameter_unknown",
        "reason",
    )
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_action"
