"""Balances are recomputed from the ledger after every money movement, coalesced per account."""

from datetime import timedelta

from db.models import Account
from tasks import accounts, api, execution
from tests.helpers import queued_messages


def _account(shop):
    with shop.db() as session:
        return session.get(Account, shop.account_id)


def test_payment_marks_the_account_stale_and_one_nudge_is_sent(shop, emulator, broker):
    api.pay_invoices(shop.account_id, shop.invoices[:1], shop.methods["visa"], "a", now=shop.now)
    api.pay_invoices(shop.account_id, shop.invoices[1:2], shop.methods["visa"], "b", now=shop.now)
    assert _account(shop).balance_stale_since is not None
    assert [m.args for m in queued_messages(broker, "balances")] == [(shop.account_id,)]


def test_recompute_follows_the_ledger_through_a_payment(shop, emulator):
    total = sum(10_000 + n * 1_000 for n in range(5))
    receipt = api.pay_invoices(shop.account_id, shop.invoices[:2], shop.methods["visa"], "a", now=shop.now)
    assert accounts.recompute_balance(shop.account_id, shop.now)
    account = _account(shop)
    assert (account.balance_minor, account.pending_minor) == (total, receipt.amount_minor)
    assert account.balance_stale_since is None
    assert not accounts.recompute_balance(shop.account_id, shop.now)  # not stale: nothing to do

    execution.execute_payment(receipt.payment_id, shop.now)
    assert accounts.recompute_balance(shop.account_id, shop.now)
    account = _account(shop)
    assert (account.balance_minor, account.pending_minor) == (total - receipt.amount_minor, 0)


def test_overview_reports_overdue_scheduled_and_credit(shop, emulator):
    later = shop.now + timedelta(days=12)  # Dec 4 at the seller: the invoices due Dec 1-3 are overdue
    api.pay_invoices(shop.account_id, shop.invoices[4:5], shop.methods["visa"], "s",
                     pay_on=(later + timedelta(days=3)).date(), now=later)
    deposit = api.make_deposit(shop.account_id, 5_000, shop.methods["visa"], "d", now=later)
    execution.execute_payment(deposit.payment_id, later)
    overview = api.account_overview(shop.account_id, now=later)
    assert overview.balance_minor == sum(10_000 + n * 1_000 for n in range(5))
    assert overview.overdue_minor == 10_000 + 11_000 + 12_000
    assert overview.scheduled_minor == 14_000
    assert overview.credit_minor == 5_000
    assert overview.payment_count == 2


def test_sweeper_nudges_accounts_left_stale(shop, broker):
    with shop.db() as session:
        session.get(Account, shop.account_id).balance_stale_since = shop.now - timedelta(minutes=5)
        session.commit()
    broker.flush_all()
    assert accounts.sweep_stale_balances(shop.now) == {"stale": 1}
    assert [m.args for m in queued_messages(broker, "balances")] == [(shop.account_id,)]
    assert accounts.sweep_stale_balances(shop.now - timedelta(minutes=10)) == {"stale": 0}
