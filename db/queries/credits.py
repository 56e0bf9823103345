"""Credit on accounts: the available rows a payment spends, and which credit went to which invoice."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, func, insert, literal, select, update
from sqlalchemy.orm import Session

from db.models import Credit
from tasks.domain.credit import Spent
from tasks.domain.states import CreditState

_CREDITS = Credit.__table__
_SPENT_STATES = (CreditState.RESERVED, CreditState.APPLIED)


def lock_available_credits(session: Session, account_id: int, currency: str) -> list[Row]:
    """(id, amount_minor) of the account's available credit in this currency, oldest first, locked."""
    statement = (
        select(_CREDITS.c.id, _CREDITS.c.amount_minor)
        .where(
            _CREDITS.c.account_id == account_id,
            _CREDITS.c.currency == currency,
            _CREDITS.c.state == CreditState.AVAILABLE,
        )
        .order_by(_CREDITS.c.created_at, _CREDITS.c.id)
        .with_for_update()
    )
    return list(session.connection().execute(statement))


def spend_credits(session: Session, payment_id: int, spent: Sequence[Spent]) -> None:
    """Write what a payment spends: each credit row becomes its first piece (reserved for the payment on
    that invoice); further pieces and what stays available are new rows of the same origin and age."""
    for credit in spent:
        (first_invoice, first_amount), *more = credit.pieces
        origin = session.connection().execute(select(_CREDITS).where(_CREDITS.c.id == credit.credit_id)).one()
        session.connection().execute(
            update(_CREDITS)
            .where(_CREDITS.c.id == credit.credit_id)
            .values(
                amount_minor=first_amount,
                state=CreditState.RESERVED,
                used_by_payment_id=payment_id,
                applied_invoice_id=first_invoice,
                updated_at=func.now(),
            )
        )
        rows = [_piece(origin, CreditState.RESERVED, a, payment_id, i) for i, a in more]
        if credit.left_minor:
            rows.append(_piece(origin, CreditState.AVAILABLE, credit.left_minor, None, None))
        if rows:
            session.connection().execute(insert(_CREDITS), rows)


def _piece(origin: Row, state: str, amount: int, payment_id: int | None, invoice_id: int | None) -> dict:
    return dict(
        account_id=origin.account_id,
        payment_id=origin.payment_id,
        currency=origin.currency,
        note=origin.note,
        created_at=origin.created_at,
        amount_minor=amount,
        state=state,
        used_by_payment_id=payment_id,
        applied_invoice_id=invoice_id,
    )


def move_spent_credits_of(session: Session, moves: Sequence[tuple[int, str, str]]) -> list[Row]:
    """The credit spent by payments, moved: (spending payment id, from state, to state) each; the rows
    moved as (payment_id: the spending payment, credit_id, amount_minor, currency, from_state, to_state)."""
    moved = []
    for payment_id, from_state, to_state in moves:
        statement = (
            update(_CREDITS)
            .where(_CREDITS.c.used_by_payment_id == payment_id, _CREDITS.c.state == from_state)
            .values(state=to_state, updated_at=func.now())
            .returning(
                _CREDITS.c.used_by_payment_id.label("payment_id"),
                _CREDITS.c.id.label("credit_id"),
                _CREDITS.c.amount_minor,
                _CREDITS.c.currency,
                literal(from_state).label("from_state"),
                _CREDITS.c.state.label("to_state"),
            )
        )
        moved += session.connection().execute(statement).all()
    return moved


def list_reserved_on(session: Session, payment_id: int, invoice_id: int) -> list[Row]:
    """(id, amount_minor) of the credit the payment holds on one invoice, newest first, locked."""
    statement = (
        select(_CREDITS.c.id, _CREDITS.c.amount_minor)
        .where(
            _CREDITS.c.used_by_payment_id == payment_id,
            _CREDITS.c.applied_invoice_id == invoice_id,
            _CREDITS.c.state == CreditState.RESERVED,
        )
        .order_by(_CREDITS.c.created_at.desc(), _CREDITS.c.id.desc())
        .with_for_update()
    )
    return list(session.connection().execute(statement))


def release_credits(session: Session, credit_ids: Sequence[int]) -> None:
    """Reserved credit rows back to available (they keep the payment and invoice they last went to)."""
    if credit_ids:
        session.connection().execute(
            update(_CREDITS)
            .where(_CREDITS.c.id.in_(list(credit_ids)), _CREDITS.c.state == CreditState.RESERVED)
            .values(state=CreditState.AVAILABLE, updated_at=func.now())
        )


def split_reserved(session: Session, credit_id: int, kept_minor: int) -> None:
    """Keep kept_minor of a reserved credit row reserved; the rest becomes a new available row."""
    origin = session.connection().execute(select(_CREDITS).where(_CREDITS.c.id == credit_id)).one()
    session.connection().execute(
        update(_CREDITS)
        .where(_CREDITS.c.id == credit_id)
        .values(amount_minor=kept_minor, updated_at=func.now())
    )
    rest = _piece(origin, CreditState.AVAILABLE, origin.amount_minor - kept_minor, None, None)
    session.connection().execute(insert(_CREDITS), [rest])


def sum_spent_by_origin(session: Session, payment_ids: Sequence[int]) -> dict[int, int]:
    """{payment id: its credit that other payments spent (reserved or applied)}; absent if none."""
    if not payment_ids:
        return {}
    rows = session.connection().execute(
        select(_CREDITS.c.payment_id, func.sum(_CREDITS.c.amount_minor))
        .where(_CREDITS.c.payment_id.in_(list(payment_ids)), _CREDITS.c.state.in_(_SPENT_STATES))
        .group_by(_CREDITS.c.payment_id)
    )
    return {payment_id: int(total) for payment_id, total in rows}


def sum_spent_per_invoice(session: Session, payment: Any) -> dict[int, int]:
    """{invoice id: credit the payment spent on it}. Credit is spent on invoices only by a payment that
    records using it (credit_used_minor, as the ledger moves it): for any other nothing is read."""
    if not payment.credit_used_minor:
        return {}
    statement = (
        select(_CREDITS.c.applied_invoice_id, func.sum(_CREDITS.c.amount_minor))
        .where(_CREDITS.c.used_by_payment_id == payment.id, _CREDITS.c.state.in_(_SPENT_STATES))
        .group_by(_CREDITS.c.applied_invoice_id)
    )
    return {invoice_id: int(total) for invoice_id, total in session.connection().execute(statement)}
