"""What every handler returns, and the small helpers they share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from db.models import PaymentMethod
from db.queries import accounts as account_rows
from tasks.domain.events import waits_for_payment
from tasks.domain.states import EventStatus
from tasks.flows import emails as outbox


@dataclass(frozen=True)
class Handled:
    """How an event ended: processed, or ignored with the reason kept on the event row."""

    status: EventStatus
    note: str | None = None


PROCESSED = Handled(EventStatus.PROCESSED)


def ignored(note: str) -> Handled:
    return Handled(EventStatus.IGNORED, note)


def waiting(note: str) -> Handled:
    """Not applied yet: the event stays received, and the sweeper brings it back (sweep_stripe_events)."""
    return Handled(EventStatus.RECEIVED, note)


def no_payment_yet(event: dict[str, Any], what: str, now: datetime) -> Handled:
    """A charge's refund or dispute whose payment has not recorded the charge (yet): wait for it a while.

    Payments are found by Stripe's ids only. The ids of a payment whose Stripe answer was lost are
    recorded once execute_payment finds its intent; until then the event waits, and after that it
    was never ours.
    """
    if waits_for_payment(event.get("created"), now.timestamp()):
        return waiting(f"no payment has recorded {what} yet")
    return ignored(f"no payment for {what}")


def source_of(event: dict[str, Any]) -> str:
    """The timeline source of everything an event changes."""
    return f"stripe:{event['id']}"


def obj(event: dict[str, Any]) -> dict[str, Any]:
    return event["data"]["object"]


def object_id(value: Any) -> str | None:
    """An id from a field that may be a plain id or an expanded object."""
    if isinstance(value, dict):
        return value.get("id")
    return value if isinstance(value, str) else None


def queue_method_email(
    session: Session, method: PaymentMethod, kind: str, now: datetime, extra: dict[str, Any] | None = None
) -> int | None:
    """The outbox row owed for a saved method's verification outcome, once per method and kind."""
    account = account_rows.find_account(session, method.account_id)
    seller = account_rows.find_seller(session, account.seller_id)
    context = {
        **outbox.party_context(method, account, seller),
        "at": now.isoformat(),
        **(extra or {}),
    }
    return outbox.queue_email(
        session,
        kind=kind,
        recipient=account.billing_email,
        context=context,
        dedupe_key=f"{kind}:method:{method.id}",
        seller_id=account.seller_id,
        account_id=account.id,
    )
