"""Invoices, and the allocations and credits that pay them."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    Row,
    String,
    and_,
    any_,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    null,
    or_,
    select,
    text,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, aliased

from db.models import Allocation, Credit, ExternalPaymentLine, Invoice, Payment
from db.queries._batch import _json
from tasks.domain.invoice_list import InvoiceFilter, Sort
from tasks.domain.invoices import HOLDING_STATE, PAYABLE_FLAGS, SETTLING_STATE
from tasks.domain.states import AllocationState, CreditState

_PAYMENTS, _INVOICES, _ALLOCATIONS, _CREDITS = (
    Payment.__table__,
    Invoice.__table__,
    Allocation.__table__,
    Credit.__table__,
)
_EXTERNAL_LINES = ExternalPaymentLine.__table__
_IDS = ARRAY(BigInteger)

# The statements of the payment and webhook hot paths are built once, with their values bound at
# execution: building a statement per call (and keying it for the compiled cache) cost more than
# running it. Lists go in as one array parameter, so the SQL text, and the server's prepared
# statement, is the same for any number of ids.

# The last look's view of a payment's reserved allocations beside their invoices as they stand now.
_LOCK_HELD_LINES = (
    select(
        _ALLOCATIONS.c.id.label("allocation_id"),
        _INVOICES.c.id.label("invoice_id"),
        _INVOICES.c.number,
        _ALLOCATIONS.c.amount_minor,
        _ALLOCATIONS.c.discount_minor,
        _INVOICES.c.voided,
        _INVOICES.c.customer_visible,
        _INVOICES.c.total_minor,
        _INVOICES.c.settled_minor,
    )
    .join(_ALLOCATIONS, _ALLOCATIONS.c.invoice_id == _INVOICES.c.id)
    .where(
        _ALLOCATIONS.c.payment_id == bindparam("payment_id"),
        _ALLOCATIONS.c.state == AllocationState.RESERVED,
    )
    .order_by(_INVOICES.c.id)
    .with_for_update(of=_INVOICES)
)
_INVOICES_WITH_CHILDREN = (
    select(_INVOICES)
    .where(
        or_(
            _INVOICES.c.id == any_(bindparam("ids", type_=_IDS)),
            _INVOICES.c.parent_id == any_(bindparam("ids", type_=_IDS)),
        )
    )
    .order_by(_INVOICES.c.id)
)
_LOCK_INVOICES_WITH_CHILDREN = _INVOICES_WITH_CHILDREN.with_for_update()
# Settled money per invoice: applied allocations (discounts included) and the lines of payments the
# seller's ERP recorded outside Remit, so every figure computed from this statement counts both.
_SLICES = union_all(
    select(
        _ALLOCATIONS.c.invoice_id,
        case(
            (
                _ALLOCATIONS.c.state == SETTLING_STATE,
                _ALLOCATIONS.c.amount_minor + _ALLOCATIONS.c.discount_minor,
            ),
            else_=0,
        ).label("settled"),
        case((_ALLOCATIONS.c.state == HOLDING_STATE, _PAYMENTS.c.status)).label("held"),
    )
    .join(_PAYMENTS, _PAYMENTS.c.id == _ALLOCATIONS.c.payment_id)
    .where(
        _ALLOCATIONS.c.invoice_id == any_(bindparam("ids", type_=_IDS)),
        _ALLOCATIONS.c.state.in_((SETTLING_STATE, HOLDING_STATE)),
    ),
    select(_EXTERNAL_LINES.c.invoice_id, _EXTERNAL_LINES.c.amount_minor, null()).where(
        _EXTERNAL_LINES.c.invoice_id == any_(bindparam("ids", type_=_IDS)),
        _EXTERNAL_LINES.c.as_credit.is_(False),  # kept as credit: it settles nothing
    ),
).subquery()
_STANDING = select(
    _SLICES.c.invoice_id, func.coalesce(func.sum(_SLICES.c.settled), 0), func.max(_SLICES.c.held)
).group_by(_SLICES.c.invoice_id)
# The status of the payment holding each invoice (its reserved allocations), for readers that take what
# settled it from invoices.settled_minor: the holds alone, without reading every applied allocation. The
# state is written into the statement, not bound, so every plan of it reads the small partial index of
# reserved allocations (uq_allocations_one_reserved_per_invoice), where one invoice has one at most.
_HOLDS = (
    select(_ALLOCATIONS.c.invoice_id, _PAYMENTS.c.status)
    .join(_PAYMENTS, _PAYMENTS.c.id == _ALLOCATIONS.c.payment_id)
    .where(
        _ALLOCATIONS.c.invoice_id == any_(bindparam("ids", type_=_IDS)),
        _ALLOCATIONS.c.state == literal_column(f"'{HOLDING_STATE}'"),
    )
)
_PAYABLE = [_INVOICES.c[name].is_(value) for name, value in PAYABLE_FLAGS.items()]
_MOVE_ALLOCATIONS_OF = text(
    "UPDATE allocations SET state = m.to_state, updated_at = now()"
    " FROM jsonb_to_recordset(CAST(:moves AS jsonb))"
    " AS m (payment_id bigint, from_state text, to_state text)"
    " WHERE allocations.payment_id = m.payment_id AND allocations.state = m.from_state"
    " AND allocations.payment_id = ANY(CAST(:ids AS bigint[]))"
    " RETURNING allocations.payment_id, allocations.invoice_id,"
    " (SELECT i.external_id FROM invoices i WHERE i.id = allocations.invoice_id) AS invoice_external_id,"
    " allocations.amount_minor, allocations.discount_minor, m.from_state, m.to_state"
)
_MOVE_CREDITS_OF = text(
    "UPDATE credits SET state = m.to_state, updated_at = now() FROM jsonb_to_recordset(CAST(:moves AS jsonb))"
    " AS m (payment_id bigint, from_state text, to_state text)"
    " WHERE credits.payment_id = m.payment_id AND credits.state = m.from_state"
    " AND credits.payment_id = ANY(CAST(:ids AS bigint[]))"
    " RETURNING credits.payment_id, credits.id AS credit_id, credits.amount_minor, credits.currency,"
    " m.from_state, m.to_state"
)
# Refunds reverse or reduce single allocations and credits: (id, state or amount) rows, as above.
_SET_SLICES = {
    table: text(
        f"UPDATE {table} SET state = CASE WHEN c.row ? 'state' THEN c.state ELSE {table}.state END,"
        f" amount_minor = CASE WHEN c.row ? 'amount_minor' THEN c.amount_minor ELSE {table}.amount_minor END,"
        f" updated_at = now() FROM jsonb_to_recordset(CAST(:changes AS jsonb))"
        f" AS c (id bigint, row jsonb, state text, amount_minor bigint) WHERE {table}.id = c.id"
        f" AND {table}.id = ANY(CAST(:ids AS bigint[])) RETURNING {table}.*"
    )
    for table in ("allocations", "credits")
}
_APPLIED_OF = (
    select(_ALLOCATIONS.c.payment_id, _ALLOCATIONS.c.id, _INVOICES.c.due_on, _ALLOCATIONS.c.amount_minor)
    .join(_INVOICES, _INVOICES.c.id == _ALLOCATIONS.c.invoice_id)
    .where(
        _ALLOCATIONS.c.payment_id == any_(bindparam("ids", type_=_IDS)),
        _ALLOCATIONS.c.state == AllocationState.APPLIED,
    )
    .order_by(_ALLOCATIONS.c.id)
)
_LOCK_AVAILABLE_CREDITS_OF = (
    select(_CREDITS.c.payment_id, _CREDITS.c.id, _CREDITS.c.amount_minor)
    .where(
        _CREDITS.c.payment_id == any_(bindparam("ids", type_=_IDS)), _CREDITS.c.state == CreditState.AVAILABLE
    )
    .order_by(_CREDITS.c.id)
    .with_for_update()
)


def lock_invoices(session: Session, invoice_ids: Sequence[int]) -> list[Invoice]:
    """Invoices locked FOR UPDATE in id order, so two payments never deadlock."""
    if not invoice_ids:
        return []
    statement = (
        select(Invoice)
        .where(Invoice.id.in_(sorted(set(invoice_ids))))
        .order_by(Invoice.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list(session.scalars(statement))


def list_reserved_holders(session: Session, invoice_ids: Sequence[int]) -> dict[int, int]:
    """{invoice id: id of the payment whose reserved allocation holds it} for those of these held."""
    if not invoice_ids:
        return {}
    rows = session.connection().execute(
        select(_ALLOCATIONS.c.invoice_id, _ALLOCATIONS.c.payment_id).where(
            _ALLOCATIONS.c.invoice_id == any_(bindparam("ids", type_=_IDS)),
            _ALLOCATIONS.c.state == AllocationState.RESERVED,
        ),
        {"ids": sorted(set(invoice_ids))},
    )
    return dict(rows.all())


def find_reserved_allocation(session: Session, payment_id: int, invoice_id: int) -> Row | None:
    """(id, amount_minor) of the payment's reserved allocation on the invoice, or None."""
    return (
        session.connection()
        .execute(
            select(_ALLOCATIONS.c.id, _ALLOCATIONS.c.amount_minor).where(
                _ALLOCATIONS.c.payment_id == payment_id,
                _ALLOCATIONS.c.invoice_id == invoice_id,
                _ALLOCATIONS.c.state == AllocationState.RESERVED,
            )
        )
        .first()
    )


