"""Account figures for many accounts at once: set-based statements over the ledger, a chunk at a time.

The rules are tasks.domain.balances' (what is owed on an invoice is its total less what settled it,
never below zero; overdue is what is owed on invoices due before the seller's today), applied in SQL
so a pass over every account reads the ledger in a few statements per chunk instead of a few per account.
tests/db/test_balance_queries.py holds these statements equal to the domain's functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from tasks.domain.balances import Figures, InvoiceFacts
from tasks.domain.invoices import PAYABLE_FLAGS, SETTLING_STATE
from tasks.domain.states import CreditState, PaymentStatus
from tasks.domain.transitions import IN_FLIGHT

_PAYABLE_SQL = " AND ".join(
    f"i.{name} IS {'TRUE' if value else 'FALSE'}" for name, value in PAYABLE_FLAGS.items()
)


# The accounts a statement reads: many (a chunk of the full pass, :ids at :todays), or one (:id at :today).
# One account's statements take scalars: PostgreSQL then plans them once per connection and reuses the plan
# (an array's length is known only to a plan made for its values, so those were planned at every run, which
# cost a recompute more than running it).
_ACCOUNTS = """
    SELECT id, currency, today FROM accounts
    JOIN unnest(CAST(:ids AS bigint[]), CAST(:todays AS date[])) AS t (account_id, today)
      ON accounts.id = t.account_id
"""
_ONE_ACCOUNT = "SELECT id, currency, CAST(:today AS date) AS today FROM accounts WHERE id = :id"


# The payable invoices of the given accounts in each account's currency (not parents of the account's
# own invoices), each with what settled it: applied allocations (discounts included) and the lines
# of payments the seller's ERP recorded outside Remit. _owed_cte(from_ledger=True) sums those from the
# ledger's rows; from_ledger=False reads invoices.settled_minor, which PostgreSQL keeps equal to that sum
# in the statement moving the ledger (migration 0014): one read of the account's invoices, no probe per
# invoice into allocations.
def _owed_cte(from_ledger: bool, one_account: bool = False) -> str:
    settled_column = "" if from_ledger else ", i.settled_minor"
    settled = f"""
settled AS (
    -- Summed per invoice before the join: only invoices with money on them are grouped, not every one.
    SELECT pieces.invoice_id, CAST(SUM(pieces.amount) AS bigint) AS amount
    FROM (
        SELECT a.invoice_id, a.amount_minor + a.discount_minor AS amount
        FROM allocations a JOIN payable ON payable.id = a.invoice_id
        WHERE a.state = '{SETTLING_STATE}'
        UNION ALL
        -- A line recorded while a payment held its invoice was kept as account credit: it settles nothing.
        SELECT l.invoice_id, l.amount_minor
        FROM external_payment_lines l JOIN payable ON payable.id = l.invoice_id
        WHERE l.as_credit IS FALSE
    ) AS pieces
    GROUP BY pieces.invoice_id
),
owed AS (
    SELECT payable.id, payable.account_id, payable.total_minor, payable.due_on, payable.today,
           COALESCE(settled.amount, 0) AS settled_minor
    FROM payable LEFT JOIN settled ON settled.invoice_id = payable.id
)"""
    kept = """
owed AS (SELECT * FROM payable)"""
    return f"""
chunk AS ({_ONE_ACCOUNT if one_account else _ACCOUNTS}),
parents AS (
    -- Read once for the chunk and hashed: a probe per invoice for children cost a fifth of the statement.
    SELECT DISTINCT c.parent_id, c.account_id
    FROM invoices c JOIN chunk ON chunk.id = c.account_id
    WHERE c.parent_id IS NOT NULL
),
payable AS (
    SELECT i.id, i.account_id, i.total_minor, i.due_on, chunk.today{settled_column}
    FROM invoices i JOIN chunk ON chunk.id = i.account_id AND i.currency = chunk.currency
    LEFT JOIN parents ON parents.parent_id = i.id AND parents.account_id = i.account_id
    WHERE {_PAYABLE_SQL} AND parents.parent_id IS NULL
),{settled if from_ledger else kept}"""


def _figures_sql(from_ledger: bool, one_account: bool = False) -> str:
    return f"""
