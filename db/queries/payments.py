"""Payments, their timeline (payment_events), refunds and disputes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    BigInteger,
    Row,
    Text,
    and_,
    any_,
    bindparam,
    func,
    literal,
    null,
    or_,
    select,
    text,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by, insert
from sqlalchemy.orm import Session

from db.models import (
    Account,
    Allocation,
    Dispute,
    Invoice,
    Payment,
    PaymentEvent,
    PaymentMethod,
    Refund,
    Seller,
)
from db.queries._batch import _json
from db.queries._locks import note_held
from db.queries._views import _view
from tasks.domain.history import Cursor, HistoryFilter, Sort, search_terms
from tasks.domain.states import REFUND_FINAL, REFUND_WAITING, AllocationState, PaymentStatus

# Writes nothing in the transaction reads back go to the tables directly: no ORM unit of work.
_EVENTS = PaymentEvent.__table__
_PAYMENTS, _METHODS, _ACCOUNTS = Payment.__table__, PaymentMethod.__table__, Account.__table__
_SELLERS, _ALLOCATIONS, _INVOICES = Seller.__table__, Allocation.__table__, Invoice.__table__
_IDS = ARRAY(BigInteger)

# The statements of the payment and webhook hot paths are built once, with their values bound at
# execution: building a statement per call (and keying it for the compiled cache) cost more than
# running it. Lists go in as one array parameter, so the SQL text, and the server's prepared
# statement, is the same for any number of ids.


_PAYMENT_ID_BY_KEY = select(_PAYMENTS.c.id).where(
    _PAYMENTS.c.account_id == bindparam("account_id"), _PAYMENTS.c.idempotency_key == bindparam("key")
)
_PARTIES = {"method": _METHODS, "account": _ACCOUNTS, "seller": _SELLERS}
# The view's tables under one-letter names: its SQL stays under the 4,096 bytes up to which psycopg keeps
# a query's conversion (at 4.4 KB, every execution parsed the whole text again).
_VP, _VM, _VA, _VS = (table.alias(name) for table, name in zip((_PAYMENTS, *_PARTIES.values()), "pmas"))
# A payment as every writer reads it: its columns and views of its method, account and seller, locked.
_PAYMENT_VIEW = (
    select(
        _VP,
        *[
            column.label(f"{name}__{column.name}")
            for name, table in zip(_PARTIES, (_VM, _VA, _VS))
            for column in table.c
        ],
    )
    .outerjoin(_VM, _VM.c.id == _VP.c.payment_method_id)  # none when credit pays it all
    .join(_VA, _VA.c.id == _VP.c.account_id)
    .join(_VS, _VS.c.id == _VA.c.seller_id)
)
_LOCK_PAYMENT_VIEWS = (
    _PAYMENT_VIEW.where(
        or_(
            _VP.c.stripe_charge_id == any_(bindparam("charges", type_=ARRAY(Text))),
            _VP.c.stripe_payment_intent_id == any_(bindparam("intents", type_=ARRAY(Text))),
            _VP.c.id == any_(bindparam("ids", type_=_IDS)),
        )
    )
    .order_by(_VP.c.id)
    .with_for_update(of=_VP)
)
_LOCK_PAYMENT_BY = {
    column: _PAYMENT_VIEW.where(_VP.c[column] == bindparam("value")).with_for_update(of=_VP)
    for column in ("id", "stripe_payment_intent_id", "stripe_charge_id")
}
# The payment's account FOR KEY SHARE, then the payment FOR UPDATE, in one statement: PostgreSQL takes a
# statement's row locks in the order of its locking clauses, and hands back each locked row as it is once
# locked (a row changed while the statement waited is read again).
_LOCK_PAYMENT_IN_ORDER = _PAYMENT_VIEW.where(_VP.c.id == bindparam("value")).suffix_with(
    f"FOR KEY SHARE OF {_VA.name} FOR UPDATE OF {_VP.name}"
)
_BATCH_TYPES = {
    "status": "text",
    "updated_at": "timestamptz",
    "finished_at": "timestamptz",
    "stripe_payment_intent_id": "text",
    "stripe_charge_id": "text",
    "failure_code": "text",
    "failure_message": "text",
    "refunded_minor": "bigint",
    "attempt": "integer",
    "stripe_idempotency_key": "text",
    "first_attempt_at": "timestamptz",
    "last_attempt_at": "timestamptz",
    "needs_review": "boolean",
    "amount_minor": "bigint",
    "credit_used_minor": "bigint",
    "last_look_changes": "jsonb",
}
BATCH_COLUMNS = frozenset(_BATCH_TYPES)
_MOVE_PAYMENTS = text(
    "WITH changed AS (UPDATE payments SET "
    + ", ".join(
        f"{name} = CASE WHEN c.row ? '{name}' THEN c.{name} ELSE payments.{name} END" for name in _BATCH_TYPES
    )
    + " FROM jsonb_to_recordset(CAST(:changes AS jsonb)) AS c (id bigint, row jsonb, "
    + ", ".join(f"{name} {kind}" for name, kind in _BATCH_TYPES.items())
    + ") WHERE payments.id = c.id AND payments.id = ANY(CAST(:ids AS bigint[])) RETURNING payments.id)"
    " INSERT INTO payment_events (payment_id, from_status, to_status, applied, source, detail, at)"
    " SELECT line.payment_id, line.from_status, line.to_status, line.applied, line.source, line.detail, :at"
    " FROM jsonb_to_recordset(CAST(:lines AS jsonb)) AS line (payment_id bigint, from_status text,"
    " to_status text, applied boolean, source text, detail jsonb)"
)


def find_payment(session: Session, payment_id: int) -> Payment | None:
    return session.get(Payment, payment_id)


_FIND_PAYMENT_VIEW = _PAYMENT_VIEW.where(_VP.c.id == bindparam("id"))


def find_payment_view(session: Session, payment_id: int) -> SimpleNamespace | None:
    """The payment with views of its method, account and seller, as the locks return it, unlocked."""
    row = session.connection().execute(_FIND_PAYMENT_VIEW, {"id": payment_id}).first()
    return None if row is None else _view(row._mapping, _PAYMENTS, _PARTIES)


def lock_payment(session: Session, payment_id: int) -> SimpleNamespace | None:
    """The payment locked FOR UPDATE, as a view with .method, .account and .seller."""
    return lock_payment_by(session, "id", payment_id)


def lock_payment_by(session: Session, column: str, value: object) -> SimpleNamespace | None:
    """The payment whose column (id, stripe_payment_intent_id, stripe_charge_id) is value, locked, as a view.

    Its method, account and seller come in the same row: what its transitions and emails read.
    """
    row = session.connection().execute(_LOCK_PAYMENT_BY[column], {"value": value}).mappings().first()
    return None if row is None else _view(row, _PAYMENTS, _PARTIES)


def lock_payment_in_order(session: Session, payment_id: int) -> SimpleNamespace | None:
    """lock_payment, its account locked FOR KEY SHARE first (as every writer of a payment locks), in one
    statement."""
    row = session.connection().execute(_LOCK_PAYMENT_IN_ORDER, {"value": payment_id}).mappings().first()
    if row is None:
        return None
    note_held(session, [row["account_id"]])
    return _view(row, _PAYMENTS, _PARTIES)


def find_payment_by_intent(session: Session, intent_id: str) -> Payment | None:
    return session.scalar(select(Payment).where(Payment.stripe_payment_intent_id == intent_id))


def insert_payment(
    session: Session,
    values: dict[str, Any],
    lines: Sequence[tuple[int, int, int]],
    *,
    source: str,
    detail: dict[str, Any],
    now: datetime,
) -> tuple[int, bool]:
    """Write a new payment, its reserved allocations ((invoice id, amount, discount) each) and its first
    timeline line, and mark the account's balance stale, in one statement.

    Returns the payment's id and whether this statement set the stale mark (as mark_balance_stale).
    """
    values = {"needs_review": False, **values}
    parameters = {f"p_{name}": value for name, value in values.items()}
    parameters.update(
        invoice_ids=[line[0] for line in lines],
        amounts=[line[1] for line in lines],
        discounts=[line[2] for line in lines],
        e_to=values["status"],
        e_source=source,
        e_detail=detail,
        a_id=values["account_id"],
        a_now=now,
    )
    row = session.connection().execute(_insert_payment_statement(tuple(sorted(values))), parameters).one()
    return row[0], bool(row[1])


@lru_cache(maxsize=16)
def _insert_payment_statement(columns: tuple[str, ...]):
    payment = (
        insert(_PAYMENTS)
        .values({name: bindparam(f"p_{name}", type_=_PAYMENTS.c[name].type) for name in columns})
        .returning(_PAYMENTS.c.id)
        .cte("new_payment")
    )
    lines = (
        func.unnest(
            bindparam("invoice_ids", type_=_IDS),
            bindparam("amounts", type_=_IDS),
            bindparam("discounts", type_=_IDS),
        )
        .table_valued("invoice_id", "amount_minor", "discount_minor")
        .render_derived(name="line")
    )
    allocations = (
        insert(_ALLOCATIONS)
        .from_select(
            ["payment_id", "invoice_id", "amount_minor", "paid_minor", "discount_minor", "state"],
            select(
                payment.c.id,
                lines.c.invoice_id,
                lines.c.amount_minor,
                lines.c.amount_minor,
                lines.c.discount_minor,
                literal(AllocationState.RESERVED.value),
            ).select_from(payment.join(lines, true())),
        )
        .cte("new_allocations")
    )
    timeline = (
        insert(_EVENTS)
        .from_select(
            ["payment_id", "from_status", "to_status", "applied", "source", "detail"],
            select(
                payment.c.id,
                null(),
                bindparam("e_to", type_=_EVENTS.c.to_status.type),
                true(),
                bindparam("e_source", type_=_EVENTS.c.source.type),
                bindparam("e_detail", type_=_EVENTS.c.detail.type),
            ),
        )
        .cte("new_line")
    )
    stale = (
        update(_ACCOUNTS)
        .where(_ACCOUNTS.c.id == bindparam("a_id"), _ACCOUNTS.c.balance_stale_since.is_(None))
        .values(balance_stale_since=bindparam("a_now"))
        .returning(_ACCOUNTS.c.id)
        .cte("stale")
    )
    # PostgreSQL runs every data-modifying WITH clause, referenced or not.
    marked = select(func.count()).select_from(stale).scalar_subquery()
    return select(payment.c.id, marked).add_cte(allocations).add_cte(timeline)


_TAKE_NUMBER = (
    update(_SELLERS)
    .where(_SELLERS.c.id == bindparam("seller_id"))
    .values(last_payment_number=_SELLERS.c.last_payment_number + 1)
    .returning(_SELLERS.c.last_payment_number)
)


def take_payment_number(session: Session, seller_id: int) -> int:
    """The seller's next payment number; the seller row stays locked until commit, so two concurrent
    payments of one seller take consecutive numbers and a rolled-back one gives its number back."""
    return session.connection().execute(_TAKE_NUMBER, {"seller_id": seller_id}).scalar_one()


def find_payment_by_key(session: Session, account_id: int, idempotency_key: str) -> Payment | None:
    """The account's payment made with this request key; the usual answer, none, costs no object loading."""
    payment_id = session.connection().scalar(
        _PAYMENT_ID_BY_KEY, {"account_id": account_id, "key": idempotency_key}
    )
    return session.get(Payment, payment_id) if payment_id is not None else None


