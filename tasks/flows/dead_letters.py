"""Dead letters: the mirror that records Redis's dead letters in failed_jobs, and what ops do with them.

RecordFailedJobs writes each final failure as it happens; the mirror catches the ones it could not
write (the database was down at that moment) before Redis expires them after 7 days. Retry and
discard work on ids or on everything a filter matches, a batch per transaction, each safe to repeat:
a row moves only from a state that allows it, so a second click finds it moved and skips it. Once
a row is retried or discarded its Redis copy goes too, so the queue stops counting it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.errors import DecodeError, DramatiqError
from redis.exceptions import RedisError
from sqlalchemy.orm import Session, sessionmaker

from db.queries import failed_jobs as failed_job_rows
from db.session import transaction
from tasks.domain.dead_letters import DeadLetterFilter
from tasks.domain.states import FailedJobStatus
from tasks.flows import audit
from workers.scrub import scrub_text

_log = logging.getLogger(__name__)

# Dead letters read per queue per mirror run; the next run takes the rest.
MIRROR_LIMIT_PER_QUEUE = 1000
# Rows one transaction moves: 500 row locks held for milliseconds, and one scan of Redis's copies per batch.
BATCH_SIZE = 500
RETRYABLE = (FailedJobStatus.DEAD, FailedJobStatus.DISCARDED)
DISCARDABLE = (FailedJobStatus.DEAD,)


@dataclass
class Bulk:
    """What a retry or discard did: moved now, skipped (already moved or gone), refused."""

    moved: int = 0
    skipped: int = 0
    unknown_actor: int = 0
    broker_down: bool = False

    def add(self, other: Bulk) -> None:
        self.moved += other.moved
        self.skipped += other.skipped
        self.unknown_actor += other.unknown_actor
        self.broker_down = self.broker_down or other.broker_down


def retry_ids(
    ids: Sequence[int], operator: str, now: datetime, *, broker=None, sessions: sessionmaker | None = None
) -> Bulk:
    """Send each dead or discarded job of ids to its actor again and mark it retried."""
    return _in_batches(_chunks(ids), _Retry(broker or dramatiq.get_broker(), operator, now, sessions))


def discard_ids(
    ids: Sequence[int], operator: str, now: datetime, *, broker=None, sessions: sessionmaker | None = None
) -> Bulk:
    """Mark each dead job of ids discarded; it will not be retried."""
    return _in_batches(_chunks(ids), _Discard(broker or dramatiq.get_broker(), operator, now, sessions))


def retry_matching(
    f: DeadLetterFilter, operator: str, now: datetime, *, broker=None, sessions: sessionmaker | None = None
) -> Bulk:
    """retry_ids for every dead or discarded job the filter matches, BATCH_SIZE at a time."""
    step = _Retry(broker or dramatiq.get_broker(), operator, now, sessions, f)
    return _in_batches(_matching(f, RETRYABLE, sessions), step)


def discard_matching(
    f: DeadLetterFilter, operator: str, now: datetime, *, broker=None, sessions: sessionmaker | None = None
) -> Bulk:
    """discard_ids for every dead job the filter matches, BATCH_SIZE at a time."""
    step = _Discard(broker or dramatiq.get_broker(), operator, now, sessions, f)
    return _in_batches(_matching(f, DISCARDABLE, sessions), step)


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    unique = sorted(set(ids))
    for start in range(0, len(unique), BATCH_SIZE):
        yield unique[start : start + BATCH_SIZE]


def _matching(f: DeadLetterFilter, statuses, sessions) -> Iterable[list[int]]:
    after = 0
    while True:
        with transaction(sessions) as session:
            ids = failed_job_rows.list_failed_job_ids(session, f, statuses, after, BATCH_SIZE)
        if not ids:
            return
        yield ids
        after = ids[-1]


def _in_batches(batches: Iterable[list[int]], step) -> Bulk:
    """Each batch in its transaction; then Redis's copies of every moved row, in one scan of each queue."""
    total, moved = Bulk(), []
    for ids in batches:
        done, rows = step(ids)
        total.add(done)
        moved += [(row.queue, row.message_id) for row in rows]
        if total.broker_down:
            break
    forget_redis_copies(step.broker, moved)
    return total


class _SendRefused(Exception):
    """The broker did not take a message: the batch's transaction rolls back."""


class _Step:
    action = ""

    def __init__(self, broker, operator: str, now: datetime, sessions, f: DeadLetterFilter | None = None):
        self.broker, self.operator, self.now, self.sessions, self.filter = broker, operator, now, sessions, f

    def __call__(self, ids: list[int]) -> tuple[Bulk, list[Any]]:
        """What this batch did, and the rows it moved."""
        try:
            with transaction(self.sessions) as session:
                moved, result = self.move(session, ids)
                if moved:
                    self.record(session, [row.id for row in moved])
        except _SendRefused:
            return Bulk(broker_down=True), []
        return result, moved

    def move(self, session: Session, ids: list[int]) -> tuple[list[Any], Bulk]:
        raise NotImplementedError

    def record(self, session: Session, moved: list[int]) -> None:
        target = f"failed_jobs {moved[0]}" if len(moved) == 1 else f"{len(moved)} failed_jobs"
        scope = {"filter": {k: v for k, v in self.filter.as_dict().items() if v}} if self.filter else {}
        audit.record(session, self.operator, self.action, target, self.now, ids=moved, **scope)


