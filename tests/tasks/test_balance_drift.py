"""Drift: stored figures that disagree with the ledger though no money movement marked the account."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from db.models import Account, BalanceDrift, Invoice
from db.queries import accounts as account_rows
from tasks.flows import balances
from tests import factories

NOW = datetime(2026, 12, 5, 15, 0, tzinfo=UTC)


def computed_account(db) -> tuple[int, int]:
    """An account owing one 10,000 invoice, its figures stored an hour ago; (account id, invoice id)."""
    with db() as session, session.begin():
        account = factories.account(session)
        invoice = factories.invoice(session, account, 10_000, due_on=NOW.date() + timedelta(days=3))
        account.balance_stale_since = NOW - timedelta(hours=2)
        ids = account.id, invoice.id
    assert balances.recompute_balance(ids[0], NOW - timedelta(hours=1))
    return ids


def drifts(db) -> list[tuple[int, dict, dict]]:
    with db() as session:
        return [(d.account_id, d.before, d.after) for d in session.scalars(select(BalanceDrift))]


def test_a_stored_figure_nobody_marked_is_recorded_as_drift_and_put_right(db):
    account_id, _ = computed_account(db)
    with db() as session, session.begin():  # a write outside every money path
        session.execute(update(Account).where(Account.id == account_id).values(balance_minor=7_000))
    assert balances.recompute_all_balances(NOW) == {"recomputed": 1, "drifted": 1}
    [(found_for, before, after)] = drifts(db)
    assert (found_for, before["balance_minor"], after["balance_minor"]) == (account_id, 7_000, 10_000)
    with db() as session:
        assert session.get(Account, account_id).balance_minor == 10_000
        # The dashboard's and /metrics' count of the last hour.
        assert account_rows.count_drifted_accounts(session, since=NOW - timedelta(hours=1)) == 1
    assert balances.recompute_all_balances(NOW + timedelta(minutes=30)) == {"recomputed": 1, "drifted": 0}


def test_figures_that_agree_with_the_ledger_record_nothing_even_when_a_due_date_passed(db):
    account_id, invoice_id = computed_account(db)
    later = NOW + timedelta(days=5)  # the invoice fell due meanwhile: overdue changes with the date alone
    assert balances.recompute_all_balances(later) == {"recomputed": 1, "drifted": 0}
    assert drifts(db) == []
    with db() as session:
        assert session.get(Account, account_id).overdue_minor == 10_000


def test_money_moved_since_the_figures_were_stored_is_not_drift(db):
    account_id, invoice_id = computed_account(db)
    with db() as session, session.begin():  # a money movement: the ledger changes and the account is marked
        session.get(Invoice, invoice_id).total_minor = 8_000
        assert account_rows.mark_balances_stale(session, [account_id], NOW) == [account_id]
    assert balances.recompute_all_balances(NOW) == {"recomputed": 1, "drifted": 0}
    assert drifts(db) == []
    with db() as session:
        account = session.get(Account, account_id)
        assert (account.balance_minor, account.balance_stale_since) == (8_000, None)