def lock_payment_views(
    session: Session,
    *,
    charge_ids: Sequence[str] = (),
    intent_ids: Sequence[str] = (),
    payment_ids: Sequence[int] = (),
) -> list[SimpleNamespace]:
    """Payments with any of these charge ids, PaymentIntent ids or ids, locked in id order, as plain views.

    Each view has the payment's columns and .method, .account and .seller views of its parties:
    what a transition and its email read, without loading four mapped objects per payment.
    """
    rows = session.connection().execute(
        _LOCK_PAYMENT_VIEWS,
        {"charges": list(charge_ids), "intents": list(intent_ids), "ids": list(payment_ids)},
    )
    return [_view(row, _PAYMENTS, _PARTIES) for row in rows.mappings()]


def move_payments(
    session: Session,
    columns: dict[int, dict[str, Any]],
    lines: Sequence[tuple[int, str | None, str, bool, str, dict[str, Any]]],
    *,
    at: datetime,
) -> None:
    """Set the payments' columns ({payment id: {column: value}}, BATCH_COLUMNS only) and add the timeline
    lines ((payment id, from, to, applied, source, detail) each), in one statement."""
    changes = [{**values, "id": pid, "row": dict.fromkeys(values, True)} for pid, values in columns.items()]
    keys = ("payment_id", "from_status", "to_status", "applied", "source", "detail")
    session.connection().execute(
        _MOVE_PAYMENTS,
        {
            "changes": _json(changes),
            "ids": list(columns),
            "at": at,
            "lines": _json([dict(zip(keys, line)) for line in lines]),
        },
    )


