"""The ledger feed's events: numbered per seller as their transaction commits, read by the pull API."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, select, text
from sqlalchemy.orm import Session

from db.models import LedgerEvent

# One statement numbers and stores a transaction's events. Sellers' counters are taken in id order: two
# transactions numbering events of the same sellers lock them in one order and never deadlock. Each counter
# stays locked until its transaction ends, so a seller's numbers are taken, and become visible, in commit
# order, with no gap even when a transaction rolls back. A seller's k-th event of n gets the k-th of the n
# numbers its counter moved past; events are stored in the order they were given.
_STORE_EVENTS = text(
    "WITH e AS MATERIALIZED ("
    " SELECT seller_id, type, data, ord,"
    " row_number() OVER (PARTITION BY seller_id ORDER BY ord) AS k,"
    " count(*) OVER (PARTITION BY seller_id) AS n"
    " FROM ROWS FROM (jsonb_to_recordset(CAST(:events AS jsonb))"
    " AS (seller_id integer, type text, data jsonb))"
    " WITH ORDINALITY AS e (seller_id, type, data, ord)"
    "), taken AS ("
    " INSERT INTO ledger_sequences AS s (seller_id, last_sequence)"
    " SELECT DISTINCT seller_id, n FROM e ORDER BY seller_id"
    " ON CONFLICT (seller_id) DO UPDATE SET last_sequence = s.last_sequence + EXCLUDED.last_sequence"
    " RETURNING s.seller_id, s.last_sequence,"
    " EXISTS (SELECT 1 FROM feed_endpoints f WHERE f.seller_id = s.seller_id) AS has_endpoint"
    "), stored AS ("
    " INSERT INTO ledger_events (seller_id, sequence, type, data)"
    " SELECT e.seller_id, t.last_sequence - e.n + e.k, e.type, e.data"
    " FROM e JOIN taken t ON t.seller_id = e.seller_id ORDER BY e.ord"
    ") SELECT seller_id FROM taken WHERE has_endpoint ORDER BY seller_id"
)
_SELLERS_OF_ACCOUNTS = text("SELECT id, seller_id FROM accounts WHERE id = ANY(CAST(:ids AS integer[]))")


def store_events(session: Session, events: Sequence[tuple[int, str, dict[str, Any]]]) -> list[int]:
    """Number and store the events ((seller id, type, data) each, in order) in one statement; returns the
    sellers among them with a feed endpoint, in id order."""
    rows = [{"seller_id": s, "type": t, "data": d} for s, t, d in events]
    return list(session.connection().execute(_STORE_EVENTS, {"events": json.dumps(rows)}).scalars())


def list_sellers_of_accounts(session: Session, account_ids: Sequence[int]) -> dict[int, int]:
    """{account id: its seller id}."""
    return dict(
        tuple(row) for row in session.connection().execute(_SELLERS_OF_ACCOUNTS, {"ids": account_ids})
    )


def list_events_after(session: Session, seller_id: int, after_sequence: int, limit: int) -> list[LedgerEvent]:
    """The seller's events numbered after after_sequence, in sequence order, at most limit."""
    return list(
        session.scalars(
            select(LedgerEvent)
            .where(LedgerEvent.seller_id == seller_id, LedgerEvent.sequence > after_sequence)
            .order_by(LedgerEvent.sequence)
            .limit(limit)
        )
    )


def list_events_between(session: Session, seller_id: int, first: int, last: int) -> list[LedgerEvent]:
    """The seller's events numbered first to last, in sequence order."""
    return list(
        session.scalars(
            select(LedgerEvent)
            .where(LedgerEvent.seller_id == seller_id, LedgerEvent.sequence.between(first, last))
            .order_by(LedgerEvent.sequence)
        )
    )


def find_last_sequence(session: Session, seller_id: int) -> int:
    """The seller's last committed sequence number (0 before its first event)."""
    row: Row | None = session.execute(
        text("SELECT last_sequence FROM ledger_sequences WHERE seller_id = :s"), {"s": seller_id}
    ).first()
    return int(row[0]) if row else 0
