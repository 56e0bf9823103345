"""One write path: a transition written alone is a batch of one, and writes exactly what a batch writes."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from db.models import Allocation, Email, Payment, PaymentEvent
from db.queries import payments as payment_rows
from tasks.domain.states import PaymentStatus as P
from tasks.flows import ledger
from tests import factories

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _payments(db, count: int, status: str = "pending") -> list[int]:
    with db() as session:
        account = factories.account(session)
        method = factories.method(session, account)
        ids = []
        for _ in range(count):
            payment = factories.payment(session, account, method, status=status)
            factories.allocation(session, payment, factories.invoice(session, account))
            ids.append(payment.id)
        session.commit()
        return ids


def _written(db, payment_id: int) -> tuple:
    """What the ledger wrote for a payment, without its id: status, columns, timeline, allocations, emails."""
    with db() as session:
        payment = session.get(Payment, payment_id)
        events = session.scalars(select(PaymentEvent).where(PaymentEvent.payment_id == payment_id)).all()
        states = session.scalars(select(Allocation.state).where(Allocation.payment_id == payment_id)).all()
        kinds = session.scalars(select(Email.kind).where(Email.payment_id == payment_id)).all()
        return (
            payment.status,
            payment.failure_code,
            payment.finished_at,
            [(e.from_status, e.to_status, e.applied, e.source, e.detail) for e in events],
            states,
            kinds,
        )


def test_a_transition_written_alone_writes_what_the_same_transition_writes_in_a_batch(db):
    alone, batched, other = _payments(db, 3, status="submitting")
    values = {"failure_code": "card_declined"}
    with db.begin() as session:
        payment = payment_rows.lock_payment(session, alone)
        assert ledger.apply_transition(
            session, payment, P.FAILED, source="t", now=NOW, detail={}, values=values
        )
    with db.begin() as session:
        batch = ledger.TransitionBatch(NOW)
        for payment_id in (batched, other):
            payment = payment_rows.lock_payment(session, payment_id)
            assert batch.add(session, payment, P.FAILED, source="t", detail={}, values=values)
        batch.flush(session)
    assert (
        _written(db, alone)
        == _written(db, batched)
        == (
            "failed",
            "card_declined",
            NOW,
            [("submitting", "failed", True, "t", {})],
            ["released"],
            ["payment_failed"],
        )
    )


def test_a_refused_transition_stores_only_its_values_and_the_refusal(db):
    (payment_id,) = _payments(db, 1)
    with db.begin() as session:
        payment = payment_rows.lock_payment(session, payment_id)
        applied = ledger.apply_transition(
            session, payment, P.SUCCEEDED, source="t", now=NOW, detail={}, values={"failure_code": "x"}
        )
        assert applied is False
        assert payment.status == "pending"  # the view still shows what is stored
    assert _written(db, payment_id) == (
        "pending",
        "x",
        None,
        [("pending", "succeeded", False, "t", {"ignored": "transition not allowed"})],
        ["reserved"],
        [],
    )


def test_record_event_sets_columns_and_adds_one_line_without_moving_the_status(db):
    (payment_id,) = _payments(db, 1, status="submitting")
    with db.begin() as session:
        payment = payment_rows.lock_payment(session, payment_id)
        ledger.record_event(
            session, payment, source="t", now=NOW, detail={"why": 1}, values={"needs_review": True}
        )
        assert payment.needs_review is True
    with db() as session:
        assert session.get(Payment, payment_id).needs_review is True
    assert _written(db, payment_id)[0] == "submitting"
    assert _written(db, payment_id)[3] == [("submitting", "submitting", True, "t", {"why": 1})]


def test_a_batch_refuses_columns_it_does_not_write(db):
    (payment_id,) = _payments(db, 1)
    with db.begin() as session:
        payment = payment_rows.lock_payment(session, payment_id)
        batch = ledger.TransitionBatch(NOW)
        with pytest.raises(ValueError, match="currency"):
            batch.set_columns(payment, {"currency": "eur"})
