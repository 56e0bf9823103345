"""charge.refunded and refund.* events: give invoices back, keep refunded_minor and refund rows right.

Stripe's charge carries the cumulative `amount_refunded`; it only ever grows, so a duplicate or
late event with a smaller total changes nothing. Newly refunded money first takes back the
payment's unapplied credit (the overpaid part), then reverses applied allocations latest-due
first (see tasks.domain.events.take_back). A refund delivered after a dispute only records the
amount and owes its email: the dispute gave everything back already.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from db.queries import invoices as invoice_rows
from db.queries import payments as payment_rows
from tasks.domain.events import (
    AllocationSlice,
    CreditSlice,
    TakeBack,
    refund_target,
    take_back,
)
from tasks.domain.states import (
    REFUND_FINAL,
    AllocationState,
    CreditState,
    EmailKind,
    PaymentStatus,
)
from tasks.flows import feed, ledger
from tasks.handlers.common import PROCESSED, Handled, no_payment_yet, obj, source_of
from tasks.handlers.settle import charge_ids, settle_in_batch

P = PaymentStatus
REFUNDABLE = (P.SUCCEEDED, P.PARTIALLY_REFUNDED)
# {payment id: [(amount, Stripe refund id), latest first]}: payment_rows.list_live_refunds.
_LiveRefunds = dict[int, list[tuple[int, str]]]


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
    keys = [_charge_key(event) for event in events]
    found = _lock_payments(session, keys)
    batch = ledger.TransitionBatch(now)
    for event, (charge_id, intent_id, _), payment in zip(events, keys, found):
        if payment is not None:
            settle_in_batch(session, batch, payment, charge_id, intent_id, source=source_of(event))
    batch.flush(session)  # a payment settled just now has its allocations applied before they are split
    slices = _Slices.load(session, [payment for payment in found if payment is not None])
    # Read once for the batch: no refund row is written before its refund.* events, handled after these.
    refunds = payment_rows.list_live_refunds(session, [p.id for p in found if p is not None])
    handled = []
    for event, (charge_id, _, _), payment in zip(events, keys, found):
        if payment is None:
            handled.append(no_payment_yet(event, f"charge {charge_id}", now))
            continue
        _refund(session, batch, slices, refunds, payment, event)
        handled.append(PROCESSED)
    slices.write(session)
    batch.flush(session)
    return handled


def _charge_key(event: dict[str, Any]) -> tuple[str | None, str | None, None]:
    """(charge id, intent id) an event names, and no payment id: metadata is anyone's to write."""
    return (*charge_ids(obj(event)), None)


def _lock_payments(session: Session, keys: Sequence[tuple[Any, Any, int | None]]) -> list[Any]:
    """Each key's payment view (or None), all locked in one statement."""
    charges, intents, ids = zip(*keys) if keys else ((), (), ())
    views = payment_rows.lock_payment_views(
        session,
        charge_ids=_strings(charges),
        intent_ids=_strings(intents),
        payment_ids=[i for i in ids if i is not None],
    )
    by_charge, by_intent = _index(views, "stripe_charge_id"), _index(views, "stripe_payment_intent_id")
    by_id = {v.id: v for v in views}
    # As lock_payment_for_charge finds it: by charge id, then intent id; never by metadata.
    return [by_charge.get(c) or by_intent.get(i) or by_id.get(p) for c, i, p in keys]


def _strings(values: Sequence[Any]) -> list[str]:
    return [v for v in values if isinstance(v, str)]


def _index(views: Sequence[Any], column: str) -> dict[str, Any]:
    """Views by a Stripe id column, leaving out those without one."""
    return {getattr(v, column): v for v in views if getattr(v, column)}


def _refund(
    session: Session,
    batch: ledger.TransitionBatch,
    slices: _Slices,
    refunds: _LiveRefunds,
    payment: Any,
    event: dict[str, Any],
) -> None:
    source, charge = source_of(event), obj(event)
    total = min(int(charge.get("amount_refunded") or 0), payment.amount_minor)
    if payment.status == P.DISPUTED and total > payment.refunded_minor:
        payment.refund_email = _refund_email(refunds, payment, total - payment.refunded_minor)
        _refund_disputed(batch, payment, event, total)
        return
    if payment.status not in REFUNDABLE or total <= payment.refunded_minor:
        batch.note(
            payment,
            source=source,
            detail={
                "event_type": event["type"],
                "amount_refunded": total,
                "ignored": "no new refund for this payment",
            },
        )
        return
    split = slices.take_back(payment.id, total - payment.refunded_minor).allocations
    payment.refund_email = _refund_email(refunds, payment, total - payment.refunded_minor)
    previous, target = P(payment.status), refund_target(payment.amount_minor, total)
    batch.set_columns(payment, {"refunded_minor": total})
    detail = {
        "amount_refunded": total,
        "reversed_allocations": list(split.reverse_ids),
        "reduced_allocation": list(split.reduce) if split.reduce else None,
    }
    if previous == target:
        batch.note(payment, source=source, detail=detail)
        batch.balance_moved(payment.account_id)
    else:
        batch.add(session, payment, target, source=source, detail=detail)
        if target == P.REFUNDED:
            slices.all_reversed(payment.id)
    if previous == P.PARTIALLY_REFUNDED:
        # The first refund's email used the plain key; each later one is its own email.
        batch.email(payment, EmailKind.REFUND_ISSUED, dedupe_suffix=f":refunded:{total}")


