"""Pure Stripe event rules: the handler family of a type, what an event means for a payment, refund splits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from tasks.domain.intents import target_for_intent
from tasks.domain.states import PaymentStatus
from tasks.domain.transitions import RESERVING_STATUSES

P = PaymentStatus

# Event type -> handler family; anything else is stored and marked ignored.
ROUTES: dict[str, str] = {
    "payment_intent.succeeded": "payment_intents",
    "payment_intent.processing": "payment_intents",
    "payment_intent.payment_failed": "payment_intents",
    "payment_intent.canceled": "payment_intents",
    "payment_intent.requires_action": "payment_intents",
    "charge.refunded": "refunds",
    "refund.created": "refunds",
    "refund.updated": "refunds",
    "refund.failed": "refunds",
    "charge.dispute.created": "disputes",
    "charge.dispute.closed": "disputes",
    # An inquiry that escalates to a chargeback changes status without a new created event.
    "charge.dispute.updated": "disputes",
    "charge.dispute.funds_withdrawn": "disputes",
    "charge.dispute.funds_reinstated": "disputes",
    "setup_intent.succeeded": "setup_intents",
    "setup_intent.requires_action": "setup_intents",
    "setup_intent.setup_failed": "setup_intents",
    "payment_method.attached": "payment_methods",
    "payment_method.detached": "payment_methods",
    "payment_method.updated": "payment_methods",
    "payment_method.automatically_updated": "payment_methods",
    "mandate.updated": "mandates",
}

# What each PaymentIntent event says happened, before failure codes are looked at.
_INTENT_EVENT_STATUS = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.processing": "processing",
    "payment_intent.payment_failed": "requires_payment_method",
    "payment_intent.canceled": "canceled",
    "payment_intent.requires_action": "requires_action",
}


class EventMalformed(ValueError):
    """A body that parsed as JSON but is not a Stripe event."""


def route_for(event_type: str) -> str | None:
    """The handler family for an event type, or None when Remit does not act on it."""
    return ROUTES.get(event_type)


def check_event_shape(event: Any) -> tuple[str, str]:
    """(id, type) of a well-formed event; raise EventMalformed otherwise."""
    if not isinstance(event, dict) or event.get("object") != "event":
        raise EventMalformed("not a Stripe event object")
    event_id, event_type = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not event_id.startswith("evt_") or len(event_id) > 255:
        raise EventMalformed("event id missing or malformed")
    if not isinstance(event_type, str) or not event_type or len(event_type) > 100:
        raise EventMalformed("event type missing or malformed")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise EventMalformed("event has no data.object")
    created = event.get("created")
    if created is not None and (not isinstance(created, int) or isinstance(created, bool)):
        raise EventMalformed("event created is not a unix time")
    return event_id, event_type


def payment_id_from_metadata(metadata: Mapping[str, Any] | None) -> int | None:
    """Our payment id as put in a PaymentIntent's metadata, or None if absent or not an id."""
    raw = (metadata or {}).get("payment_id")
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and 0 < len(raw) <= 18:
        return int(raw)
    return None


# The metadata key every PaymentIntent Remit creates carries, valued with its deployment (REMIT_DEPLOYMENT).
DEPLOYMENT_KEY = "remit_deployment"
# Until this long after Stripe created it, a refund or dispute whose charge no payment has recorded yet
# waits for its payment (execute_payment records the ids once Stripe answers, or finds the intent by
# search within 20 hours); after it, the event is someone else's and is ignored.
WAIT_FOR_PAYMENT_S = 24 * 3600


@dataclass(frozen=True)
class Recorded:
    """What our row says of a payment, to compare with a PaymentIntent that names it in its metadata."""

    intent_id: str | None
    account_id: int
    amount_minor: int
    currency: str
    customer_id: str | None


def foreign_intent(payment: Recorded, intent: Mapping[str, Any], deployment: str) -> str | None:
    """Why a PaymentIntent found only through its metadata is not this payment's, or None when it is.

    Metadata is anyone's to write: it counts only from this deployment, before the payment has recorded
    an intent of its own, and when account, amount, currency and customer all agree with our row.
    """
    metadata = intent.get("metadata") or {}
    if payment.intent_id is not None:
        return f"the payment has another PaymentIntent ({payment.intent_id})"
    checks = [
        (metadata.get(DEPLOYMENT_KEY) == deployment, "it was not made by this deployment"),
        (metadata.get("account_id") == str(payment.account_id), "its account differs"),
        (intent.get("amount") == payment.amount_minor, "its amount differs"),
        (str(intent.get("currency", "")).lower() == payment.currency.lower(), "its currency differs"),
        (_id(intent.get("customer")) == payment.customer_id, "its customer differs"),
    ]
    reasons = [reason for ok, reason in checks if not ok]
    return f"PaymentIntent {intent.get('id')} is not this payment's: {reasons[0]}" if reasons else None


def _id(value: Any) -> str | None:
    return value.get("id") if isinstance(value, Mapping) else value


def waits_for_payment(event_created_s: Any, now_s: float) -> bool:
    """Whether an event about a charge no payment has recorded yet may still find its payment."""
    return isinstance(event_created_s, int | float) and now_s - event_created_s < WAIT_FOR_PAYMENT_S


