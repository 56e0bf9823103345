"""Accounts and their sellers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from db.models import Account, BalanceDrift, Seller
from db.queries._locks import held_accounts, note_held
from db.queries._views import _view

_ACCOUNTS, _SELLERS = Account.__table__, Seller.__table__
_LOCK_ACCOUNT = (
    select(Account, Seller)
    .join(Seller, Seller.id == Account.seller_id)
    .where(Account.id == bindparam("id"))
    .with_for_update(of=Account)
    .execution_options(populate_existing=True)
)
_LOCK_ACCOUNT_ROW = (
    select(_ACCOUNTS, *[column.label(f"seller__{column.name}") for column in _SELLERS.c])
    .join(_SELLERS, _SELLERS.c.id == _ACCOUNTS.c.seller_id)
    .where(_ACCOUNTS.c.id == bindparam("id"))
    .with_for_update(of=_ACCOUNTS)
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


# The full pass takes the same row lock its UPDATE would, but in id order (an UPDATE alone takes them in the
# table's physical order): a batch marking its accounts in id order then waits on it, or it on the batch, and
# never both. A row marked while the pass waited on it is re-read and left out.
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


def mark_balance_stale(session: Session, account_id: int, now: datetime) -> bool:
    """Flag the account's figures for recomputation, locking the account either way; True when this call set
    the flag."""
    return bool(mark_balances_stale(session, [account_id], now))


def lock_accounts_shared(session: Session, account_ids: Sequence[int]) -> None:
    """Lock the accounts FOR KEY SHARE in id order: a money movement's first lock, beside other movements
    of the account and ahead of a money request (FOR UPDATE) or a recompute. Nothing is sent when the
    transaction holds them all already (db.queries._locks)."""
    if set(account_ids) <= held_accounts(session):
        return
    session.connection().execute(_LOCK_FOR_STALE, {"ids": list(account_ids)})
    note_held(session, account_ids)


def mark_balances_stale(session: Session, account_ids: Sequence[int], now: datetime) -> list[int]:
    """Flag the accounts' figures for recomputation, locking each (in id order) either way; returns the ids
    this call newly flagged."""
    lock_accounts_shared(session, account_ids)
    return list(session.connection().execute(_MARK_STALE, {"ids": list(account_ids), "now": now}).scalars())


def find_seller(session: Session, seller_id: int) -> Seller | None:
    return session.get(Seller, seller_id)


def list_due_stale_accounts(session: Session, now: datetime, grace: timedelta, limit: int) -> list[int]:
    """Ids of accounts flagged stale longer than grace ago, longest first."""
    return list(
        session.scalars(
            select(Account.id)
            .where(Account.balance_stale_since < now - grace)
            .order_by(Account.balance_stale_since)
            .limit(limit)
        ).all()
    )


def find_account(session: Session, account_id: int) -> Account | None:
    return session.get(Account, account_id)


def update_stripe_customer(session: Session, account_id: int, customer_id: str) -> str:
    """Give the account this Stripe customer unless it has one; return the one it has now."""
    session.execute(
        update(Account)
        .where(Account.id == account_id, Account.stripe_customer_id.is_(None))
        .values(stripe_customer_id=customer_id)
    )
    return session.get(Account, account_id).stripe_customer_id


def insert_balance_drift(session: Session, **values: object) -> None:
    """A balance_drifts row: the account, when it was found, the stored figures (before) and the ledger's."""
    session.add(BalanceDrift(**values))


def count_drifted_accounts(session: Session, since: datetime) -> int:
    """Accounts with drift found since then."""
    return session.scalar(
        select(func.count(func.distinct(BalanceDrift.account_id))).where(BalanceDrift.found_at >= since)
    )