WITH {_owed_cte(from_ledger, one_account)},
invoiced AS (
    SELECT account_id,
           SUM(GREATEST(total_minor - settled_minor, 0)) AS balance,
           SUM(GREATEST(total_minor - settled_minor, 0)) FILTER (WHERE due_on < today) AS overdue
    FROM owed GROUP BY account_id
),
paying AS (
    SELECT p.account_id,
           SUM(p.amount_minor) FILTER (WHERE p.status = ANY(CAST(:pending AS text[]))) AS pending,
           SUM(p.amount_minor) FILTER (WHERE p.status = :scheduled) AS scheduled
    FROM payments p JOIN chunk ON chunk.id = p.account_id AND p.currency = chunk.currency
    WHERE p.status = ANY(CAST(:pending AS text[])) OR p.status = :scheduled
    GROUP BY p.account_id
),
credit AS (
    SELECT c.account_id, SUM(c.amount_minor) AS available
    FROM credits c JOIN chunk ON chunk.id = c.account_id AND c.currency = chunk.currency
    WHERE c.state = :available
    GROUP BY c.account_id
)
SELECT chunk.id,
       COALESCE(invoiced.balance, 0), COALESCE(invoiced.overdue, 0),
       COALESCE(paying.pending, 0), COALESCE(paying.scheduled, 0), COALESCE(credit.available, 0)
FROM chunk
LEFT JOIN invoiced ON invoiced.account_id = chunk.id
LEFT JOIN paying ON paying.account_id = chunk.id
LEFT JOIN credit ON credit.account_id = chunk.id
ORDER BY chunk.id
"""


# The full pass (and figures_for, which checks stored figures) reads the ledger's rows: a settled figure
# that ever drifted from them would show as balance drift. A recompute and the overview read the kept one.
_FIGURES = text(_figures_sql(from_ledger=True))
# One account's figures computed and stored in one statement, for an account already locked (the lock
# taken by an earlier statement, so this one's snapshot sees every movement committed before it).
_COMPUTE_AND_STORE = text(
    f"""
WITH figures (id, balance, overdue, pending, scheduled, credit) AS (
    {_figures_sql(from_ledger=False, one_account=True)})
UPDATE accounts SET balance_minor = f.balance, overdue_minor = f.overdue, pending_minor = f.pending,
    scheduled_minor = f.scheduled, credit_minor = f.credit, balance_computed_at = :now,
    balance_stale_since = NULL
