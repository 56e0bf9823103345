"""Applying a payment transition: status, allocations, credits, timeline and the owed email, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from db.queries import accounts as account_rows
from db.queries import emails as email_rows
from db.queries import invoices as invoice_rows
from db.queries import payments as payment_rows
from db.models import Account, Payment, PaymentMethod, Seller
from tasks.flows import emails as outbox
from tasks.flows.balances import balance_moved, recompute_all_after_commit
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


@dataclass(frozen=True)
class Plan:
    """What a transition writes: decided once, written row by row (apply_transition) or set-wise (TransitionBatch)."""

    applied: bool
    source: PaymentStatus
    target: PaymentStatus
    columns: dict[str, Any]
    detail: dict[str, Any]
    allocation_move: tuple[str, str] | None = None
    credit_move: tuple[str, str] | None = None
    balance_moves: bool = False


def plan_transition(payment: Any, target: PaymentStatus, *, now: datetime, detail: dict[str, Any] | None = None,
                    values: dict[str, Any] | None = None) -> Plan:
    """The transition of this payment (a loaded row or a plain view of one) to target, as the table allows it.

    values are further payment columns to store either way; a refused transition stores only them and
    records the refusal on the timeline. The email it owes is queue_payment_email's to decide.
    """
    current = PaymentStatus(payment.status)
    if current == target or not can_transition(current, target):
        reason = "already in this state" if current == target else "transition not allowed"
        return Plan(False, current, target, dict(values or {}), {**(detail or {}), "ignored": reason})
    columns = {**(values or {}), "status": target, "updated_at": now}
    if target in FINAL_STATUSES or target == P.SUCCEEDED:
        columns["finished_at"] = now
    credit_move = CREDIT_MOVES.get(target)
    # Only custom amounts and deposits carry credit; skipping the others saves a statement per event.
    return Plan(True, current, target, columns, detail or {}, allocation_move=allocation_move(target),
                credit_move=credit_move if payment.kind != PaymentKind.INVOICES else None,
                balance_moves=not (current in IN_FLIGHT and target in IN_FLIGHT))


def apply_transition(session: Session, payment: Payment, target: PaymentStatus, *, source: str, now: datetime,
                     detail: dict[str, Any] | None = None, values: dict[str, Any] | None = None) -> bool:
    """Move the payment to target if the table allows it; otherwise record the refusal. True if applied.

    values are further payment columns to store either way (in the transition's own UPDATE when it applies).
    """
    plan = plan_transition(payment, target, now=now, detail=detail, values=values)
    if not plan.applied:
        payment_rows.set_payment_columns(session, payment, **plan.columns)
        payment_rows.add_payment_event(session, payment, from_status=plan.source, to_status=target, source=source,
                                  applied=False, detail=plan.detail, at=now)
        return False
    payment_rows.move_payment(session, payment.id, plan.columns, from_status=plan.source, to_status=target, source=source,
                         detail=plan.detail, at=now)
    payment_rows.show_columns(payment, plan.columns)
    if plan.allocation_move is not None:
        invoice_rows.move_allocations(session, payment.id, *plan.allocation_move)
    if plan.credit_move is not None:
        invoice_rows.move_credits(session, payment.id, *plan.credit_move)
    queue_payment_email(session, payment, plan.source, target)
    if plan.balance_moves:
        balance_moved(session, payment.account_id, now)
    return True


class TransitionBatch:
    """Transitions of many payments, decided one by one and written together, a few statements per batch.

    For webhook batches: the payments are plain views (db.payment_rows.lock_payment_views), each changed in
    place as its transitions are added, so a second event about the same payment sees the first.
    Writes only the payment columns PaymentIntent events set (BATCH_COLUMNS); flush() writes
    everything added since the last flush, in the order apply_transition writes it.
    """

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._reset()

    def _reset(self) -> None:
        self._columns: dict[int, dict[str, Any]] = {}
        self._lines: list[tuple[int, str | None, str, bool, str, dict[str, Any]]] = []
        self._moves: dict[int, tuple[tuple[str, str] | None, tuple[str, str] | None]] = {}
        self._emails: list[tuple[Any, str, dict[str, Any], str]] = []
        self._accounts: set[int] = set()

    def add(self, session: Session, payment: Any, target: PaymentStatus, *, source: str,
            detail: dict[str, Any] | None = None, values: dict[str, Any] | None = None) -> bool:
        """apply_transition, to be written at flush(); True if the transition applies."""
        plan = plan_transition(payment, target, now=self.now, detail=detail, values=values)
        if payment.id in self._moves and (plan.allocation_move or plan.credit_move):
            self.flush(session)  # two money moves of one payment: the first must be written before the second
        self.set_columns(payment, plan.columns)
        self._lines.append((payment.id, plan.source, target, plan.applied, source, plan.detail))
        if not plan.applied:
            return False
        if plan.allocation_move or plan.credit_move:
            self._moves[payment.id] = (plan.allocation_move, plan.credit_move)
        self.email(payment, plan.source, target)
        if plan.balance_moves:
            self._accounts.add(payment.account_id)
        return True

    def note(self, payment: Any, *, source: str, detail: dict[str, Any]) -> None:
        """record_event: a timeline line that changes nothing."""
        self._lines.append((payment.id, payment.status, payment.status, True, source, detail))

    def set_columns(self, payment: Any, values: dict[str, Any]) -> None:
        """Payment columns to write without a transition (BATCH_COLUMNS only)."""
        unknown = set(values) - payment_rows.BATCH_COLUMNS
        if unknown:
            raise ValueError(f"a transition batch cannot write payment columns {sorted(unknown)}")
        if values:
            self._columns.setdefault(payment.id, {}).update(values)
            vars(payment).update(values)

    def email(self, payment: Any, source: PaymentStatus, target: PaymentStatus, dedupe_suffix: str = "") -> None:
        """queue_payment_email: the email owed for source -> target, as the payment is now."""
        kind = email_for(payment.method.kind, payment.kind, source, target)
        if kind is not None:
            self._emails.append((payment, kind, dict(vars(payment)), dedupe_suffix))

    def balance_moved(self, account_id: int) -> None:
        """tasks.flows.balances.balance_moved, at flush()."""
        self._accounts.add(account_id)

    def flush(self, session: Session) -> None:
        """Write what was added: payments and timeline, allocations, credits, emails, then stale balances."""
        if self._lines:
            payment_rows.move_payments(session, self._columns, self._lines, at=self.now)
        allocation_moves = [(pid, *move) for pid, (move, _) in self._moves.items() if move is not None]
        credit_moves = [(pid, *move) for pid, (_, move) in self._moves.items() if move is not None]
        if allocation_moves:
            invoice_rows.move_allocations_of(session, allocation_moves)
        if credit_moves:
            invoice_rows.move_credits_of(session, credit_moves)
        if self._emails:
            self._queue_emails(session)
        if self._accounts:
            recompute_all_after_commit(session, account_rows.mark_balances_stale(session, sorted(self._accounts), self.now))
        self._reset()

    def _queue_emails(self, session: Session) -> None:
        lines = email_rows.list_email_lines_of(session, sorted({payment.id for payment, _, _, _ in self._emails}))
        rows = []
        for payment, kind, seen, suffix in self._emails:
            context = payment_email_context(session, SimpleNamespace(**seen), payment.account, payment.method,
                                            payment.seller, lines=lines.get(payment.id, []))
            rows.append(dict(kind=kind, recipient=payment.account.billing_email, context=context,
                             dedupe_key=f"{kind}:payment:{payment.id}{suffix}", seller_id=payment.account.seller_id,
                             account_id=payment.account_id, payment_id=payment.id))
        outbox.send_all_after_commit(session, email_rows.add_emails(session, rows))


def record_quiet_transition(session: Session, payment_id: int, current: PaymentStatus, target: PaymentStatus, *,
                            source: str, now: datetime, detail: dict[str, Any], **values: Any) -> None:
    """A transition that moves no money, owes no email and changes no balance figure, as one plain statement.

    For the hot path of a payment whose row the caller already holds locked and whose status it read
    there; values are further payment columns to set in the same UPDATE.
    """
    if not is_quiet(current, target):
        raise ValueError(f"{current} -> {target} is not a quiet transition; use apply_transition")
    payment_rows.move_payment(session, payment_id, {**values, "status": target, "updated_at": now}, from_status=current,
                         to_status=target, source=source, detail=detail, at=now, expected=current)


def is_quiet(current: PaymentStatus, target: PaymentStatus) -> bool:
    """True when apply_transition would only change the status and add a timeline line."""
    emails = {email_for(method, kind, current, target) for method in MethodKind for kind in PaymentKind}
    return (can_transition(current, target) and current in IN_FLIGHT and target in IN_FLIGHT
            and allocation_move(target) is None and target not in CREDIT_MOVES and emails == {None})


def record_event(session: Session, payment: Payment, *, source: str, now: datetime, detail: dict[str, Any]) -> None:
    """A timeline entry that changes no state (e.g. a recorded Stripe attempt)."""
    payment_rows.add_payment_event(session, payment, from_status=payment.status, to_status=payment.status,
                              source=source, detail=detail, at=now)


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


def payment_email_context(session: Session, payment: Any, account: Any, method: Any, seller: Any = None,
                          lines: list[Any] | None = None) -> dict[str, Any]:
    """Everything a payment email shows, as JSON-safe values (amounts stay integers in minor units).

    lines are the payment's invoice lines when the caller read them already (list_email_lines_of).
    """
    seller = seller or session.get(Seller, account.seller_id)
    rows = lines if lines is not None else email_rows.list_email_lines(session, payment.id)
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
        # Once a chargeback has taken every invoice back, what each line lost is not a refund: a refund
        # email for a disputed payment lists the invoices as paid, and its heading gives the amount.
        "invoices": [{"number": r.number, "site_name": r.site_name, "amount_minor": r.amount_minor,
                      "discount_minor": r.discount_minor,
                      "reversed_minor": 0 if payment.status == PaymentStatus.DISPUTED else r.reversed_minor}
                     for r in rows],
        "failure_code": payment.failure_code,
        "failure_message": payment.failure_message,
        "short_reason": payment.short_reason,
        "short_comment": payment.short_comment,
        "refunded_minor": payment.refunded_minor,
        "note": payment.note,
    }
