"""Balances are recomputed from the ledger after every money movement, coalesced per account."""

from datetime import timedelta

import pytest

from db.models import Account
from db.queries import accounts as account_rows
from db.queries import payments as payment_rows
from tasks import api
from tasks.flows import balances as accounts
from tasks.flows import payments as execution
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
    api.pay_invoices(
        shop.account_id,
        shop.invoices[4:5],
        shop.methods["visa"],
        "s",
        pay_on=(later + timedelta(days=3)).date(),
        now=later,
    )
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


def _lock_waiters(db) -> int:
    from sqlalchemy import text

    with db() as session:
        return session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()"
            )
        )


def test_recompute_waits_for_an_uncommitted_transition_on_an_account_already_stale(shop, emulator):
    import threading
    import time

    from tasks.domain.states import PaymentStatus
    from tasks.flows import ledger

    receipt = api.pay_invoices(
        shop.account_id,
        shop.invoices[:1],
        shop.methods["visa"],
        "k1",
        pay_on=shop.today + timedelta(days=10),
        now=shop.now,
    )
    assert accounts.recompute_balance(shop.account_id, shop.now)
    with shop.db() as session:  # another money movement marked the account stale; its nudge is on its way
        assert account_rows.mark_balance_stale(session, shop.account_id, shop.now)
        session.commit()
    with shop.db() as clock:  # the clock dispatches the scheduled payment; its transaction is still open
        payment = payment_rows.lock_payment(clock, receipt.payment_id)
        assert ledger.apply_transition(clock, payment, PaymentStatus.PENDING, source="clock", now=shop.now)
        recompute = threading.Thread(target=accounts.recompute_balance, args=(shop.account_id, shop.now))
        recompute.start()  # the earlier mark's nudge runs now
        deadline = time.monotonic() + 10
        while recompute.is_alive() and not _lock_waiters(shop.db) and time.monotonic() < deadline:
            time.sleep(0.01)
        clock.commit()
    recompute.join(10)
    account = _account(shop)
    # Either the figures show the payment pending or the account is still marked for a recompute.
    assert (account.scheduled_minor, account.pending_minor) == (
        0,
        receipt.amount_minor,
    ) or account.balance_stale_since is not None, (account.scheduled_minor, account.pending_minor)


@pytest.mark.parametrize(
    "mark",
    [
        lambda session, account_id, now: (
            [account_id] if account_rows.mark_balance_stale(session, account_id, now) else []
        ),
        lambda session, account_id, now: account_rows.mark_balances_stale(session, [account_id], now),
    ],
    ids=["one", "many"],
)
def test_marking_an_account_stale_locks_it_even_when_it_already_is(shop, mark):
    from sqlalchemy import select
    from sqlalchemy.exc import OperationalError

    with shop.db() as marker, shop.db() as other:
        assert mark(marker, shop.account_id, shop.now) == [shop.account_id]
        marker.commit()
        assert mark(marker, shop.account_id, shop.now) == []  # nothing newly marked; locked all the same
        with pytest.raises(OperationalError, match="could not obtain lock"):  # a recompute waits
            other.execute(
                select(Account.id).where(Account.id == shop.account_id).with_for_update(nowait=True)
            )
        other.rollback()
        # Another money movement of the account does not wait: it takes the same weak lock.
        assert other.execute(
            select(Account.id)
            .where(Account.id == shop.account_id)
            .with_for_update(read=True, key_share=True, nowait=True)
        ).all() == [(shop.account_id,)]


@pytest.mark.parametrize(
    "mark",
    [
        lambda session, account_id, now: (
            [account_id] if account_rows.mark_balance_stale(session, account_id, now) else []
        ),
        lambda session, account_id, now: account_rows.mark_balances_stale(session, [account_id], now),
    ],
    ids=["one", "many"],
)
def test_of_two_markers_racing_on_a_fresh_account_only_the_first_marks_it(shop, mark):
    import threading

    from tests.helpers import wait_until

    assert accounts.recompute_balance(shop.account_id, shop.now) or _account(shop).balance_stale_since is None
    later = shop.now + timedelta(seconds=5)
    seconds = []
    with shop.db() as first, shop.db() as second:
        assert mark(first, shop.account_id, shop.now) == [shop.account_id]

        def mark_second():
            seconds.append(mark(second, shop.account_id, later))
            second.commit()

        racer = threading.Thread(target=mark_second)
        racer.start()
        wait_until(lambda: _lock_waiters(shop.db) > 0, timeout_s=10.0)  # it waits on the first's mark
        first.commit()
        racer.join(10)
    assert seconds == [[]]  # no second nudge for the same stale mark
    assert _account(shop).balance_stale_since == shop.now  # and the mark keeps its first time


