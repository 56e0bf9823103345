"""Query functions, session first: find_* returns a row or None, get_* raises, lock_* locks."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import Row, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from db.models import Account, Allocation, Email, Invoice, Payment, PaymentEvent, PaymentMethod, Seller

# Writes nothing in the transaction reads back go to the tables directly: no ORM unit of work.
_EVENTS = PaymentEvent.__table__
_EMAILS = Email.__table__


class RowMissing(LookupError):
    """A row that must exist does not."""


def find_payment(session: Session, payment_id: int) -> Payment | None:
    return session.get(Payment, payment_id)


def get_payment(session: Session, payment_id: int) -> Payment:
    payment = find_payment(session, payment_id)
    if payment is None:
        raise RowMissing(f"payment {payment_id} does not exist")
    return payment


def lock_payment(session: Session, payment_id: int) -> Payment | None:
    """The payment row, locked FOR UPDATE and freshly loaded, with its method, account and seller."""
    return lock_payment_where(session, Payment.id == payment_id)


def lock_payment_where(session: Session, condition) -> Payment | None:
    """The one payment matching condition, locked and loaded with what its transitions and emails read.

    Its method, account and seller come in the same row (plain joins cost less than eager loaders)
    and are set as loaded relationships, so reading them issues no query.
    """
    row = session.execute(
        select(Payment, PaymentMethod, Account, Seller)
        .join(PaymentMethod, PaymentMethod.id == Payment.payment_method_id)
        .join(Account, Account.id == Payment.account_id).join(Seller, Seller.id == Account.seller_id)
        .where(condition).with_for_update(of=Payment).execution_options(populate_existing=True)
    ).first()
    if row is None:
        return None
    payment, method, account, seller = row
    set_committed_value(payment, "method", method)
    set_committed_value(payment, "account", account)
    set_committed_value(account, "seller", seller)
    return payment


def set_payment_columns(session: Session, payment: Payment, **values: Any) -> None:
    """Write these columns of a loaded payment with one UPDATE now, and mark them clean on the object.

    Cheaper than the unit of work for the few columns a transition changes; the object keeps showing
    the new values.
    """
    if not values:
        return
    payments = Payment.__table__
    session.connection().execute(update(payments).where(payments.c.id == payment.id).values(**values))
    for key, value in values.items():
        set_committed_value(payment, key, value)


def touch_payment_attempt(session: Session, payment_id: int, now: datetime) -> None:
    """Record that execute_payment is retrying the payment's current attempt now."""
    payments = Payment.__table__
    session.connection().execute(update(payments).where(payments.c.id == payment_id).values(last_attempt_at=now))


def find_payment_by_intent(session: Session, intent_id: str) -> Payment | None:
    return session.scalar(select(Payment).where(Payment.stripe_payment_intent_id == intent_id))


def lock_invoices(session: Session, invoice_ids: Sequence[int]) -> list[Invoice]:
    """Invoices locked FOR UPDATE in id order, so two payments never deadlock."""
    if not invoice_ids:
        return []
    statement = (
        select(Invoice).where(Invoice.id.in_(sorted(set(invoice_ids)))).order_by(Invoice.id)
        .with_for_update().execution_options(populate_existing=True)
    )
    return list(session.scalars(statement))


def lock_payment_invoices(session: Session, payment_id: int) -> list[Row]:
    """(id, number, voided) of the invoices the payment's allocations point at, locked FOR UPDATE in id order."""
    invoices, allocations = Invoice.__table__, Allocation.__table__
    return list(session.connection().execute(
        select(invoices.c.id, invoices.c.number, invoices.c.voided)
        .join(allocations, allocations.c.invoice_id == invoices.c.id).where(allocations.c.payment_id == payment_id)
        .order_by(invoices.c.id).with_for_update(of=invoices)
    ))


def lock_payment_for_charge(session: Session, payment_id: int) -> Row | None:
    """The payment row locked FOR UPDATE, as the columns a Stripe charge needs from it, its method and account."""
    payments, methods, accounts = Payment.__table__, PaymentMethod.__table__, Account.__table__
    return session.connection().execute(
        select(payments.c.id, payments.c.status, payments.c.attempt, payments.c.first_attempt_at,
               payments.c.amount_minor, payments.c.currency, payments.c.account_id, payments.c.scheduled_for,
               methods.c.status.label("method_status"), methods.c.kind.label("method_kind"),
               methods.c.stripe_payment_method_id, methods.c.mandate_accepted_at, methods.c.mandate_ip,
               methods.c.mandate_user_agent, accounts.c.stripe_customer_id, accounts.c.billing_email, accounts.c.name)
        .join(methods, methods.c.id == payments.c.payment_method_id)
        .join(accounts, accounts.c.id == payments.c.account_id)
        .where(payments.c.id == payment_id).with_for_update(of=payments)
    ).first()


def move_allocations(session: Session, payment_id: int, from_state: str, to_state: str) -> int:
    """Move this payment's allocations between states; return how many moved."""
    # On the session's connection: a plain UPDATE, without the ORM's bulk-update bookkeeping.
    result = session.connection().execute(
        update(Allocation.__table__).where(Allocation.__table__.c.payment_id == payment_id,
                                           Allocation.__table__.c.state == from_state)
        .values(state=to_state)
    )
    return result.rowcount


def add_payment_event(session: Session, payment: Payment, *, from_status: str | None, to_status: str, source: str,
                      applied: bool = True, detail: dict[str, Any] | None = None, at: datetime | None = None) -> None:
    """One line on the payment's timeline."""
    add_payment_event_row(session, payment.id, from_status=from_status, to_status=to_status, source=source,
                          applied=applied, detail=detail, at=at)


