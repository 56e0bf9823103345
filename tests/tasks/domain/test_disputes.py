"""The dispute decision and the won dispute's split, as tables."""

from __future__ import annotations

import pytest

from tasks.domain.disputes import Decision, Reversed, Step, decide, reported_status, split_reinstatement

R, I, N = Step.REVERSE, Step.REINSTATE, Step.NOTE


@pytest.mark.parametrize(
    ("status", "reversed_", "reinstated", "disputable", "expected"),
    [
        ("warning_needs_response", False, False, True, Decision(N, True)),  # an inquiry wants an answer
        ("warning_under_review", False, False, True, Decision(N, True)),
        ("warning_closed", False, False, True, Decision(N, False)),  # closed without a chargeback
        ("charge_refunded", False, False, True, Decision(N, False)),
        ("needs_response", False, False, True, Decision(R, True)),  # a chargeback takes the money
        ("under_review", True, False, True, Decision(N, True)),  # already taken: still owes a response
        ("needs_response", False, False, False, Decision(N, True)),  # nothing to take: a person looks
        ("lost", False, False, True, Decision(R, False)),  # first seen lost: taken, nothing to answer
        ("lost", True, False, True, Decision(N, False)),
        ("won", True, False, True, Decision(I, False)),  # the money is back
        ("won", False, False, True, Decision(I, False)),  # first seen won: reversed, then reinstated
        ("won", False, False, False, Decision(N, False)),  # nothing was ever taken
        ("won", True, True, True, Decision(N, None)),  # a repeat leaves the flag as the win set it
    ],
)
def test_decide(status, reversed_, reinstated, disputable, expected):
    assert decide(status, reversed_=reversed_, reinstated=reinstated, disputable=disputable) == expected


@pytest.mark.parametrize(
    ("event_type", "status", "expected"),
    [
        ("charge.dispute.funds_reinstated", "under_review", "won"),  # the money came back
        ("charge.dispute.funds_reinstated", "won", "won"),
        ("charge.dispute.closed", "lost", "lost"),
        ("charge.dispute.updated", "under_review", "under_review"),
    ],
)
def test_reported_status(event_type, status, expected):
    assert reported_status(event_type, status) == expected


A = Reversed(1, 10, 6_000, 0)
B = Reversed(2, 20, 3_800, 200)  # paid 3,800 with a 200 discount on a 4,000 invoice


@pytest.mark.parametrize(
    ("room", "whole", "reduced", "credit"),
    [
        ({10: 6_000, 20: 4_000}, (1, 2), (), ()),  # both invoices still owe it all
        ({10: 0, 20: 4_000}, (2,), (), ((10, 6_000),)),  # the first was paid meanwhile: credit
        ({10: 2_500, 20: 4_000}, (2,), ((1, 2_500),), ((10, 3_500),)),  # paid in part meanwhile
        ({10: 6_000, 20: 1_000}, (1,), ((2, 800),), ((20, 3_000),)),  # the discount is kept on what fits
        ({10: 6_000, 20: 150}, (1,), (), ((20, 3_800),)),  # less left than the discount: all credit
        ({10: 6_000}, (1,), (), ((20, 3_800),)),  # voided (no room)
    ],
)
def test_split_reinstatement_adds_up_to_what_was_reversed(room, whole, reduced, credit):
    plan = split_reinstatement([A, B], room)
    assert (plan.whole, plan.reduced, plan.credit) == (whole, reduced, credit)
    assert plan.reinstated_minor + plan.credit_minor == A.amount_minor + B.amount_minor
