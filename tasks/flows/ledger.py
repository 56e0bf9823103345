"""Writing payment transitions: status, timeline, allocations, credits, the owed email and stale balances.

tasks/domain/transitions.py decides what a transition does; TransitionBatch is the one way it is
written, a few set-wise statements whether it moves one payment (apply_transition, record_event:
a batch of one) or a webhook batch's hundred.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy.orm import Session

from db.queries import accounts as account_rows
from db.queries import credits as credit_rows
from db.queries import emails as email_rows
from db.queries import invoices as invoice_rows
from db.queries import payments as payment_rows
from tasks.domain import feed as facts
from tasks.domain.authentication import portal_link
from tasks.domain.dates import seller_today
from tasks.domain.states import EmailKind, PaymentKind, PaymentStatus
from tasks.domain.transitions import plan_transition
from tasks.flows import emails as outbox
from tasks.flows import feed
from tasks.flows.balances import recompute_all_after_commit
from workers.settings import get_settings

# What a payment email reads of the payment, kept as it was when the email was owed.
EMAIL_FIELDS = (
    "id",
    "stripe_charge_id",
    "stripe_payment_intent_id",
    "amount_minor",
    "currency",
    "kind",
    "status",
    "scheduled_for",
    "failure_code",
    "failure_message",
    "short_reason",
    "short_comment",
    "refunded_minor",
    "note",
    "created_at",
    "reference",
    "credit_used_minor",
    "last_look_changes",
)
# What a handler may put on a payment for the email it owes: the refund or reversal that email is about.
EMAIL_EXTRAS = ("refund_email", "reversal_email")
# Money given back on a payment that may have left credit others spent since (see flag_spent_credit).
_TAKING_BACK = frozenset({PaymentStatus.REFUNDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.DISPUTED})
_LEAVES_CREDIT = frozenset({PaymentKind.AMOUNT, PaymentKind.DEPOSIT})


class TransitionBatch:
    """Transitions of one or many payments, decided one by one and written together at flush().

    A payment is a view with its method, account and seller, as every lock of db.queries.payments
    returns it; each is changed in place as its transitions are added, so a second event about the same
    payment sees the first. Only BATCH_COLUMNS of a payment are written.
    """

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._reset()

    def _reset(self) -> None:
        self._columns: dict[int, dict[str, Any]] = {}
        self._lines: list[tuple[int, str | None, str, bool, str, dict[str, Any]]] = []
        self._moves: dict[int, tuple[tuple[str, str] | None, tuple[str, str] | None]] = {}
        self._spent: dict[int, tuple[str, str]] = {}
        self._origins: dict[int, Any] = {}
        self._emails: list[tuple[Any, EmailKind, SimpleNamespace, str]] = []
        self._accounts: set[int] = set()
        # Ledger events of the transitions (written before the moves they cause) and further facts about
        # the payments (written after them, e.g. a dispute's outcome).
        self._facts: list[tuple[int, str, dict[str, Any]]] = []
        self._late_facts: list[tuple[int, str, dict[str, Any]]] = []
        self._sellers: dict[int, int] = {}

    def add(
        self,
        session: Session,
        payment: Any,
        target: PaymentStatus,
        *,
        source: str,
        detail: dict[str, Any] | None = None,
        values: dict[str, Any] | None = None,
    ) -> bool:
        """Move the payment to target if the table allows it, else record the refusal; True if it applies.

        values are further payment columns to store either way.
        """
        plan = plan_transition(
            payment.status,
            payment.kind,
            payment.method.kind,
            target,
            now=self.now,
            detail=detail,
            values=values,
            leaves_credit=bool(getattr(payment, "last_look_changes", None)),
            nothing_charged=payment.amount_minor == 0,
        )
        moved_before = payment.id in self._moves or payment.id in self._spent
        if moved_before and (plan.allocation_move or plan.credit_move or plan.spent_move):
            self.flush(session)  # two money moves of one payment: the first must be written before the second
        if plan.applied and getattr(payment, "credit_used_minor", 0) and plan.spent_move:
            self._spent[payment.id] = plan.spent_move
        if plan.applied and target in _TAKING_BACK and payment.kind in _LEAVES_CREDIT:
            self._origins[payment.id] = payment
        self.set_columns(payment, plan.columns)
        self._lines.append((payment.id, plan.source, target, plan.applied, source, plan.detail))
        if not plan.applied:
            return False
        self._sellers[payment.id] = payment.account.seller_id
        fact = facts.payment_event(plan.source, target)
        if fact is not None:
            self._facts.append(
                (payment.account.seller_id, fact, feed.payment_data(payment, previous_status=plan.source))
            )
        if plan.allocation_move or plan.credit_move:
            self._moves[payment.id] = (plan.allocation_move, plan.credit_move)
        if plan.email is not None:
            self.email(payment, plan.email)
        if plan.balance_moves:
            self._accounts.add(payment.account_id)
        return True

    def fact(self, payment: Any, event_type: str, **extra: Any) -> None:
        """A ledger event about the payment, showing it as it is now, written at flush() after the
        transitions and moves added before it."""
        self._late_facts.append((payment.account.seller_id, event_type, feed.payment_data(payment, **extra)))

    def note(self, payment: Any, *, source: str, detail: dict[str, Any]) -> None:
        """A timeline line that changes nothing."""
        self._lines.append((payment.id, payment.status, payment.status, True, source, detail))

    def set_columns(self, payment: Any, values: dict[str, Any]) -> None:
        """Payment columns to write (BATCH_COLUMNS only); the payment shows them at once."""
        unknown = set(values) - payment_rows.BATCH_COLUMNS
        if unknown:
            raise ValueError(f"a transition batch cannot write payment columns {sorted(unknown)}")
        if not values:
            return
        self._columns.setdefault(payment.id, {}).update(values)
        vars(payment).update(values)

    def email(self, payment: Any, kind: EmailKind, dedupe_suffix: str = "") -> None:
        """The email of this kind, owed once per payment (and suffix), showing the payment as it is now."""
        snapshot = SimpleNamespace(
            **{name: getattr(payment, name) for name in EMAIL_FIELDS},
            **{name: getattr(payment, name, None) for name in EMAIL_EXTRAS},
        )
        self._emails.append((payment, kind, snapshot, dedupe_suffix))

    def balance_moved(self, account_id: int) -> None:
        """The account's figures changed: mark it stale and nudge a recompute, at flush()."""
        self._accounts.add(account_id)

    def flush(self, session: Session) -> None:
        """Write what was added: payments and timeline, allocations, credits, emails, then stale balances."""
        if self._origins:
            self._flag_spent_credit(session)
        if self._lines or self._columns:
            payment_rows.move_payments(session, self._columns, self._lines, at=self.now)
        allocation_moves = [(pid, *move) for pid, (move, _) in self._moves.items() if move is not None]
        credit_moves = [(pid, *move) for pid, (_, move) in self._moves.items() if move is not None]
        for seller_id, event_type, data in self._facts:
            feed.emit(session, event_type, data, seller_id=seller_id)
        if allocation_moves:
            self._emit_moves(
                session, invoice_rows.move_allocations_of(session, allocation_moves), facts.allocation_event
            )
        if credit_moves:
            self._emit_moves(session, invoice_rows.move_credits_of(session, credit_moves), facts.credit_event)
        if self._spent:
            spent = credit_rows.move_spent_credits_of(
                session, [(pid, *move) for pid, move in self._spent.items()]
            )
            self._emit_moves(session, spent, facts.spent_credit_event)
        for seller_id, event_type, data in self._late_facts:
            feed.emit(session, event_type, data, seller_id=seller_id)
        if self._emails:
            self._queue_emails(session)
        if self._accounts:
            recompute_all_after_commit(
                session, account_rows.mark_balances_stale(session, sorted(self._accounts), self.now)
            )
        self._reset()

    def _emit_moves(
        self, session: Session, rows: list[Any], event_of: Callable[[str, str], str | None]
    ) -> None:
        """An allocation.* event per invoice slice moved, a credit.* event per credit moved."""
        for row in rows:
            event_type = event_of(row.from_state, row.to_state)
            if event_type is not None:
                feed.emit(session, event_type, dict(row._mapping), seller_id=self._sellers[row.payment_id])

    def _flag_spent_credit(self, session: Session) -> None:
        """The rule for a refund or dispute of a payment whose credit was spent: what other payments spent
        stays on the invoices it paid; the payment is flagged for ops with the amount on its timeline. A
        partial refund is flagged only once it reaches beyond what was not spent."""
        spent = credit_rows.sum_spent_by_origin(session, sorted(self._origins))
        for payment_id, amount in spent.items():
            payment = self._origins[payment_id]
            taken = payment.refunded_minor if payment.status == PaymentStatus.PARTIALLY_REFUNDED else None
            if taken is not None and taken <= payment.amount_minor - amount:
                continue  # a partial refund the unspent part covered
            self.set_columns(payment, {"needs_review": True})
            detail = {"needs_review": "credit_already_spent", "spent_credit_minor": amount}
            self.note(payment, source="ledger", detail=detail)

    def _queue_emails(self, session: Session) -> None:
        lines = email_rows.list_email_lines_of(
            session, sorted({payment.id for payment, _, _, _ in self._emails})
        )
        rows = []
        for payment, kind, seen, suffix in self._emails:
            method, account, seller = payment.method, payment.account, payment.seller
            context = payment_email_context(seen, account, method, seller, lines.get(payment.id, []))
            rows.append(
                dict(
                    kind=kind,
                    recipient=account.billing_email,
                    context=context,
                    dedupe_key=f"{kind}:payment:{payment.id}{suffix}",
                    seller_id=account.seller_id,
                    account_id=payment.account_id,
                    payment_id=payment.id,
                )
            )
        outbox.queue_emails(session, rows)