def count_reserved(session: Session, payment_id: int) -> int:
    """How many invoices the payment still holds."""
    return session.connection().scalar(
        select(func.count()).where(
            _ALLOCATIONS.c.payment_id == payment_id, _ALLOCATIONS.c.state == AllocationState.RESERVED
        )
    )


def lock_held_lines(session: Session, payment_id: int) -> list[Row]:
    """The payment's reserved allocations with their invoices' figures now (what settled each included),
    invoices locked in id order."""
    return list(session.connection().execute(_LOCK_HELD_LINES, {"payment_id": payment_id}))


def resize_reserved_allocations(
    session: Session, amounts: dict[int, tuple[int, int]], released: Sequence[int]
) -> None:
    """Reserved allocations lowered before any money moved ({id: (amount, discount)}; what they pay is what
    they were paid), or released."""
    for allocation_id, (amount, discount) in amounts.items():
        session.connection().execute(
            _ALLOCATIONS.update()
            .where(_ALLOCATIONS.c.id == allocation_id, _ALLOCATIONS.c.state == AllocationState.RESERVED)
            .values(amount_minor=amount, paid_minor=amount, discount_minor=discount, updated_at=func.now())
        )
    if released:
        session.connection().execute(
            _ALLOCATIONS.update()
            .where(_ALLOCATIONS.c.id.in_(list(released)), _ALLOCATIONS.c.state == AllocationState.RESERVED)
            .values(state=AllocationState.RELEASED, updated_at=func.now())
        )


