"""Writing the ledger feed: money facts collected during a transaction, numbered and stored as it commits.

Each fact is kept on the session (emit) and written just before COMMIT, in the same transaction as the
change it describes: a rollback writes none. Numbers come from a per-seller counter row, locked in seller
order at that last moment and held only until the COMMIT, so a seller's sequence grows in commit order with
no gap a reader could see (tasks/domain/feed.py names the events; db/queries/ledger_events.py numbers them).
Saved payment methods are watched at flush, so every path that adds or moves one is covered.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from db.models import PaymentMethod
from db.queries import ledger_events as event_rows
from tasks.domain import feed as rules
from tasks.flows import messages

_PENDING = "remit_ledger_events"
# The fields of a payment every payment.* event carries.
PAYMENT_FIELDS = (
    "id",
    "account_id",
    "kind",
    "status",
    "amount_minor",
    "refunded_minor",
    "currency",
    "payment_method_id",
    "scheduled_for",
    "stripe_payment_intent_id",
    "stripe_charge_id",
    "failure_code",
)


def emit(
    session: Session,
    event_type: str,
    data: dict[str, Any],
    *,
    seller_id: int | None = None,
    account_id: int | None = None,
) -> None:
    """Write this event with the transaction; the seller is given, or found from the account at commit."""
    if seller_id is None and account_id is None:
        raise ValueError("a ledger event needs its seller or its account")
    plain = json.loads(json.dumps(data, default=_plain))
    session.info.setdefault(_PENDING, []).append((seller_id, account_id, event_type, plain))


def payment_data(payment: Any, **extra: Any) -> dict[str, Any]:
    """What a payment.* event says of the payment (a row, a view or a namespace of its columns)."""
    data = {name: getattr(payment, name, None) for name in PAYMENT_FIELDS}
    data["payment_id"] = data.pop("id")
    return {**data, **extra}


def accepted_data(payment: Any, plan: Any) -> dict[str, Any]:
    """payment.accepted: the payment as created, the invoices it holds and the credit it will leave."""
    lines = [
        {
            "invoice_id": line.invoice_id,
            "amount_minor": line.amount_minor,
            "discount_minor": line.discount_minor,
        }
        for line in plan.lines
    ]
    return payment_data(payment, invoices=lines, credit_minor=plan.credit_minor)


def external_data(receipt: Any, account: Any) -> dict[str, Any]:
    """external_payment.recorded: the ERP's reference, kind and amount, and what it paid of each invoice."""
    lines = [{"invoice_external_id": e, "invoice_id": i, "amount_minor": a} for e, i, a in receipt.lines]
    return {
        "external_payment_id": receipt.id,
        "account_id": account.id,
        "account_external_id": account.external_id,
        "reference": receipt.reference,
        "kind": receipt.kind,
        "amount_minor": receipt.amount_minor,
        "currency": receipt.currency,
        "invoices": lines,
    }


def _plain(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


@event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    if not session.info.get(_PENDING) and not session.new and not session.dirty:
        return
    session.flush()  # methods changed since the last flush are seen (after_flush) before numbering
    pending = session.info.pop(_PENDING, None)
    if pending:
        write_events(session, pending)


def write_events(session: Session, pending: list[tuple[int | None, int | None, str, dict]]) -> None:
    """Number the events per seller, store them, and nudge each seller's delivery after commit."""
    accounts = sorted({a for s, a, _, _ in pending if s is None})
    seller_of = event_rows.list_sellers_of_accounts(session, accounts) if accounts else {}
    facts = [(s if s is not None else seller_of[a], t, d) for s, a, t, d in pending]
    with_endpoint = event_rows.store_events(session, facts)
    # A seller without an endpoint is read through the pull API only: no delivery to nudge.
    messages.send_after_commit(session, "deliver_ledger_events", [(s,) for s in with_endpoint])


@event.listens_for(Session, "after_rollback")
def _forget_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


@event.listens_for(Session, "after_flush")
def _watch_methods(session: Session, flush_context: Any) -> None:
    for method in session.new:
        if isinstance(method, PaymentMethod):
            _method_event(session, method, None)
    for method in session.dirty:
        if isinstance(method, PaymentMethod):
            history = inspect(method).attrs.status.history
            if history.has_changes() and history.deleted:
                _method_event(session, method, history.deleted[0])


def _method_event(session: Session, method: PaymentMethod, before: str | None) -> None:
    event_type = rules.method_event(before, method.status)
    if event_type is None:
        return
    data = {
        "payment_method_id": method.id,
        "account_id": method.account_id,
        "kind": method.kind,
        "status": method.status,
        "previous_status": before,
        "last4": method.last4,
        "brand": method.brand,
        "bank_name": method.bank_name,
    }
    emit(session, event_type, data, account_id=method.account_id)
