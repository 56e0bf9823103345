"""Failed jobs: the dead-letter record the mirror fills and ops retry or discard."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Text, cast, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.models import FailedJob
from tasks.domain.dead_letters import DeadLetterFilter
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


def matching(f: DeadLetterFilter) -> list[Any]:
    """The WHERE clauses of a dead-letter filter (LIKE wildcards in the values match literally)."""
    args_text = cast(FailedJob.args, Text) + " " + cast(FailedJob.kwargs, Text)
    error_text = FailedJob.error + " " + func.coalesce(FailedJob.traceback, "")
    where: list[Any] = [FailedJob.status == f.status] if f.status else []
    for column, value in (
        (FailedJob.queue, f.queue),
        (FailedJob.actor, f.actor),
        (error_text, f.error),
        (args_text, f.args),
    ):
        if value:
            where.append(column.icontains(value, autoescape=True))
    if f.text:
        columns = (FailedJob.queue, FailedJob.actor, error_text, args_text)
        where.append(or_(*(c.icontains(f.text, autoescape=True) for c in columns)))
    if f.since is not None:
        where.append(FailedJob.failed_at >= f.since)
    return where


def list_failed_job_ids(
    session: Session, f: DeadLetterFilter, statuses: Sequence[str], after_id: int, limit: int
) -> list[int]:
    """Ids past after_id that match the filter and are in one of statuses, in id order."""
    return list(
        session.scalars(
            select(FailedJob.id)
            .where(*matching(f), FailedJob.status.in_(statuses), FailedJob.id > after_id)
            .order_by(FailedJob.id)
            .limit(limit)
        )
    )


def move_failed_jobs(
    session: Session, ids: Sequence[int], *, from_: Sequence[str], to: str, actors: Sequence[str] | None, now
) -> list[Row]:
    """Move those of ids in a from_ status (and, with actors, for one of them) to `to`; (id, message_id,
    queue, actor, args, kwargs) of each moved. The rows stay locked until commit."""
    where = [FailedJob.id.in_(ids), FailedJob.status.in_(from_)]
    if actors is not None:
        where.append(FailedJob.actor.in_(actors))
    values = {"status": to, **({"retried_at": now} if to == S.RETRIED else {})}
    return list(
        session.execute(
            update(FailedJob)
            .where(*where)
            .values(**values)
            .returning(
                FailedJob.id,
                FailedJob.message_id,
                FailedJob.queue,
                FailedJob.actor,
                FailedJob.args,
                FailedJob.kwargs,
            )
        ).all()
    )


def count_failed_jobs_in(session: Session, ids: Sequence[int], statuses: Sequence[str]) -> int:
    return session.scalar(
        select(func.count())
        .select_from(FailedJob)
        .where(FailedJob.id.in_(ids), FailedJob.status.in_(statuses))
    )


def count_failed_jobs(session: Session, f: DeadLetterFilter) -> int:
    return session.scalar(select(func.count()).select_from(FailedJob).where(*matching(f)))


def list_newest_failed_jobs(
    session: Session, f: DeadLetterFilter, limit: int, offset: int = 0
) -> list[FailedJob]:
    """The newest `limit` failed jobs the filter matches, past the newest `offset`."""
    return list(
        session.scalars(
            select(FailedJob)
            .where(*matching(f))
            .order_by(FailedJob.failed_at.desc(), FailedJob.id.desc())
            .offset(offset)
            .limit(limit)
        )
    )
