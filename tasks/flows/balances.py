"""Recomputing an account's balance figures from the ledger, and finding accounts that need it."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from db.models import Account
from db.queries import accounts as account_rows
from db.queries import balances as balance_rows
from db.session import transaction
from tasks.domain.balances import Aging, Figures, compute_aging, compute_figures
from tasks.domain.dates import seller_today
from tasks.flows import messages

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
    today = seller_today(account_rows.find_seller(session, account.seller_id), now)
    return balance_rows.compute_figures_of(session, {account.id: today})[account.id]


def overview_figures(session: Session, account: Account, now: datetime) -> tuple[Figures, Aging]:
    """The figures and the aging together, reading each invoice once (what account_overview shows)."""
    today = seller_today(account_rows.find_seller(session, account.seller_id), now)
    facts = balance_rows.list_invoice_facts(session, account.id, today)
    pending, scheduled, credit = balance_rows.sum_paying_and_credit(session, account.id, account.currency)
    return compute_figures(facts, pending, scheduled, credit, today), compute_aging(facts, today)


def recompute_balance(account_id: int, now: datetime) -> bool:
    """Store fresh figures if the account is marked stale; return whether it recomputed."""
    with transaction() as session:
        locked = balance_rows.lock_accounts(session, [account_id])
        stored = balance_rows.list_stored_figures(session, [account_id])
        if not locked or not stored[account_id][1]:
            return False
        _store(session, locked, now)
        return True


def recompute_all_balances(now: datetime, chunk: int = FULL_PASS_CHUNK) -> dict[str, int]:
    """The full pass: every account's figures from the ledger, a chunk of accounts per transaction.

    Set-based: a chunk costs a lock, one statement reading the ledger for all its accounts and one
    writing their figures, so the pass takes seconds, not one message per account. Accounts are
    locked in id order (as every writer of several accounts does) and each chunk commits before the
    next, so a money movement waits for one chunk at most.
    """
    recomputed, after_id = 0, 0
    while True:
        with transaction() as session:
            locked = balance_rows.lock_account_chunk(session, after_id, chunk)
            if not locked:
                return {"recomputed": recomputed}
            _store(session, locked, now)
        recomputed, after_id = recomputed + len(locked), locked[-1][0]


def _store(session: Session, locked: list[tuple[int, str]], now: datetime) -> dict[int, Figures]:
    """Compute and store the figures of locked accounts ((id, seller timezone) rows)."""
    todays = {account_id: seller_today(_Zone(timezone), now) for account_id, timezone in locked}
    figures = balance_rows.compute_figures_of(session, todays)
    balance_rows.store_figures(session, figures, now)
    return figures


class _Zone:
    """What seller_today reads of a seller: its timezone."""

    def __init__(self, timezone: str):
        self.timezone = timezone


def sweep_stale_balances(now: datetime, limit: int = SWEEP_LIMIT) -> dict[str, int]:
    """Re-send recompute_balance for accounts stale past the grace period."""
    with transaction() as session:
        ids = account_rows.list_due_stale_accounts(session, now, STALE_GRACE, limit)
    messages.send_now("recompute_balance", [(account_id,) for account_id in ids])
    return {"stale": len(ids)}
