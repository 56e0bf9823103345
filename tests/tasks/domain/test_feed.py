"""The feed's pure rules: which move is which event, the signature scheme, the retry schedule."""

from datetime import UTC, datetime, timedelta

import pytest

from tasks.domain import feed

T0 = datetime(2026, 12, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("source", "target", "event"),
    [
        ("submitting", "succeeded", "payment.succeeded"),
        ("processing", "succeeded", "payment.succeeded"),
        ("submitting", "processing", "payment.processing"),
        ("submitting", "failed", "payment.failed"),
        ("scheduled", "canceled", "payment.canceled"),
        ("succeeded", "partially_refunded", "payment.refunded"),  # each refund is a refund to the ERP
        ("partially_refunded", "refunded", "payment.refunded"),
        ("succeeded", "refunded", "payment.refunded"),
        ("succeeded", "disputed", "payment.disputed"),
        ("disputed", "succeeded", "payment.succeeded"),  # money back after a won dispute
        ("pending", "submitting", None),  # the attempt's key recorded: internal
        ("scheduled", "pending", None),  # the clock sending a due payment: internal
    ],
)
def test_payment_events(source, target, event):
    assert feed.payment_event(source, target) == event


@pytest.mark.parametrize(
    ("source", "target", "event"),
    [
        ("reserved", "applied", "allocation.applied"),
        ("reserved", "released", "allocation.released"),
        ("applied", "reversed", "allocation.reversed"),
        ("applied", "applied", None),
    ],
)
def test_allocation_events(source, target, event):
    assert feed.allocation_event(source, target) == event


@pytest.mark.parametrize(
    ("source", "target", "event"),
    [
        ("pending", "available", "credit.created"),
        ("available", "applied", "credit.applied"),
        ("available", "reversed", "credit.reversed"),
        ("pending", "reversed", None),  # the credit a failed payment would have left never existed
    ],
)
def test_credit_events(source, target, event):
    assert feed.credit_event(source, target) == event


@pytest.mark.parametrize(
    ("before", "after", "event"),
    [
        (None, "active", "payment_method.added"),
        (None, "verification_pending", "payment_method.added"),
        ("verification_pending", "active", "payment_method.verified"),
        ("verification_pending", "verification_failed", "payment_method.verification_failed"),
        ("active", "removed", "payment_method.removed"),
        ("active", "active", None),
    ],
)
def test_method_events(before, after, event):
    assert feed.method_event(before, after) == event


def test_a_signature_verifies_with_its_secret_and_no_other():
    body = b'{"sequence":1}'
    header = feed.signature_header(["s3cret-one"], 1_700_000_000, body)
    assert header.startswith("t=1700000000,v1=")
    assert feed.verify_signature(header, body, ["s3cret-one"], 1_700_000_000)
    assert not feed.verify_signature(header, body, ["another"], 1_700_000_000)
    assert not feed.verify_signature(header, body + b" ", ["s3cret-one"], 1_700_000_000)


def test_while_rolling_every_secret_signs_and_a_receiver_knowing_either_accepts():
    body = b"{}"
    header = feed.signature_header(["new-secret", "old-secret"], 100, body)
    assert header.count("v1=") == 2
    assert feed.verify_signature(header, body, ["old-secret"], 100)
    assert feed.verify_signature(header, body, ["new-secret"], 100)


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(0, True), (feed.SIGNATURE_TOLERANCE_S, True), (feed.SIGNATURE_TOLERANCE_S + 1, False), (-301, False)],
)
def test_a_stale_signature_is_refused(offset, accepted):
    header = feed.signature_header(["k"], 1000, b"x")
    assert feed.verify_signature(header, b"x", ["k"], 1000 + offset) is accepted


@pytest.mark.parametrize("header", ["", "v1=abc", "t=abc,v1=00", "t=1,t=1,v1=00", "garbage"])
def test_a_malformed_header_is_refused(header):
    assert not feed.verify_signature(header, b"x", ["k"], 1)


@pytest.mark.parametrize(
    ("attempts", "wait"),
    [
        (1, timedelta(minutes=1)),
        (2, timedelta(minutes=2)),
        (6, timedelta(minutes=32)),
        (7, timedelta(hours=1)),  # capped
        (40, timedelta(hours=1)),
    ],
)
def test_retries_back_off_to_an_hour(attempts, wait):
    assert feed.next_attempt_at(attempts, T0) == T0 + wait


def test_an_event_is_given_up_after_three_days_of_failures():
    assert not feed.gives_up(T0, T0 + timedelta(days=3) - timedelta(seconds=1))
    assert feed.gives_up(T0, T0 + timedelta(days=3))


@pytest.mark.parametrize(
    ("code", "ok"), [(200, True), (204, True), (299, True), (301, False), (500, False), (None, False)]
)
def test_only_a_2xx_answer_counts_as_delivered(code, ok):
    assert feed.delivered(code) is ok
