"""Retry and discard of dead letters by id and by filter: batches, repeats, unknown actors, Redis, audit."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import dramatiq
import pytest
from sqlalchemy import select, update

import workers.actors  # noqa: F401  (declares every actor: a retry needs its actor)
from db.models import AuditEntry, FailedJob
from tasks.domain.dead_letters import DeadLetterFilter
from tasks.flows import dead_letters
from tasks.flows.dead_letters import Bulk

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def _dead(
    db,
    broker,
    n: int,
    *,
    actor="recompute_balance",
    queue="balances",
    error="ValueError: boom",
    in_redis=True,
):
    """A dead letter as Dramatiq leaves it: a failed_jobs row and (in_redis) Redis's copy in the XQ."""
    message = dramatiq.Message(
        queue_name=queue, actor_name=actor, args=(n,), kwargs={}, options={"redis_message_id": f"r-{n}"}
    )
    if in_redis:
        key = f"{broker.namespace}:{queue}.XQ"
        broker.client.hset(f"{key}.msgs", f"r-{n}", message.encode())
        # Scored with the moment it died, as Dramatiq scores it: an old score is purged by Dramatiq's own
        # maintenance (a one-in-a-thousand chance on any broker call), which made these tests flaky.
        broker.client.zadd(key, {f"r-{n}": int(time.time() * 1000)})
    with db() as session:
        row = FailedJob(
            message_id=message.message_id,
            queue=queue,
            actor=actor,
            args=[n],
            kwargs={},
            error=error,
            status="dead",
        )
        session.add(row)
        session.commit()
        return row.id


def _statuses(db) -> dict[int, str]:
    with db() as session:
        return dict(session.execute(select(FailedJob.args[0].as_integer(), FailedJob.status)).all())


def _waiting(broker, queue="balances") -> list:
    key = f"{broker.namespace}:{queue}"
    return [
        dramatiq.Message.decode(broker.client.hget(f"{key}.msgs", i)).args
        for i in broker.client.lrange(key, 0, -1)
    ]


def _redis_copies(broker, queue="balances") -> int:
    return broker.client.hlen(f"{broker.namespace}:{queue}.XQ.msgs")


def test_retry_ids_sends_each_once_marks_it_retried_removes_redis_copy_and_audits(db, broker):
    ids = [_dead(db, broker, n) for n in (1, 2, 3)]
    assert _redis_copies(broker) == 3

    done = dead_letters.retry_ids(ids[:2], "alice", NOW)

    assert done == Bulk(moved=2)
    assert _statuses(db) == {1: "retried", 2: "retried", 3: "dead"}
    assert sorted(_waiting(broker)) == [(1,), (2,)]
    assert _redis_copies(broker) == 1  # only the one not retried
    with db() as session:
        [entry] = session.scalars(select(AuditEntry)).all()
    assert (entry.operator, entry.action, entry.target, entry.detail) == (
        "alice",
        "retry_dead_letters",
        "2 failed_jobs",
        {"ids": ids[:2]},
    )

    again = dead_letters.retry_ids(ids[:2], "alice", NOW)
    assert again == Bulk(skipped=2) and len(_waiting(broker)) == 2


def test_discard_ids_leaves_retried_rows_and_sends_nothing(db, broker):
    first, second = _dead(db, broker, 1), _dead(db, broker, 2)
    dead_letters.retry_ids([first], "alice", NOW)
    done = dead_letters.discard_ids([first, second, 999], "bob", NOW)
    assert done == Bulk(moved=1, skipped=2)
    assert _statuses(db) == {1: "retried", 2: "discarded"}
    assert _waiting(broker) == [(1,)] and _redis_copies(broker) == 0


def test_retry_of_an_unknown_actor_leaves_the_row_dead_and_sends_nothing(db, broker):
    job = _dead(db, broker, 1, actor="renamed_long_ago")
    assert dead_letters.retry_ids([job], "alice", NOW) == Bulk(unknown_actor=1)
    assert _statuses(db) == {1: "dead"} and _waiting(broker) == [] and _redis_copies(broker) == 1


def test_retry_matching_works_through_every_batch_of_the_filter_only(db, broker, monkeypatch):
    monkeypatch.setattr(dead_letters, "BATCH_SIZE", 2)
    for n in range(1, 6):
        _dead(db, broker, n, error=f"TimeoutError: mail server {n}")
    _dead(db, broker, 6, error="KeyError: something else")

    done = dead_letters.retry_matching(DeadLetterFilter(error="timeout"), "alice", NOW)

    assert done == Bulk(moved=5)
    assert _statuses(db) == {1: "retried", 2: "retried", 3: "retried", 4: "retried", 5: "retried", 6: "dead"}
    assert len(_waiting(broker)) == 5 and _redis_copies(broker) == 1
    with db() as session:
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [len(e.detail["ids"]) for e in entries] == [2, 2, 1]  # one entry per batch
    assert entries[0].detail["filter"] == {"error": "timeout"}
    assert dead_letters.retry_matching(DeadLetterFilter(error="timeout"), "alice", NOW) == Bulk()


def test_discard_matching_takes_substrings_of_actor_queue_and_args(db, broker):
    _dead(db, broker, 11, actor="send_email", queue="emails")
    _dead(db, broker, 12, actor="send_email", queue="emails")
    _dead(db, broker, 13)
    f = DeadLetterFilter(actor="SEND_", queue="mail", args="12")
    assert dead_letters.discard_matching(f, "bob", NOW) == Bulk(moved=1)
    assert _statuses(db) == {11: "dead", 12: "discarded", 13: "dead"}
    assert _redis_copies(broker, "emails") == 1


def test_discard_matching_takes_jobs_failed_since_and_audits_the_moment(db, broker):
    old, recent = _dead(db, broker, 1), _dead(db, broker, 2)
    with db() as session:
        session.execute(
            update(FailedJob).where(FailedJob.id == old).values(failed_at=NOW - timedelta(days=2))
        )
        session.execute(update(FailedJob).where(FailedJob.id == recent).values(failed_at=NOW))
        session.commit()

    since = NOW - timedelta(days=1)
    assert dead_letters.discard_matching(DeadLetterFilter(since=since), "bob", NOW) == Bulk(moved=1)
    assert _statuses(db) == {1: "dead", 2: "discarded"}
    with db() as session:
        [entry] = session.scalars(select(AuditEntry)).all()
    assert entry.detail["filter"] == {"since": "2026-12-04T12:00:00+00:00"}


def test_a_broker_that_refuses_the_send_rolls_the_claim_back(db, broker, monkeypatch):
    job = _dead(db, broker, 1)

    def refuse(message, delay=None):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(broker, "enqueue", refuse)
    assert dead_letters.retry_ids([job], "alice", NOW) == Bulk(broker_down=True)
    assert _statuses(db) == {1: "dead"} and _redis_copies(broker) == 1
    with db() as session:
        assert session.scalars(select(AuditEntry)).all() == []


@pytest.mark.parametrize("wildcard", ["%", "_"])
def test_like_wildcards_in_a_filter_match_only_themselves(db, broker, wildcard):
    _dead(db, broker, 1, error="ValueError: plain")
    assert dead_letters.discard_matching(DeadLetterFilter(error=wildcard), "bob", NOW) == Bulk()
