"""The quiet-transition form: a batch of one, only for transitions that change nothing but the status."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from db.models import Payment, PaymentEvent
from tasks.domain.states import PaymentStatus as P
from tasks.flows import ledger
from tests import factories

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _pending_payment(db):
    with db() as session:
        account = factories.account(session)
        method = factories.method(session, account)
        payment = factories.payment(session, account, method)
        session.commit()
        return payment.id


def test_record_quiet_transition_moves_status_and_adds_one_timeline_line(db):
    payment_id = _pending_payment(db)

    with db.begin() as session:
        ledger.record_quiet_transition(
            session,
            payment_id,
            P.PENDING,
            P.SUBMITTING,
            source="test",
            now=NOW,
            detail={"attempt": 1},
            attempt=1,
            stripe_idempotency_key="k-1",
        )

    with db() as session:
        payment = session.get(Payment, payment_id)
        events = session.scalars(select(PaymentEvent).where(PaymentEvent.payment_id == payment_id)).all()
        assert (payment.status, payment.attempt, payment.stripe_idempotency_key) == ("submitting", 1, "k-1")
        assert payment.updated_at == NOW
        assert [(e.from_status, e.to_status, e.detail) for e in events] == [
            ("pending", "submitting", {"attempt": 1})
        ]


def test_record_quiet_transition_refuses_a_transition_with_consequences_and_writes_nothing(db):
    payment_id = _pending_payment(db)

    with db.begin() as session, pytest.raises(ValueError, match="not a quiet transition"):
        ledger.record_quiet_transition(
            session, payment_id, P.PENDING, P.FAILED, source="test", now=NOW, detail={}
        )

    with db() as session:
        assert session.get(Payment, payment_id).status == "pending"
        assert session.scalars(select(PaymentEvent).where(PaymentEvent.payment_id == payment_id)).all() == []
