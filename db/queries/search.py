"""Finding rows by any id ops paste: Stripe ids, payment ids and keys, invoice and account numbers, emails."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from db.models import (
    Account,
    Allocation,
    Dispute,
    Email,
    ExternalPayment,
    Invoice,
    Payment,
    Refund,
    StripeEvent,
)

# More rows than anyone reads on one search page.
LIMIT = 50


def find_payment_of_event(session: Session, payload: dict[str, Any]) -> int | None:
    """The payment an event is about, by the Stripe ids its object carries (never by metadata)."""
    subject = (payload.get("data") or {}).get("object") or {}
    if not isinstance(subject, dict):
        return None
    ids = [subject.get("id"), subject.get("payment_intent"), subject.get("charge")]
    ids = [i for i in ids if isinstance(i, str)]
    return _payment_by_stripe_ids(session, ids) if ids else None


def _payment_by_stripe_ids(session: Session, ids: list[str]) -> int | None:
    return (
        session.scalar(
            select(Payment.id)
            .where(or_(Payment.stripe_payment_intent_id.in_(ids), Payment.stripe_charge_id.in_(ids)))
            .limit(1)
        )
        or session.scalar(select(Refund.payment_id).where(Refund.stripe_refund_id.in_(ids)).limit(1))
        or session.scalar(select(Dispute.payment_id).where(Dispute.stripe_dispute_id.in_(ids)).limit(1))
    )


@dataclass(frozen=True)
class Hit:
    """One row a search term names: its kind (payment, event, email, account, failed_job) and key."""

    kind: str
    key: str
    label: str


def find_anything(session: Session, term: str) -> list[Hit]:
    """Every row the term names exactly: a Stripe id, a payment id or key, an invoice, account or email."""
    hits = _stripe_hits(session, term) if "_" in term else []
    if term.isdigit() and len(term) < 10 and session.get(Payment, int(term)) is not None:
        hits.append(Hit("payment", term, f"payment {term}"))
    if "@" in term:
        hits += _email_hits(session, term)
    hits += _number_hits(session, term)
    return hits


def _stripe_hits(session: Session, term: str) -> list[Hit]:
    if term.startswith("evt_"):
        found = session.get(StripeEvent, term)
        return [Hit("event", term, f"Stripe event {term} ({found.type})")] if found else []
    payment_id = _payment_by_stripe_ids(session, [term])
    return [Hit("payment", str(payment_id), f"payment {payment_id} ({term})")] if payment_id else []


def _email_hits(session: Session, term: str) -> list[Hit]:
    hits = []
    if session.scalar(
        select(func.count()).select_from(Email).where(func.lower(Email.recipient) == term.lower())
    ):
        hits.append(Hit("emails", term, f"emails to {term}"))
    for number, name in session.execute(
        select(Account.number, Account.name)
        .where(func.lower(Account.billing_email) == term.lower())
        .limit(LIMIT)
    ):
        hits.append(Hit("account", number, f"account {number} ({name}), billed at {term}"))
    return hits


def _number_hits(session: Session, term: str) -> list[Hit]:
    hits = [
        Hit("payment", str(pid), f"payment {pid} (idempotency key {term})")
        for (pid,) in session.execute(
            select(Payment.id).where(Payment.idempotency_key == term).order_by(Payment.id).limit(LIMIT)
        )
    ]
    hits += [
        Hit("account", number, f"account {number} ({name})")
        for number, name in session.execute(
            select(Account.number, Account.name).where(Account.number == term).limit(LIMIT)
        )
    ]
    paid = session.execute(
        select(Allocation.payment_id, Invoice.number)
        .join(Invoice, Invoice.id == Allocation.invoice_id)
        .where(Invoice.number == term)
        .distinct()
        .limit(LIMIT)
    )
    hits += [Hit("payment", str(pid), f"payment {pid} (paid invoice {number})") for pid, number in paid]
    unpaid = session.execute(
        select(Invoice.number, Account.number)
        .join(Account, Account.id == Invoice.account_id)
        .where(
            Invoice.number == term, ~select(Allocation.id).where(Allocation.invoice_id == Invoice.id).exists()
        )
        .limit(LIMIT)
    )
    hits += [
        Hit("account", account, f"invoice {number} of account {account} (no payment)")
        for number, account in unpaid
    ]
    references = session.execute(
        select(ExternalPayment.reference, Account.number)
        .join(Account, Account.id == ExternalPayment.account_id)
        .where(ExternalPayment.reference == term)
        .limit(LIMIT)
    )
    hits += [
        Hit("account", number, f"external payment {ref} of account {number}") for ref, number in references
    ]
    return hits