def list_invoices_with_children(session: Session, invoice_ids: Sequence[int]) -> list[Row]:
    """The invoices and the children of any parent among them, as rows in id order."""
    return list(session.connection().execute(_INVOICES_WITH_CHILDREN, {"ids": list(invoice_ids)}))


def lock_invoices_with_children(session: Session, invoice_ids: Sequence[int]) -> list[Row]:
    """list_invoices_with_children, locked FOR UPDATE."""
    return list(session.connection().execute(_LOCK_INVOICES_WITH_CHILDREN, {"ids": list(invoice_ids)}))


def list_standing(session: Session, invoice_ids: Sequence[int]) -> dict[int, tuple[int, str | None]]:
    """For each invoice with allocations or external payment lines: (money applied, discounts and external
    payments included; status of the payment holding it).

    One statement for both, since every payment request needs both; an invoice with neither is absent.
    """
    if not invoice_ids:
        return {}
    rows = session.connection().execute(_STANDING, {"ids": list(invoice_ids)})
    return {invoice_id: (int(settled), held) for invoice_id, settled, held in rows}


def list_holds(session: Session, invoice_ids: Sequence[int]) -> dict[int, str]:
    """{invoice id: status of the payment holding it} for the held ones among these invoices."""
    if not invoice_ids:
        return {}
    return dict(tuple(row) for row in session.connection().execute(_HOLDS, {"ids": list(invoice_ids)}))


def list_payable_invoices(session: Session, account_id: int) -> list[Invoice]:
    """Visible, unvoided invoices of the account that are not parents of other invoices."""
    parent = select(Invoice.parent_id).where(Invoice.parent_id.is_not(None), Invoice.account_id == account_id)
    return list(
        session.scalars(
            select(Invoice)
            .where(Invoice.account_id == account_id, *_PAYABLE, Invoice.id.not_in(parent))
            .order_by(Invoice.id)
        )
    )


def list_allocation_lines(session: Session, payment_id: int) -> list[tuple[int, str, int, int]]:
    """(invoice id, invoice number, amount, discount) per allocation of the payment, in allocation order."""
    return [
        tuple(row)
        for row in session.execute(
            select(Allocation.invoice_id, Invoice.number, Allocation.amount_minor, Allocation.discount_minor)
            .join(Invoice, Invoice.id == Allocation.invoice_id)
            .where(Allocation.payment_id == payment_id)
            .order_by(Allocation.id)
        )
    ]


