"""What ops can do to a dead letter: send it to its actor again, or set it aside; both safe to click twice."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from dramatiq.errors import ActorNotFound, DramatiqError
from redis.exceptions import RedisError
from sqlalchemy.orm import Session, sessionmaker

from db.queries import failed_jobs as failed_job_rows


class Outcome(StrEnum):
    """What a click did; each value is also the flash shown after the redirect."""

    RETRIED = "retried"
    ALREADY_RETRIED = "already_retried"
    DISCARDED = "discarded"
    ALREADY_DISCARDED = "already_discarded"
    UNKNOWN_ACTOR = "unknown_actor"
    BROKER_DOWN = "broker_down"
    NOT_FOUND = "not_found"


FLASHES = {
    Outcome.RETRIED: "Sent to its actor again and marked retried.",
    Outcome.ALREADY_RETRIED: "Already retried earlier; nothing was sent this time.",
    Outcome.DISCARDED: "Discarded; it will not be retried.",
    Outcome.ALREADY_DISCARDED: "Already discarded or retried; nothing changed.",
    Outcome.UNKNOWN_ACTOR: "No actor by that name is declared here; nothing was sent.",
    Outcome.BROKER_DOWN: "The broker did not take the message; the row is still dead, try again.",
    Outcome.NOT_FOUND: "No such failed job.",
}


def retry_failed_job(factory: sessionmaker[Session], broker, job_id: int, now: datetime) -> Outcome:
    """Claim the row (dead or discarded -> retried) and send its message inside one transaction.

    The conditional UPDATE holds the row lock until commit, so a concurrent second click waits and
    then finds it retried; if the send fails the claim rolls back and the row stays as it was.
    """
    try:
        with factory() as session, session.begin():
            claimed = failed_job_rows.move_failed_job_to_retried(session, job_id, now)
            if claimed is None:
                return _current(session, job_id, Outcome.ALREADY_RETRIED)
            _send(broker, claimed.actor, claimed.args, claimed.kwargs)
    except _SendRefused as refused:  # raised inside the transaction, so the claim rolled back
        return refused.outcome
    return Outcome.RETRIED


class _SendRefused(Exception):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.value)
        self.outcome = outcome


def _send(broker, actor_name: str, args: list, kwargs: dict) -> None:
    try:
        actor = broker.get_actor(actor_name)
    except ActorNotFound:
        raise _SendRefused(Outcome.UNKNOWN_ACTOR) from None
    try:
        actor.send_with_options(args=tuple(args), kwargs=dict(kwargs))
    except (DramatiqError, RedisError, OSError):
        raise _SendRefused(Outcome.BROKER_DOWN) from None


def discard_failed_job(factory: sessionmaker[Session], job_id: int) -> Outcome:
    """Mark a dead row discarded; a retried or discarded row is left alone."""
    with factory() as session, session.begin():
        changed = failed_job_rows.mark_failed_job_discarded(session, job_id)
        return Outcome.DISCARDED if changed else _current(session, job_id, Outcome.ALREADY_DISCARDED)


def _current(session: Session, job_id: int, otherwise: Outcome) -> Outcome:
    exists = failed_job_rows.find_failed_job_id(session, job_id)
    return otherwise if exists else Outcome.NOT_FOUND
