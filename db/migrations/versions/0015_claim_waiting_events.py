"""remit_claim_waiting_events: the webhook workers' claim of waiting events, always by an ordered index scan

A worker's message takes up to 99 waiting events besides its own (tasks/flows/webhooks.py). The planner
answered that claim with a bitmap scan of ix_stripe_events_waiting and a sort. A bitmap scan never marks
the index entries of rows that left the index's predicate (events processed since the last vacuum) as
dead, so every claim visited them all on the heap again: after a burst of 2,000 events, a claim that
found nothing read 150 pages (0.3 ms); after 5,000, about 400. An ordered index scan marks each such entry
dead the first time it meets it, stops at the limit, and the next claim reads a few pages (0.04 ms).
Which scan the planner prefers depends on statistics of the moment (a fresh table's, a burst's before
autovacuum analyzes it): the function turns bitmap and sequential scans off and index scans on for this one
statement (a function's SET clause is restored when it returns), which leaves the partial index's ordered
scan whatever the statistics or the session's settings.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 05:00:00
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# Fresh waiting events (never attempted) besides `exclude` that no one holds, oldest first, locked.
_FUNCTION = """
CREATE FUNCTION remit_claim_waiting_events(exclude text, wanted integer)
RETURNS TABLE (id varchar, status varchar, payload jsonb)
LANGUAGE sql VOLATILE
SET enable_indexscan = on
SET enable_bitmapscan = off
SET enable_seqscan = off
AS $$
    SELECT e.id, e.status, e.payload FROM stripe_events AS e
    WHERE e.status = 'received' AND e.attempts = 0 AND e.id <> exclude
    ORDER BY e.received_at
    LIMIT wanted
    FOR UPDATE SKIP LOCKED
$$
"""


def upgrade() -> None:
    op.execute(_FUNCTION)


def downgrade() -> None:
    op.execute("DROP FUNCTION remit_claim_waiting_events(text, integer)")