def _refund_disputed(batch: ledger.TransitionBatch, payment: Any, event: dict[str, Any], total: int) -> None:
    """Refunded money reported on a disputed payment: the amount and the refund email, nothing else.

    Usually a refund made before the dispute and delivered after it; the dispute reversed the
    allocations and credit already, so this ends as the in-order delivery does.
    """
    # As in order: the first refund's email has the plain key, each later one its own.
    suffix = f":refunded:{total}" if payment.refunded_minor else ""
    batch.set_columns(payment, {"refunded_minor": total})
    batch.note(
        payment,
        source=source_of(event),
        detail={"event_type": event["type"], "amount_refunded": total, "after_dispute": True},
    )
    batch.email(payment, EmailKind.REFUND_ISSUED, dedupe_suffix=suffix)


def _refund_email(refunds: _LiveRefunds, payment: Any, refund_minor: int) -> dict[str, Any]:
    """What the refund email heads with: this refund's amount, and the Stripe id of the payment's latest
    live refund of that amount when its refund.* event has come (Stripe's charge.refunded names no refund;
    the two may arrive in either order). refunds: payment_rows.list_live_refunds of the batch."""
    refund_id = next((rid for amount, rid in refunds.get(payment.id, ()) if amount == refund_minor), None)
    return {"refund_minor": refund_minor, "refund_id": refund_id}


class _Slices:
    """The applied allocations and available credit of a batch's payments, changed in memory, written once."""

    def __init__(self, applied: dict[int, list[Any]], credits: dict[int, list[Any]]) -> None:
        self._applied = {
            pid: {r.id: AllocationSlice(r.id, r.due_on, r.amount_minor) for r in rows}
            for pid, rows in applied.items()
        }
        self._credits = {
            pid: {r.id: CreditSlice(r.id, r.amount_minor) for r in rows} for pid, rows in credits.items()
        }
        self._allocation_changes: dict[int, dict[str, Any]] = {}
        self.sellers: dict[int, int] = {}
        self._credit_changes: dict[int, dict[str, Any]] = {}

    @classmethod
    def load(cls, session: Session, payments: Sequence[Any]) -> _Slices:
        """The payments' applied allocations, and the available credit (locked) of those that can carry it."""
        ids = sorted({p.id for p in payments})
        # Any payment may carry credit: an invoice payment does once a won dispute found an invoice paid.
        applied = invoice_rows.list_applied_allocations_of(session, ids)
        slices = cls(applied, invoice_rows.lock_available_credits_of(session, ids))
        slices.sellers = {p.id: p.account.seller_id for p in payments}
        return slices

    def take_back(self, payment_id: int, refund_minor: int) -> TakeBack:
        """take_back over the payment's slices as earlier events of the batch left them.

        The changes are kept to write.
        """
        applied, credits = self._applied[payment_id], self._credits.get(payment_id, {})
        taken = take_back(list(credits.values()), list(applied.values()), refund_minor)
        _shrink(
            credits, self._credit_changes, taken.reverse_credit_ids, taken.reduce_credit, CreditState.REVERSED
        )
        _shrink(
            applied,
            self._allocation_changes,
            taken.allocations.reverse_ids,
            taken.allocations.reduce,
            AllocationState.REVERSED,
        )
        return taken

    def all_reversed(self, payment_id: int) -> None:
        """The payment's transition reverses every allocation still applied."""
        self._applied[payment_id].clear()

    def write(self, session: Session) -> None:
        """Write the changes, and a ledger event per invoice slice or credit a partial refund took back."""
        if self._allocation_changes:
            for row in invoice_rows.update_allocations(session, self._allocation_changes):
                self._emit(session, "allocation", row, invoice_id=row.invoice_id)
        if self._credit_changes:
            for row in invoice_rows.update_credits(session, self._credit_changes):
                self._emit(session, "credit", row, credit_id=row.id)

    def _emit(self, session: Session, kind: str, row: Any, **ids: int) -> None:
        taken = "reversed" if row.state == AllocationState.REVERSED else "reduced"
        data = {"payment_id": row.payment_id, **ids, "amount_minor": row.amount_minor, "state": row.state}
        feed.emit(session, f"{kind}.{taken}", data, seller_id=self.sellers[row.payment_id])


def _shrink(
    slices: dict[int, Any],
    changes: dict[int, dict[str, Any]],
    reverse_ids: Sequence[int],
    reduce: tuple[int, int] | None,
    reversed_state: str,
) -> None:
    """Apply a take-back to the slices in memory and to the changes to write."""
    for slice_id in reverse_ids:
        del slices[slice_id]
        changes.setdefault(slice_id, {})["state"] = reversed_state
    if reduce:
        slice_id, amount_minor = reduce
        slices[slice_id] = replace(slices[slice_id], amount_minor=amount_minor)
        changes.setdefault(slice_id, {})["amount_minor"] = amount_minor


def handle_refund_object(session: Session, event: dict[str, Any], now: datetime) -> Handled:
    """Keep a row per Stripe refund; a refund that failed or was canceled is flagged for ops."""
    refund = obj(event)
    charge_id, intent_id = charge_ids(refund)
    payment = payment_rows.lock_payment_for_charge(session, charge_id, intent_id)
    if payment is None:
        return no_payment_yet(event, f"charge {charge_id} of refund {refund.get('id')}", now)
    payment_rows.insert_refund(
        session,
        payment_id=payment.id,
        stripe_refund_id=refund["id"],
        amount_minor=refund["amount"],
        currency=refund["currency"],
        status=refund.get("status") or "pending",
        reason=refund.get("reason"),
    )
    if refund.get("status") in REFUND_FINAL:
        # The money never left; the invoices stay reopened until ops decide (re-refund or re-apply).
        ledger.record_event(
            session,
            payment,
            source=source_of(event),
            now=now,
            values={"needs_review": True},
            detail={
                "event_type": event["type"],
                "refund": refund["id"],
                f"refund_{refund['status']}": refund.get("failure_reason"),
            },
        )
    return PROCESSED