def list_due_unsettled_payments(
    session: Session, now: datetime, status: PaymentStatus, older_than: timedelta, limit: int
) -> list[int]:
    """Ids of payments with a PaymentIntent held in this status longer than expected: never reconciled first,
    then least recently reconciled, then oldest update; so one Stripe keeps waiting on goes to the back."""
    statement = (
        select(Payment.id)
        .where(
            Payment.status == status,
            Payment.stripe_payment_intent_id.is_not(None),
            Payment.updated_at < now - older_than,
        )
        .order_by(Payment.reconciled_at.asc().nulls_first(), Payment.updated_at)
        .limit(limit)
    )
    return list(session.scalars(statement))


def mark_reconciled(session: Session, payment_id: int, now: datetime) -> None:
    """Record that the reconciler asked Stripe about the payment, leaving updated_at as it is."""
    session.execute(
        update(Payment)
        .where(Payment.id == payment_id)
        .values(reconciled_at=now, updated_at=Payment.updated_at)
        .execution_options(synchronize_session=False)
    )


def lock_payment_for_charge(
    session: Session, charge_id: str | None, intent_id: str | None
) -> SimpleNamespace | None:
    """The payment a charge belongs to, by Stripe's ids only (charge, then PaymentIntent), locked."""
    for column, value in (("stripe_charge_id", charge_id), ("stripe_payment_intent_id", intent_id)):
        found = lock_payment_by(session, column, value) if value else None
        if found is not None:
            return found
    return None