def add_payment_event_row(session: Session, payment_id: int, *, from_status: str | None, to_status: str,
                          source: str, applied: bool = True, detail: dict[str, Any] | None = None,
                          at: datetime | None = None) -> None:
    """One line on the timeline of a payment known by id, inserted at once (nothing reads it back)."""
    values = dict(payment_id=payment_id, from_status=from_status, to_status=to_status, applied=applied,
                  source=source, detail=detail or {})
    if at is not None:
        values["at"] = at
    session.connection().execute(_EVENTS.insert().values(values))


def add_email(session: Session, *, kind: str, recipient: str, context: dict[str, Any], dedupe_key: str,
              seller_id: int, account_id: int | None = None, payment_id: int | None = None) -> int | None:
    """Queue an outbox row; return its id, or None when one with this dedupe key exists."""
    statement = (
        insert(_EMAILS)
        .values(kind=kind, recipient=recipient, context=context, dedupe_key=dedupe_key, seller_id=seller_id,
                account_id=account_id, payment_id=payment_id, status="queued", attempts=0)
        .on_conflict_do_nothing(index_elements=[_EMAILS.c.dedupe_key])
        .returning(_EMAILS.c.id)
    )
    return session.connection().scalar(statement)


def mark_balance_stale(session: Session, account_id: int, now: datetime) -> bool:
    """Flag the account's figures for recomputation; True when this call set the flag."""
    accounts = Account.__table__
    return bool(session.connection().execute(
        update(accounts).where(accounts.c.id == account_id, accounts.c.balance_stale_since.is_(None))
        .values(balance_stale_since=now)
    ).rowcount)


def lock_account(session: Session, account_id: int) -> Account | None:
    """The account row locked FOR UPDATE: money requests of one account run one at a time."""
    row = session.execute(
        select(Account, Seller).join(Seller, Seller.id == Account.seller_id).where(Account.id == account_id)
        .with_for_update(of=Account).execution_options(populate_existing=True)
    ).first()
    if row is None:
        return None
    account, seller = row
    set_committed_value(account, "seller", seller)
    return account


def find_payment_by_key(session: Session, account_id: int, idempotency_key: str) -> Payment | None:
    """The account's payment made with this request key; the usual answer, none, costs no object loading."""
    payments = Payment.__table__
    payment_id = session.connection().scalar(
        select(payments.c.id).where(payments.c.account_id == account_id, payments.c.idempotency_key == idempotency_key)
    )
    return session.get(Payment, payment_id) if payment_id is not None else None


def invoices_with_children(session: Session, invoice_ids: Sequence[int], lock: bool) -> list[Row]:
    """The invoices and the children of any parent among them, as rows in id order; locked FOR UPDATE when asked."""
    invoices = Invoice.__table__
    statement = (
        select(invoices).where(or_(invoices.c.id.in_(invoice_ids), invoices.c.parent_id.in_(invoice_ids)))
        .order_by(invoices.c.id)
    )
    if lock:
        statement = statement.with_for_update()
    return list(session.connection().execute(statement))


def settled_by_invoice(session: Session, invoice_ids: Sequence[int]) -> dict[int, int]:
    """Money applied to each invoice, discounts taken included."""
    return {invoice_id: settled for invoice_id, (settled, _) in standing_of_invoices(session, invoice_ids).items()}


def standing_of_invoices(session: Session, invoice_ids: Sequence[int]) -> dict[int, tuple[int, str | None]]:
    """For each invoice with allocations: (money applied, discounts included; status of the payment holding it).

    One statement for both, since every payment request needs both; an invoice with neither is absent.
    """
    if not invoice_ids:
        return {}
    allocations, payments = Allocation.__table__, Payment.__table__
    rows = session.connection().execute(
        select(allocations.c.invoice_id,
               func.coalesce(func.sum(allocations.c.amount_minor + allocations.c.discount_minor)
                             .filter(allocations.c.state == "applied"), 0),
               func.max(payments.c.status).filter(allocations.c.state == "reserved"))
        .join(payments, payments.c.id == allocations.c.payment_id)
        .where(allocations.c.invoice_id.in_(invoice_ids), allocations.c.state.in_(("applied", "reserved")))
        .group_by(allocations.c.invoice_id)
    )
    return {invoice_id: (int(settled), held) for invoice_id, settled, held in rows}


def list_payable_invoices(session: Session, account_id: int) -> list[Invoice]:
    """Visible, unvoided invoices of the account that are not parents of other invoices."""
    parent = select(Invoice.parent_id).where(Invoice.parent_id.is_not(None), Invoice.account_id == account_id)
    return list(session.scalars(
        select(Invoice).where(Invoice.account_id == account_id, Invoice.voided.is_(False),
                              Invoice.customer_visible.is_(True), Invoice.id.not_in(parent))
        .order_by(Invoice.id)
    ))


def list_allocation_lines(session: Session, payment_id: int) -> list[tuple[int, str, int, int]]:
    """(invoice id, invoice number, amount, discount) of each allocation of the payment, in allocation order."""
    return [tuple(row) for row in session.execute(
        select(Allocation.invoice_id, Invoice.number, Allocation.amount_minor, Allocation.discount_minor)
        .join(Invoice, Invoice.id == Allocation.invoice_id).where(Allocation.payment_id == payment_id)
        .order_by(Allocation.id)
    )]
