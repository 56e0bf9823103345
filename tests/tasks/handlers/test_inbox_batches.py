"""One message applies its event and other waiting ones in one transaction; a bad batch falls back to one event."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from db.models import Payment, StripeEvent
from db.session import get_engine
from tasks import handlers
from tasks.handlers.inbox import process_event
from tests.tasks.handlers.support import event_statuses, make_event, now, store_event, world


def succeeded(db, n: int) -> tuple[int, str]:
    """A card payment in flight and the event saying it succeeded, stored and waiting."""
    ids = world(db, intent_id=f"pi_batch_{n}")
    event = make_event("payment_intent.succeeded", {
        "id": f"pi_batch_{n}", "object": "payment_intent", "status": "succeeded", "latest_charge": f"ch_batch_{n}",
        "metadata": {"payment_id": str(ids["payment"])}}, event_id=f"evt_batch_{n:03d}")
    return ids["payment"], store_event(db, event)


def statuses(db, model, ids) -> list[str]:
    with db() as session:
        return [session.get(model, i).status for i in ids]


def attempts(db, event_id: str) -> int:
    with db() as session:
        return session.get(StripeEvent, event_id).attempts


def test_one_message_applies_its_event_and_the_others_waiting_in_one_transaction(db):
    stored = [succeeded(db, n) for n in range(5)]
    payments, events = [p for p, _ in stored], [e for _, e in stored]

    assert process_event(events[2], now(), batch_size=20) == "processed"

    assert statuses(db, StripeEvent, events) == ["processed"] * 5
    assert statuses(db, Payment, payments) == ["succeeded"] * 5
    assert [attempts(db, e) for e in events] == [1] * 5
    # The other messages find their events done and change nothing.
    assert [process_event(e, now(), batch_size=20) for e in events] == [None] * 5
    assert [attempts(db, e) for e in events] == [1] * 5


def test_a_batch_takes_at_most_batch_size_events(db):
    events = [succeeded(db, n)[1] for n in range(6)]
    process_event(events[0], now(), batch_size=4)
    assert event_statuses(db) == {"processed": 4, "received": 2}


def test_a_message_whose_event_is_done_still_applies_waiting_events(db):
    first, second = succeeded(db, 1)[1], succeeded(db, 2)[1]
    process_event(first, now(), batch_size=1)
    assert process_event(first, now(), batch_size=20) is None
    assert statuses(db, StripeEvent, [second]) == ["processed"]


def test_an_event_that_failed_before_is_left_to_its_own_message(db):
    first, retried = succeeded(db, 1)[1], succeeded(db, 2)[1]
    with get_engine().begin() as connection:
        connection.execute(text("UPDATE stripe_events SET attempts = 1 WHERE id = :id"), {"id": retried})
    process_event(first, now(), batch_size=20)
    assert statuses(db, StripeEvent, [first, retried]) == ["processed", "received"]


def test_an_event_held_by_another_transaction_is_skipped_not_waited_for(db):
    first, held = succeeded(db, 1)[1], succeeded(db, 2)[1]
    with get_engine().connect() as other:
        other.execute(text("SELECT 1 FROM stripe_events WHERE id = :id FOR UPDATE"), {"id": held})
        done = threading.Event()
        worker = threading.Thread(target=lambda: (process_event(first, now(), batch_size=20), done.set()))
        worker.start()
        assert done.wait(10), "the batch waited for an event another transaction holds"
        other.rollback()
    worker.join()
    assert statuses(db, StripeEvent, [first, held]) == ["processed", "received"]


def test_the_named_event_is_waited_for_and_seen_done_once_its_holder_commits(db):
    event = succeeded(db, 1)[1]
    results = []
    with get_engine().connect() as other:
        other.execute(text("SELECT 1 FROM stripe_events WHERE id = :id FOR UPDATE"), {"id": event})
        worker = threading.Thread(target=lambda: results.append(process_event(event, now(), batch_size=20)))
        worker.start()
        worker.join(0.5)
        assert worker.is_alive(), "the named event was not waited for"
        other.execute(text("UPDATE stripe_events SET status = 'processed' WHERE id = :id"), {"id": event})
        other.commit()
    worker.join(10)
    assert results == [None]


def test_a_failing_event_rolls_its_batch_back_and_the_named_event_is_applied_alone(db, monkeypatch):
    (good_payment, good), (bad_payment, bad) = succeeded(db, 1), succeeded(db, 2)
    real = handlers.HANDLERS["payment_intents"]

    def fails_for_bad(session, event, at):
        if event["id"] == bad:
            raise RuntimeError("handler bug")
        return real(session, event, at)

    monkeypatch.setitem(handlers.HANDLERS, "payment_intents", fails_for_bad)
    assert process_event(good, now(), batch_size=20) == "processed"
    assert statuses(db, Payment, [good_payment, bad_payment]) == ["succeeded", "submitting"]
    # The bad event was rolled back untouched: still waiting, unattempted, for its own message.
    assert statuses(db, StripeEvent, [good, bad]) == ["processed", "received"]
    assert attempts(db, bad) == 0
    with pytest.raises(RuntimeError, match="handler bug"):
        process_event(bad, now(), batch_size=20)
    assert statuses(db, Payment, [bad_payment]) == ["submitting"]
