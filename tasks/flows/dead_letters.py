"""The dead-letter mirror: Redis's dead letters that failed_jobs does not hold yet are recorded there.

RecordFailedJobs writes each final failure as it happens; this catches the ones it could not write
(the database was down at that moment) before Redis expires them after 7 days.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from db.queries import failed_jobs as failed_job_rows
from db.session import transaction
from tasks.domain.states import FailedJobStatus
from workers.scrub import scrub_text

# Dead letters read per queue per run; the next run takes the rest.
MIRROR_LIMIT_PER_QUEUE = 1000


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