def move_allocations_of(session: Session, moves: Sequence[tuple[int, str, str]]) -> list[Row]:
    """Move many payments' allocations: (payment id, from state, to state) each; the rows moved
    (payment_id, invoice_id, invoice_external_id, amount_minor, discount_minor, from_state, to_state)."""
    params = {"moves": _moves(moves), "ids": [m[0] for m in moves]}
    return list(session.connection().execute(_MOVE_ALLOCATIONS_OF, params))


def move_credits_of(session: Session, moves: Sequence[tuple[int, str, str]]) -> list[Row]:
    """Move many payments' credits: (payment id, from state, to state) each; the rows moved
    (payment_id, credit_id, amount_minor, currency, from_state, to_state)."""
    params = {"moves": _moves(moves), "ids": [m[0] for m in moves]}
    return list(session.connection().execute(_MOVE_CREDITS_OF, params))


def _moves(moves: Sequence[tuple[int, str, str]]) -> str:
    return _json([{"payment_id": m[0], "from_state": m[1], "to_state": m[2]} for m in moves])


def update_allocations(session: Session, changes: dict[int, dict[str, Any]]) -> list[Row]:
    """Set single allocations' state and/or amount: {allocation id: {"state": ..., "amount_minor": ...}};
    the allocations as changed."""
    return _set_slices(session, "allocations", changes)


def update_credits(session: Session, changes: dict[int, dict[str, Any]]) -> list[Row]:
    """Set single credits' state and/or amount: {credit id: {"state": ..., "amount_minor": ...}}; the
    credits as changed."""
    return _set_slices(session, "credits", changes)


def _set_slices(session: Session, table: str, changes: dict[int, dict[str, Any]]) -> list[Row]:
    rows = [
        {**values, "id": row_id, "row": dict.fromkeys(values, True)} for row_id, values in changes.items()
    ]
    params = {"changes": _json(rows), "ids": list(changes)}
    return list(session.connection().execute(_SET_SLICES[table], params))


def list_applied_allocations_of(session: Session, payment_ids: Sequence[int]) -> dict[int, list[Row]]:
    """(payment_id, id, due_on, amount_minor) of the payments' applied allocations: {payment id: rows}."""
    found: dict[int, list[Row]] = {pid: [] for pid in payment_ids}
    for row in session.connection().execute(_APPLIED_OF, {"ids": list(payment_ids)}):
        found[row.payment_id].append(row)
    return found


def lock_available_credits_of(session: Session, payment_ids: Sequence[int]) -> dict[int, list[Row]]:
    """{payment id: (payment_id, id, amount_minor) of its available credit, oldest first}, locked."""
    found: dict[int, list[Row]] = {pid: [] for pid in payment_ids}
    if payment_ids:
        for row in session.connection().execute(_LOCK_AVAILABLE_CREDITS_OF, {"ids": list(payment_ids)}):
            found[row.payment_id].append(row)
    return found


def sum_available_credit(session: Session, account_id: int, currency: str) -> int:
    """The account's available credit in this currency, in minor units."""
    return session.scalar(
        select(func.coalesce(func.sum(Credit.amount_minor), 0)).where(
            Credit.account_id == account_id,
            Credit.currency == currency,
            Credit.state == CreditState.AVAILABLE,
        )
    )


def list_visible_invoices(session: Session, account_id: int) -> list[Row]:
    """The account's customer-visible invoices, due date first, as plain rows."""
    statement = (
        select(_INVOICES)
        .where(_INVOICES.c.account_id == account_id, _INVOICES.c.customer_visible.is_(True))
        .order_by(_INVOICES.c.due_on, _INVOICES.c.number)
    )
    return session.connection().execute(statement).all()


def insert_credit(session: Session, **values: Any) -> None:
    """A new credit row, written at once (nothing reads it back in the transaction)."""
    session.connection().execute(_CREDITS.insert().values(**values))


def list_listed_invoices(session: Session, account_id: int, chosen: InvoiceFilter) -> list[Row]:
    """The account's customer-visible invoices that the filter's stored conditions select (due dates,
    layout, site, search); status and overdue are derived, so the caller filters on them. Plain rows:
    a list reads thousands, and mapped objects cost several times what the rows do."""
    statement = _listed_statement(_shape(chosen))
    return session.connection().execute(statement, _listed_params(account_id, chosen)).all()


