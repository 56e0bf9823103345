"""Sweepers find rows left behind and nudge them again; the dispatcher starts due scheduled payments."""

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from db.models import Payment, PaymentEvent
from schedules import clock
from schedules.schedule import SCHEDULE
from tasks.domain.attempts import Answered
from tasks.domain.states import PaymentStatus as P
from tasks.flows import payments as execution
from tasks.flows import payments as sweeps
from tests import factories
from tests.helpers import queued_messages

NOW = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)


def _make(db, status, updated_at, **extra):
    with db() as session:
        account = factories.account(session)
        method = factories.method(session, account)
        payment = factories.payment(session, account, method, status=status, **extra)
        payment.updated_at = updated_at
        session.commit()
        return payment.id


def test_sweeper_resends_payments_stuck_past_the_grace_period(db, broker):
    stale_pending = _make(db, "pending", NOW - timedelta(minutes=5))
    _make(db, "pending", NOW - timedelta(seconds=10))
    stale_submitting = _make(
        db, "submitting", NOW - timedelta(hours=1), last_attempt_at=NOW - timedelta(minutes=10)
    )
    _make(db, "submitting", NOW - timedelta(hours=1), last_attempt_at=NOW - timedelta(seconds=30))
    _make(db, "succeeded", NOW - timedelta(days=1))
    assert sweeps.sweep_payments(NOW) == {"pending": 1, "submitting": 1}
    assert sorted(m.args[0] for m in queued_messages(broker, "payments")) == [stale_pending, stale_submitting]


def test_swept_payment_left_by_a_lost_message_gets_charged(shop, emulator, broker):
    from tasks import api

    receipt = api.pay_invoices(shop.account_id, shop.invoices[:1], shop.methods["visa"], "lost", now=shop.now)
    broker.flush_all()  # the message was lost with Redis
    with shop.db() as session:
        session.get(Payment, receipt.payment_id).updated_at = NOW - timedelta(minutes=5)
        session.commit()
    assert sweeps.sweep_payments(NOW) == {"pending": 1, "submitting": 0}
    [message] = queued_messages(broker, "payments")
    assert execution.execute_payment(message.args[0], NOW) == Answered(P.SUCCEEDED)


def test_dispatcher_starts_due_scheduled_payments_once(db, broker):
    due = _make(db, "scheduled", NOW, scheduled_for=date(2026, 11, 22))
    _make(db, "scheduled", NOW, scheduled_for=date(2026, 11, 23))
    assert sweeps.dispatch_due_payments(NOW)["dispatched"] == 1
    assert sweeps.dispatch_due_payments(NOW)["dispatched"] == 0
    with db() as session:
        assert session.get(Payment, due).status == "pending"
        events = session.scalars(select(PaymentEvent).where(PaymentEvent.payment_id == due)).all()
    assert [(e.from_status, e.to_status, e.source) for e in events] == [("scheduled", "pending", "clock")]
    assert [m.args[0] for m in queued_messages(broker, "payments")] == [due]


def test_dispatcher_uses_the_sellers_calendar_day(db, broker):
    with db() as session:
        seller = factories.seller(session, timezone="America/Los_Angeles")
        account = factories.account(session, seller)
        method = factories.method(session, account)
        factories.payment(session, account, method, status="scheduled", scheduled_for=date(2026, 11, 23))
        session.commit()
    # 03:00 UTC on the 23rd is still the 22nd in Los Angeles.
    assert sweeps.dispatch_due_payments(datetime(2026, 11, 23, 3, 0, tzinfo=UTC))["dispatched"] == 0
    assert sweeps.dispatch_due_payments(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))["dispatched"] == 1


def _due_burst(db, count):
    with db() as session:
        account = factories.account(session)
        method = factories.method(session, account)
        ids = [
            factories.payment(
                session, account, method, status="scheduled", scheduled_for=date(2026, 11, 22)
            ).id
            for _ in range(count)
        ]
        session.commit()
    return ids


