"""Table-driven tests of the pure Stripe event rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from tasks.domain.events import (
    DEPLOYMENT_KEY,
    WAIT_FOR_PAYMENT_S,
    AllocationSlice,
    CreditSlice,
    EventMalformed,
    Recorded,
    RefundSplit,
    check_event_shape,
    contradicts,
    dispute_is_closed,
    dispute_is_inquiry,
    foreign_intent,
    intent_event_applies,
    intent_event_target,
    next_dispute_status,
    payment_id_from_metadata,
    refund_target,
    route_for,
    split_refund,
    take_back,
    waits_for_payment,
)
from tasks.domain.states import PaymentStatus as P


@pytest.mark.parametrize(
    ("event_type", "family"),
    [
        ("payment_intent.succeeded", "payment_intents"),
        ("payment_intent.requires_action", "payment_intents"),
        ("charge.refunded", "refunds"),
        ("refund.failed", "refunds"),
        ("charge.dispute.created", "disputes"),
        ("charge.dispute.closed", "disputes"),
        ("charge.dispute.updated", "disputes"),
        ("charge.dispute.funds_withdrawn", "disputes"),
        ("setup_intent.setup_failed", "setup_intents"),
        ("payment_method.automatically_updated", "payment_methods"),
        ("mandate.updated", "mandates"),
        ("payment_intent.created", None),
        ("customer.created", None),
        ("", None),
    ],
)
def test_route_for_names_the_handler_family(event_type, family):
    assert route_for(event_type) == family


@pytest.mark.parametrize(
    ("event_type", "error", "target"),
    [
        ("payment_intent.succeeded", None, P.SUCCEEDED),
        ("payment_intent.processing", None, P.PROCESSING),
        (
            "payment_intent.payment_failed",
            {"code": "card_declined", "decline_code": "insufficient_funds"},
            P.FAILED,
        ),
        ("payment_intent.payment_failed", {"code": "authentication_required"}, P.REQUIRES_ACTION),
        (
            "payment_intent.payment_failed",
            {"code": "card_declined", "decline_code": "authentication_required"},
            P.REQUIRES_ACTION,
        ),
        ("payment_intent.canceled", None, P.CANCELED),
        ("payment_intent.requires_action", None, P.REQUIRES_ACTION),
        ("payment_intent.created", None, None),
    ],
)
def test_intent_event_target_maps_event_and_error(event_type, error, target):
    assert intent_event_target(event_type, error) == target


@pytest.mark.parametrize(
    ("current", "applies"),
    [
        (P.SUBMITTING, True),
        (P.PROCESSING, True),
        (P.REQUIRES_ACTION, True),
        (P.PENDING, True),
        (P.SUCCEEDED, False),
        (P.REFUNDED, False),
        (P.PARTIALLY_REFUNDED, False),
        (P.DISPUTED, False),
        (P.FAILED, False),
        (P.CANCELED, False),
    ],
)
def test_intent_events_never_move_a_settled_payment(current, applies):
    assert intent_event_applies(current) is applies


@pytest.mark.parametrize(
    ("metadata", "payment_id"),
    [
        ({"payment_id": "42"}, 42),
        ({}, None),
        (None, None),
        ({"payment_id": "abc"}, None),
        ({"payment_id": "-1"}, None),
        ({"payment_id": 42}, None),
        ({"payment_id": "9" * 30}, None),
        ({"payment_id": "²"}, None),
        ({"payment_id": "٣"}, None),
    ],
)
def test_payment_id_from_metadata_accepts_only_our_ids(metadata, payment_id):
    assert payment_id_from_metadata(metadata) == payment_id


@pytest.mark.parametrize(
    ("amount", "refunded", "target"),
    [
        (10_000, 10_000, P.REFUNDED),
        (10_000, 1, P.PARTIALLY_REFUNDED),
        (10_000, 9_999, P.PARTIALLY_REFUNDED),
    ],
)
def test_refund_target_by_cumulative_amount(amount, refunded, target):
    assert refund_target(amount, refunded) == target


A = AllocationSlice(1, date(2026, 1, 10), 3_000)
B = AllocationSlice(2, date(2026, 2, 10), 5_000)
C = AllocationSlice(3, date(2026, 3, 10), 2_000)


@pytest.mark.parametrize(
    ("refund", "split"),
    [
        (0, RefundSplit((), None, 0)),
        (2_000, RefundSplit((3,), None, 0)),
        (1_500, RefundSplit((), (3, 500), 0)),
        (2_500, RefundSplit((3,), (2, 4_500), 0)),
        (7_000, RefundSplit((3, 2), None, 0)),
        (10_000, RefundSplit((3, 2, 1), None, 0)),
        (12_000, RefundSplit((3, 2, 1), None, 2_000)),
    ],
)
def test_split_refund_gives_back_latest_due_invoices_first(refund, split):
    assert split_refund([A, B, C], refund) == split


def test_split_refund_refuses_negative_amounts():
    with pytest.raises(ValueError):
        split_refund([A], -1)


OLD_CREDIT = CreditSlice(10, 1_000)
NEW_CREDIT = CreditSlice(11, 500)
NONE = RefundSplit((), None, 0)


@pytest.mark.parametrize(
    ("credits", "refund", "reverse_credits", "reduce_credit", "split"),
    [
        # no credit: the refund goes straight to the allocations, latest due first
        ([], 2_500, (), None, RefundSplit((3,), (2, 4_500), 0)),
        # less than the oldest credit: that credit shrinks, every invoice stays paid
        ([NEW_CREDIT, OLD_CREDIT], 400, (), (10, 600), NONE),
        # exactly the oldest credit: it is reversed whole, nothing else moves
        ([NEW_CREDIT, OLD_CREDIT], 1_000, (10,), None, NONE),
        # into the newer credit: the oldest reversed, the newer one shrinks
        ([NEW_CREDIT, OLD_CREDIT], 1_200, (10,), (11, 300), NONE),
        # exactly all credit: both reversed, no invoice reopened
        ([NEW_CREDIT, OLD_CREDIT], 1_500, (10, 11), None, NONE),
        # one past all credit: the latest-due allocation is reduced by the unit left
        ([NEW_CREDIT, OLD_CREDIT], 1_501, (10, 11), None, RefundSplit((), (3, 1_999), 0)),
        # past credit and one allocation: it is reversed and the next latest-due one reduced
        ([OLD_CREDIT], 4_000, (10,), None, RefundSplit((3,), (2, 4_000), 0)),
        # more than credit and allocations together: the rest is left to the full-refund transition
        ([OLD_CREDIT], 12_000, (10,), None, RefundSplit((3, 2, 1), None, 1_000)),
        # nothing newly refunded takes nothing back
        ([OLD_CREDIT], 0, (), None, NONE),
    ],
)
def test_a_refund_takes_back_credit_oldest_first_then_latest_due_allocations(
    credits, refund, reverse_credits, reduce_credit, split
):
    taken = take_back(credits, [A, B, C], refund)
    assert (taken.reverse_credit_ids, taken.reduce_credit, taken.allocations) == (
        reverse_credits,
        reduce_credit,
        split,
    )


def test_take_back_refuses_negative_amounts():
    with pytest.raises(ValueError):
        take_back([OLD_CREDIT], [A], -1)


GOOD = {"id": "evt_1", "object": "event", "type": "x.y", "created": 1, "data": {"object": {}}}


@pytest.mark.parametrize(
    "event",
    [
        [],
        "evt",
        {**GOOD, "object": "charge"},
        {**GOOD, "id": "ch_1"},
        {**GOOD, "id": None},
        {**GOOD, "type": ""},
        {**GOOD, "data": {}},
        {**GOOD, "data": {"object": "x"}},
        {**GOOD, "created": "soon"},
    ],
)
def test_check_event_shape_refuses_what_is_not_an_event(event):
    with pytest.raises(EventMalformed):
        check_event_shape(event)


def test_check_event_shape_returns_id_and_type():
    assert check_event_shape(GOOD) == ("evt_1", "x.y")


@pytest.mark.parametrize(
    ("status", "closed"),
    [
        ("won", True),
        ("lost", True),
        ("warning_closed", True),
        ("needs_response", False),
        ("under_review", False),
    ],
)
def test_dispute_is_closed(status, closed):
    assert dispute_is_closed(status) is closed


@pytest.mark.parametrize(
    ("status", "inquiry"),
    [
        ("warning_needs_response", True),
        ("warning_under_review", True),
        ("warning_closed", True),
        ("needs_response", False),
        ("under_review", False),
        ("won", False),
        ("lost", False),
    ],
)
def test_dispute_is_inquiry(status, inquiry):
    assert dispute_is_inquiry(status) is inquiry


@pytest.mark.parametrize(
    ("stored", "reported", "kept"),
    [
        ("warning_needs_response", "warning_under_review", "warning_under_review"),
        ("warning_needs_response", "warning_closed", "warning_closed"),
        ("warning_under_review", "needs_response", "needs_response"),  # escalated to a chargeback
        ("needs_response", "warning_needs_response", "needs_response"),  # the inquiry's events delivered late
        ("under_review", "warning_under_review", "under_review"),
        ("needs_response", "lost", "lost"),
        ("lost", "needs_response", "lost"),
        ("warning_closed", "warning_needs_response", "warning_closed"),
    ],
)
def test_next_dispute_status_never_undoes_an_escalation_or_a_close(stored, reported, kept):
    assert next_dispute_status(stored, reported) == kept


@pytest.mark.parametrize(
    ("status", "event_type"),
    [
        ("succeeded", "payment_intent.succeeded"),
        ("processing", "payment_intent.processing"),
        ("requires_payment_method", "payment_intent.payment_failed"),
        ("canceled", "payment_intent.canceled"),
        ("requires_action", "payment_intent.requires_action"),
        ("requires_confirmation", None),
        ("requires_capture", None),
    ],
)
def test_intent_event_type_reads_a_retrieved_status_as_its_event(status, event_type):
    from tasks.domain.events import intent_event_type

    assert intent_event_type(status) == event_type


MINE = Recorded(intent_id=None, account_id=7, amount_minor=64_510, currency="usd", customer_id="cus_7")
MADE = {
    "id": "pi_1",
    "amount": 64_510,
    "currency": "usd",
    "customer": "cus_7",
    "metadata": {"payment_id": "42", "account_id": "7", DEPLOYMENT_KEY: "remit"},
}


@pytest.mark.parametrize(
    ("recorded", "changes", "reason"),
    [
        (MINE, {}, None),  # made by us for this payment: it may move it
        (MINE, {"currency": "USD"}, None),  # Stripe's currencies are lower case; case alone is no difference
        (MINE, {"customer": {"id": "cus_7"}}, None),  # an expanded customer is the same customer
        (replace(MINE, intent_id="pi_0"), {}, "another PaymentIntent"),  # the payment recorded its own
        (MINE, {"metadata": {"payment_id": "42", "account_id": "7"}}, "deployment"),  # no marker at all
        (MINE, {"metadata": {**MADE["metadata"], DEPLOYMENT_KEY: "staging"}}, "deployment"),  # another one's
        (MINE, {"metadata": {**MADE["metadata"], "account_id": "8"}}, "account differs"),
        (MINE, {"amount": 1}, "amount differs"),  # the foreign 1-cent intent of the report
        (MINE, {"currency": "eur"}, "currency differs"),
        (MINE, {"customer": "cus_8"}, "customer differs"),
        (MINE, {"customer": None}, "customer differs"),
    ],
)
def test_an_intent_found_only_through_metadata_must_prove_it_is_the_payments(recorded, changes, reason):
    found = foreign_intent(recorded, {**MADE, **changes}, "remit")
    assert (found is None) if reason is None else (reason in found)


@pytest.mark.parametrize(
    ("stored", "reported", "contradiction"),
    [
        (P.FAILED, P.SUCCEEDED, True),  # told it failed, charged anyway: ops must know
        (P.CANCELED, P.SUCCEEDED, True),
        (P.FAILED, P.PROCESSING, False),  # a bank debit's late processing event: it failed after it
        (P.FAILED, P.FAILED, False),
        (P.DISPUTED, P.SUCCEEDED, False),  # the success is what the dispute is about
        (P.REFUNDED, P.SUCCEEDED, False),
        (P.SUBMITTING, P.SUCCEEDED, False),  # the normal case, applied
        (P.FAILED, None, False),  # an event that reports no outcome
    ],
)
def test_only_stripe_taking_money_our_row_says_it_did_not_is_a_contradiction(stored, reported, contradiction):
    assert contradicts(stored, reported) is contradiction


@pytest.mark.parametrize(
    ("age_s", "waits"),
    [
        (0, True),
        (WAIT_FOR_PAYMENT_S - 1, True),  # the payment may still record the charge
        (WAIT_FOR_PAYMENT_S, False),  # a day on, it never will: someone else's
        (WAIT_FOR_PAYMENT_S + 1, False),
    ],
)
def test_an_event_waits_for_its_payment_a_day_after_stripe_created_it(age_s, waits):
    assert waits_for_payment(1_000_000 - age_s, 1_000_000) is waits


def test_an_event_without_a_creation_time_does_not_wait():
    assert waits_for_payment(None, 1_000_000) is False
