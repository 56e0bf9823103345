"""Refunds and disputes through the real SDK."""

import pytest
import stripe

from tests.sandbox.emulator_helpers import ACH_MANDATE, pay


def test_full_refund_by_payment_intent(client, emu):
    intent = pay(client, "pm_card_visa", amount=2500)
    refund = client.v1.refunds.create({"payment_intent": intent.id})
    assert (refund.amount, refund.status, refund.charge) == (2500, "succeeded", intent.latest_charge)
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (2500, True)
    assert {"refund.created", "charge.refunded"} <= {e["type"] for e in emu.events()}


def test_partial_refunds_add_up_and_cannot_exceed_the_charge(client):
    intent = pay(client, "pm_card_visa", amount=2500)
    client.v1.refunds.create({"payment_intent": intent.id, "amount": 1000})
    client.v1.refunds.create(
        {"charge": intent.latest_charge, "amount": 1000, "reason": "requested_by_customer"}
    )
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create({"payment_intent": intent.id, "amount": 600})
    assert caught.value.code == "amount_too_large"
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (2000, False)
    assert len(client.v1.refunds.list({"payment_intent": intent.id}).data) == 2


def test_refunding_a_fully_refunded_charge_is_refused(client):
    intent = pay(client, "pm_card_visa")
    client.v1.refunds.create({"payment_intent": intent.id})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create({"payment_intent": intent.id})
    assert caught.value.code == "charge_already_refunded"


def test_refunding_a_charged_back_charge_is_refused_and_changes_nothing(client, emu):
    intent = pay(client, "pm_card_createDispute")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create({"payment_intent": intent.id})
    assert caught.value.code == "charge_disputed"
    assert client.v1.charges.retrieve(intent.latest_charge).amount_refunded == 0 and emu.refunds() == []


def test_refunding_an_unpaid_intent_is_refused(client):
    intent = client.v1.payment_intents.create({"amount": 500, "currency": "usd"})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create({"payment_intent": intent.id})


def test_bank_refund_is_pending_until_the_clock_settles_it(client, emu):
    intent = pay(client, "pm_usBankAccount_success", mandate_data=ACH_MANDATE)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create({"payment_intent": intent.id})
    emu.advance(4 * 86400)
    refund = client.v1.refunds.create({"payment_intent": intent.id, "amount": 400})
    assert refund.status == "pending"
    emu.advance(4 * 86400)
    assert client.v1.refunds.retrieve(refund.id).status == "succeeded"
    assert emu.events()[-1]["type"] == "refund.updated"


def test_refund_that_fails_later_emits_refund_failed(client, emu):
    intent = pay(client, "pm_card_refundFail")
    refund = client.v1.refunds.create({"payment_intent": intent.id})
    emu.advance(4 * 86400)
    assert client.v1.refunds.retrieve(refund.id).status == "failed"
    assert client.v1.charges.retrieve(intent.latest_charge).amount_refunded == 0
    assert "refund.failed" in [e["type"] for e in emu.events()]


def test_card_dispute_opens_and_can_be_accepted(client, emu):
    intent = pay(client, "pm_card_createDispute")
    dispute = client.v1.disputes.list({"charge": intent.latest_charge}).data[0]
    assert (dispute.status, dispute.amount, dispute.payment_intent) == ("needs_response", 1000, intent.id)
    assert client.v1.disputes.close(dispute.id).status == "lost"
    assert client.v1.disputes.retrieve(dispute.id).status == "lost"
    types = [e["type"] for e in emu.events()]
    assert "charge.dispute.created" in types and types[-1] == "charge.dispute.closed"


def test_charges_list_filters_by_payment_intent(client):
    first = pay(client, "pm_card_visa")
    pay(client, "pm_card_visa")
    assert [c.id for c in client.v1.charges.list({"payment_intent": first.id}).data] == [first.latest_charge]
