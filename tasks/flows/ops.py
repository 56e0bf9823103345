"""What an operator does to one row from the dashboard (or the ops CLI), each through the workers' own paths.

A failed Stripe event goes back to `received` and gets a process_stripe_event message, as the
sweeper sends; a failed email goes back to `queued` and gets a send_email message, as the outbox
sends; a flagged payment is cleared through the one write path with a timeline line. Each change and
its audit row commit together, and each is safe to repeat: a row not in the state it needs is left
as it is and the answer says so.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from db.queries import ops as ops_rows
from db.queries import payments as payment_rows
from db.session import transaction
from schedules.schedule import SCHEDULE
from tasks.domain.errors import RemitError
from tasks.domain.states import EmailStatus, EventStatus
from tasks.flows import audit, disputes, ledger, messages

# A resolution note is a sentence or two for the timeline, not a document.
MAX_NOTE_CHARS = 1000


class Done(StrEnum):
    """What an operator action did."""

    DONE = "done"
    NOT_NEEDED = "not_needed"
    NOT_FOUND = "not_found"
    UNAVAILABLE = "unavailable"


def reprocess_event(event_id: str, operator: str, now: datetime) -> Done:
    """A failed event is waiting again and its message sent after commit; other statuses are left alone."""
    with transaction() as session:
        moved = ops_rows.move_event_to_received(session, event_id, from_=EventStatus.FAILED)
        if moved is None:
            return Done.NOT_FOUND
        if not moved:
            return Done.NOT_NEEDED
        audit.record(session, operator, "reprocess_event", f"stripe_events {event_id}", now)
        messages.send_after_commit(session, "process_stripe_event", [(event_id,)])
    return Done.DONE


def resend_email(email_id: int, operator: str, now: datetime) -> Done:
    """A failed email is queued again (its error kept until it sends) and send_email sent after commit."""
    with transaction() as session:
        moved = ops_rows.move_email_to_queued(session, email_id, from_=EmailStatus.FAILED)
        if moved is None:
            return Done.NOT_FOUND
        if not moved:
            return Done.NOT_NEEDED
        audit.record(session, operator, "resend_email", f"emails {email_id}", now)
        messages.send_after_commit(session, "send_email", [(email_id,)])
    return Done.DONE


def resolve_review(payment_id: int, operator: str, note: str, now: datetime) -> Done:
    """Clear a payment's needs_review with the operator's note on its timeline."""
    note = note.strip()[:MAX_NOTE_CHARS]
    with transaction() as session:
        payment = payment_rows.lock_payment(session, payment_id)
        if payment is None:
            return Done.NOT_FOUND
        if not payment.needs_review:
            return Done.NOT_NEEDED
        detail = {"review_resolved_by": operator, "note": note}
        ledger.record_event(
            session, payment, source=f"ops:{operator}", now=now, detail=detail, values={"needs_review": False}
        )
        audit.record(session, operator, "resolve_review", f"payments {payment_id}", now, note=note)
    return Done.DONE


# What the disputes flow's refusals mean to an operator's click.
_REINSTATE_REFUSED = {
    "payment_not_found": Done.NOT_FOUND,
    "no_won_dispute": Done.NOT_NEEDED,
    "reversal_unknown": Done.UNAVAILABLE,
}


def reinstate_won_dispute(payment_id: int, operator: str, now: datetime) -> Done:
    """Re-apply a won dispute's money to the invoices it paid (the disputes flow's own reinstate), audited.

    UNAVAILABLE: the payment was refunded in part before the dispute recorded what it reversed, so the
    money must be re-applied by hand; nothing changed.
    """
    try:
        with transaction() as session:
            done = disputes.reinstate_won_dispute_in(session, payment_id, operator, now)
            audit.record(session, operator, "reinstate_won_dispute", f"payments {payment_id}", now, **done)
    except RemitError as refused:
        if refused.code in _REINSTATE_REFUSED:
            return _REINSTATE_REFUSED[refused.code]
        raise
    return Done.DONE


def run_job_now(job_name: str, operator: str, now: datetime) -> Done:
    """Send a scheduled maintenance job's message now, as the clock would; the clock's own runs go on."""
    job = next((j for j in SCHEDULE if j.name == job_name), None)
    if job is None:
        return Done.NOT_FOUND
    with transaction() as session:
        audit.record(session, operator, "run_job_now", f"schedule {job.name}", now, actor=job.actor)
        messages.send_after_commit(session, job.actor, [()])
    return Done.DONE
