"""The webhook receiver's write: one autocommitted statement per delivery on a connection of its own thread.

A delivery is one INSERT that commits by itself: no transaction block, no pool, one round trip.
When it returns, the event is durable (synchronous commit), which is what the receiver's 200 promises.
A connection that broke while idle (a database restart) is replaced and the statement sent once
more, which is safe: storing is `ON CONFLICT DO NOTHING`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import psycopg

from db.session import LOCK_TIMEOUT_MS, STATEMENT_TIMEOUT_MS, libpq_url

# Stored when new, and the status of the stored row when not (the same snapshot does not see the
# row this statement inserts, so a new event reads NULL there). Raw JSON goes straight to jsonb.
_STORE = (
    "WITH stored AS (INSERT INTO stripe_events (id, type, livemode, payload, stripe_created_at, received_at,"
    " status, attempts) VALUES (%(id)s, %(type)s, %(livemode)s, CAST(%(payload)s AS jsonb),"
    " to_timestamp(%(created)s), now(), 'received', 0) ON CONFLICT (id) DO NOTHING RETURNING id)"
    " SELECT EXISTS (SELECT 1 FROM stored), (SELECT status FROM stripe_events WHERE id = %(id)s)"
)
CONNECT_TIMEOUT_S = 5


@dataclass(frozen=True)
class Stored:
    """new: this delivery stored the event; status: the stored row's status when it was already there."""

    new: bool
    status: str | None


class Inbox:
    """Stores deliveries for one database URL, one connection per thread."""

    def __init__(self, database_url: str) -> None:
        self._conninfo = libpq_url(database_url)
        self._local = threading.local()

    def store(self, *, event_id: str, event_type: str, livemode: bool, payload: str, created: int | None) -> Stored:
        """Store the event unless it is stored already.

        Raises psycopg.DataError for a payload PostgreSQL will not store and psycopg.OperationalError
        (or InterfaceError) when the database cannot be reached.
        """
        params = {"id": event_id, "type": event_type, "livemode": livemode, "payload": payload, "created": created}
        reused = getattr(self._local, "connection", None) is not None
        try:
            row = self._connection().execute(_STORE, params, prepare=True).fetchone()
        except (psycopg.OperationalError, psycopg.InterfaceError):
            self.close()
            if not reused:
                raise
            row = self._connection().execute(_STORE, params, prepare=True).fetchone()
        return Stored(bool(row[0]), row[1])

    def close(self) -> None:
        """Drop this thread's connection (the next store opens a new one)."""
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            try:
                connection.close()
            except psycopg.Error:
                pass

    def _connection(self) -> psycopg.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None or connection.closed:
            connection = psycopg.connect(
                self._conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                options=f"-c lock_timeout={LOCK_TIMEOUT_MS} -c statement_timeout={STATEMENT_TIMEOUT_MS}")
            self._local.connection = connection
        return connection
