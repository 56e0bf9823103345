"""The emails outbox, and the invoice lines an email lists."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Row, any_, bindparam, case, func, literal, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from db.models import Allocation, Email, Invoice
from db.queries._batch import _json
from tasks.domain.allocation import TAKEN_BACK
from tasks.domain.retention import REDACTED_KEY
from tasks.domain.states import EmailStatus

_EMAILS, _INVOICES, _ALLOCATIONS = Email.__table__, Invoice.__table__, Allocation.__table__
_IDS = ARRAY(BigInteger)
# An email lists what the payment paid each invoice, so its lines add up to the payment whatever was
# refunded since; reversed_minor is how much of that a refund or dispute has taken back from the invoice.
_EMAIL_LINES_OF = (
    select(
        _ALLOCATIONS.c.payment_id,
        _INVOICES.c.number,
        _INVOICES.c.site_name,
        _ALLOCATIONS.c.paid_minor.label("amount_minor"),
        _ALLOCATIONS.c.discount_minor,
        case(
            *[
                (_ALLOCATIONS.c.state == state, rule(_ALLOCATIONS.c.paid_minor, _ALLOCATIONS.c.amount_minor))
                for state, rule in TAKEN_BACK.items()
            ],
            else_=0,
        ).label("reversed_minor"),
    )
    .join(_ALLOCATIONS, _ALLOCATIONS.c.invoice_id == _INVOICES.c.id)
    .where(_ALLOCATIONS.c.payment_id == any_(bindparam("ids", type_=_IDS)))
    .order_by(_ALLOCATIONS.c.payment_id, _INVOICES.c.due_on, _INVOICES.c.number)
)
_ADD_EMAILS = text(
    "INSERT INTO emails (kind, recipient, context, dedupe_key, seller_id, account_id, payment_id,"
    " status, attempts)"
    " SELECT e.kind, e.recipient, e.context, e.dedupe_key, e.seller_id, e.account_id, e.payment_id,"
    f" '{EmailStatus.QUEUED}', 0"
    " FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS e (kind text, recipient text, context jsonb,"
    " dedupe_key text, seller_id bigint, account_id bigint, payment_id bigint)"
    " ON CONFLICT (dedupe_key) DO NOTHING RETURNING id"
)


def list_email_lines_of(session: Session, payment_ids: Sequence[int]) -> dict[int, list[Row]]:
    """list_email_lines for many payments at once: {payment id: its lines}."""
    lines: dict[int, list[Row]] = {}
    for row in session.connection().execute(_EMAIL_LINES_OF, {"ids": list(payment_ids)}):
        lines.setdefault(row.payment_id, []).append(row)
    return lines


def add_emails(session: Session, rows: Sequence[dict[str, Any]]) -> list[int]:
    """add_email for many rows in one statement; returns the ids of the rows written (not the duplicates)."""
    return list(session.connection().execute(_ADD_EMAILS, {"rows": _json(rows)}).scalars())


def lock_due_emails(session: Session, now: datetime, grace: timedelta, limit: int) -> list[Row]:
    """(id, attempts) of queued rows past max(attempts, 1) grace periods, oldest first, locked; rows others
    hold are passed over."""
    return list(
        session.execute(
            select(Email.id, Email.attempts)
            .where(
                Email.status == EmailStatus.QUEUED,
                Email.created_at < literal(now) - func.greatest(Email.attempts, 1) * literal(grace),
            )
            .order_by(Email.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
    )


def lock_email(session: Session, email_id: int) -> Email | None:
    """The outbox row locked FOR UPDATE and freshly loaded."""
    return session.scalar(
        select(Email).where(Email.id == email_id).with_for_update().execution_options(populate_existing=True)
    )


# The sending path's statements, built once: a worker sends an email for every payment that moves.
_LOCK_EMAIL_IF_FREE = select(_EMAILS).where(_EMAILS.c.id == bindparam("id")).with_for_update(skip_locked=True)
_MARK_SENT = (
    update(_EMAILS)
    .where(_EMAILS.c.id == bindparam("email_id"), _EMAILS.c.status == EmailStatus.QUEUED.value)
    .values(
        status=EmailStatus.SENT.value,
        smtp_message_id=bindparam("message_id"),
        sent_at=bindparam("sent_at"),
        attempts=_EMAILS.c.attempts + 1,
    )
)


def lock_email_if_free(session: Session, email_id: int) -> Row | None:
    """The email's row (plain values) locked FOR UPDATE; None when it does not exist or another
    transaction holds it."""
    return session.connection().execute(_LOCK_EMAIL_IF_FREE, {"id": email_id}).first()


def mark_sent(session: Session, email_id: int, message_id: str, sent_at: datetime) -> None:
    """The locked queued email was handed to the SMTP server: sent, with its Message-ID, one more attempt."""
    session.connection().execute(
        _MARK_SENT, {"email_id": email_id, "message_id": message_id, "sent_at": sent_at}
    )


def find_email_id(session: Session, email_id: int) -> int | None:
    """The id back when the row exists, locked or not."""
    return session.scalar(select(Email.id).where(Email.id == email_id))


def lock_contexts_to_redact(session: Session, created_before: datetime, limit: int) -> list[Row]:
    """(id, context) of sent or failed emails older than the cutoff and unredacted, oldest first, locked."""
    statement = (
        select(Email.id, Email.context)
        .where(
            Email.created_at < created_before,
            Email.status != EmailStatus.QUEUED,
            ~Email.context.has_key(REDACTED_KEY),
        )
        .order_by(Email.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.execute(statement))


def replace_contexts(session: Session, contexts: Sequence[tuple[int, dict[str, Any]]]) -> None:
    """Write each (email id, context) back."""
    if contexts:
        session.execute(
            update(_EMAILS).where(_EMAILS.c.id == bindparam("email_id")),
            [{"email_id": email_id, "context": context} for email_id, context in contexts],
        )
