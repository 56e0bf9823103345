from datetime import UTC, datetime, timedelta

import pytest

from tasks.domain.attempts import SEARCH_AFTER, Step, decide_attempt, stripe_key
from tasks.domain.states import PaymentStatus

P = PaymentStatus
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("status", "attempt", "age", "step", "number"),
    [
        # a fresh payment creates its first PaymentIntent under attempt 1's key
        (P.PENDING, 0, None, Step.CREATE, 1),
        # a payment back to pending after a failed attempt creates under the next key
        (P.PENDING, 2, timedelta(hours=30), Step.CREATE, 3),
        # a crash mid-create replays the same key while Stripe surely keeps it
        (P.SUBMITTING, 1, timedelta(minutes=5), Step.CREATE, 1),
        # a submitting payment without a recorded start replays its key
        (P.SUBMITTING, 1, None, Step.CREATE, 1),
        # one second before the boundary the key is still replayed
        (P.SUBMITTING, 1, SEARCH_AFTER - SECOND, Step.CREATE, 1),
        # exactly at the boundary Stripe is searched instead
        (P.SUBMITTING, 1, SEARCH_AFTER, Step.SEARCH, 1),
        # one second past the boundary Stripe is searched
        (P.SUBMITTING, 1, SEARCH_AFTER + SECOND, Step.SEARCH, 1),
        # a payment already settled needs nothing, whatever its age
        (P.SUCCEEDED, 1, timedelta(hours=30), Step.NOTHING, 1),
    ],
)
def test_what_execute_payment_does_for_a_payment(status, attempt, age, step, number):
    first_attempt_at = None if age is None else NOW - age
    decision = decide_attempt(7, status, attempt, first_attempt_at, NOW)
    assert (decision.step, decision.attempt) == (step, number)
    assert decision.idempotency_key == (None if step == Step.NOTHING else stripe_key(7, number))


def test_the_search_boundary_is_twenty_hours():
    assert SEARCH_AFTER == timedelta(hours=20)