def apply_transition(
    session: Session,
    payment: Any,
    target: PaymentStatus,
    *,
    source: str,
    now: datetime,
    detail: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
) -> bool:
    """One payment's transition, written now: a batch of one. True if the table allowed it."""
    batch = TransitionBatch(now)
    applied = batch.add(session, payment, target, source=source, detail=detail, values=values)
    batch.flush(session)
    return applied


def record_event(
    session: Session,
    payment: Any,
    *,
    source: str,
    now: datetime,
    detail: dict[str, Any],
    values: dict[str, Any] | None = None,
) -> None:
    """A timeline line that moves no status (e.g. a recorded Stripe attempt), with any columns it sets."""
    batch = TransitionBatch(now)
    batch.set_columns(payment, values or {})
    batch.note(payment, source=source, detail=detail)
    batch.flush(session)


def update_payment(session: Session, payment: Any, values: dict[str, Any], *, now: datetime) -> None:
    """Payment columns that no transition or timeline line carries (e.g. when an attempt was retried)."""
    batch = TransitionBatch(now)
    batch.set_columns(payment, values)
    batch.flush(session)


def queue_payment_email(session: Session, payment: Any, kind: EmailKind, now: datetime) -> None:
    """Owe one payment email that no transition owes (a scheduled payment's confirmation)."""
    batch = TransitionBatch(now)
    batch.email(payment, kind)
    batch.flush(session)


