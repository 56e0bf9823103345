"""The ledger feed's events: numbered per seller as their transaction commits, read by the pull API."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, select, text
from sqlalchemy.orm import Session

from db.models import LedgerEvent

# Sellers in id order: two transactions numbering events of the same sellers lock their counters in one
# order and never deadlock. Each counter stays locked until its transaction ends, so a seller's numbers
# are taken, and become visible, in commit order, with no gap even when a transaction rolls back.
_TAKE_SEQUENCES = text(
    "INSERT INTO ledger_sequences AS s (seller_id, last_sequence)"
    " SELECT seller_id, n FROM unnest(CAST(:sellers AS integer[]), CAST(:counts AS bigint[]))"
    " AS t (seller_id, n) ORDER BY seller_id"
    " ON CONFLICT (seller_id) DO UPDATE SET last_sequence = s.last_sequence + EXCLUDED.last_sequence"
    " RETURNING s.seller_id, s.last_sequence,"
    " EXISTS (SELECT 1 FROM feed_endpoints e WHERE e.seller_id = s.seller_id) AS has_endpoint"
)
_INSERT_EVENTS = text(
    "INSERT INTO ledger_events (seller_id, sequence, type, data)"
    " SELECT seller_id, sequence, type, data FROM jsonb_to_recordset(CAST(:events AS jsonb))"
    " AS e (seller_id integer, sequence bigint, type text, data jsonb)"
    " RETURNING id, seller_id, sequence"
)
_SELLERS_OF_ACCOUNTS = text("SELECT id, seller_id FROM accounts WHERE id = ANY(CAST(:ids AS integer[]))")


def take_sequences(session: Session, counts: dict[int, int]) -> tuple[dict[int, int], set[int]]:
    """Reserve counts[seller] numbers for each seller: ({seller id: the first of them}, the sellers among
    them with a feed endpoint)."""
    sellers = sorted(counts)
    rows = list(
        session.connection().execute(
            _TAKE_SEQUENCES, {"sellers": sellers, "counts": [counts[s] for s in sellers]}
        )
    )
    return {r.seller_id: r.last_sequence - counts[r.seller_id] + 1 for r in rows}, {
        r.seller_id for r in rows if r.has_endpoint
    }


def insert_events(session: Session, events: Sequence[tuple[int, int, str, dict[str, Any]]]) -> None:
    """(seller id, sequence, type, data) each, in one statement."""
    rows = [{"seller_id": s, "sequence": n, "type": t, "data": d} for s, n, t, d in events]
    session.connection().execute(_INSERT_EVENTS, {"events": json.dumps(rows)})


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
