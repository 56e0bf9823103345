"""The webhook workers' claim of waiting events (remit_claim_waiting_events, migration 0015)."""

from __future__ import annotations

import json

from sqlalchemy import text

from db.session import get_engine

BURST = 700


def claim_buffers(connection) -> tuple[int, int]:
    """(events claimed, shared buffers the claim touched), as EXPLAIN ANALYZE counts them."""
    plan = connection.execute(
        text(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT * FROM remit_claim_waiting_events('evt_none', 99)"
        )
    ).scalar_one()
    top = (plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"]
    return top["Actual Rows"], top["Shared Hit Blocks"] + top["Shared Read Blocks"]


def test_a_claim_after_a_burst_passes_over_the_processed_events_without_reading_them_again(db):
    with get_engine().begin() as connection:
        connection.execute(
            text(
                "INSERT INTO stripe_events (id, type, livemode, payload, received_at, status, attempts)"
                " SELECT 'evt_burst_' || n, 'payment_intent.succeeded', false, CAST(:payload AS jsonb),"
                " now() - make_interval(secs => :burst - n), 'received', 0"
                " FROM generate_series(1, :burst) AS n"
            ),
            {"burst": BURST, "payload": json.dumps({"filler": "x" * 400})},
        )
        connection.execute(text("UPDATE stripe_events SET status = 'processed', attempts = 1"))
    # Left to its statistics, the planner chose a bitmap scan after a burst on a fresh table (and an ordered
    # index scan in other states): here the session prefers the bitmap scan, which the claim must not use.
    with get_engine().begin() as connection:
        connection.execute(text("SET LOCAL enable_indexscan = off"))
        claimed, first = claim_buffers(connection)
    with get_engine().begin() as connection:
        connection.execute(text("SET LOCAL enable_indexscan = off"))
        again, second = claim_buffers(connection)
    # The first claim meets the index entries of the 700 processed events (their pages: dozens) and marks
    # them dead as it goes; a bitmap scan marks none, so every later claim read all those pages again.
    assert (claimed, again) == (0, 0)
    assert first > 20
    assert second <= 5, f"the second claim touched {second} buffers"


def test_a_claim_takes_fresh_waiting_events_oldest_first_up_to_the_limit(db):
    with get_engine().begin() as connection:
        connection.execute(
            text(
                "INSERT INTO stripe_events (id, type, livemode, payload, received_at, status, attempts)"
                " SELECT 'evt_wait_' || n, 'payment_intent.succeeded', false, '{}',"
                " now() - make_interval(secs => n), CASE WHEN n = 2 THEN 'processed' ELSE 'received' END,"
                " CASE WHEN n = 3 THEN 1 ELSE 0 END FROM generate_series(1, 6) AS n"
            )
        )
        rows = connection.execute(
            text("SELECT id, status FROM remit_claim_waiting_events('evt_wait_6', 3)")
        ).all()
    # Oldest first (evt_wait_6 is the oldest, but named), not the processed one, not the one tried before.
    assert [tuple(row) for row in rows] == [
        ("evt_wait_5", "received"),
        ("evt_wait_4", "received"),
        ("evt_wait_1", "received"),
    ]