def contradicts(stored: PaymentStatus, reported: PaymentStatus | None) -> bool:
    """Stripe says it took the money for a payment our row says ended without it.

    (A bank debit reported processing after it failed is only a late event: it failed after processing.)
    """
    return reported == P.SUCCEEDED and PaymentStatus(stored) in (P.FAILED, P.CANCELED)


def intent_event_target(event_type: str, error: Mapping[str, Any] | None) -> PaymentStatus | None:
    """The payment status a PaymentIntent event implies (a failed off-session auth is requires_action)."""
    status = _INTENT_EVENT_STATUS.get(event_type)
    if status is None:
        return None
    error = error or {}
    return target_for_intent(status, error.get("code"), error.get("decline_code"))


def intent_event_type(intent_status: str) -> str | None:
    """The event a PaymentIntent's current status stands for (the reconciler's view), or None."""
    if intent_status == "requires_payment_method":
        return "payment_intent.payment_failed"
    event_type = f"payment_intent.{intent_status}"
    return event_type if event_type in _INTENT_EVENT_STATUS else None


def intent_event_applies(current: PaymentStatus) -> bool:
    """PaymentIntent events only move payments still in flight: never undo a refund or a dispute."""
    return PaymentStatus(current) in RESERVING_STATUSES


def settled_first(current: PaymentStatus) -> bool:
    """A refund or dispute proves the charge succeeded: a payment still in flight settles first."""
    return PaymentStatus(current) in RESERVING_STATUSES


def refund_target(amount_minor: int, refunded_minor: int) -> PaymentStatus:
    """Fully or partially refunded, by the cumulative amount Stripe reports."""
    return P.REFUNDED if refunded_minor >= amount_minor else P.PARTIALLY_REFUNDED


@dataclass(frozen=True)
class AllocationSlice:
    """An applied allocation as the refund split sees it."""

    id: int
    due_on: date
    amount_minor: int


@dataclass(frozen=True)
class RefundSplit:
    """Allocations to reverse whole, one to reduce to a new amount, and what falls beyond them."""

    reverse_ids: tuple[int, ...]
    reduce: tuple[int, int] | None
    beyond_allocations_minor: int


def split_refund(applied: Sequence[AllocationSlice], refund_minor: int) -> RefundSplit:
    """Split newly refunded money over applied allocations.

    Rule: the latest-due invoice is given back first (the oldest debt stays paid longest).
    Allocations are reversed whole while the refund covers them; the next one is reduced by
    the rest (an allocation cannot be split: one per payment and invoice). Money beyond every
    allocation (a deposit or remainder credit) is left to the full-refund transition.
    """
    if refund_minor < 0:
        raise ValueError("refund must not be negative")
    latest_due_first = sorted(applied, key=lambda a: (a.due_on, a.id), reverse=True)
    return RefundSplit(*_take(latest_due_first, refund_minor))


@dataclass(frozen=True)
class CreditSlice:
    """An available credit as the refund take-back sees it."""

    id: int
    amount_minor: int


@dataclass(frozen=True)
class TakeBack:
    """Credits to reverse whole, one to reduce to a new amount, then the rest split over allocations."""

    reverse_credit_ids: tuple[int, ...]
    reduce_credit: tuple[int, int] | None
    allocations: RefundSplit


def take_back(
    credits: Sequence[CreditSlice], applied: Sequence[AllocationSlice], refund_minor: int
) -> TakeBack:
    """What newly refunded money takes back from one payment.

    The payment's available credit goes first, oldest first: it is the overpaid part no invoice
    counts on, so giving it back reopens nothing. What the credit does not cover is split over
    the applied allocations by split_refund.
    """
    reverse, reduce, rest = _take(sorted(credits, key=lambda c: c.id), refund_minor)
    return TakeBack(reverse, reduce, split_refund(applied, rest))


def _take(
    pieces: Sequence[AllocationSlice | CreditSlice], amount_minor: int
) -> tuple[tuple[int, ...], tuple[int, int] | None, int]:
    """(ids reversed whole in order while the amount covers them, (id, new amount) of the next, the rest)."""
    remaining, reverse = amount_minor, []
    for piece in pieces:
        if remaining <= 0:
            break
        if remaining < piece.amount_minor:
            return tuple(reverse), (piece.id, piece.amount_minor - remaining), 0
        reverse.append(piece.id)
        remaining -= piece.amount_minor
    return tuple(reverse), None, remaining


def dispute_is_closed(status: str) -> bool:
    """Whether a dispute status is one Stripe no longer changes."""
    return status in ("won", "lost", "warning_closed", "charge_refunded")


def dispute_is_inquiry(status: str) -> bool:
    """Whether a dispute status is a card network inquiry (warning_*): no funds withdrawn yet."""
    return status.startswith("warning_")


def next_dispute_status(stored: str, reported: str) -> str:
    """The status a dispute keeps: a closed one never changes, a chargeback never becomes an inquiry again."""
    if dispute_is_closed(stored) or (dispute_is_inquiry(reported) and not dispute_is_inquiry(stored)):
        return stored
    return reported
