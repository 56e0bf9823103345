"""Failed jobs: the dead-letter record the mirror fills and ops retry or discard."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.models import FailedJob
from tasks.domain.states import FailedJobStatus as S


def insert_failed_jobs(session: Session, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Record these dead letters, passing over message ids already recorded; return the ids written."""
    return [
        row.id
        for row in session.execute(
            insert(FailedJob)
            .values(rows)
            .on_conflict_do_nothing(index_elements=[FailedJob.message_id])
            .returning(FailedJob.id)
        ).all()
    ]


def move_failed_job_to_retried(session: Session, job_id: int, now: datetime) -> Row | None:
    """(actor, args, kwargs) of the job if it was dead or discarded and is now retried, else None; the row
    stays locked until commit."""
    return session.execute(
        update(FailedJob)
        .where(FailedJob.id == job_id, FailedJob.status.in_([S.DEAD, S.DISCARDED]))
        .values(status=S.RETRIED, retried_at=now)
        .returning(FailedJob.actor, FailedJob.args, FailedJob.kwargs)
    ).first()


def mark_failed_job_discarded(session: Session, job_id: int) -> bool:
    """Discard the job if it is dead; whether it was."""
    return (
        session.execute(
            update(FailedJob)
            .where(FailedJob.id == job_id, FailedJob.status == S.DEAD)
            .values(status=S.DISCARDED)
            .returning(FailedJob.id)
        ).first()
        is not None
    )


def find_failed_job_id(session: Session, job_id: int) -> int | None:
    return session.scalar(select(FailedJob.id).where(FailedJob.id == job_id))
