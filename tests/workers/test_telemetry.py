"""What the processes count: Stripe calls by outcome, for /metrics and for the dashboard's charts."""

from __future__ import annotations

import time

import pytest
import stripe

from tasks.gateways import stripe_transport
from workers import telemetry


def _value(outcome: str) -> float:
    return telemetry.STRIPE_REQUESTS.labels(outcome)._value.get()


@pytest.fixture()
def clean_stats(broker):
    for key in broker.client.scan_iter(f"{broker.namespace}:stats:*"):
        broker.client.delete(key)
    return broker


def test_stripe_calls_are_counted_by_outcome_with_429s_apart(clean_stats):
    broker = clean_stats
    before = {o: _value(o) for o in ("ok", "rate_limited", "error")}
    answers = [stripe.RateLimitError("slow down"), {"id": "pi_1"}]

    def call(params, options):
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert stripe_transport.send(None, call, {}, {}) == {"id": "pi_1"}
    with pytest.raises(stripe.CardError):
        stripe_transport.send(None, _declined, {}, {})
    assert {o: _value(o) - before[o] for o in before} == {"ok": 1, "rate_limited": 1, "error": 1}
    counts = telemetry.read_minutes(broker.client, broker.namespace, time.time())
    assert (sum(counts["stripe_requests"]), sum(counts["stripe_rate_limited"])) == (3, 1)


def _declined(params, options):
    raise stripe.CardError("declined", None, "card_declined")