FROM figures f WHERE accounts.id = f.id"""
)
_PAYING = text(
    "SELECT"
    " COALESCE(SUM(amount_minor) FILTER (WHERE status = ANY(CAST(:pending AS text[]))), 0),"
    " COALESCE(SUM(amount_minor) FILTER (WHERE status = :scheduled), 0),"
    " (SELECT COALESCE(SUM(amount_minor), 0) FROM credits"
    "  WHERE account_id = :id AND currency = :currency AND state = :available)"
    " FROM payments WHERE account_id = :id AND currency = :currency"
    " AND (status = ANY(CAST(:pending AS text[])) OR status = :scheduled)"
)
# What is owed per due date, each invoice's owed amount floored at zero before it is summed.
_OWED_BY_DUE_DATE = text(
    f"WITH {_owed_cte(from_ledger=False, one_account=True)}"
    " SELECT CAST(SUM(GREATEST(total_minor - settled_minor, 0)) AS bigint), due_on"
    " FROM owed GROUP BY due_on ORDER BY due_on"
)
_LOCK_CHUNK = text(
    "SELECT a.id, s.timezone FROM accounts a JOIN sellers s ON s.id = a.seller_id"
    " WHERE a.id > :after AND (CAST(:last AS bigint) IS NULL OR a.id <= :last)"
    " ORDER BY a.id LIMIT :limit FOR UPDATE OF a"
)
# FOR UPDATE returns the row as it is once the lock is held: its stale mark is current.
_LOCK_IF_STALE = text(
    "SELECT s.timezone, a.balance_stale_since IS NOT NULL"
    " FROM accounts a JOIN sellers s ON s.id = a.seller_id WHERE a.id = :id FOR UPDATE OF a"
)
_STORED = text(
    "SELECT id, balance_minor, overdue_minor, pending_minor, scheduled_minor, credit_minor,"
    " balance_stale_since, balance_computed_at"
    " FROM accounts WHERE id = ANY(CAST(:ids AS bigint[])) ORDER BY id"
)
_STORE = text(
    "UPDATE accounts SET balance_minor = f.balance, overdue_minor = f.overdue, pending_minor = f.pending,"
    " scheduled_minor = f.scheduled, credit_minor = f.credit, balance_computed_at = :now,"
    " balance_stale_since = NULL"
    " FROM unnest(CAST(:ids AS bigint[]), CAST(:balance AS bigint[]), CAST(:overdue AS bigint[]),"
    " CAST(:pending AS bigint[]), CAST(:scheduled AS bigint[]), CAST(:credit AS bigint[]))"
    " AS f (id, balance, overdue, pending, scheduled, credit)"
    " WHERE accounts.id = f.id"
)


_STATUSES = {
    "pending": sorted(str(s) for s in IN_FLIGHT),
    "scheduled": str(PaymentStatus.SCHEDULED),
    "available": str(CreditState.AVAILABLE),
}


def lock_account_chunk(
    session: Session, after_id: int, limit: int, last_id: int | None = None
) -> list[tuple[int, str]]:
    """(account id, seller timezone) of the next `limit` accounts after after_id, locked in id order.

    FOR UPDATE: a money movement holds its account KEY SHARE until it commits, and may not mark an
    account already marked stale; waiting for it means a figure computed here has seen every movement
    committed before, and one committing after marks the account again (or finds it still marked).
    """
    return [
        tuple(row)
        for row in session.execute(_LOCK_CHUNK, {"after": after_id, "last": last_id, "limit": limit})
    ]


def lock_if_stale(session: Session, account_id: int) -> str | None:
    """Lock the account (as lock_account_chunk does); its seller's timezone when it is marked stale,
    else None."""
    row = session.execute(_LOCK_IF_STALE, {"id": account_id}).first()
    return row[0] if row is not None and row[1] else None


def compute_and_store(session: Session, account_id: int, today: date, now: datetime) -> None:
    """compute_figures_of then store_figures in one statement, for an account this transaction locked; what
    settled each invoice is read from invoices.settled_minor (the ledger's sum, kept by PostgreSQL)."""
    session.execute(_COMPUTE_AND_STORE, {"id": account_id, "today": today, **_STATUSES, "now": now})


def _parameters(todays: dict[int, date]) -> dict:
    ids = sorted(todays)
    return {"ids": ids, "todays": [todays[i] for i in ids]}


def compute_figures_of(session: Session, todays: dict[int, date]) -> dict[int, Figures]:
    """{account id: its figures from the ledger}, each account at its seller's today."""
    if not todays:
        return {}
    parameters = {**_parameters(todays), **_STATUSES}
    return {
        account_id: Figures(*(int(value) for value in values))
        for account_id, *values in session.execute(_FIGURES, parameters)
    }


def sum_paying_and_credit(session: Session, account_id: int, currency: str) -> tuple[int, int, int]:
    """(pending, scheduled, available credit) of one account in its currency."""
    row = session.execute(_PAYING, {"id": account_id, "currency": currency, **_STATUSES}).one()
    return int(row[0]), int(row[1]), int(row[2])


def list_owed_by_due_date(session: Session, account_id: int, today: date) -> list[InvoiceFacts]:
    """What the account's payable invoices owe (by invoices.settled_minor), summed per due date, in one
    statement: a fact per due date (its owed amount as the total, nothing settled). The figures and the
    aging read only each invoice's owed amount and due date, so they come out the same as from every
    invoice, from a tenth of the rows on an account with many invoices a day."""
    rows = session.execute(_OWED_BY_DUE_DATE, {"id": account_id, "today": today})
    return [InvoiceFacts(int(owed), 0, due_on) for owed, due_on in rows]


@dataclass(frozen=True)
class Stored:
    """An account's figures as stored, whether it is marked stale, and when they were computed."""

    figures: Figures
    stale: bool
    computed_at: datetime | None


def list_stored_figures(session: Session, account_ids: Sequence[int]) -> dict[int, Stored]:
    """{account id: its stored figures}."""
    rows = session.execute(_STORED, {"ids": list(account_ids)})
    return {row[0]: Stored(Figures(*row[1:6]), row[6] is not None, row[7]) for row in rows}


def store_figures(session: Session, figures: dict[int, Figures], now: datetime) -> None:
    """Write the figures and clear the stale marks of these accounts, in one statement."""
    if not figures:
        return
    ids = sorted(figures)
    columns = ("balance", "overdue", "pending", "scheduled", "credit")
    values = {name: [getattr(figures[i], f"{name}_minor") for i in ids] for name in columns}
    session.execute(_STORE, {"ids": ids, "now": now, **values})
