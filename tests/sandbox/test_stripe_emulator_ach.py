"""ACH debits, mandates, microdeposits and disputes through the real SDK."""

import pytest
import stripe

from tests.sandbox.emulator_helpers import ACH_MANDATE, pay, wait_until

FOUR_DAYS = 4 * 86400
FAILURES = [
    ("pm_usBankAccount_accountClosed", "account_closed"),
    ("pm_usBankAccount_noAccount", "no_account"),
    ("pm_usBankAccount_insufficientFunds", "insufficient_funds"),
    ("pm_usBankAccount_debitNotAuthorized", "debit_not_authorized"),
    ("pm_usBankAccount_invalidCurrency", "invalid_currency"),
    ("pm_usBankAccount_weeklyLimitExceeded", "weekly_limit_exceeded"),
]


def bank_method(client, account="000123456789"):
    return client.v1.payment_methods.create(
        {
            "type": "us_bank_account",
            "billing_details": {"name": "Acme Corp"},
            "us_bank_account": {
                "routing_number": "110000000",
                "account_number": account,
                "account_holder_type": "company",
            },
        }
    )


def pay_ach(client, method, customer=None, **extra):
    return pay(client, method, customer, mandate_data=ACH_MANDATE, **extra)


def test_ach_payment_processes_then_succeeds_when_the_clock_passes_settlement(client, customer, emu):
    intent = pay_ach(client, "pm_usBankAccount_success", customer.id)
    assert intent.status == "processing"
    assert client.v1.charges.retrieve(intent.latest_charge).status == "pending"
    emu.advance(FOUR_DAYS - 60)
    assert client.v1.payment_intents.retrieve(intent.id).status == "processing"
    emu.advance(120)
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"
    assert client.v1.charges.retrieve(intent.latest_charge).status == "succeeded"
    types = [e["type"] for e in emu.events()]
    assert {
        "payment_intent.processing",
        "charge.pending",
        "charge.succeeded",
        "payment_intent.succeeded",
    } <= set(types)
    settled = [e for e in emu.events() if e["type"] == "payment_intent.succeeded"][0]
    assert settled["request"]["id"] is None


@pytest.mark.parametrize("token,code", FAILURES)
def test_ach_failure_arrives_as_payment_failed_with_its_code(client, emu, token, code):
    intent = pay_ach(client, token)
    emu.advance(FOUR_DAYS)
    intent = client.v1.payment_intents.retrieve(intent.id)
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error.code == code
    failed = [e for e in emu.events() if e["type"] == "payment_intent.payment_failed"]
    assert failed[-1]["data"]["object"]["last_payment_error"]["code"] == code
    assert client.v1.charges.retrieve(intent.latest_charge).failure_code == code


def test_ach_settles_after_a_configured_real_delay(client, emu):
    emu.ach_settle_after_seconds = 0
    intent = pay_ach(client, "pm_usBankAccount_success")
    assert wait_until(
        lambda: client.v1.payment_intents.retrieve(intent.id).status == "succeeded", timeout_s=5
    )


def test_processing_account_never_settles(client, emu):
    intent = pay_ach(client, "pm_usBankAccount_processing")
    emu.advance(30 * 86400)
    assert client.v1.payment_intents.retrieve(intent.id).status == "processing"


def test_disputed_account_succeeds_then_is_disputed(client, emu):
    intent = pay_ach(client, "pm_usBankAccount_dispute")
    emu.advance(FOUR_DAYS)
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"
    disputes = client.v1.disputes.list({"payment_intent": intent.id}).data
    assert len(disputes) == 1 and disputes[0].reason == "insufficient_funds"
    assert client.v1.charges.retrieve(intent.latest_charge).disputed is True
    types = [e["type"] for e in emu.events()]
    assert (
        types.index("payment_intent.succeeded")
        < types.index("charge.dispute.created")
        < types.index("charge.dispute.closed")
    )


def test_first_ach_debit_without_a_mandate_is_refused_and_creates_nothing(client, emu):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        pay(client, "pm_usBankAccount_success")
    assert caught.value.param == "mandate_data"
    assert emu.payment_intents() == []


def test_raw_account_details_give_a_test_bank_method(client):
    method = bank_method(client)
    details = method.us_bank_account
    assert (details.bank_name, details.last4, details.routing_number, details.account_holder_type) == (
        "STRIPE TEST BANK",
        "6789",
        "110000000",
        "company",
    )
    assert method.billing_details.name == "Acme Corp"


def setup_with_microdeposits(client, customer, account="000123456789"):
    method = bank_method(client, account)
    return client.v1.setup_intents.create(
        {
            "customer": customer.id,
            "payment_method": method.id,
            "payment_method_types": ["us_bank_account"],
            "usage": "off_session",
            "confirm": True,
            "mandate_data": ACH_MANDATE,
            "payment_method_options": {"us_bank_account": {"verification_method": "microdeposits"}},
        }
    )


