"""Query functions, session first: find_* returns a row or None, get_* raises, lock_* locks."""

from __future__ import annotations

import json
from datetime import date, datetime
from functools import lru_cache
from types import SimpleNamespace
from typing import Any, Sequence

from sqlalchemy import (
    BigInteger, Row, Text, any_, bindparam, case, func, literal, null, or_, select, text, true, update,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from db.models import Account, Allocation, Credit, Email, Invoice, Payment, PaymentEvent, PaymentMethod, Seller

# Writes nothing in the transaction reads back go to the tables directly: no ORM unit of work.
_EVENTS = PaymentEvent.__table__
_EMAILS = Email.__table__
_PAYMENTS, _METHODS, _ACCOUNTS = Payment.__table__, PaymentMethod.__table__, Account.__table__
_INVOICES, _ALLOCATIONS = Invoice.__table__, Allocation.__table__
_IDS = ARRAY(BigInteger)

# The statements of the payment and webhook hot paths are built once, with their values bound at
# execution: building a statement per call (and keying it for the compiled cache) cost more than
# running it. Lists go in as one array parameter, so the SQL text, and the server's prepared
# statement, is the same for any number of ids.


def _lock_payment_by(column: str):
    return (
        select(Payment, PaymentMethod, Account, Seller)
        .join(PaymentMethod, PaymentMethod.id == Payment.payment_method_id)
        .join(Account, Account.id == Payment.account_id).join(Seller, Seller.id == Account.seller_id)
        .where(getattr(Payment, column) == bindparam("value")).with_for_update(of=Payment)
        .execution_options(populate_existing=True)
    )


_LOCK_PAYMENT_BY = {column: _lock_payment_by(column)
                    for column in ("id", "stripe_payment_intent_id", "stripe_charge_id")}
_UPDATE_PAYMENT = update(_PAYMENTS).where(_PAYMENTS.c.id == bindparam("_id"))
_LOCK_PAYMENT_INVOICES = (
    select(_INVOICES.c.id, _INVOICES.c.number, _INVOICES.c.voided)
    .join(_ALLOCATIONS, _ALLOCATIONS.c.invoice_id == _INVOICES.c.id)
    .where(_ALLOCATIONS.c.payment_id == bindparam("payment_id"))
    .order_by(_INVOICES.c.id).with_for_update(of=_INVOICES)
)
_LOCK_TO_CHARGE = (
    select(_PAYMENTS.c.id, _PAYMENTS.c.status, _PAYMENTS.c.attempt, _PAYMENTS.c.first_attempt_at,
           _PAYMENTS.c.needs_review, _PAYMENTS.c.amount_minor, _PAYMENTS.c.currency, _PAYMENTS.c.account_id, _PAYMENTS.c.scheduled_for,
           _METHODS.c.status.label("method_status"), _METHODS.c.kind.label("method_kind"),
           _METHODS.c.stripe_payment_method_id, _METHODS.c.mandate_accepted_at, _METHODS.c.mandate_ip,
           _METHODS.c.mandate_user_agent, _ACCOUNTS.c.stripe_customer_id, _ACCOUNTS.c.billing_email,
           _ACCOUNTS.c.name)
    .join(_METHODS, _METHODS.c.id == _PAYMENTS.c.payment_method_id)
    .join(_ACCOUNTS, _ACCOUNTS.c.id == _PAYMENTS.c.account_id)
    .where(_PAYMENTS.c.id == bindparam("payment_id")).with_for_update(of=_PAYMENTS)
)
_MOVE_ALLOCATIONS = (
    update(_ALLOCATIONS).where(_ALLOCATIONS.c.payment_id == bindparam("_payment_id"),
                               _ALLOCATIONS.c.state == bindparam("_from")).values(state=bindparam("_to"))
)
_CREDITS = Credit.__table__
_MOVE_CREDITS = (
    update(_CREDITS).where(_CREDITS.c.payment_id == bindparam("_payment_id"), _CREDITS.c.state == bindparam("_from"))
    .values(state=bindparam("_to"))
)
_INSERT_EVENT = _EVENTS.insert()
_INSERT_EMAIL = (
    insert(_EMAILS).on_conflict_do_nothing(index_elements=[_EMAILS.c.dedupe_key]).returning(_EMAILS.c.id)
)
_LOCK_ACCOUNT = (
    select(Account, Seller).join(Seller, Seller.id == Account.seller_id).where(Account.id == bindparam("id"))
    .with_for_update(of=Account).execution_options(populate_existing=True)
)
_SELLERS = Seller.__table__
_LOCK_ACCOUNT_ROW = (
    select(_ACCOUNTS, *[column.label(f"seller__{column.name}") for column in _SELLERS.c])
    .join(_SELLERS, _SELLERS.c.id == _ACCOUNTS.c.seller_id).where(_ACCOUNTS.c.id == bindparam("id"))
    .with_for_update(of=_ACCOUNTS)
)
_PAYMENT_ID_BY_KEY = select(_PAYMENTS.c.id).where(_PAYMENTS.c.account_id == bindparam("account_id"),
                                                   _PAYMENTS.c.idempotency_key == bindparam("key"))
_INVOICES_WITH_CHILDREN = (
    select(_INVOICES).where(or_(_INVOICES.c.id == any_(bindparam("ids", type_=_IDS)),
                                _INVOICES.c.parent_id == any_(bindparam("ids", type_=_IDS))))
    .order_by(_INVOICES.c.id)
)
_LOCK_INVOICES_WITH_CHILDREN = _INVOICES_WITH_CHILDREN.with_for_update()
_STANDING = (
    select(_ALLOCATIONS.c.invoice_id,
           func.coalesce(func.sum(_ALLOCATIONS.c.amount_minor + _ALLOCATIONS.c.discount_minor)
                         .filter(_ALLOCATIONS.c.state == "applied"), 0),
           func.max(_PAYMENTS.c.status).filter(_ALLOCATIONS.c.state == "reserved"))
    .join(_PAYMENTS, _PAYMENTS.c.id == _ALLOCATIONS.c.payment_id)
    .where(_ALLOCATIONS.c.invoice_id == any_(bindparam("ids", type_=_IDS)),
           _ALLOCATIONS.c.state.in_(("applied", "reserved")))
    .group_by(_ALLOCATIONS.c.invoice_id)
)


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
    return lock_payment_by(session, "id", payment_id)


def lock_payment_by(session: Session, column: str, value: object) -> Payment | None:
    """The payment whose column (id, stripe_payment_intent_id or stripe_charge_id) is value, locked and
    loaded with what its transitions and emails read.

    Its method, account and seller come in the same row (plain joins cost less than eager loaders)
    and are set as loaded relationships, so reading them issues no query.
    """
    row = session.execute(_LOCK_PAYMENT_BY[column], {"value": value}).first()
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
    session.connection().execute(_UPDATE_PAYMENT, {"_id": payment.id, **values})
    show_columns(payment, values)


def show_columns(payment: Payment, values: dict[str, Any]) -> None:
    """Make a loaded payment show columns a statement just wrote, without the unit of work writing them again."""
    for key, value in values.items():
        set_committed_value(payment, key, value)


def touch_payment_attempt(session: Session, payment_id: int, now: datetime) -> None:
    """Record that execute_payment is retrying the payment's current attempt now."""
    session.connection().execute(_UPDATE_PAYMENT, {"_id": payment_id, "last_attempt_at": now})


def move_payment(session: Session, payment_id: int, values: dict[str, Any], *, from_status: str, to_status: str,
                 source: str, detail: dict[str, Any], at: datetime, expected: str | None = None) -> bool:
    """Set these payment columns and add the timeline line that records it, in one statement.

    With expected, only while the payment's status is still expected; returns whether it was set (the
    line is written only then).
    """
    parameters = {f"v_{name}": value for name, value in values.items()}
    parameters.update(_id=payment_id, _status=expected, e_from=from_status, e_to=to_status, e_source=source,
                      e_detail=detail, e_at=at)
    statement = _move_payment_statement(tuple(sorted(values)), expected is not None)
    return session.connection().execute(statement, parameters).rowcount == 1


@lru_cache(maxsize=64)
def _move_payment_statement(columns: tuple[str, ...], guarded: bool):
    """UPDATE payments ... RETURNING id, feeding INSERT INTO payment_events: built once per column set."""
    condition = [_PAYMENTS.c.id == bindparam("_id")]
    if guarded:
        condition.append(_PAYMENTS.c.status == bindparam("_status"))
    moved = (
        update(_PAYMENTS).where(*condition).values({name: bindparam(f"v_{name}") for name in columns})
        .returning(_PAYMENTS.c.id).cte("moved")
    )
    line = select(moved.c.id, bindparam("e_from", type_=_EVENTS.c.from_status.type),
                  bindparam("e_to", type_=_EVENTS.c.to_status.type), true(),
                  bindparam("e_source", type_=_EVENTS.c.source.type),
                  bindparam("e_detail", type_=_EVENTS.c.detail.type), bindparam("e_at", type_=_EVENTS.c.at.type))
    return insert(_EVENTS).from_select(["payment_id", "from_status", "to_status", "applied", "source", "detail", "at"],
                                       line)


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
    return list(session.connection().execute(_LOCK_PAYMENT_INVOICES, {"payment_id": payment_id}))


def lock_payment_to_charge(session: Session, payment_id: int) -> Row | None:
    """The payment row locked FOR UPDATE, as the columns a Stripe charge needs from it, its method and account."""
    return session.connection().execute(_LOCK_TO_CHARGE, {"payment_id": payment_id}).first()


def move_allocations(session: Session, payment_id: int, from_state: str, to_state: str) -> int:
    """Move this payment's allocations between states; return how many moved."""
    # On the session's connection: a plain UPDATE, without the ORM's bulk-update bookkeeping.
    result = session.connection().execute(_MOVE_ALLOCATIONS,
                                          {"_payment_id": payment_id, "_from": from_state, "_to": to_state})
    return result.rowcount


def move_credits(session: Session, payment_id: int, from_state: str, to_state: str) -> int:
    """Move this payment's unapplied credit between states; return how many rows moved."""
    result = session.connection().execute(_MOVE_CREDITS,
                                          {"_payment_id": payment_id, "_from": from_state, "_to": to_state})
    return result.rowcount


def add_payment_event(session: Session, payment: Payment, *, from_status: str | None, to_status: str, source: str,
                      applied: bool = True, detail: dict[str, Any] | None = None, at: datetime | None = None) -> None:
    """One line on the payment's timeline, inserted at once (nothing reads it back in the transaction)."""
    values = dict(payment_id=payment.id, from_status=from_status, to_status=to_status, applied=applied,
                  source=source, detail=detail or {})
    if at is not None:
        values["at"] = at
    session.connection().execute(_INSERT_EVENT, values)


def insert_payment(session: Session, values: dict[str, Any], lines: Sequence[tuple[int, int, int]], *,
                   source: str, detail: dict[str, Any], now: datetime) -> tuple[int, bool]:
    """Write a new payment, its reserved allocations ((invoice id, amount, discount) each) and its first
    timeline line, and mark the account's balance stale, in one statement.

    Returns the payment's id and whether this statement set the stale mark (as mark_balance_stale).
    """
    values = {"needs_review": False, **values}
    parameters = {f"p_{name}": value for name, value in values.items()}
    parameters.update(invoice_ids=[line[0] for line in lines], amounts=[line[1] for line in lines],
                      discounts=[line[2] for line in lines], e_to=values["status"], e_source=source, e_detail=detail,
                      a_id=values["account_id"], a_now=now)
    row = session.connection().execute(_insert_payment_statement(tuple(sorted(values))), parameters).one()
    return row[0], bool(row[1])


@lru_cache(maxsize=16)
def _insert_payment_statement(columns: tuple[str, ...]):
    payment = (
        insert(_PAYMENTS).values({name: bindparam(f"p_{name}", type_=_PAYMENTS.c[name].type) for name in columns})
        .returning(_PAYMENTS.c.id).cte("new_payment")
    )
    lines = (
        func.unnest(bindparam("invoice_ids", type_=_IDS), bindparam("amounts", type_=_IDS),
                    bindparam("discounts", type_=_IDS))
        .table_valued("invoice_id", "amount_minor", "discount_minor").render_derived(name="line")
    )
    allocations = insert(_ALLOCATIONS).from_select(
        ["payment_id", "invoice_id", "amount_minor", "paid_minor", "discount_minor", "state"],
        select(payment.c.id, lines.c.invoice_id, lines.c.amount_minor, lines.c.amount_minor, lines.c.discount_minor,
               literal("reserved"))
        .select_from(payment.join(lines, true())),
    ).cte("new_allocations")
    timeline = insert(_EVENTS).from_select(
        ["payment_id", "from_status", "to_status", "applied", "source", "detail"],
        select(payment.c.id, null(), bindparam("e_to", type_=_EVENTS.c.to_status.type), true(),
               bindparam("e_source", type_=_EVENTS.c.source.type), bindparam("e_detail", type_=_EVENTS.c.detail.type)),
    ).cte("new_line")
    stale = (
        update(_ACCOUNTS).where(_ACCOUNTS.c.id == bindparam("a_id"), _ACCOUNTS.c.balance_stale_since.is_(None))
        .values(balance_stale_since=bindparam("a_now")).returning(_ACCOUNTS.c.id).cte("stale")
    )
    # PostgreSQL runs every data-modifying WITH clause, referenced or not.
    marked = select(func.count()).select_from(stale).scalar_subquery()
    return select(payment.c.id, marked).add_cte(allocations).add_cte(timeline)


def add_email(session: Session, *, kind: str, recipient: str, context: dict[str, Any], dedupe_key: str,
              seller_id: int, account_id: int | None = None, payment_id: int | None = None) -> int | None:
    """Queue an outbox row; return its id, or None when one with this dedupe key exists."""
    return session.connection().scalar(_INSERT_EMAIL, dict(
        kind=kind, recipient=recipient, context=context, dedupe_key=dedupe_key, seller_id=seller_id,
        account_id=account_id, payment_id=payment_id, status="queued", attempts=0))


def mark_balance_stale(session: Session, account_id: int, now: datetime) -> bool:
    """Flag the account's figures for recomputation, locking the account either way; True when this call set
    the flag."""
    return bool(mark_balances_stale(session, [account_id], now))


def lock_account(session: Session, account_id: int) -> Account | None:
    """The account row locked FOR UPDATE: money requests of one account run one at a time."""
    row = session.execute(_LOCK_ACCOUNT, {"id": account_id}).first()
    if row is None:
        return None
    account, seller = row
    set_committed_value(account, "seller", seller)
    return account


def lock_account_row(session: Session, account_id: int) -> SimpleNamespace | None:
    """The account locked FOR UPDATE, read as plain values with its seller's as .seller.

    For requests, which only read them: the same attributes as the mapped rows, without loading two
    objects per request. Code that changes the account uses lock_account.
    """
    row = session.connection().execute(_LOCK_ACCOUNT_ROW, {"id": account_id}).first()
    if row is None:
        return None
    return _view(row._mapping, _ACCOUNTS, {"seller": _SELLERS})


def _view(row: Any, table: Any, parties: dict[str, Any]) -> SimpleNamespace:
    """A plain view of a joined row: the table's columns as attributes, and each party's columns,
    selected labelled `<party>__<column>`, as a view of its own under that party's name."""
    view = SimpleNamespace(**{column.name: row[column.name] for column in table.c})
    for name, party in parties.items():
        setattr(view, name, SimpleNamespace(**{column.name: row[f"{name}__{column.name}"] for column in party.c}))
    return view


def find_payment_by_key(session: Session, account_id: int, idempotency_key: str) -> Payment | None:
    """The account's payment made with this request key; the usual answer, none, costs no object loading."""
    payment_id = session.connection().scalar(_PAYMENT_ID_BY_KEY, {"account_id": account_id, "key": idempotency_key})
    return session.get(Payment, payment_id) if payment_id is not None else None


def invoices_with_children(session: Session, invoice_ids: Sequence[int], lock: bool) -> list[Row]:
    """The invoices and the children of any parent among them, as rows in id order; locked FOR UPDATE when asked."""
    statement = _LOCK_INVOICES_WITH_CHILDREN if lock else _INVOICES_WITH_CHILDREN
    return list(session.connection().execute(statement, {"ids": list(invoice_ids)}))


def settled_by_invoice(session: Session, invoice_ids: Sequence[int]) -> dict[int, int]:
    """Money applied to each invoice, discounts taken included."""
    return {invoice_id: settled for invoice_id, (settled, _) in standing_of_invoices(session, invoice_ids).items()}


def standing_of_invoices(session: Session, invoice_ids: Sequence[int]) -> dict[int, tuple[int, str | None]]:
    """For each invoice with allocations: (money applied, discounts included; status of the payment holding it).

    One statement for both, since every payment request needs both; an invoice with neither is absent.
    """
    if not invoice_ids:
        return {}
    rows = session.connection().execute(_STANDING, {"ids": list(invoice_ids)})
    return {invoice_id: (int(settled), held) for invoice_id, settled, held in rows}


def list_payable_invoices(session: Session, account_id: int) -> list[Invoice]:
    """Visible, unvoided invoices of the account that are not parents of other invoices."""
    parent = select(Invoice.parent_id).where(Invoice.parent_id.is_not(None), Invoice.account_id == account_id)
    return list(session.scalars(
        select(Invoice).where(Invoice.account_id == account_id, Invoice.voided.is_(False),
                              Invoice.customer_visible.is_(True), Invoice.id.not_in(parent))
        .order_by(Invoice.id)
    ))


def list_email_lines(session: Session, payment_id: int) -> list[Row]:
    """(number, site_name, amount_minor, discount_minor, reversed_minor) per invoice the payment covers, as its
    emails list them: amount_minor is what the payment first put on the invoice."""
    return list_email_lines_of(session, [payment_id]).get(payment_id, [])


def list_allocation_lines(session: Session, payment_id: int) -> list[tuple[int, str, int, int]]:
    """(invoice id, invoice number, amount, discount) of each allocation of the payment, in allocation order."""
    return [tuple(row) for row in session.execute(
        select(Allocation.invoice_id, Invoice.number, Allocation.amount_minor, Allocation.discount_minor)
        .join(Invoice, Invoice.id == Allocation.invoice_id).where(Allocation.payment_id == payment_id)
        .order_by(Allocation.id)
    )]


# Set-wise forms of the transition writes above, for tasks.flows.ledger.TransitionBatch: one statement per
# kind of write for a whole batch of webhook events. The rows go in as one JSON document read by
# jsonb_to_recordset (one C-serialised parameter instead of an array per column dumped in Python).
# A column missing from a payment's row is left as it is. The ids go in once more as an array: the
# planner cannot see into the JSON and would join a whole table to it instead of using its index.
_BATCH_TYPES = {"status": "text", "updated_at": "timestamptz", "finished_at": "timestamptz",
                "stripe_payment_intent_id": "text", "stripe_charge_id": "text", "failure_code": "text",
                "failure_message": "text", "refunded_minor": "bigint", "attempt": "integer",
                "stripe_idempotency_key": "text", "first_attempt_at": "timestamptz", "last_attempt_at": "timestamptz",
                "needs_review": "boolean"}
BATCH_COLUMNS = frozenset(_BATCH_TYPES)
_MOVE_PAYMENTS = text(
    "WITH changed AS (UPDATE payments SET "
    + ", ".join(f"{name} = CASE WHEN c.row ? '{name}' THEN c.{name} ELSE payments.{name} END" for name in _BATCH_TYPES)
    + " FROM jsonb_to_recordset(CAST(:changes AS jsonb)) AS c (id bigint, row jsonb, "
    + ", ".join(f"{name} {kind}" for name, kind in _BATCH_TYPES.items())
    + ") WHERE payments.id = c.id AND payments.id = ANY(CAST(:ids AS bigint[])) RETURNING payments.id)"
    " INSERT INTO payment_events (payment_id, from_status, to_status, applied, source, detail, at)"
    " SELECT line.payment_id, line.from_status, line.to_status, line.applied, line.source, line.detail, :at"
    " FROM jsonb_to_recordset(CAST(:lines AS jsonb)) AS line (payment_id bigint, from_status text,"
    " to_status text, applied boolean, source text, detail jsonb)"
)
_MOVE_ALLOCATIONS_OF = text(
    "UPDATE allocations SET state = m.to_state, updated_at = now() FROM jsonb_to_recordset(CAST(:moves AS jsonb))"
    " AS m (payment_id bigint, from_state text, to_state text)"
    " WHERE allocations.payment_id = m.payment_id AND allocations.state = m.from_state"
    " AND allocations.payment_id = ANY(CAST(:ids AS bigint[]))"
)
_MOVE_CREDITS_OF = text(
    "UPDATE credits SET state = m.to_state, updated_at = now() FROM jsonb_to_recordset(CAST(:moves AS jsonb))"
    " AS m (payment_id bigint, from_state text, to_state text)"
    " WHERE credits.payment_id = m.payment_id AND credits.state = m.from_state"
    " AND credits.payment_id = ANY(CAST(:ids AS bigint[]))"
)
# Refunds reverse or reduce single allocations and credits: (id, state or amount) rows, as above.
_SET_SLICES = {
    table: text(
        f"UPDATE {table} SET state = CASE WHEN c.row ? 'state' THEN c.state ELSE {table}.state END,"
        f" amount_minor = CASE WHEN c.row ? 'amount_minor' THEN c.amount_minor ELSE {table}.amount_minor END,"
        f" updated_at = now() FROM jsonb_to_recordset(CAST(:changes AS jsonb))"
        f" AS c (id bigint, row jsonb, state text, amount_minor bigint) WHERE {table}.id = c.id"
        f" AND {table}.id = ANY(CAST(:ids AS bigint[]))"
    )
    for table in ("allocations", "credits")
}
_APPLIED_OF = (
    select(_ALLOCATIONS.c.payment_id, _ALLOCATIONS.c.id, _INVOICES.c.due_on, _ALLOCATIONS.c.amount_minor)
    .join(_INVOICES, _INVOICES.c.id == _ALLOCATIONS.c.invoice_id)
    .where(_ALLOCATIONS.c.payment_id == any_(bindparam("ids", type_=_IDS)), _ALLOCATIONS.c.state == "applied")
    .order_by(_ALLOCATIONS.c.id)
)
_LOCK_AVAILABLE_CREDITS_OF = (
    select(_CREDITS.c.payment_id, _CREDITS.c.id, _CREDITS.c.amount_minor)
    .where(_CREDITS.c.payment_id == any_(bindparam("ids", type_=_IDS)), _CREDITS.c.state == "available")
    .order_by(_CREDITS.c.id).with_for_update()
)
# An email lists what the payment paid each invoice, so its lines add up to the payment whatever was
# refunded since; reversed_minor is how much of that a refund or dispute has taken back from the invoice.
_EMAIL_LINES_OF = (
    select(_ALLOCATIONS.c.payment_id, _INVOICES.c.number, _INVOICES.c.site_name,
           _ALLOCATIONS.c.paid_minor.label("amount_minor"), _ALLOCATIONS.c.discount_minor,
           case((_ALLOCATIONS.c.state == "reversed", _ALLOCATIONS.c.paid_minor),
                (_ALLOCATIONS.c.state == "applied", _ALLOCATIONS.c.paid_minor - _ALLOCATIONS.c.amount_minor),
                else_=0).label("reversed_minor"))
    .join(_ALLOCATIONS, _ALLOCATIONS.c.invoice_id == _INVOICES.c.id)
    .where(_ALLOCATIONS.c.payment_id == any_(bindparam("ids", type_=_IDS)))
    .order_by(_ALLOCATIONS.c.payment_id, _INVOICES.c.due_on, _INVOICES.c.number)
)
_ADD_EMAILS = text(
    "INSERT INTO emails (kind, recipient, context, dedupe_key, seller_id, account_id, payment_id, status, attempts)"
    " SELECT e.kind, e.recipient, e.context, e.dedupe_key, e.seller_id, e.account_id, e.payment_id, 'queued', 0"
    " FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS e (kind text, recipient text, context jsonb,"
    " dedupe_key text, seller_id bigint, account_id bigint, payment_id bigint)"
    " ON CONFLICT (dedupe_key) DO NOTHING RETURNING id"
)
# The account row is locked even when it is already stale: recompute_balance locks it FOR UPDATE, so it
# cannot compute (and clear the mark) while a money movement that marked it is still uncommitted. KEY
# SHARE, the weakest lock, is enough for that and lets concurrent money movements of one account go on
# together (a stronger lock made two webhook batches touching one account wait for each other: the
# bench's backlog drained at a third of the rate). The lock is its own statement: a locking CTE is read
# only as far as the UPDATE needs it, so an UPDATE that found nothing to mark took no lock at all.
_LOCK_FOR_STALE = text(
    "SELECT id FROM accounts WHERE id = ANY(CAST(:ids AS bigint[])) ORDER BY id FOR KEY SHARE"
)
# A marker that waited on another's uncommitted mark re-reads the row and leaves it: one nudge per mark.
_MARK_STALE = text(
    "UPDATE accounts SET balance_stale_since = :now WHERE id = ANY(CAST(:ids AS bigint[]))"
    " AND balance_stale_since IS NULL RETURNING id"
)
_PARTIES = {"method": _METHODS, "account": _ACCOUNTS, "seller": _SELLERS}
_LOCK_PAYMENT_VIEWS = (
    select(_PAYMENTS, *[column.label(f"{name}__{column.name}") for name, table in _PARTIES.items()
                        for column in table.c])
    .join(_METHODS, _METHODS.c.id == _PAYMENTS.c.payment_method_id)
    .join(_ACCOUNTS, _ACCOUNTS.c.id == _PAYMENTS.c.account_id).join(_SELLERS, _SELLERS.c.id == _ACCOUNTS.c.seller_id)
    .where(or_(_PAYMENTS.c.stripe_charge_id == any_(bindparam("charges", type_=ARRAY(Text))),
               _PAYMENTS.c.stripe_payment_intent_id == any_(bindparam("intents", type_=ARRAY(Text))),
               _PAYMENTS.c.id == any_(bindparam("ids", type_=_IDS))))
    .order_by(_PAYMENTS.c.id).with_for_update(of=_PAYMENTS)
)


def lock_payment_views(session: Session, *, charge_ids: Sequence[str] = (), intent_ids: Sequence[str] = (),
                       payment_ids: Sequence[int] = ()) -> list[SimpleNamespace]:
    """Payments with any of these charge ids, PaymentIntent ids or ids, locked in id order, as plain views.

    Each view has the payment's columns and .method, .account and .seller views of its parties:
    what a transition and its email read, without loading four mapped objects per payment.
    """
    rows = session.connection().execute(_LOCK_PAYMENT_VIEWS, {"charges": list(charge_ids), "intents": list(intent_ids),
                                                              "ids": list(payment_ids)})
    return [_view(row, _PAYMENTS, _PARTIES) for row in rows.mappings()]


def move_payments(session: Session, columns: dict[int, dict[str, Any]],
                  lines: Sequence[tuple[int, str | None, str, bool, str, dict[str, Any]]], *, at: datetime) -> None:
    """Set the payments' columns ({payment id: {column: value}}, BATCH_COLUMNS only) and add the timeline
    lines ((payment id, from, to, applied, source, detail) each), in one statement."""
    changes = [{**values, "id": pid, "row": dict.fromkeys(values, True)} for pid, values in columns.items()]
    keys = ("payment_id", "from_status", "to_status", "applied", "source", "detail")
    session.connection().execute(_MOVE_PAYMENTS, {"changes": _json(changes), "ids": list(columns), "at": at,
                                                  "lines": _json([dict(zip(keys, line)) for line in lines])})


def move_allocations_of(session: Session, moves: Sequence[tuple[int, str, str]]) -> None:
    """move_allocations for many payments: (payment id, from state, to state) each."""
    session.connection().execute(_MOVE_ALLOCATIONS_OF, {"moves": _moves(moves), "ids": [m[0] for m in moves]})


def move_credits_of(session: Session, moves: Sequence[tuple[int, str, str]]) -> None:
    """move_credits for many payments: (payment id, from state, to state) each."""
    session.connection().execute(_MOVE_CREDITS_OF, {"moves": _moves(moves), "ids": [m[0] for m in moves]})


def _moves(moves: Sequence[tuple[int, str, str]]) -> str:
    return _json([{"payment_id": m[0], "from_state": m[1], "to_state": m[2]} for m in moves])


def _json(rows: Any) -> str:
    """Rows for jsonb_to_recordset; times as ISO 8601, which timestamptz reads back exactly."""
    return json.dumps(rows, default=_iso)


def _iso(value: Any) -> str:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def set_allocations(session: Session, changes: dict[int, dict[str, Any]]) -> None:
    """Set single allocations' state and/or amount: {allocation id: {"state": ..., "amount_minor": ...}}."""
    _set_slices(session, "allocations", changes)


def set_credits(session: Session, changes: dict[int, dict[str, Any]]) -> None:
    """Set single credits' state and/or amount: {credit id: {"state": ..., "amount_minor": ...}}."""
    _set_slices(session, "credits", changes)


def _set_slices(session: Session, table: str, changes: dict[int, dict[str, Any]]) -> None:
    rows = [{**values, "id": row_id, "row": dict.fromkeys(values, True)} for row_id, values in changes.items()]
    session.connection().execute(_SET_SLICES[table], {"changes": _json(rows), "ids": list(changes)})


def list_applied_allocations_of(session: Session, payment_ids: Sequence[int]) -> dict[int, list[Row]]:
    """(payment_id, id, due_on, amount_minor) of the payments' applied allocations: {payment id: rows}."""
    found: dict[int, list[Row]] = {pid: [] for pid in payment_ids}
    for row in session.connection().execute(_APPLIED_OF, {"ids": list(payment_ids)}):
        found[row.payment_id].append(row)
    return found


def lock_available_credits_of(session: Session, payment_ids: Sequence[int]) -> dict[int, list[Row]]:
    """(payment_id, id, amount_minor) of the payments' available credit, oldest first, locked: {payment id: rows}."""
    found: dict[int, list[Row]] = {pid: [] for pid in payment_ids}
    if payment_ids:
        for row in session.connection().execute(_LOCK_AVAILABLE_CREDITS_OF, {"ids": list(payment_ids)}):
            found[row.payment_id].append(row)
    return found


def list_email_lines_of(session: Session, payment_ids: Sequence[int]) -> dict[int, list[Row]]:
    """list_email_lines for many payments at once: {payment id: its lines}."""
    lines: dict[int, list[Row]] = {}
    for row in session.connection().execute(_EMAIL_LINES_OF, {"ids": list(payment_ids)}):
        lines.setdefault(row.payment_id, []).append(row)
    return lines


def add_emails(session: Session, rows: Sequence[dict[str, Any]]) -> list[int]:
    """add_email for many rows in one statement; returns the ids of the rows written (not the duplicates)."""
    return list(session.connection().execute(_ADD_EMAILS, {"rows": _json(rows)}).scalars())


def mark_balances_stale(session: Session, account_ids: Sequence[int], now: datetime) -> list[int]:
    """Flag the accounts' figures for recomputation, locking each (in id order) either way; returns the ids
    this call newly flagged."""
    connection, ids = session.connection(), list(account_ids)
    connection.execute(_LOCK_FOR_STALE, {"ids": ids})
    return list(connection.execute(_MARK_STALE, {"ids": ids, "now": now}).scalars())


def set_stripe_customer(session: Session, account_id: int, customer_id: str) -> str:
    """Store the account's Stripe customer id unless one is stored already; return the stored one."""
    # Only where null, so concurrent creators agree on the first one written.
    session.execute(update(Account).where(Account.id == account_id, Account.stripe_customer_id.is_(None))
                    .values(stripe_customer_id=customer_id))
    return session.scalar(select(Account.stripe_customer_id).where(Account.id == account_id))
