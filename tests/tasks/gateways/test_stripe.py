"""The mapping of Stripe's answers and Remit's rows onto the calls and results Remit uses."""

from __future__ import annotations

import pytest

from tasks.gateways.stripe import IntentResult, Mandate, StripeGateway, mandate_data, payment_intent_params

MANDATE = Mandate(accepted_at=1_767_000_000, ip_address="203.0.113.7", user_agent="Portal/1.0")
# What Stripe takes for MANDATE, spelled out once so a change to the builder shows here.
MANDATE_DATA = {
    "customer_acceptance": {
        "type": "online",
        "accepted_at": 1_767_000_000,
        "online": {"ip_address": "203.0.113.7", "user_agent": "Portal/1.0"},
    }
}


class _SetupIntents:
    """Records what a SetupIntent create received and answers with a verified one."""

    def __init__(self):
        self.created: list[dict] = []

    def create(self, params: dict, options: dict) -> dict:
        self.created.append(params)
        return {"id": "seti_1", "status": "succeeded", "payment_method": params["payment_method"]}


class _Client:
    def __init__(self):
        self.setup_intents = _SetupIntents()
        self.v1 = self


@pytest.mark.parametrize(
    ("status", "error_code", "decline_code", "expected"),
    [
        # Stripe has been seen to put it in either field; both count.
        ("requires_payment_method", "authentication_required", None, True),
        ("requires_payment_method", "card_declined", "authentication_required", True),
        # 3-D Secure asked for at confirmation, without an error.
        ("requires_action", None, None, True),
        ("requires_payment_method", "card_declined", "insufficient_funds", False),
        ("succeeded", None, None, False),
    ],
)
def test_an_intent_needs_authentication_when_stripe_asks_for_it(status, error_code, decline_code, expected):
    result = IntentResult(id="pi_1", status=status, error_code=error_code, decline_code=decline_code)

    assert result.needs_authentication is expected


def test_mandate_data_is_the_online_acceptance_stripe_takes():
    assert mandate_data(MANDATE) == MANDATE_DATA


def test_a_bank_account_payment_intent_carries_the_mandate():
    params = payment_intent_params(
        payment_id=7,
        account_id=3,
        amount_minor=12_500,
        currency="usd",
        customer_id="cus_1",
        payment_method="pm_1",
        method_kind="us_bank_account",
        off_session=True,
        mandate=MANDATE,
    )

    assert params["mandate_data"] == MANDATE_DATA
    assert "off_session" not in params


def test_a_card_payment_intent_carries_no_mandate():
    params = payment_intent_params(
        payment_id=7,
        account_id=3,
        amount_minor=12_500,
        currency="usd",
        customer_id="cus_1",
        payment_method="pm_1",
        method_kind="card",
        off_session=True,
        mandate=MANDATE,
    )

    assert "mandate_data" not in params
    assert params["off_session"] is True


def test_a_setup_intent_carries_the_same_mandate_as_a_payment_intent():
    client = _Client()

    state = StripeGateway(client).create_setup_intent(
        customer_id="cus_1",
        payment_method="pm_1",
        mandate=MANDATE,
        metadata={"method_id": "5"},
        idempotency_key="remit-setup-5",
    )

    assert [p["mandate_data"] for p in client.setup_intents.created] == [MANDATE_DATA]
    assert (state["id"], state["status"], state["payment_method"]) == ("seti_1", "succeeded", "pm_1")
