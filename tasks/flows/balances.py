"""Recomputing an account's balance figures from the ledger, and finding accounts that need it."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from db.models import Account
from db.queries import accounts as account_rows
from db.queries import invoices as invoice_rows
from db.queries import payments as payment_rows
from db.session import transaction
from tasks.domain.balances import Aging, Figures, InvoiceFacts, compute_aging, compute_figures
from tasks.domain.dates import seller_today
from tasks.domain.states import PaymentStatus
from tasks.flows import messages

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
    facts = _invoice_facts(session, account)
    amounts = payment_rows.sum_payments_by_status(session, account.id, account.currency)
    credit = invoice_rows.sum_available_credit(session, account.id, account.currency)
    pending = sum(int(amounts.get(s, 0) or 0) for s in IN_FLIGHT)
    scheduled = int(amounts.get(PaymentStatus.SCHEDULED, 0) or 0)
    return compute_figures(
        facts,
        pending,
        scheduled,
        int(credit),
        seller_today(account_rows.find_seller(session, account.seller_id), now),
    )


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
        figures = figures_for(session, account, now)
        for name, value in vars(figures).items():
            setattr(account, name, value)
        account.balance_computed_at = now
        account.balance_stale_since = None
        return True


def sweep_stale_balances(now: datetime, limit: int = SWEEP_LIMIT) -> dict[str, int]:
    """Re-send recompute_balance for accounts stale past the grace period."""
    with transaction() as session:
        ids = account_rows.list_due_stale_accounts(session, now, STALE_GRACE, limit)
    messages.send_now("recompute_balance", [(account_id,) for account_id in ids])
    return {"stale": len(ids)}


def mark_all_stale(now: datetime) -> dict[str, int]:
    """The nightly full pass: every account is recomputed (due dates pass at midnight)."""
    marked, after_id = 0, 0
    while True:
        with transaction() as session:
            ids = account_rows.mark_unmarked_balances_stale(session, now, after_id, FULL_PASS_CHUNK)
        if not ids:
            return {"marked": marked}
        marked, after_id = marked + len(ids), ids[-1]
