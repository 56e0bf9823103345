"""The row locks a payment's writer takes, seen from another connection that tries to take them too."""

from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import text

from db.queries import accounts as account_rows
from db.queries import payments as payment_rows
from tests import factories
from tests.conftest import libpq_url

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


def _can_lock(database_url: str, table: str, row_id: int, mode: str) -> bool:
    """Whether another connection gets this row lock at once."""
    with psycopg.connect(libpq_url(database_url)) as other:
        try:
            other.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR {mode} NOWAIT", (row_id,))
        except psycopg.errors.LockNotAvailable:
            return False
        return True


@pytest.fixture()
def payment(db):
    session = db()
    account = factories.account(session)
    row = factories.payment(session, account, factories.method(session, account), status="pending")
    session.commit()
    yield session, account.id, row.id
    session.close()


def test_a_payment_is_locked_with_its_account_key_share_in_one_statement(payment, database_url):
    session, account_id, payment_id = payment
    view = payment_rows.lock_payment_in_order(session, payment_id)
    assert (view.id, view.account.id) == (payment_id, account_id)
    assert not _can_lock(database_url, "payments", payment_id, "KEY SHARE")
    # KEY SHARE on the account: a money request (FOR UPDATE) waits; other movements' own marks do not.
    assert not _can_lock(database_url, "accounts", account_id, "UPDATE")
    assert _can_lock(database_url, "accounts", account_id, "NO KEY UPDATE")
    session.rollback()
    assert _can_lock(database_url, "accounts", account_id, "UPDATE")
    assert payment_rows.lock_payment_in_order(session, 987_654) is None


def test_a_new_transaction_locks_the_account_again_when_marking_it_stale(payment, database_url):
    # The account is already stale, so the marking UPDATE itself matches nothing and locks nothing: only
    # the KEY SHARE lock keeps a recompute from clearing the mark before this movement commits.
    session, account_id, payment_id = payment
    session.execute(
        text("UPDATE accounts SET balance_stale_since = :now WHERE id = :id"), {"now": NOW, "id": account_id}
    )
    session.commit()
    payment_rows.lock_payment_in_order(session, payment_id)
    assert account_rows.mark_balances_stale(session, [account_id], NOW) == []  # held already: no statement
    assert not _can_lock(database_url, "accounts", account_id, "UPDATE")
    session.commit()
    assert _can_lock(database_url, "accounts", account_id, "UPDATE")
    assert (
        account_rows.mark_balances_stale(session, [account_id], NOW) == []
    )  # a new transaction: locked anew
    assert not _can_lock(database_url, "accounts", account_id, "UPDATE")
    session.rollback()