def payment_email_context(
    payment: Any, account: Any, method: Any, seller: Any, lines: list[Any]
) -> dict[str, Any]:
    """Everything a payment email shows, as JSON-safe values (amounts stay integers in minor units).

    lines are the payment's invoice lines (db.queries.emails.list_email_lines_of).
    """
    return {
        "payment_id": payment.id,
        "reference": getattr(payment, "reference", None),
        "payment_date": _payment_date(payment, seller),
        "transaction_id": payment.stripe_charge_id or payment.stripe_payment_intent_id,
        "transaction_label": "Stripe charge ID" if payment.stripe_charge_id else "Stripe payment ID",
        "amount_minor": payment.amount_minor,
        "currency": payment.currency,
        "payment_kind": payment.kind,
        "status": payment.status,
        "scheduled_for": payment.scheduled_for.isoformat() if payment.scheduled_for else None,
        **outbox.party_context(method, account, seller),
        # Once a chargeback has taken every invoice back, what each line lost is not a refund: a refund
        # email for a disputed payment lists the invoices as paid, and its heading gives the amount.
        "invoices": [
            {
                "number": r.number,
                "site_name": r.site_name,
                "amount_minor": r.amount_minor,
                "discount_minor": r.discount_minor,
                "reversed_minor": 0 if payment.status == PaymentStatus.DISPUTED else r.reversed_minor,
            }
            for r in lines
        ],
        "failure_code": payment.failure_code,
        "failure_message": payment.failure_message,
        "short_reason": payment.short_reason,
        "short_comment": payment.short_comment,
        "refunded_minor": payment.refunded_minor,
        "note": payment.note,
        # Where the portal finishes this payment (the seller's page, else the deployment's), or None.
        "action_url": portal_link(
            getattr(seller, "portal_payment_url", None) or get_settings().portal_payment_url, payment.id
        ),
        **(getattr(payment, "refund_email", None) or {}),
        **(getattr(payment, "reversal_email", None) or {}),
        # Paid from the account's credit beside what was charged; what the last look changed.
        "credit_used_minor": getattr(payment, "credit_used_minor", 0) or 0,
        "changes": list(getattr(payment, "last_look_changes", None) or []),
    }


def _payment_date(payment: Any, seller: Any) -> str | None:
    """The day the money moves at the seller: a scheduled payment's date, else the day it was made."""
    if payment.scheduled_for:
        return payment.scheduled_for.isoformat()
    made = getattr(payment, "created_at", None)
    return seller_today(seller, made).isoformat() if made else None
