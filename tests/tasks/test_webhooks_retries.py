"""A handler that keeps failing: retried, recorded as a dead letter with its error, replayed after the fix."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from db.models import FailedJob, Payment, StripeEvent
from tasks import handlers
from tasks.webhooks import process_stripe_event
from tests.tasks.handlers.support import make_event, store_event, wait_until, world


class HandlerBug(RuntimeError):
    pass


def broken(session, events, now):
    raise HandlerBug("handler bug: cannot read the intent")


def succeeded_event(db) -> tuple[int, str]:
    ids = world(db, intent_id="pi_retry")
    event = make_event(
        "payment_intent.succeeded",
        {
            "id": "pi_retry",
            "object": "payment_intent",
            "status": "succeeded",
            "latest_charge": "ch_retry",
            "metadata": {"payment_id": str(ids["payment"])},
        },
    )
    return ids["payment"], store_event(db, event)


def event_row(db, event_id: str) -> StripeEvent:
    with db() as session:
        return session.get(StripeEvent, event_id)


def test_failing_handler_is_retried_then_dead_lettered_and_a_replay_after_the_fix_applies_it(
    db, broker, worker, monkeypatch
):
    payment_id, event_id = succeeded_event(db)
    monkeypatch.setitem(handlers.BATCH_HANDLERS, "payment_intents", broken)
    process_stripe_event.send_with_options(args=(event_id,), max_retries=2, min_backoff=10, max_backoff=20)

    def dead_letter():
        with db() as session:
            return session.scalars(select(FailedJob).where(FailedJob.actor == "process_stripe_event")).first()

    job = wait_until(dead_letter, timeout_s=20)
    assert (job.queue, job.args, job.status) == ("webhooks", [event_id], "dead")
    assert "HandlerBug: handler bug" in job.error and "broken" in job.traceback
    row = wait_until(lambda: (r := event_row(db, event_id)).status == "failed" and r)
    assert row.attempts == 3 and row.error == "HandlerBug: handler bug: cannot read the intent"
    with db() as session:
        assert session.get(Payment, payment_id).status == "submitting"

    monkeypatch.undo()
    process_stripe_event.send(event_id)  # what an ops retry of the dead letter sends
    wait_until(lambda: event_row(db, event_id).status == "processed")
    with db() as session:
        assert session.get(Payment, payment_id).status == "succeeded"
    assert event_row(db, event_id).attempts == 4


def test_a_direct_call_that_fails_marks_the_event_failed_and_raises(db, monkeypatch):
    _, event_id = succeeded_event(db)
    monkeypatch.setitem(handlers.BATCH_HANDLERS, "payment_intents", broken)
    with pytest.raises(HandlerBug):
        process_stripe_event(event_id)
    row = event_row(db, event_id)
    assert (row.status, row.attempts) == ("failed", 1)


def test_an_unknown_event_id_is_a_no_op(db):
    process_stripe_event("evt_never_stored")
    with db() as session:
        assert session.scalars(select(StripeEvent)).all() == []
