"""The receiver's writer: an autocommitted statement per delivery, stored once, on a connection that heals."""

from __future__ import annotations

import os

import psycopg
import pytest
from sqlalchemy import select

from db.inbox import Inbox, Stored
from db.models import StripeEvent
from db.session import libpq_url


def store(inbox: Inbox, event_id: str = "evt_inbox_1", payload: str = '{"id": "evt_inbox_1"}') -> Stored:
    return inbox.store(
        event_id=event_id,
        event_type="payment_intent.succeeded",
        livemode=False,
        payload=payload,
        created=1_800_000_000,
    )


@pytest.fixture()
def inbox(db):
    writer = Inbox(os.environ["DATABASE_URL"])
    yield writer
    writer.close()


def test_a_new_event_is_stored_committed_and_a_redelivery_reads_its_status(db, inbox):
    assert store(inbox) == Stored(new=True, status=None)
    with db() as session:  # another connection sees it at once: the statement committed by itself
        row = session.get(StripeEvent, "evt_inbox_1")
        assert (row.status, row.type, row.payload, row.attempts) == (
            "received",
            "payment_intent.succeeded",
            {"id": "evt_inbox_1"},
            0,
        )
    assert store(inbox, payload='{"id": "evt_inbox_1", "changed": true}') == Stored(
        new=False, status="received"
    )
    with db() as session:
        assert session.scalars(select(StripeEvent.payload)).all() == [{"id": "evt_inbox_1"}]


def test_a_connection_dropped_while_idle_is_replaced_and_the_delivery_stored(db, inbox):
    store(inbox, "evt_inbox_1")
    (connection,) = inbox._idle
    pid = connection.info.backend_pid
    with psycopg.connect(libpq_url(os.environ["DATABASE_URL"]), autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone()[0]
    assert store(inbox, "evt_inbox_2", '{"id": "evt_inbox_2"}').new
    assert [c.info.backend_pid != pid for c in inbox._idle] == [True]


def test_an_unreachable_database_raises_and_stores_nothing(db):
    dead = Inbox("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with pytest.raises(psycopg.OperationalError):
        store(dead)
    with db() as session:
        assert session.scalars(select(StripeEvent)).all() == []


def test_a_payload_postgres_cannot_store_is_a_data_error_and_the_connection_stays_usable(db, inbox):
    with pytest.raises(psycopg.DataError):
        store(inbox, payload='{"id": "evt_inbox_1", "bad": "\\u0000"}')
    assert store(inbox).new
    assert len(inbox._idle) == 1


def test_many_threads_share_at_most_max_connections_and_every_delivery_is_stored(db):
    from concurrent.futures import ThreadPoolExecutor

    writer = Inbox(os.environ["DATABASE_URL"], max_connections=3)
    try:
        with ThreadPoolExecutor(max_workers=40) as pool:
            results = list(pool.map(lambda n: store(writer, f"evt_many_{n}", f'{{"n": {n}}}'), range(200)))
        assert all(r.new for r in results)
        assert 1 <= len(writer._idle) <= 3
    finally:
        writer.close()
    with db() as session:
        assert len(session.scalars(select(StripeEvent.id)).all()) == 200


def test_connections_opened_ahead_serve_the_first_deliveries_and_stay_within_the_pool(db):
    writer = Inbox(os.environ["DATABASE_URL"], max_connections=3)
    try:
        assert writer.open_connections(2) == 2
        opened = {c.info.backend_pid for c in writer._idle}
        assert store(writer).new
        assert {c.info.backend_pid for c in writer._idle} == opened  # no new connection for the delivery
        assert writer.open_connections(5) == 1  # the pool holds 3
        assert len(writer._idle) == 3
    finally:
        writer.close()


def test_opening_connections_ahead_against_a_database_that_is_down_opens_none_and_raises_nothing():
    dead = Inbox("postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert dead.open_connections(4) == 0
    assert dead._idle == []
