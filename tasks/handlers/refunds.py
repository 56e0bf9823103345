"""charge.refunded and refund.* events: give invoices back, keep refunded_minor and refund rows right.

Stripe's charge carries the cumulative `amount_refunded`; it only ever grows, so a duplicate or
late event with a smaller total changes nothing. Newly refunded money first takes back the
payment's unapplied credit (the overpaid part), then reverses applied allocations latest-due
first (see tasks.domain.events.split_refund). A refund delivered after a dispute only records the
amount and owes its email: the dispute gave everything back already.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from sqlalchemy.orm import Session

from db.queries import invoices as invoice_rows
from db.queries import payments as payment_rows
from tasks.flows import ledger
from tasks.domain.events import (
    AllocationSlice, payment_id_from_metadata, refund_target, split_refund,
)
from tasks.domain.states import REFUND_FINAL, AllocationState, CreditState, PaymentKind, PaymentStatus
from tasks.handlers.common import PROCESSED, Handled, ignored, obj, source_of
from tasks.handlers.settle import charge_ids, settle_in_batch

P = PaymentStatus
REFUNDABLE = (P.SUCCEEDED, P.PARTIALLY_REFUNDED)


def handle_batch(session: Session, events: Sequence[dict[str, Any]], now: datetime) -> list[Handled]:
    """charge.refunded events together (one lock, a few set-wise writes); refund.* events one by one."""
    refunded = [n for n, event in enumerate(events) if event["type"] == "charge.refunded"]
    handled: list[Handled | None] = [None] * len(events)
    if refunded:
        for n, outcome in zip(refunded, _charges_refunded(session, [events[n] for n in refunded], now)):
            handled[n] = outcome
    for n, event in enumerate(events):
        if handled[n] is None:
            handled[n] = handle_refund_object(session, event, now)
    return handled  # type: ignore[return-value]


def _charges_refunded(session: Session, events: Sequence[dict[str, Any]], now: datetime) -> list[Handled]:
    """Reverse what the newly refunded money paid for and move each payment to (partially_)refunded."""
    keys = [(*charge_ids(obj(event)), payment_id_from_metadata(obj(event).get("metadata"))) for event in events]
    views = payment_rows.lock_payment_views(session, charge_ids=[k[0] for k in keys if isinstance(k[0], str)],
                                       intent_ids=[k[1] for k in keys if isinstance(k[1], str)],
                                       payment_ids=[k[2] for k in keys if k[2] is not None])
    by_charge = {v.stripe_charge_id: v for v in views if v.stripe_charge_id}
    by_intent = {v.stripe_payment_intent_id: v for v in views if v.stripe_payment_intent_id}
    by_id = {v.id: v for v in views}
    batch = ledger.TransitionBatch(now)
    found = []
    for event, (charge_id, intent_id, payment_id) in zip(events, keys):
        # As lock_payment_for_charge finds it: by charge id, then intent id, then our id in the metadata.
        view = by_charge.get(charge_id) or by_intent.get(intent_id) or by_id.get(payment_id)
        if view is not None:
            settle_in_batch(session, batch, view, charge_id, intent_id, source=source_of(event))
        found.append(view)
    batch.flush(session)  # a payment settled just now has its allocations applied before they are split
    ids = sorted({v.id for v in found if v is not None})
    with_credit = [i for i in ids if by_id[i].kind != PaymentKind.INVOICES]  # invoice payments carry no credit
    slices = _Slices(invoice_rows.list_applied_allocations_of(session, ids),
                     invoice_rows.lock_available_credits_of(session, with_credit))
    handled = []
    for event, (charge_id, _, _), view in zip(events, keys, found):
        if view is None:
            handled.append(ignored(f"no payment for charge {charge_id}"))
            continue
        _refund(session, batch, slices, view, event)
        handled.append(PROCESSED)
    slices.write(session)
    batch.flush(session)
    return handled


def _refund(session: Session, batch: ledger.TransitionBatch, slices: "_Slices", payment: Any,
            event: dict[str, Any]) -> None:
    source, charge = source_of(event), obj(event)
    total = min(int(charge.get("amount_refunded") or 0), payment.amount_minor)
    if payment.status == P.DISPUTED and total > payment.refunded_minor:
        _refund_disputed(batch, payment, event, total)
        return
    if payment.status not in REFUNDABLE or total <= payment.refunded_minor:
        batch.note(payment, source=source, detail={"event_type": event["type"], "amount_refunded": total,
                                                   "ignored": "no new refund for this payment"})
        return
    beyond_credit = slices.take_back_credit(payment.id, total - payment.refunded_minor)
    split = slices.reverse_allocations(payment.id, beyond_credit)
    previous, target = P(payment.status), refund_target(payment.amount_minor, total)
    batch.set_columns(payment, {"refunded_minor": total})
    detail = {"amount_refunded": total, "reversed_allocations": list(split.reverse_ids),
              "reduced_allocation": list(split.reduce) if split.reduce else None}
    if previous == target:
        batch.note(payment, source=source, detail=detail)
        batch.balance_moved(payment.account_id)
    else:
        batch.add(session, payment, target, source=source, detail=detail)
        if target == P.REFUNDED:
            slices.all_reversed(payment.id)
    if previous == P.PARTIALLY_REFUNDED:
        # The first refund's email used the plain key; each later one is its own email.
        batch.email(payment, previous, target, dedupe_suffix=f":refunded:{total}")


def _refund_disputed(batch: ledger.TransitionBatch, payment: Any, event: dict[str, Any], total: int) -> None:
    """Refunded money reported on a disputed payment: the amount and the refund email, nothing else.

    Usually a refund made before the dispute and delivered after it; the dispute reversed the
    allocations and credit already, so this ends as the in-order delivery does.
    """
    # As in order: the first refund's email has the plain key, each later one its own.
    suffix = f":refunded:{total}" if payment.refunded_minor else ""
    batch.set_columns(payment, {"refunded_minor": total})
    batch.note(payment, source=source_of(event), detail={"event_type": event["type"], "amount_refunded": total,
                                                         "after_dispute": True})
    batch.email(payment, P.DISPUTED, refund_target(payment.amount_minor, total), dedupe_suffix=suffix)


class _Slices:
    """The applied allocations and available credit of a batch's payments, changed in memory, written once."""

    def __init__(self, applied: dict[int, list[Any]], credits: dict[int, list[Any]]) -> None:
        self._applied = {pid: {r.id: [r.due_on, r.amount_minor] for r in rows} for pid, rows in applied.items()}
        self._credits = {pid: {r.id: r.amount_minor for r in rows} for pid, rows in credits.items()}
        self._allocation_changes: dict[int, dict[str, Any]] = {}
        self._credit_changes: dict[int, dict[str, Any]] = {}

    def take_back_credit(self, payment_id: int, refund_minor: int) -> int:
        """Reduce the payment's available credit by the refund, oldest first; return what is left to refund."""
        remaining, credits = refund_minor, self._credits.get(payment_id, {})
        for credit_id in sorted(credits):
            if remaining <= 0:
                break
            if remaining >= credits[credit_id]:
                remaining -= credits.pop(credit_id)
                self._credit_changes.setdefault(credit_id, {})["state"] = CreditState.REVERSED
            else:
                credits[credit_id] -= remaining
                self._credit_changes.setdefault(credit_id, {})["amount_minor"] = credits[credit_id]
                remaining = 0
        return remaining

    def reverse_allocations(self, payment_id: int, refund_minor: int):
        """split_refund over the payment's applied allocations, latest-due first."""
        applied = self._applied[payment_id]
        split = split_refund([AllocationSlice(aid, due, amount) for aid, (due, amount) in applied.items()],
                             refund_minor)
        for allocation_id in split.reverse_ids:
            del applied[allocation_id]
            self._allocation_changes.setdefault(allocation_id, {})["state"] = AllocationState.REVERSED
        if split.reduce:
            applied[split.reduce[0]][1] = split.reduce[1]
            self._allocation_changes.setdefault(split.reduce[0], {})["amount_minor"] = split.reduce[1]
        return split

    def all_reversed(self, payment_id: int) -> None:
        """The payment's transition reverses every allocation still applied."""
        self._applied[payment_id].clear()

    def write(self, session: Session) -> None:
        if self._allocation_changes:
            invoice_rows.update_allocations(session, self._allocation_changes)
        if self._credit_changes:
            invoice_rows.update_credits(session, self._credit_changes)


def handle_refund_object(session: Session, event: dict[str, Any], now: datetime) -> Handled:
    """Keep a row per Stripe refund; a refund that failed or was canceled is flagged for ops."""
    refund = obj(event)
    charge_id, intent_id = charge_ids(refund)
    payment = payment_rows.lock_payment_for_charge(session, charge_id, intent_id, payment_id_from_metadata(refund.get("metadata")))
    if payment is None:
        return ignored(f"no payment for refund {refund.get('id')}")
    payment_rows.insert_refund(session, payment_id=payment.id, stripe_refund_id=refund["id"], amount_minor=refund["amount"],
                  currency=refund["currency"], status=refund.get("status") or "pending", reason=refund.get("reason"))
    if refund.get("status") in REFUND_FINAL:
        # The money never left; the invoices stay reopened until ops decide (re-refund or re-apply).
        payment.needs_review = True
        ledger.record_event(session, payment, source=source_of(event), now=now,
                            detail={"event_type": event["type"], "refund": refund["id"],
                                    f"refund_{refund['status']}": refund.get("failure_reason")})
    return PROCESSED