def insert_refund(
    session: Session,
    *,
    payment_id: int,
    stripe_refund_id: str,
    amount_minor: int,
    currency: str,
    status: str,
    reason: str | None,
) -> bool:
    """Record a Stripe refund, or move a known one's status (only forwards); True if new."""
    statement = insert(Refund).values(
        payment_id=payment_id,
        stripe_refund_id=stripe_refund_id,
        amount_minor=amount_minor,
        currency=currency,
        status=status,
        reason=reason,
    )
    statement = statement.on_conflict_do_update(
        index_elements=[Refund.stripe_refund_id],
        set_={"status": statement.excluded.status},
        where=Refund.status.not_in(REFUND_FINAL)
        & (statement.excluded.status.not_in(REFUND_WAITING) | Refund.status.in_(REFUND_WAITING)),
    ).returning(text("(xmax = 0) AS inserted"))
    return bool(session.scalar(statement))


_LIVE_REFUNDS = (
    select(Refund.payment_id, Refund.amount_minor, Refund.stripe_refund_id)
    .where(Refund.payment_id == any_(bindparam("ids", type_=_IDS)), Refund.status.not_in(REFUND_FINAL))
    .order_by(Refund.payment_id, Refund.id.desc())
)


def list_live_refunds(session: Session, payment_ids: Sequence[int]) -> dict[int, list[tuple[int, str]]]:
    """{payment id: [(amount, Stripe id) of each recorded refund that did not fail, latest first]} for
    these payments, in one statement: what a batch of charge.refunded events heads its emails with."""
    refunds: dict[int, list[tuple[int, str]]] = {}
    if not payment_ids:
        return refunds
    rows = session.connection().execute(_LIVE_REFUNDS, {"ids": sorted(set(payment_ids))})
    for payment_id, amount_minor, stripe_refund_id in rows:
        refunds.setdefault(payment_id, []).append((amount_minor, stripe_refund_id))
    return refunds


def find_dispute(session: Session, stripe_dispute_id: str) -> Dispute | None:
    return session.scalar(select(Dispute).where(Dispute.stripe_dispute_id == stripe_dispute_id))


