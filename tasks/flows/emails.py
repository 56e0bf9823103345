"""The email outbox: deliver one queued row over SMTP at most once per success, and sweep up lost ones.

Delivery is at least once, not exactly once. The row is locked while the message is handed to the
SMTP server and marked sent in that same transaction; if the process dies (or the commit fails)
after the server accepted the message but before the commit, the row stays queued and is sent
again. Both copies carry the same Message-ID, `<remit-email-{id}@{MAIL_FROM domain}>`, and the
same X-Remit-Dedupe-Key, so mail clients and people can recognise the second as a duplicate.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row
from sqlalchemy.orm import Session

from db.queries import RowMissing
from db.queries import emails as email_rows
from db.session import transaction
from emails import render
from tasks.domain.states import EmailStatus
from tasks.flows import messages
from tasks.gateways.mail import MailRejected, Outgoing, get_mail_gateway

# A send_email message normally runs within seconds; two minutes without one means it was lost.
# Each failed attempt pushes a row's next sweep back by one more grace period (see sweep_emails).
EMAIL_GRACE = timedelta(minutes=2)
# Bounds one sweep pass; the next pass takes the rest.
SWEEP_LIMIT = 500
# A receipt still failing a day after it was owed needs a person, not another retry.
MAX_EMAIL_AGE = timedelta(hours=24)
# last_error keeps the start of the message; SMTP replies and tracebacks can be long.
MAX_ERROR_CHARS = 2000


def deliver_email(email_id: int, now: datetime) -> str:
    """Render and send a queued email once, under its row lock; return what happened.

    Raises MailRejected (after marking the row failed) when the server refuses it for good, and
    any other error (after recording the attempt) so the actor retries.
    """
    try:
        with transaction() as session:
            email = _claim(session, email_id)
            if isinstance(email, str):
                return email
            rendered = render(email.kind, email.context)
            message_id = get_mail_gateway().send(_outgoing(email, rendered))
            email_rows.mark_sent(session, email.id, message_id, now)
        return "sent"
    except MailRejected as refused:
        _record_failure(email_id, refused, now, final=True)
        raise
    except Exception as error:
        # Recorded for ops on the row, then re-raised unchanged: the actor's retry policy decides.
        _record_failure(email_id, error, now, final=False)
        raise


def sweep_emails(now: datetime, grace: timedelta = EMAIL_GRACE, limit: int = SWEEP_LIMIT) -> dict[str, int]:
    """Re-send send_email for rows still queued past their grace; return counts (unsent, retrying).

    A row with n failed attempts is stale once max(n, 1) grace periods have passed since it was
    written, so a row whose actor is still retrying is not doubled, and a long outage is retried
    ever more slowly instead of being given up after a fixed count.
    """
    with transaction() as session:
        rows = email_rows.lock_due_emails(session, now, grace, limit)
    messages.send_now("send_email", [(email_id,) for email_id, _ in rows])
    unsent = sum(1 for _, attempts in rows if attempts == 0)
    return {"unsent": unsent, "retrying": len(rows) - unsent}


def party_context(method: Any, account: Any, seller: Any) -> dict[str, Any]:
    """What every email shows of the method, the account and the seller whose brand it carries."""
    return {
        "method": {
            "kind": method.kind,
            "brand": method.brand,
            "bank_name": method.bank_name,
            "last4": method.last4,
        },
        "account": {"number": account.number, "name": account.name},
        "seller": {
            "name": seller.name,
            "logo_url": seller.logo_url,
            "brand_color": seller.brand_color,
            "support_email": seller.support_email,
            "support_phone": seller.support_phone,
            "from_name": seller.email_from_name or seller.name,
            "from_address": seller.email_from_address,
        },
    }


def queue_email(session: Session, **row) -> int | None:
    """Write an outbox row (once per dedupe key) and send it after commit; return its id or None."""
    written = queue_emails(session, [row])
    return written[0] if written else None


def queue_emails(session: Session, rows: list[dict]) -> list[int]:
    """Write outbox rows (once per dedupe key) and send each one written after commit; return their ids."""
    written = email_rows.add_emails(session, rows)
    messages.send_after_commit(session, "send_email", [(email_id,) for email_id in written])
    return written


def _claim(session: Session, email_id: int) -> Row | str:
    """The row (plain values) locked for sending, or why there is nothing to send."""
    email = email_rows.lock_email_if_free(session, email_id)
    if email is not None:
        return email if email.status == EmailStatus.QUEUED else f"nothing to do: email is {email.status}"
    if email_rows.find_email_id(session, email_id) is None:
        raise RowMissing(f"email {email_id} does not exist")
    return "nothing to do: another worker is sending it"


def _outgoing(email: Row, rendered) -> Outgoing:
    seller = email.context.get("seller") or {}
    return Outgoing(
        email_id=email.id,
        recipient=email.recipient,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        dedupe_key=email.dedupe_key,
        reply_to=seller.get("support_email"),
        from_name=seller.get("from_name") or seller.get("name"),
        from_address=seller.get("from_address"),
    )


def _record_failure(email_id: int, error: Exception, now: datetime, *, final: bool) -> None:
    """Count the attempt and keep the error, in its own small transaction; fail the row if it is over."""
    with transaction() as session:
        email = email_rows.lock_email(session, email_id)
        if email is None or email.status != EmailStatus.QUEUED:
            return
        email.attempts += 1
        email.last_error = f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]
        if final or now - email.created_at > MAX_EMAIL_AGE:
            email.status = EmailStatus.FAILED
