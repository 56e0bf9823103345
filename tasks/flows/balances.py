"""Recomputing an account's balance figures from the ledger, and finding accounts that need it."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from db.models import Account
from db.queries import accounts as account_rows
from db.queries import invoices as invoice_rows
from db.queries import payments as payment_rows
from db.session import transaction
from tasks.domain.balances import Aging, Figures, InvoiceFacts, compute_aging, compute_figures, drift_between
from tasks.domain.dates import seller_today
from tasks.domain.states import PaymentStatus
from tasks.flows import messages

_log = logging.getLogger(__name__)
IN_FLIGHT = (
    PaymentStatus.PENDING,
    PaymentStatus.SUBMITTING,
    PaymentStatus.PROCESSING,
    PaymentStatus.REQUIRES_ACTION,
)
# A recompute normally follows its money movement within a second; a minute means the nudge was lost.
STALE_GRACE = timedelta(seconds=60)
SWEEP_LIMIT = 1000
# Accounts the full pass locks per transaction: a money movement waits at most for one chunk's commit (a few
# milliseconds), not for a pass over every account.
FULL_PASS_CHUNK = 500
# The full pass runs hourly (schedules/schedule.py): it reports the drift found since the previous one.
DRIFT_REPORT_WINDOW = timedelta(hours=1)


def balance_moved(session: Session, account_id: int, now: datetime) -> None:
    """Mark the account stale and nudge recompute_balance after commit; later marks ride the first nudge."""
    if account_rows.mark_balance_stale(session, account_id, now):
        recompute_after_commit(session, account_id)


def recompute_after_commit(session: Session, account_id: int) -> None:
    """The nudge for a stale mark this transaction set (balance_moved, or a statement that marked it)."""
    recompute_all_after_commit(session, [account_id])


def recompute_all_after_commit(session: Session, account_ids: list[int]) -> None:
    """The nudges for the stale marks this transaction set, sent together after commit."""
    messages.send_after_commit(session, "recompute_balance", [(account_id,) for account_id in account_ids])


def figures_for(session: Session, account: Account, now: datetime) -> Figures:
    """The account's figures as the ledger says right now, in the account's currency only."""
    return figures_on(session, account, [now])[0]


def figures_on(session: Session, account: Account, moments: list[datetime]) -> list[Figures]:
    """The account's figures from the ledger as it is, at each moment's day (overdue moves with the date)."""
    facts = _invoice_facts(session, account)
    amounts = payment_rows.sum_payments_by_status(session, account.id, account.currency)
    credit = int(invoice_rows.sum_available_credit(session, account.id, account.currency))
    pending = sum(int(amounts.get(s, 0) or 0) for s in IN_FLIGHT)
    scheduled = int(amounts.get(PaymentStatus.SCHEDULED, 0) or 0)
    seller = account_rows.find_seller(session, account.seller_id)
    return [compute_figures(facts, pending, scheduled, credit, seller_today(seller, at)) for at in moments]


def aging_for(session: Session, account: Account, now: datetime) -> Aging:
    """The account's aging at the seller's today, from the same ledger rows as its figures."""
    today = seller_today(account_rows.find_seller(session, account.seller_id), now)
    return compute_aging(_invoice_facts(session, account), today)


def _invoice_facts(session: Session, account: Account) -> list[InvoiceFacts]:
    invoices = [
        i for i in invoice_rows.list_payable_invoices(session, account.id) if i.currency == account.currency
    ]
    settled = invoice_rows.list_settled(session, [i.id for i in invoices])
    return [InvoiceFacts(i.total_minor, settled.get(i.id, 0), i.due_on) for i in invoices]


def recompute_balance(account_id: int, now: datetime) -> bool:
    """Store fresh figures if the account is marked stale; return whether it recomputed."""
    with transaction() as session:
        account = account_rows.lock_account(session, account_id)
        if account is None or account.balance_stale_since is None:
            return False
        checking = account.balance_check_pending and account.balance_computed_at is not None
        moments = [now, account.balance_computed_at] if checking else [now]
        figures, *then = figures_on(session, account, moments)
        if then:
            _record_drift(session, account, then[0], now)
        for name, value in vars(figures).items():
            setattr(account, name, value)
        account.balance_computed_at = now
        account.balance_stale_since = None
        account.balance_check_pending = False
        return True


def _record_drift(session: Session, account: Account, ledger: Figures, now: datetime) -> None:
    """No money moved since the figures were stored: the ledger read at their day must give them back."""
    stored = Figures(**{name: getattr(account, name) for name in vars(ledger)})
    differing = drift_between(stored, ledger)
    if not differing:
        return
    account_rows.insert_balance_drift(
        session,
        account_id=account.id,
        found_at=now,
        computed_at=account.balance_computed_at,
        before=vars(stored),
        after=vars(ledger),
    )
    _log.warning("balance drift on account %s: %s (stored, ledger)", account.id, differing)


def sweep_stale_balances(now: datetime, limit: int = SWEEP_LIMIT) -> dict[str, int]:
    """Re-send recompute_balance for accounts stale past the grace period."""
    with transaction() as session:
        ids = account_rows.list_due_stale_accounts(session, now, STALE_GRACE, limit)
    messages.send_now("recompute_balance", [(account_id,) for account_id in ids])
    return {"stale": len(ids)}


def mark_all_stale(now: datetime) -> dict[str, int]:
    """The hourly full pass: every account is recomputed (due dates pass at each seller's midnight) and
    checked against the ledger; reports the accounts the previous pass's recomputes found drifted."""
    with transaction() as session:
        drifted = account_rows.count_drifted_accounts(session, since=now - DRIFT_REPORT_WINDOW)
    if drifted:
        _log.warning("balance drift: %s accounts drifted in the last pass", drifted)
    marked, after_id = 0, 0
    while True:
        with transaction() as session:
            ids = account_rows.mark_unmarked_balances_stale(session, now, after_id, FULL_PASS_CHUNK)
        if not ids:
            return {"marked": marked, "drifted": drifted}
        marked, after_id = marked + len(ids), ids[-1]
