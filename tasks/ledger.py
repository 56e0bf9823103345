"""Applying a payment transition: status, allocations, credits, timeline and the owed email, in one transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from db import queries
from db.models import Account, Payment, PaymentMethod, Seller
from tasks import outbox
from tasks.accounts import balance_moved
from tasks.domain.outcomes import allocation_move, email_for
from tasks.domain.states import (
    FINAL_STATUSES, CreditState, MethodKind, PaymentKind, PaymentStatus, can_transition,
)

P = PaymentStatus
# Moving between these changes no balance figure: all of them count as pending.
IN_FLIGHT = frozenset({P.PENDING, P.SUBMITTING, P.PROCESSING, P.REQUIRES_ACTION})
# Where a payment's unapplied credit goes for each target status.
CREDIT_MOVES = {
    P.SUCCEEDED: (CreditState.PENDING, CreditState.AVAILABLE),
    P.FAILED: (CreditState.PENDING, CreditState.REVERSED),
    P.CANCELED: (CreditState.PENDING, CreditState.REVERSED),
    P.DISPUTED: (CreditState.AVAILABLE, CreditState.REVERSED),
    P.REFUNDED: (CreditState.AVAILABLE, CreditState.REVERSED),
}


def apply_transition(session: Session, payment: Payment, target: PaymentStatus, *, source: str, now: datetime,
                     detail: dict[str, Any] | None = None, values: dict[str, Any] | None = None) -> bool:
    """Move the payment to target if the table allows it; otherwise record the refusal. True if applied.

    values are further payment columns to store either way (in the transition's own UPDATE when it applies).
    """
    current = PaymentStatus(payment.status)
    if current == target or not can_transition(current, target):
        reason = "already in this state" if current == target else "transition not allowed"
        queries.set_payment_columns(session, payment, **(values or {}))
        queries.add_payment_event(session, payment, from_status=current, to_status=target, source=source,
                                  applied=False, detail={**(detail or {}), "ignored": reason}, at=now)
        return False
    columns = {**(values or {}), "status": target, "updated_at": now}
    if target in FINAL_STATUSES or target == P.SUCCEEDED:
        columns["finished_at"] = now
    queries.move_payment(session, payment.id, columns, from_status=current, to_status=target, source=source,
                         detail=detail or {}, at=now)
    queries.show_columns(payment, columns)
    _move_money(session, payment, target)
    queue_payment_email(session, payment, current, target)
    if not (current in IN_FLIGHT and target in IN_FLIGHT):
        balance_moved(session, payment.account_id, now)
    return True


def record_quiet_transition(session: Session, payment_id: int, current: PaymentStatus, target: PaymentStatus, *,
                            source: str, now: datetime, detail: dict[str, Any], **values: Any) -> None:
    """A transition that moves no money, owes no email and changes no balance figure, as one plain statement.

    For the hot path of a payment whose row the caller already holds locked and whose status it read
    there; values are further payment columns to set in the same UPDATE.
    """
    if not is_quiet(current, target):
        raise ValueError(f"{current} -> {target} is not a quiet transition; use apply_transition")
    queries.move_payment(session, payment_id, {**values, "status": target, "updated_at": now}, from_status=current,
                         to_status=target, source=source, detail=detail, at=now, expected=current)


def is_quiet(current: PaymentStatus, target: PaymentStatus) -> bool:
    """True when apply_transition would only change the status and add a timeline line."""
    emails = {email_for(method, kind, current, target) for method in MethodKind for kind in PaymentKind}
    return (can_transition(current, target) and current in IN_FLIGHT and target in IN_FLIGHT
            and allocation_move(target) is None and target not in CREDIT_MOVES and emails == {None})


def record_event(session: Session, payment: Payment, *, source: str, now: datetime, detail: dict[str, Any]) -> None:
    """A timeline entry that changes no state (e.g. a recorded Stripe attempt)."""
    queries.add_payment_event(session, payment, from_status=payment.status, to_status=payment.status,
                              source=source, detail=detail, at=now)


def _move_money(session: Session, payment: Payment, target: PaymentStatus) -> None:
    move = allocation_move(target)
    if move is not None:
        queries.move_allocations(session, payment.id, move[0], move[1])
    credit_move = CREDIT_MOVES.get(target)
    # Only custom amounts and deposits carry credit; skipping the others saves a statement per event.
    if credit_move is not None and payment.kind != PaymentKind.INVOICES:
        queries.move_credits(session, payment.id, credit_move[0], credit_move[1])


def queue_payment_email(session: Session, payment: Payment, source: PaymentStatus, target: PaymentStatus,
                        dedupe_suffix: str = "", extra: dict[str, Any] | None = None) -> int | None:
    """Write the outbox row owed for this transition, once per payment and kind."""
    method, account, seller = _parties(session, payment)
    kind = email_for(method.kind, payment.kind, source, target)
    if kind is None:
        return None
    context = {**payment_email_context(session, payment, account, method, seller), **(extra or {})}
    return outbox.queue_email(
        session, kind=kind, recipient=account.billing_email, context=context,
        dedupe_key=f"{kind}:payment:{payment.id}{dedupe_suffix}", seller_id=account.seller_id,
        account_id=account.id, payment_id=payment.id,
    )


def _parties(session: Session, payment: Payment) -> tuple[PaymentMethod, Account, Seller]:
    """The payment's method, account and seller: as loaded with it, or in one query."""
    loaded = inspect(payment).unloaded.isdisjoint({"method", "account"})
    if loaded and "seller" not in inspect(payment.account).unloaded:
        return payment.method, payment.account, payment.account.seller
    return tuple(session.execute(
        select(PaymentMethod, Account, Seller).join(Account, Account.id == PaymentMethod.account_id)
        .join(Seller, Seller.id == Account.seller_id).where(PaymentMethod.id == payment.payment_method_id)
    ).one())


def payment_email_context(session: Session, payment: Payment, account: Account, method: PaymentMethod,
                          seller: Seller | None = None) -> dict[str, Any]:
    """Everything a payment email shows, as JSON-safe values (amounts stay integers in minor units)."""
    seller = seller or session.get(Seller, account.seller_id)
    rows = queries.list_email_lines(session, payment.id)
    return {
        "payment_id": payment.id,
        "transaction_id": payment.stripe_charge_id or payment.stripe_payment_intent_id,
        "amount_minor": payment.amount_minor,
        "currency": payment.currency,
        "payment_kind": payment.kind,
        "status": payment.status,
        "scheduled_for": payment.scheduled_for.isoformat() if payment.scheduled_for else None,
        "method": {"kind": method.kind, "brand": method.brand, "bank_name": method.bank_name, "last4": method.last4},
        "account": {"number": account.number, "name": account.name},
        "seller": {"name": seller.name, "logo_url": seller.logo_url, "brand_color": seller.brand_color,
                   "support_email": seller.support_email, "support_phone": seller.support_phone},
        "invoices": [{"number": r.number, "site_name": r.site_name, "amount_minor": r.amount_minor,
                      "discount_minor": r.discount_minor} for r in rows],
        "failure_code": payment.failure_code,
        "failure_message": payment.failure_message,
        "short_reason": payment.short_reason,
        "short_comment": payment.short_comment,
        "refunded_minor": payment.refunded_minor,
        "note": payment.note,
    }
