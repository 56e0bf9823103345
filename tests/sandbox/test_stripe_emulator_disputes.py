"""Disputes that end every way Stripe ends them, through the real SDK and the control API."""

import pytest
import stripe

from tests.sandbox.emulator_helpers import pay
from tests.sandbox.test_stripe_emulator_control import control


def dispute_events(emu, dispute_id):
    return [
        (e["type"], e["data"]["object"]["status"])
        for e in emu.events()
        if e["type"].startswith("charge.dispute.") and e["data"]["object"]["id"] == dispute_id
    ]


def opened(client, token="pm_card_createDispute"):
    intent = pay(client, token)
    return client.v1.disputes.list({"payment_intent": intent.id}).data[0]


def test_a_chargeback_takes_the_funds_and_winning_evidence_gives_them_back(client, emu):
    dispute = opened(client)
    updated = client.v1.disputes.update(dispute.id, {"evidence": {"uncategorized_text": "winning_evidence"}})
    assert updated.status == "won" and client.v1.disputes.retrieve(dispute.id).status == "won"
    assert dispute_events(emu, dispute.id) == [
        ("charge.dispute.created", "needs_response"),
        ("charge.dispute.funds_withdrawn", "needs_response"),
        ("charge.dispute.updated", "under_review"),
        ("charge.dispute.closed", "won"),
        ("charge.dispute.funds_reinstated", "won"),
    ]
    assert [t.amount for t in updated.balance_transactions] == [-1000, 1000]
    assert updated.evidence.uncategorized_text == "winning_evidence"


def test_losing_evidence_loses_and_other_evidence_stays_under_review(client, emu):
    lost = opened(client)
    assert (
        client.v1.disputes.update(lost.id, {"evidence": {"uncategorized_text": "losing_evidence"}}).status
        == "lost"
    )
    assert dispute_events(emu, lost.id)[-1] == ("charge.dispute.closed", "lost")
    draft = opened(client)
    saved = client.v1.disputes.update(draft.id, {"evidence": {"customer_name": "Ada"}, "submit": False})
    assert (saved.status, saved.evidence_details.submission_count) == ("needs_response", 0)
    reviewed = client.v1.disputes.update(draft.id, {"evidence": {"product_description": "Bolts"}})
    assert (reviewed.status, reviewed.evidence_details.submission_count) == ("under_review", 1)


def test_an_inquiry_takes_no_funds_and_closes_or_escalates(client, emu):
    answered = opened(client, "pm_card_createDisputeInquiry")
    assert (answered.status, answered.is_charge_refundable) == ("warning_needs_response", True)
    closed = client.v1.disputes.update(answered.id, {"evidence": {"uncategorized_text": "winning_evidence"}})
    assert closed.status == "warning_closed"
    assert dispute_events(emu, answered.id) == [
        ("charge.dispute.created", "warning_needs_response"),
        ("charge.dispute.updated", "warning_under_review"),
        ("charge.dispute.closed", "warning_closed"),
    ]
    escalated = opened(client, "pm_card_createDisputeInquiry")
    client.v1.disputes.update(escalated.id, {"evidence": {"uncategorized_text": "losing_evidence"}})
    assert dispute_events(emu, escalated.id)[-2:] == [
        ("charge.dispute.updated", "needs_response"),
        ("charge.dispute.funds_withdrawn", "needs_response"),
    ]


def test_dispute_updates_are_checked_as_stripe_checks_them(client):
    dispute = opened(client)
    for params, code in (
        ({"evidence": {"favourite_colour": "blue"}}, "parameter_unknown"),
        ({"evidenceish": "x"}, "parameter_unknown"),
    ):
        with pytest.raises(stripe.InvalidRequestError) as refused:
            client.v1.disputes.update(dispute.id, params)
        assert refused.value.code == code
    client.v1.disputes.close(dispute.id)
    with pytest.raises(stripe.InvalidRequestError) as closed:
        client.v1.disputes.update(dispute.id, {"evidence": {"uncategorized_text": "winning_evidence"}})
    assert closed.value.code == "dispute_already_closed"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.disputes.retrieve("dp_nothing")


def test_control_api_opens_and_closes_disputes_won_or_lost(client, emu):
    emu_url = emu.url
    intent = pay(client, "pm_card_visa")
    dispute = control(emu_url, "POST", "open_dispute", {"payment_intent": intent.id})
    won = control(emu_url, "POST", "close_dispute", {"dispute": dispute["id"], "outcome": "won"})
    assert won["status"] == "won"
    assert dispute_events(emu, dispute["id"])[-2:] == [
        ("charge.dispute.closed", "won"),
        ("charge.dispute.funds_reinstated", "won"),
    ]
    inquiry = control(
        emu_url, "POST", "open_dispute", {"payment_intent": pay(client, "pm_card_visa").id, "inquiry": True}
    )
    assert inquiry["status"] == "warning_needs_response"
    assert control(emu_url, "POST", "close_dispute", {"dispute": inquiry["id"], "outcome": "won"})[
        "status"
    ] == ("warning_closed")