def test_dispatcher_pages_through_every_due_payment_in_one_pass(db, broker):
    # A burst larger than a page: every due payment starts now, not one page per tick of the clock.
    due = _due_burst(db, 5)
    assert sweeps.dispatch_due_payments(NOW, page=2) == {"dispatched": 5, "pages": 3, "more": False}
    with db() as session:
        statuses = session.scalars(select(Payment.status).where(Payment.id.in_(due))).all()
    assert statuses == ["pending"] * 5
    assert sorted(m.args[0] for m in queued_messages(broker, "payments")) == sorted(due)


def test_dispatcher_out_of_time_with_a_full_page_says_more_is_due(db, broker):
    due = _due_burst(db, 5)
    # No time left after the first page: the pass stops there, and says more may be due.
    assert sweeps.dispatch_due_payments(NOW, page=2, pass_seconds=0) == {
        "dispatched": 2,
        "pages": 1,
        "more": True,
    }
    assert len(queued_messages(broker, "payments")) == 2
    assert sweeps.dispatch_due_payments(NOW, page=2)["dispatched"] == 3
    assert sorted(m.args[0] for m in queued_messages(broker, "payments")) == sorted(due)


def test_dispatch_actor_resends_itself_while_more_is_due(db, broker, monkeypatch):
    from tasks import maintenance

    _due_burst(db, 3)
    monkeypatch.setattr(sweeps, "DISPATCH_PAGE", 2)
    monkeypatch.setattr(sweeps, "DISPATCH_PASS_SECONDS", 0)
    maintenance.dispatch_due_payments.fn()
    assert [m.actor_name for m in queued_messages(broker, "maintenance")] == ["dispatch_due_payments"]
    assert len(queued_messages(broker, "payments")) == 2
    broker.client.delete(f"{broker.namespace}:maintenance.msgs")
    maintenance.dispatch_due_payments.fn()  # the last page is not full: nothing more is due
    assert queued_messages(broker, "maintenance") == []
    assert len(queued_messages(broker, "payments")) == 3


def test_clock_sends_each_job_once_per_period(db, broker):
    import workers.actors  # noqa: F401

    minutely = [job for job in SCHEDULE if job.every_seconds == 60]
    assert clock.run_once(NOW) == [job.name for job in SCHEDULE]
    assert clock.run_once(NOW + timedelta(seconds=1)) == []
    assert clock.run_once(NOW + timedelta(seconds=60)) == [job.name for job in minutely]
    assert sorted(m.actor_name for m in queued_messages(broker, "maintenance")) == sorted(
        [job.actor for job in SCHEDULE] + [job.actor for job in minutely]
    )


def test_a_job_whose_send_failed_is_sent_on_the_next_tick_and_the_others_are_not_held_back(
    db, broker, monkeypatch
):
    import dramatiq
    from redis.exceptions import ConnectionError as RedisConnectionError

    import workers.actors  # noqa: F401

    hourly = next(job for job in SCHEDULE if job.every_seconds == 3600)
    actor = dramatiq.get_broker().get_actor(hourly.actor)

    def redis_blip(*args, **kwargs):
        raise RedisConnectionError("connection reset")

    monkeypatch.setattr(actor, "send", redis_blip)
    first = clock.run_once(NOW)
    assert hourly.name not in first and len(first) == len(SCHEDULE) - 1  # the rest went out
    monkeypatch.undo()
    # A second later Redis is back: the hourly job is still owed for this hour, and only it is sent.
    assert clock.run_once(NOW + timedelta(seconds=1)) == [hourly.name]
    assert sorted(m.actor_name for m in queued_messages(broker, "maintenance")) == sorted(
        job.actor for job in SCHEDULE
    )


def test_every_scheduled_actor_exists():
    import dramatiq

    import workers.actors  # noqa: F401

    for job in SCHEDULE:
        assert dramatiq.get_broker().get_actor(job.actor).queue_name == "maintenance"