@pytest.mark.parametrize("verification", [{"amounts": [32, 45]}, {"descriptor_code": "SM11AA"}])
def test_microdeposits_verify_then_off_session_debits_need_no_new_mandate(
    client, customer, emu, verification
):
    setup = setup_with_microdeposits(client, customer)
    assert setup.status == "requires_action"
    assert setup.next_action.type == "verify_with_microdeposits"
    assert setup.next_action.verify_with_microdeposits.arrival_date > emu.now()
    verified = client.v1.setup_intents.verify_microdeposits(setup.id, verification)
    assert verified.status == "succeeded"
    assert client.v1.payment_methods.retrieve(setup.payment_method).customer == customer.id
    intent = pay(client, setup.payment_method, customer.id, payment_method_types=["us_bank_account"])
    assert intent.status == "processing"


@pytest.mark.parametrize("verification", [{"amounts": [10, 11]}, {"descriptor_code": "SM33CC"}])
def test_microdeposit_attempts_exceeded_fails_the_setup(client, customer, verification):
    setup = setup_with_microdeposits(client, customer)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.setup_intents.verify_microdeposits(setup.id, verification)
    assert caught.value.code == "payment_method_microdeposit_verification_attempts_exceeded"
    assert client.v1.setup_intents.retrieve(setup.id).status == "requires_payment_method"


@pytest.mark.parametrize("verification", [{"amounts": [40, 41]}, {"descriptor_code": "SM44DD"}])
def test_microdeposit_test_values_that_time_out(client, customer, verification):
    setup = setup_with_microdeposits(client, customer)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.setup_intents.verify_microdeposits(setup.id, verification)
    assert caught.value.code == "payment_method_microdeposit_verification_timeout"


def test_three_wrong_amount_pairs_exhaust_the_attempts(client, customer):
    setup = setup_with_microdeposits(client, customer)
    codes = []
    for _ in range(3):
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.setup_intents.verify_microdeposits(setup.id, {"amounts": [1, 2]})
        codes.append(caught.value.code)
    assert codes == ["payment_method_microdeposit_verification_amounts_mismatch"] * 2 + [
        "payment_method_microdeposit_verification_attempts_exceeded"
    ]


def test_amounts_and_descriptor_code_together_are_refused(client, customer):
    setup = setup_with_microdeposits(client, customer)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.setup_intents.verify_microdeposits(
            setup.id, {"amounts": [32, 45], "descriptor_code": "SM11AA"}
        )
    assert client.v1.setup_intents.retrieve(setup.id).status == "requires_action"


def test_unverified_microdeposits_time_out_after_ten_days(client, customer, emu):
    setup = setup_with_microdeposits(client, customer)
    emu.advance(9 * 86400)
    assert client.v1.setup_intents.retrieve(setup.id).status == "requires_action"
    emu.advance(86400)
    timed_out = client.v1.setup_intents.retrieve(setup.id)
    assert timed_out.status == "requires_payment_method"
    assert timed_out.last_setup_error.code == "payment_method_microdeposit_verification_timeout"
    assert emu.events()[-1]["type"] == "setup_intent.setup_failed"


def test_payment_intent_with_microdeposits_processes_after_verification(client, customer, emu):
    method = bank_method(client)
    intent = pay_ach(client, method.id, customer.id, payment_method_types=["us_bank_account"])
    assert intent.status == "requires_action"
    intent = client.v1.payment_intents.verify_microdeposits(intent.id, {"amounts": [32, 45]})
    assert intent.status == "processing"
    emu.advance(FOUR_DAYS)
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"


def test_microdeposits_that_never_arrive_fail_the_payment(client, customer, emu):
    method = bank_method(client, "000666666661")
    intent = pay_ach(client, method.id, customer.id, payment_method_types=["us_bank_account"])
    emu.advance(3 * 86400)
    failed = client.v1.payment_intents.retrieve(intent.id)
    assert failed.status == "requires_payment_method"
    assert failed.last_payment_error.code == "payment_method_microdeposit_failed"


def test_setup_intent_with_a_verified_token_succeeds_and_can_be_canceled_before(client, customer, emu):
    pending = client.v1.setup_intents.create({"customer": customer.id, "payment_method_types": ["card"]})
    assert client.v1.setup_intents.cancel(pending.id).status == "canceled"
    setup = client.v1.setup_intents.create(
        {
            "customer": customer.id,
            "payment_method": "pm_usBankAccount_success",
            "confirm": True,
            "payment_method_types": ["us_bank_account"],
            "mandate_data": ACH_MANDATE,
        }
    )
    assert setup.status == "succeeded" and setup.mandate.startswith("mandate_")
    assert client.v1.mandates.retrieve(setup.mandate).status == "active"
    types = [e["type"] for e in emu.events()]
    assert "setup_intent.canceled" in types and "setup_intent.succeeded" in types


def test_revoked_mandate_emits_mandate_updated_and_requires_a_new_one(client, customer, emu):
    setup = client.v1.setup_intents.create(
        {
            "customer": customer.id,
            "payment_method": "pm_usBankAccount_success",
            "confirm": True,
            "payment_method_types": ["us_bank_account"],
            "mandate_data": ACH_MANDATE,
        }
    )
    emu.revoke_mandate(setup.payment_method)
    assert emu.events()[-1]["type"] == "mandate.updated"
    with pytest.raises(stripe.InvalidRequestError):
        pay(client, setup.payment_method, customer.id, payment_method_types=["us_bank_account"])
