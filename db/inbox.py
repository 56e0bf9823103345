"""The webhook receiver's write: one autocommitted statement per delivery, on a small pool of its own.

A delivery is one INSERT that commits by itself: no transaction block, no ping, one round trip.
When it returns, the event is durable (synchronous commit), which is what the receiver's 200 promises.
A connection that broke while idle (a database restart) is replaced and the statement sent once
more, which is safe: storing is `ON CONFLICT DO NOTHING`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import psycopg

from db.queries.inbox import STORE_DELIVERY as _STORE
from db.session import CONNECT_TIMEOUT_S, CONNECTION_OPTIONS, libpq_url

# Connections per receiver process: its threads (4 under granian) each need one at a time.
MAX_CONNECTIONS = 8
# A delivery waiting longer than this for a connection is answered 503: Stripe retries it.
CHECKOUT_TIMEOUT_S = 10


@dataclass(frozen=True)
class Stored:
    """new: this delivery stored the event; status: the stored row's status when it was already there."""

    new: bool
    status: str | None


class Inbox:
    """Stores deliveries for one database URL on up to max_connections connections kept open between calls."""

    def __init__(self, database_url: str, max_connections: int = MAX_CONNECTIONS) -> None:
        self._conninfo = libpq_url(database_url)
        self._idle: list[psycopg.Connection] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._max_connections = max_connections

    def store(
        self, *, event_id: str, event_type: str, livemode: bool, payload: str, created: int | None
    ) -> Stored:
        """Store the event unless it is stored already.

        Raises psycopg.DataError for a payload PostgreSQL will not store and psycopg.OperationalError
        (or InterfaceError) when the database cannot be reached or no connection frees up in time.
        """
        params = {
            "id": event_id,
            "type": event_type,
            "livemode": livemode,
            "payload": payload,
            "created": created,
        }
        if not self._slots.acquire(timeout=CHECKOUT_TIMEOUT_S):
            raise psycopg.OperationalError(f"no database connection free within {CHECKOUT_TIMEOUT_S} s")
        try:
            row = self._run(params)
        finally:
            self._slots.release()
        return Stored(bool(row[0]), row[1])

    def _run(self, params: dict) -> tuple:
        connection, reused = self._checkout()
        try:
            try:
                return connection.execute(_STORE, params, prepare=True).fetchone()
            except (psycopg.OperationalError, psycopg.InterfaceError):
                connection.close()
                if not reused:
                    raise
                connection = self._connect()  # it broke while idle (a restart): once more on a new one
                return connection.execute(_STORE, params, prepare=True).fetchone()
        finally:
            self._checkin(connection)  # an autocommit connection stays usable after a refused statement

    def open_connections(self, count: int) -> int:
        """Open up to `count` idle connections (at most the pool's size) ahead of the first deliveries;
        return how many opened.

        A receiver starting while the database is down still starts: it opens what it can and the
        deliveries connect later (or are answered 503).
        """
        opened = []
        for _ in range(min(count, self._max_connections - len(self._idle))):
            try:
                opened.append(self._connect())
            except psycopg.Error:
                break
        for connection in opened:
            self._checkin(connection)
        return len(opened)

    def close(self) -> None:
        """Close the idle connections (the next store opens a new one)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _checkout(self) -> tuple[psycopg.Connection, bool]:
        with self._lock:
            connection = self._idle.pop() if self._idle else None
        if connection is None or connection.closed:
            return self._connect(), False
        return connection, True

    def _checkin(self, connection: psycopg.Connection) -> None:
        if connection.closed:
            return
        with self._lock:
            self._idle.append(connection)

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(
            self._conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S, options=CONNECTION_OPTIONS
        )