class _Retry(_Step):
    action = "retry_dead_letters"

    def move(self, session: Session, ids: list[int]) -> tuple[list[Any], Bulk]:
        known = list(self.broker.get_declared_actors())
        moved = failed_job_rows.move_failed_jobs(
            session, ids, from_=RETRYABLE, to=FailedJobStatus.RETRIED, actors=known, now=self.now
        )
        unknown = failed_job_rows.count_failed_jobs_in(session, ids, RETRYABLE)
        _send(self.broker, moved)
        return moved, Bulk(moved=len(moved), skipped=len(ids) - len(moved) - unknown, unknown_actor=unknown)


class _Discard(_Step):
    action = "discard_dead_letters"

    def move(self, session: Session, ids: list[int]) -> tuple[list[Any], Bulk]:
        moved = failed_job_rows.move_failed_jobs(
            session, ids, from_=DISCARDABLE, to=FailedJobStatus.DISCARDED, actors=None, now=self.now
        )
        return moved, Bulk(moved=len(moved), skipped=len(ids) - len(moved))


def _send(broker, rows: list[Any]) -> None:
    """Enqueue each row's message while its claim is uncommitted; any refusal rolls every claim back."""
    try:
        for row in rows:
            actor = broker.get_actor(row.actor)
            broker.enqueue(actor.message_with_options(args=tuple(row.args), kwargs=dict(row.kwargs)))
    except (DramatiqError, RedisError, OSError) as refused:
        raise _SendRefused(str(refused)) from refused


def forget_redis_copies(broker, messages: Sequence[tuple[str, str]]) -> int:
    """Remove Redis's dead-letter copies of these (queue, message id)s; how many went. Best effort: a copy
    left behind expires with Redis's dead-letter TTL, and the mirror never revives a recorded row."""
    if not messages or not isinstance(broker, RedisBroker):
        return 0
    wanted: dict[str, set[str]] = defaultdict(set)
    for queue, message_id in messages:
        wanted[queue].add(message_id)
    try:
        return sum(_forget(broker, queue, ids) for queue, ids in wanted.items())
    except RedisError:
        _log.warning("could not remove Redis dead-letter copies; they expire with their TTL")
        return 0


def _forget(broker: RedisBroker, queue: str, message_ids: set[str]) -> int:
    key = f"{broker.namespace}:{queue}.XQ"
    found = [
        rid for rid, raw in broker.client.hscan_iter(f"{key}.msgs", count=500) if _id(raw) in message_ids
    ]
    if found:
        with broker.client.pipeline(transaction=True) as pipe:
            pipe.hdel(f"{key}.msgs", *found).zrem(key, *found).execute()
    return len(found)


def _id(raw: bytes) -> str | None:
    try:
        return dramatiq.Message.decode(raw).message_id
    except DecodeError:  # not a message we can read: not one of ours to remove
        return None


def mirror_dead_letters(
    broker: dramatiq.Broker, queues: tuple[str, ...], limit: int = MIRROR_LIMIT_PER_QUEUE
) -> dict[str, int]:
    """Record every dead letter failed_jobs lacks; return how many were seen and recorded."""
    if not isinstance(broker, RedisBroker):
        return {"seen": 0, "recorded": 0}  # RabbitMQ keeps its own dead-letter queue; nothing to mirror here
    rows = [_row(raw) for queue in queues for raw in _dead_letters(broker, queue, limit)]
    if not rows:
        return {"seen": 0, "recorded": 0}
    with transaction() as session:
        recorded = failed_job_rows.insert_failed_jobs(session, rows)
    return {"seen": len(rows), "recorded": len(recorded)}


def _dead_letters(broker: RedisBroker, queue: str, limit: int) -> list[bytes]:
    key = f"{broker.namespace}:{queue}.XQ.msgs"
    found = []
    for _, raw in broker.client.hscan_iter(key, count=200):
        found.append(raw)
        if len(found) >= limit:
            break
    return found


def _row(raw: bytes) -> dict[str, Any]:
    message = dramatiq.Message.decode(raw)
    traceback = message.options.get("traceback")
    traceback = scrub_text(traceback) if traceback else None
    last_line = traceback.strip().splitlines()[-1] if traceback else None
    return {
        "message_id": message.message_id,
        "queue": message.queue_name,
        "actor": message.actor_name,
        "args": list(message.args),
        "kwargs": dict(message.kwargs),
        "error": (last_line or "dead-lettered by the broker; no error was recorded")[:4000],
        "traceback": traceback,
        "attempts": message.options.get("retries", 0) or 1,
        "status": FailedJobStatus.DEAD,
    }
