"""Recomputing an account's balance figures from the ledger, and finding accounts that need it."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from db.models import Account
from db.queries import accounts as account_rows
from db.queries import balances as balance_rows
from db.session import transaction
from tasks.domain.balances import Aging, Figures, compute_aging, compute_figures, drift_between
from tasks.domain.dates import seller_today
from tasks.flows import messages

_log = logging.getLogger(__name__)

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
    today = seller_today(account_rows.find_seller(session, account.seller_id), now)
    return balance_rows.compute_figures_of(session, {account.id: today})[account.id]


def overview_figures(session: Session, account: Account, now: datetime) -> tuple[Figures, Aging]:
    """The figures and the aging together, reading each invoice once (what account_overview shows)."""
    today = seller_today(account_rows.find_seller(session, account.seller_id), now)
    facts = balance_rows.list_owed_by_due_date(session, account.id, today)
    pending, scheduled, credit = balance_rows.sum_paying_and_credit(session, account.id, account.currency)
    return compute_figures(facts, pending, scheduled, credit, today), compute_aging(facts, today)


def recompute_balance(account_id: int, now: datetime) -> bool:
    """Store fresh figures if the account is marked stale; return whether it recomputed."""
    with transaction() as session:
        timezone = balance_rows.lock_if_stale(session, account_id)
        if timezone is None:
            return False
        # One lock, then one statement computing and storing: a recompute runs after every money movement.
        balance_rows.compute_and_store(session, account_id, seller_today(_Zone(timezone), now), now)
        return True


def recompute_all_balances(now: datetime, chunk: int = FULL_PASS_CHUNK) -> dict[str, int]:
    """The full pass: every account's figures from the ledger, a chunk of accounts per transaction.

    Set-based: a chunk costs a lock, one statement reading the ledger for all its accounts and one
    writing their figures, so the pass takes seconds, not one message per account. Accounts are
    locked in id order (as every writer of several accounts does) and each chunk commits before the
    next, so a money movement waits for one chunk at most. An account no money movement marked stale
    is checked on the way: stored figures the ledger does not give back (read at the day they were
    computed, as a passing due date changes "overdue" with no money moving) are drift, recorded in
    balance_drifts, logged, and put right.
    """
    recomputed, drifted, after_id = 0, 0, 0
    while True:
        with transaction() as session:
            locked = balance_rows.lock_account_chunk(session, after_id, chunk)
            if not locked:
                break
            drifted += _store(session, locked, now)
        recomputed, after_id = recomputed + len(locked), locked[-1][0]
    if drifted:
        _log.warning("balance drift: %s accounts drifted (balance_drifts has before and after)", drifted)
    return {"recomputed": recomputed, "drifted": drifted}


def _store(session: Session, locked: list[tuple[int, str]], now: datetime) -> int:
    """Compute and store the figures of locked accounts ((id, seller timezone) rows), first recording the
    drift of those not marked stale. Returns how many drifted."""
    zones = {account_id: _Zone(timezone) for account_id, timezone in locked}
    figures = balance_rows.compute_figures_of(
        session, {i: seller_today(zone, now) for i, zone in zones.items()}
    )
    drifted = _record_drifts(session, zones, figures, now)
    balance_rows.store_figures(session, figures, now)
    return drifted


def _record_drifts(
    session: Session, zones: dict[int, _Zone], figures: dict[int, Figures], now: datetime
) -> int:
    stored = balance_rows.list_stored_figures(session, list(zones))
    # Unmarked, and not what the ledger says today: read the ledger at the day the figures were stored.
    suspects = {
        i: row for i, row in stored.items() if not row.stale and row.computed_at and row.figures != figures[i]
    }
    then = balance_rows.compute_figures_of(
        session, {i: seller_today(zones[i], row.computed_at) for i, row in suspects.items()}
    )
    drifted = [i for i, row in suspects.items() if drift_between(row.figures, then[i])]
    for account_id in drifted:
        row = suspects[account_id]
        account_rows.insert_balance_drift(
            session,
            account_id=account_id,
            found_at=now,
            computed_at=row.computed_at,
            before=vars(row.figures),
            after=vars(then[account_id]),
        )
        _log.warning(
            "balance drift on account %s: %s (stored, ledger)",
            account_id,
            drift_between(row.figures, then[account_id]),
        )
    return len(drifted)


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