def list_listed_page(
    session: Session,
    account_id: int,
    chosen: InvoiceFilter,
    order: Sort,
    after: tuple[Any, int] | None,
    limit: int,
) -> list[Row]:
    """Up to limit of what list_listed_invoices selects, in the sort's order (then id, same direction),
    after the (key, id) position. A stored column's order is a keyset page on the index; the amount owed
    is computed for the whole selection in the same statement (_owing), and only the page's rows are
    read in full. Numbers compare by code point (COLLATE "C"), as Python compares them."""
    params = _listed_params(account_id, chosen) | {"limit": limit}
    if after is not None:
        params |= {"after_key": after[0], "after_id": after[1]}
    statement = _page_statement(_shape(chosen), order.field, order.descending, after is not None)
    return session.connection().execute(statement, params).all()


# A list's statements are built once per shape of filter and sort, their values bound at execution:
# building the owed sort's statement cost a sixth of the page.
_Shape = tuple[str | None, bool, bool, bool, bool]


def _shape(chosen: InvoiceFilter) -> _Shape:
    present = (chosen.due_from, chosen.due_to, chosen.site, chosen.search_pattern)
    return (chosen.layout, *(value is not None for value in present))


def _listed_params(account_id: int, chosen: InvoiceFilter) -> dict[str, Any]:
    values = {
        "account_id": account_id,
        "due_from": chosen.due_from,
        "due_to": chosen.due_to,
        "site": chosen.site.lower() if chosen.site is not None else None,
        "pattern": chosen.search_pattern,
    }
    return {name: value for name, value in values.items() if value is not None}


@functools.cache
def _listed_statement(shape: _Shape) -> Any:
    return select(_INVOICES).where(*_listed_conditions(shape)).order_by(_INVOICES.c.id)


@functools.cache
def _page_statement(shape: _Shape, field: str, descending: bool, paged: bool) -> Any:
    conditions = _listed_conditions(shape)
    if field == "owed_minor":
        owing = _owing(conditions)
        column, key_type, ident, source = owing.c.owed_minor, BigInteger(), owing.c.id, select(owing)
    else:
        column = Invoice.number.collate("C") if field == "number" else getattr(Invoice, field)
        key_type, ident = getattr(Invoice, field).type, Invoice.id
        source = select(_INVOICES).where(*conditions)
    if paged:
        bound = tuple_(bindparam("after_key", type_=key_type), bindparam("after_id", type_=BigInteger))
        position = tuple_(column, ident)
        source = source.where(position < bound if descending else position > bound)
    ranked = (column.desc(), ident.desc()) if descending else (column.asc(), ident.asc())
    page = source.order_by(*ranked).limit(bindparam("limit", type_=BigInteger))
    if field != "owed_minor":
        return page
    # Only the page's rows are read in full, in the page's order.
    page = page.subquery("page")
    ranked = (page.c.owed_minor.desc(), page.c.id.desc()) if descending else (page.c.owed_minor, page.c.id)
    return select(_INVOICES, page.c.owed_minor).join(page, page.c.id == _INVOICES.c.id).order_by(*ranked)


def _owing(conditions: list[Any]) -> Any:
    """(id, owed_minor) of each selected invoice, by tasks.domain.invoices.invoice_state's rule as the
    list applies it: a parent with visible children owes what its unvoided children owe together, nothing
    when all are voided; a voided invoice owes nothing; never below zero. What settled an invoice is its
    settled_minor, which PostgreSQL keeps equal to _SLICES' sum (applied allocations with their discounts,
    outside lines not kept as credit) in the statement moving them (migration 0014). Children are the
    account's own (sync refuses a parent on another account), so one pass over the account's invoices
    finds them, with no look-up per selected row."""
    account_id = bindparam("account_id", type_=BigInteger)
    child = _INVOICES.alias("child")
    live = child.c.voided.is_(False)
    family = (
        select(
            child.c.parent_id,
            func.count().filter(live).label("live"),
            # Sums as bigint, as every amount is: numeric arithmetic over a whole account costs a tenth more.
            cast(func.coalesce(func.sum(child.c.total_minor).filter(live), 0), BigInteger).label("total"),
            cast(func.coalesce(func.sum(child.c.settled_minor).filter(live), 0), BigInteger).label("settled"),
        )
        .where(
            child.c.account_id == account_id,
            child.c.parent_id.is_not(None),
            child.c.customer_visible.is_(True),
        )
        .group_by(child.c.parent_id)
        .subquery("family")
    )
    owed = case(
        (or_(Invoice.voided.is_(True), family.c.live == 0), 0),
        (family.c.parent_id.is_not(None), func.greatest(family.c.total - family.c.settled, 0)),
        else_=func.greatest(Invoice.total_minor - Invoice.settled_minor, 0),
    )
    return (
        select(Invoice.id, owed.label("owed_minor"))
        .outerjoin(family, and_(family.c.parent_id == Invoice.id, Invoice.parent_id.is_(None)))
        .where(*conditions)
        .subquery("owing")
    )