def test_figures_count_only_invoices_payments_and_credit_in_the_accounts_currency(shop):
    from db.models import Credit, PaymentMethod
    from tests import factories

    with shop.db() as session:
        account = session.get(Account, shop.account_id)
        card = session.get(PaymentMethod, shop.methods["visa"])
        factories.invoice(session, account, total_minor=1_000_000, currency="jpy", due_on=shop.today)
        factories.payment(session, account, card, amount_minor=500_000, currency="jpy", status="pending")
        factories.payment(
            session,
            account,
            card,
            amount_minor=500_000,
            currency="jpy",
            status="scheduled",
            scheduled_for=shop.today + timedelta(days=40),
        )
        deposit = factories.payment(
            session, account, card, amount_minor=300_000, currency="jpy", status="succeeded"
        )
        session.add(
            Credit(
                account_id=account.id,
                payment_id=deposit.id,
                amount_minor=300_000,
                currency="jpy",
                state="available",
            )
        )
        session.commit()
    overview = api.account_overview(shop.account_id, now=shop.now + timedelta(days=30))
    assert overview.currency == "usd"
    assert (overview.balance_minor, overview.overdue_minor) == (
        sum(10_000 + n * 1_000 for n in range(5)),
    ) * 2
    assert (overview.pending_minor, overview.scheduled_minor, overview.credit_minor) == (0, 0, 0)


def _two_accounts_high_first_on_disk(db) -> tuple[int, int]:
    from sqlalchemy import text

    from tests import factories

    with db() as session, session.begin():
        seller = factories.seller(session)
        high = factories.account(session, seller, id=1_002)  # written first: first on disk and in every index
        low = factories.account(session, seller, id=1_001)
        low_id, high_id = low.id, high.id
    with db() as session:
        assert session.scalars(text("SELECT id FROM accounts ORDER BY ctid")).all() == [high_id, low_id]
    return low_id, high_id


def test_the_full_pass_and_a_batch_marking_accounts_in_id_order_never_deadlock(db):
    import threading
    from datetime import UTC, datetime

    from tests.helpers import wait_until

    low_id, high_id = _two_accounts_high_first_on_disk(db)
    now = datetime.now(UTC)
    outcomes = []

    def full_pass():
        try:
            outcomes.append(accounts.recompute_all_balances(now))
        except Exception as error:  # a deadlock victim: what this test must never see
            outcomes.append(error)

    with db() as batch:
        # A webhook batch marks the accounts it moved, in id order: low first ...
        assert account_rows.mark_balances_stale(batch, [low_id], now) == [low_id]
        racer = threading.Thread(target=full_pass)
        racer.start()
        wait_until(lambda: _lock_waiters(db) > 0, timeout_s=10.0)  # the pass waits on low
        # ... then high: the pass must not be holding it.
        assert account_rows.mark_balances_stale(batch, [high_id], now) == [high_id]
        batch.commit()
        racer.join(30)
    # The pass waited for the batch, then read what it committed: both recomputed, neither left stale.
    assert outcomes == [{"recomputed": 2, "drifted": 0}]
    with db() as session:
        assert {session.get(Account, i).balance_stale_since for i in (low_id, high_id)} == {None}
        assert {session.get(Account, i).balance_computed_at for i in (low_id, high_id)} == {now}


def test_the_full_pass_recomputes_every_account_in_chunks(db, monkeypatch):
    from datetime import UTC, datetime

    from tests import factories

    with db() as session, session.begin():
        seller = factories.seller(session)
        ids = [factories.account(session, seller).id for _ in range(5)]
    now = datetime.now(UTC)
    assert accounts.recompute_all_balances(now, chunk=2) == {"recomputed": 5, "drifted": 0}
    with db() as session:
        assert {session.get(Account, i).balance_computed_at for i in ids} == {now}
