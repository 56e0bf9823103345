"""One message applies its event and others waiting in a transaction; a bad batch falls back to one event."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text

from db.models import Payment, StripeEvent
from db.session import get_engine
from tasks import handlers
from tasks.flows.webhooks import process_event
from tests.conftest import truncate_all
from tests.tasks.handlers.support import event_statuses, make_event, now, ours, store_event, world


def succeeded(db, n: int) -> tuple[int, str]:
    """A card payment in flight and the event saying it succeeded, stored and waiting."""
    ids = world(db, intent_id=f"pi_batch_{n}")
    event = make_event(
        "payment_intent.succeeded",
        {
            "id": f"pi_batch_{n}",
            "object": "payment_intent",
            "status": "succeeded",
            "latest_charge": f"ch_batch_{n}",
            "metadata": {"payment_id": str(ids["payment"])},
        },
        event_id=f"evt_batch_{n:03d}",
    )
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
    assert statuses(db, StripeEvent, [first, second]) == ["processed", "received"]
    assert process_event(first, now(), batch_size=20) is None
    assert statuses(db, StripeEvent, [second]) == ["processed"]


def test_a_message_whose_event_another_batch_holds_applies_other_waiting_events_meanwhile(db):
    named, other = succeeded(db, 1)[1], succeeded(db, 2)[1]
    results = []
    with get_engine().connect() as holder:
        holder.execute(text("SELECT 1 FROM stripe_events WHERE id = :id FOR UPDATE"), {"id": named})
        worker = threading.Thread(target=lambda: results.append(process_event(named, now(), batch_size=20)))
        worker.start()
        # The other event is applied while the named one is still held...
        from tests.helpers import wait_until

        wait_until(lambda: statuses(db, StripeEvent, [other]) == ["processed"], timeout_s=10)
        assert worker.is_alive()
        holder.rollback()  # ...and once its holder gives it up unapplied, this message applies it.
    worker.join(10)
    assert results == ["processed"]
    assert statuses(db, StripeEvent, [named, other]) == ["processed", "processed"]


def test_a_message_whose_event_is_done_neither_locks_nor_waits_for_it(db):
    event = succeeded(db, 1)[1]
    process_event(event, now(), batch_size=1)
    results = []
    with get_engine().connect() as holder:
        # Another transaction holds the done event (a retention pass redacting its payload, say): the
        # message reads that it is done and returns; it used to lock it, so it waited for the holder.
        holder.execute(text("SELECT 1 FROM stripe_events WHERE id = :id FOR UPDATE"), {"id": event})
        worker = threading.Thread(target=lambda: results.append(process_event(event, now(), batch_size=20)))
        worker.start()
        worker.join(10)
        assert not worker.is_alive(), "the message waited for a done event's holder"
        holder.rollback()
    assert results == [None]
    assert attempts(db, event) == 1


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
    real = handlers.BATCH_HANDLERS["payment_intents"]

    def fails_for_bad(session, events, at):
        if any(event["id"] == bad for event in events):
            raise RuntimeError("handler bug")
        return real(session, events, at)

    monkeypatch.setitem(handlers.BATCH_HANDLERS, "payment_intents", fails_for_bad)
    assert process_event(good, now(), batch_size=20) == "processed"
    assert statuses(db, Payment, [good_payment, bad_payment]) == ["succeeded", "submitting"]
    # The bad event was rolled back untouched: still waiting, unattempted, for its own message.
    assert statuses(db, StripeEvent, [good, bad]) == ["processed", "received"]
    assert attempts(db, bad) == 0
    with pytest.raises(RuntimeError, match="handler bug"):
        process_event(bad, now(), batch_size=20)
    assert statuses(db, Payment, [bad_payment]) == ["submitting"]


def intent_event(n: str, event_type: str, intent_id: str, payment_id: int, **fields) -> dict:
    intent = {
        "id": intent_id,
        "object": "payment_intent",
        "status": event_type.rsplit(".", 1)[1],
        "latest_charge": f"ch_{intent_id}",
        "metadata": {"payment_id": str(payment_id)},
        **fields,
    }
    return make_event(event_type, intent, event_id=f"evt_{n}")


def scenario(db, tag: str) -> tuple[list[int], list[dict]]:
    """Payments of every kind of outcome and the events about them, some doubled, some out of order."""
    ach = world(db, kind="us_bank_account", intent_id=f"pi_{tag}_ach")["payment"]
    card = world(db, intent_id=f"pi_{tag}_card")["payment"]
    declined = world(db, intent_id=f"pi_{tag}_declined")["payment"]
    unknown_intent = world(db)["payment"]  # the intent id is only in the event's metadata
    auth = world(db, intent_id=f"pi_{tag}_auth")["payment"]
    refunded = world(db, intent_id=f"pi_{tag}_refund")["payment"]
    early_refund = world(db, intent_id=f"pi_{tag}_early")["payment"]  # refunded before its success arrives
    error = {"code": "card_declined", "decline_code": "insufficient_funds", "message": "Declined."}
    events = [
        intent_event(f"{tag}_1", "payment_intent.processing", f"pi_{tag}_ach", ach),
        intent_event(f"{tag}_2", "payment_intent.succeeded", f"pi_{tag}_ach", ach),
        intent_event(
            f"{tag}_3", "payment_intent.processing", f"pi_{tag}_ach", ach
        ),  # late: recorded, ignored
        intent_event(f"{tag}_4", "payment_intent.succeeded", f"pi_{tag}_card", card),
        intent_event(
            f"{tag}_5", "payment_intent.succeeded", f"pi_{tag}_card", card
        ),  # a second event, same news
        intent_event(
            f"{tag}_6",
            "payment_intent.payment_failed",
            f"pi_{tag}_declined",
            declined,
            last_payment_error=error,
        ),
        intent_event(
            f"{tag}_7",
            "payment_intent.succeeded",
            f"pi_{tag}_new",
            unknown_intent,
            **ours(db, unknown_intent),
        ),
        intent_event(f"{tag}_8", "payment_intent.requires_action", f"pi_{tag}_auth", auth),
        intent_event(
            f"{tag}_9", "payment_intent.succeeded", f"pi_{tag}_other", auth
        ),  # another intent: ignored
        intent_event(f"{tag}_10", "payment_intent.succeeded", f"pi_{tag}_stranger", 999_999),  # not ours
        intent_event(f"{tag}_11", "payment_intent.succeeded", f"pi_{tag}_refund", refunded),
        charge_refunded(f"{tag}_12", f"pi_{tag}_refund", refunded, 3_000),
        charge_refunded(f"{tag}_13", f"pi_{tag}_refund", refunded, 7_000),
        charge_refunded(
            f"{tag}_14", f"pi_{tag}_refund", refunded, 3_000
        ),  # late: a smaller total changes nothing
        charge_refunded(f"{tag}_15", f"pi_{tag}_refund", refunded, 10_000),
        charge_refunded(f"{tag}_16", f"pi_{tag}_early", early_refund, 4_000),
        # not ours, and older than any payment of ours could still be recording it
        charge_refunded(f"{tag}_17", "pi_nobody", 888_888, 4_000, created=int(time.time()) - 2 * 86_400),
    ]
    for event in events:
        store_event(db, event)
    return [ach, card, declined, unknown_intent, auth, refunded, early_refund], events


def charge_refunded(
    n: str, intent_id: str, payment_id: int, amount_refunded: int, created: int | None = None
) -> dict:
    charge = {
        "id": f"ch_{intent_id}",
        "object": "charge",
        "amount": 10_000,
        "amount_refunded": amount_refunded,
        "currency": "usd",
        "payment_intent": intent_id,
        "metadata": {"payment_id": str(payment_id)},
    }
    return make_event("charge.refunded", charge, event_id=f"evt_{n}", created=created)


def outcome(db, payments: list[int], events: list[dict]) -> dict:
    from sqlalchemy import select

    from db.models import Account, Email
    from tests.tasks.handlers.support import snapshot, timeline

    with db() as session:
        rows = {e.id: (e.status, e.error) for e in session.scalars(select(StripeEvent))}
        emails = sorted((e.kind, e.payment_id, e.context["status"]) for e in session.scalars(select(Email)))
        stale = sorted(a.balance_stale_since is not None for a in session.scalars(select(Account)))
    return {
        "payments": [snapshot(db, p) for p in payments],
        "timelines": [timeline(db, p) for p in payments],
        "events": [rows[e["id"]] for e in events],
        "emails": emails,
        "stale": stale,
    }


def test_a_batch_ends_exactly_as_the_same_events_applied_one_by_one(db):
    payments, events = scenario(db, "one")
    for event in events:
        process_event(event["id"], now(), batch_size=1)
    one_by_one = outcome(db, payments, events)

    truncate_all()  # the same tables emptied and ids restarted: the batch gets an identical world
    payments, events = scenario(db, "one")
    process_event(events[0]["id"], now(), batch_size=20)
    batched = outcome(db, payments, events)

    assert batched == one_by_one
    assert [s["status"] for s in batched["payments"]] == [
        "succeeded",
        "succeeded",
        "failed",
        "succeeded",
        "requires_action",
        "refunded",
        "partially_refunded",
    ]
    assert batched["events"][9] == ("ignored", "no payment for PaymentIntent pi_one_stranger")
    assert batched["events"][16] == ("ignored", "no payment for charge ch_pi_nobody")
    # Refunded in full: every allocation reversed; the early one gave back the latest-due invoice (4,000).
    assert {state for _, state, _ in batched["payments"][5]["allocations"]} == {"reversed"}
    assert [state for _, state, _ in batched["payments"][6]["allocations"]] == ["applied", "reversed"]