def _listed_conditions(shape: _Shape) -> list[Any]:
    """The stored conditions of a filter of this shape, its values bound by name (_listed_params)."""
    layout, due_from, due_to, site, search = shape
    child = aliased(Invoice)
    has_children = (
        select(child.id).where(child.parent_id == Invoice.id, child.customer_visible.is_(True)).exists()
    )
    conditions = [
        Invoice.account_id == bindparam("account_id", type_=BigInteger),
        Invoice.customer_visible.is_(True),
    ]
    if due_from:
        conditions.append(Invoice.due_on >= bindparam("due_from", type_=Date))
    if due_to:
        conditions.append(Invoice.due_on <= bindparam("due_to", type_=Date))
    if layout == "single":
        conditions += [Invoice.parent_id.is_(None), ~has_children]
    elif layout == "multi":
        conditions.append(or_(Invoice.parent_id.is_not(None), has_children))
    if site:
        conditions.append(func.lower(Invoice.site_name) == bindparam("site", type_=String))
    if search:
        pattern = bindparam("pattern", type_=String)
        conditions.append(or_(Invoice.number.ilike(pattern), Invoice.site_name.ilike(pattern)))
    return conditions


def list_visible_children(session: Session, parent_ids: Sequence[int]) -> list[Row]:
    """The customer-visible children of these invoices, in id order, as plain rows."""
    if not parent_ids:
        return []
    # One array parameter, not an IN list: a whole account's parents are thousands of ids.
    statement = select(_INVOICES).where(
        _INVOICES.c.parent_id == any_(bindparam("parents", sorted(set(parent_ids)), type_=_IDS)),
        _INVOICES.c.customer_visible.is_(True),
    )
    return session.connection().execute(statement.order_by(_INVOICES.c.id)).all()


def list_reversed_allocations(session: Session, payment_id: int, ids: Sequence[int] | None) -> list[Row]:
    """(id, invoice_id, amount_minor, discount_minor) of the payment's reversed allocations (only those
    among ids, when given), in id order."""
    statement = (
        select(Allocation.id, Allocation.invoice_id, Allocation.amount_minor, Allocation.discount_minor)
        .where(Allocation.payment_id == payment_id, Allocation.state == AllocationState.REVERSED)
        .order_by(Allocation.id)
    )
    if ids is not None:
        statement = statement.where(Allocation.id.in_(list(ids)))
    return list(session.execute(statement))


def lock_room_on_invoices(session: Session, invoice_ids: Sequence[int]) -> dict[int, int]:
    """What each invoice can still take, locked in id order: its total less every claim on it (applied or
    reserved allocations with their discounts, payments recorded outside Remit); 0 when voided."""
    invoices = lock_invoices(session, invoice_ids)
    claims = dict(
        session.execute(
            select(
                _ALLOCATIONS.c.invoice_id,
                func.sum(_ALLOCATIONS.c.amount_minor + _ALLOCATIONS.c.discount_minor),
            )
            .where(
                _ALLOCATIONS.c.invoice_id.in_([i.id for i in invoices]),
                _ALLOCATIONS.c.state.in_((AllocationState.APPLIED, AllocationState.RESERVED)),
            )
            .group_by(_ALLOCATIONS.c.invoice_id)
        ).all()
    )
    external = dict(
        session.execute(
            select(_EXTERNAL_LINES.c.invoice_id, func.sum(_EXTERNAL_LINES.c.amount_minor))
            .where(_EXTERNAL_LINES.c.invoice_id.in_([i.id for i in invoices]))
            .group_by(_EXTERNAL_LINES.c.invoice_id)
        ).all()
    )
    return {
        i.id: 0 if i.voided else i.total_minor - int(claims.get(i.id, 0)) - int(external.get(i.id, 0))
        for i in invoices
    }