def insert_dispute(
    session: Session,
    *,
    payment_id: int,
    stripe_dispute_id: str,
    amount_minor: int,
    currency: str,
    reason: str | None,
    status: str,
) -> Dispute:
    """The dispute row, created on first sight (unique Stripe id makes repeats harmless)."""
    session.execute(
        insert(Dispute)
        .values(
            payment_id=payment_id,
            stripe_dispute_id=stripe_dispute_id,
            amount_minor=amount_minor,
            currency=currency,
            reason=reason,
            status=status,
        )
        .on_conflict_do_nothing(index_elements=[Dispute.stripe_dispute_id])
    )
    return session.scalar(
        select(Dispute)
        .where(Dispute.stripe_dispute_id == stripe_dispute_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def find_won_dispute_of(session: Session, payment_id: int) -> Dispute | None:
    """The payment's latest won dispute whose money was not reinstated yet, locked, or None."""
    return session.scalar(
        select(Dispute)
        .where(Dispute.payment_id == payment_id, Dispute.status == "won", Dispute.reinstated_at.is_(None))
        .order_by(Dispute.id.desc())
        .limit(1)
        .with_for_update()
    )


def sum_payments_by_status(session: Session, account_id: int, currency: str) -> dict[str, int]:
    """{status: total amount} of the account's payments in this currency."""
    return dict(
        session.execute(
            select(Payment.status, func.sum(Payment.amount_minor))
            .where(Payment.account_id == account_id, Payment.currency == currency)
            .group_by(Payment.status)
        ).all()
    )


def list_due_stuck_payments(
    session: Session, now: datetime, pending_grace: timedelta, submitting_grace: timedelta, limit: int
) -> list[Row]:
    """(id, status) of payments pending longer than pending_grace, or submitting with no attempt for
    longer than submitting_grace; in id order."""
    return list(
        session.execute(
            select(Payment.id, Payment.status)
            .where(
                or_(
                    and_(Payment.status == PaymentStatus.PENDING, Payment.updated_at < now - pending_grace),
                    and_(
                        Payment.status == PaymentStatus.SUBMITTING,
                        func.coalesce(Payment.last_attempt_at, Payment.updated_at) < now - submitting_grace,
                    ),
                )
            )
            .order_by(Payment.id)
            .limit(limit)
        ).all()
    )


def lock_due_scheduled_payments(session: Session, now: datetime, limit: int) -> list[SimpleNamespace]:
    """Scheduled payments due on or before their seller's today, earliest first, locked, as views; ones others
    hold are passed over."""
    seller_today = func.date(func.timezone(_VS.c.timezone, literal(now)))
    statement = (
        _PAYMENT_VIEW.where(_VP.c.status == PaymentStatus.SCHEDULED, _VP.c.scheduled_for <= seller_today)
        .order_by(_VP.c.scheduled_for, _VP.c.id)
        .limit(limit)
        .with_for_update(of=_VP, skip_locked=True)
    )
    return [_view(row, _PAYMENTS, _PARTIES) for row in session.connection().execute(statement).mappings()]


def count_payments(session: Session, account_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Payment).where(Payment.account_id == account_id))


def count_payments_with_method(session: Session, method_id: int, statuses: Sequence[str]) -> int:
    """How many payments made with this method are in these statuses."""
    return session.scalar(
        select(func.count())
        .select_from(Payment)
        .where(Payment.payment_method_id == method_id, Payment.status.in_(statuses))
    )


def get_parties(session: Session, method_id: int) -> tuple[PaymentMethod, Account, Seller]:
    """A payment's method, account and seller, by its method's id, in one query."""
    return tuple(
        session.execute(
            select(PaymentMethod, Account, Seller)
            .join(Account, Account.id == PaymentMethod.account_id)
            .join(Seller, Seller.id == Account.seller_id)
            .where(PaymentMethod.id == method_id)
        ).one()
    )


# A history row: the payment's own facts and how its method shows, never the method's Stripe ids.
_HISTORY = select(
    *[
        _PAYMENTS.c[name]
        for name in (
            "id",
            "status",
            "kind",
            "amount_minor",
            "refunded_minor",
            "currency",
            "scheduled_for",
            "created_at",
            "finished_at",
            "reference",
        )
    ],
    _METHODS.c.kind.label("method_kind"),
    _METHODS.c.brand,
    _METHODS.c.last4,
    _METHODS.c.bank_name,
).outerjoin(_METHODS, _METHODS.c.id == _PAYMENTS.c.payment_method_id)
_NUMBERS_OF = (
    select(
        _ALLOCATIONS.c.payment_id, func.array_agg(aggregate_order_by(_INVOICES.c.number, _ALLOCATIONS.c.id))
    )
    .join(_INVOICES, _INVOICES.c.id == _ALLOCATIONS.c.invoice_id)
    .where(_ALLOCATIONS.c.payment_id == any_(bindparam("ids", type_=_IDS)))
    .group_by(_ALLOCATIONS.c.payment_id)
)


def list_history_page(
    session: Session, account_id: int, chosen: HistoryFilter, sort: Sort, after: Cursor | None, limit: int
) -> list[Row]:
    """Up to limit of the account's payments the filter selects, in the sort's order, after the cursor's row.

    Keyset paging on (sort column, id), which ix_payments_account_created / _amount serve at any depth.
    """
    key, ids = _PAYMENTS.c[sort.column], _PAYMENTS.c.id
    statement = _HISTORY.where(_PAYMENTS.c.account_id == account_id, *_history_conditions(chosen))
    if after is not None:
        position = tuple_(key, ids)
        bound = tuple_(literal(after.key, key.type), literal(after.payment_id, BigInteger))
        statement = statement.where(position < bound if sort.descending else position > bound)
    order = (key.desc(), ids.desc()) if sort.descending else (key.asc(), ids.asc())
    return session.connection().execute(statement.order_by(*order).limit(limit)).all()


def list_invoice_numbers_of(session: Session, payment_ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
    """{payment id: numbers of the invoices it paid, in allocation order}; a payment with none is absent."""
    rows = session.connection().execute(_NUMBERS_OF, {"ids": list(payment_ids)}).all() if payment_ids else []
    return {payment_id: tuple(numbers) for payment_id, numbers in rows}


def _history_conditions(chosen: HistoryFilter) -> list[Any]:
    bounds = [
        (chosen.statuses, lambda v: _PAYMENTS.c.status.in_(v)),
        (chosen.method_kind, lambda v: _METHODS.c.kind == v),
        (chosen.created_from, lambda v: _PAYMENTS.c.created_at >= v),
        (chosen.created_until, lambda v: _PAYMENTS.c.created_at < v),
        (chosen.amount_min, lambda v: _PAYMENTS.c.amount_minor >= v),
        (chosen.amount_max, lambda v: _PAYMENTS.c.amount_minor <= v),
        (chosen.search, _search_condition),
    ]
    return [condition(value) for value, condition in bounds if value is not None]


def _search_condition(search: str) -> Any:
    terms = search_terms(search)
    numbers = (
        select(_ALLOCATIONS.c.id)
        .join(_INVOICES, _INVOICES.c.id == _ALLOCATIONS.c.invoice_id)
        .where(_ALLOCATIONS.c.payment_id == _PAYMENTS.c.id, _INVOICES.c.number.ilike(terms.pattern))
        .exists()
    )
    matches = [
        numbers,
        _PAYMENTS.c.reference.ilike(terms.pattern),
        _PAYMENTS.c.note.ilike(terms.pattern),
        _PAYMENTS.c.short_comment.ilike(terms.pattern),
    ]
    if terms.payment_id is not None:
        matches.append(_PAYMENTS.c.id == terms.payment_id)
    if terms.last4 is not None:
        matches.append(_METHODS.c.last4 == terms.last4)
    return or_(*matches)


def list_scheduled_payments(session: Session, account_id: int) -> list[Row]:
    """The account's scheduled payments as history rows, soonest first (then id)."""
    statement = _HISTORY.where(
        _PAYMENTS.c.account_id == account_id, _PAYMENTS.c.status == PaymentStatus.SCHEDULED
    ).order_by(_PAYMENTS.c.scheduled_for, _PAYMENTS.c.id)
    return session.connection().execute(statement).all()
