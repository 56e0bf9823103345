"""The webhook receiver: signatures, refusals that store nothing, exactly-once storage, and its HTTP face."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC

import pytest
from sqlalchemy import func, select

from db.models import StripeEvent
from tests.conftest import TEST_WEBHOOK_SECRETS
from tests.helpers import wait_until
from tests.tasks.handlers.support import body_of, make_event, receiver, sign
from workers.webhook_app import MAX_BODY_BYTES, ingest

PRIMARY, SECONDARY = TEST_WEBHOOK_SECRETS


def stored_count(db) -> int:
    with db() as session:
        return session.scalar(select(func.count()).select_from(StripeEvent))


def queued(broker) -> int:
    return broker.client.hlen(f"{broker.namespace}:webhooks.msgs")


def event_body() -> bytes:
    return body_of(make_event("payment_intent.succeeded", {"id": "pi_1", "object": "payment_intent"}))


def test_signed_event_is_stored_and_enqueued(db, broker):
    body = event_body()
    result = ingest(body, sign(body))
    assert (result.status, result.reason) == (200, "stored")
    with db() as session:
        row = session.get(StripeEvent, result.event_id)
        assert (row.type, row.status, row.payload["data"]["object"]["id"]) == (
            "payment_intent.succeeded",
            "received",
            "pi_1",
        )
    assert queued(broker) == 1


def test_redelivery_of_a_waiting_event_is_sent_again_but_stored_once(db, broker):
    body = event_body()
    assert ingest(body, sign(body)).status == 200
    assert ingest(body, sign(body)).reason == "duplicate, re-sent"
    assert stored_count(db) == 1 and queued(broker) == 2


def test_redelivery_of_a_processed_event_is_acknowledged_without_a_message(db, broker):
    body = event_body()
    event_id = ingest(body, sign(body)).event_id
    with db() as session, session.begin():
        session.get(StripeEvent, event_id).status = "processed"
    broker.flush_all()
    assert ingest(body, sign(body)).reason == "duplicate"
    assert queued(broker) == 0


@pytest.mark.parametrize("secrets", [(PRIMARY,), (SECONDARY,), (PRIMARY, SECONDARY)])
def test_every_active_secret_works_during_a_roll(db, broker, secrets):
    body = event_body()
    assert ingest(body, sign(body, secrets)).status == 200
    assert stored_count(db) == 1


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("t=abc,v1=00", "Unable to extract"),
        ("garbage", "Unable to extract"),
        ("forged", "No signatures found"),
        ("stale", "Timestamp outside the tolerance zone"),
        ("future_other_secret", "No signatures found"),
    ],
)
def test_bad_signatures_are_refused_and_store_nothing(db, broker, header, reason):
    body = event_body()
    if header == "forged":
        header = sign(body, ("whsec_attacker",))
    elif header == "stale":
        header = sign(body, (PRIMARY,), timestamp=int(time.time()) - 301)
    elif header == "future_other_secret":
        header = sign(body + b" ", (PRIMARY,))
    result = ingest(body, header)
    assert result.status == 400 and reason in result.reason
    assert stored_count(db) == 0 and queued(broker) == 0


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b'{"object": "charge", "id": "ch_1"}',
        json.dumps({"id": "evt_1", "object": "event", "type": "x"}).encode(),
        json.dumps(
            {"id": "evt_1", "object": "event", "type": "x", "data": {"object": {"s": "\u0000"}}}
        ).encode(),
    ],
)
def test_signed_bodies_that_are_not_events_are_refused(db, broker, body):
    result = ingest(body, sign(body))
    assert result.status == 400
    assert stored_count(db) == 0 and queued(broker) == 0


def test_body_over_one_mebibyte_is_refused(db, broker):
    body = b"{" + b" " * MAX_BODY_BYTES + b"}"
    assert ingest(body, sign(body)).status == 413
    assert stored_count(db) == 0


def test_database_down_answers_503_so_stripe_retries(db, broker, monkeypatch):
    import workers.webhook_app as webhook_app
    from db.inbox import Inbox

    dead = Inbox("postgresql+psycopg://nobody@127.0.0.1:1/none")
    monkeypatch.setattr(webhook_app, "get_inbox", lambda: dead)
    body = event_body()
    assert ingest(body, sign(body)).status == 503
    monkeypatch.undo()
    assert stored_count(db) == 0 and queued(broker) == 0


def test_a_delivery_that_waited_on_a_concurrent_insert_of_its_event_still_enqueues_it(db, broker):
    import threading
    from datetime import datetime

    from db.queries.inbox import insert_event as store_event
    from db.session import transaction

    event = make_event(
        "payment_intent.succeeded",
        {"id": "pi_race", "object": "payment_intent"},
        event_id="evt_receiver_race",
    )
    body = body_of(event)
    results = []
    # The reconciler (or a concurrent first delivery) has inserted the event but not committed yet.
    with transaction() as first:
        store_event(first, event, datetime.now(UTC))
        first.flush()
        delivery = threading.Thread(target=lambda: results.append(ingest(body, sign(body))))
        delivery.start()
        wait_until(lambda: _waiting_on_a_lock(db), timeout_s=10.0)  # its INSERT waits for the first one
    delivery.join(10)
    # If that first writer never sends (a Redis blip, a crash), only this delivery can enqueue the event.
    (result,) = results
    assert (result.status, queued(broker)) == (200, 1), result


def _waiting_on_a_lock(db) -> bool:
    from sqlalchemy import text

    with db() as session:
        return bool(
            session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE 'WITH stored AS (INSERT INTO stripe_events%'"
                )
            )
        )


def test_a_server_process_opens_its_connections_and_freezes_start_up_objects_before_serving(
    db, broker, monkeypatch
):
    import gc

    import workers.webhook_app as webhook_app
    from db.inbox import Inbox

    writer = Inbox(os.environ["DATABASE_URL"])
    monkeypatch.setattr(webhook_app, "get_inbox", lambda: writer)
    try:
        assert webhook_app.create_app(connections=3) is webhook_app.app
        assert len(writer._idle) == 3 and gc.get_freeze_count() > 0
        body = event_body()
        assert ingest(body, sign(body)).status == 200
        assert len(writer._idle) == 3  # the delivery used one of them
    finally:
        gc.unfreeze()
        writer.close()


def test_a_server_process_starting_while_the_database_is_down_still_serves_and_answers_503(
    db, broker, monkeypatch
):
    import gc

    import workers.webhook_app as webhook_app
    from db.inbox import Inbox

    dead = Inbox("postgresql+psycopg://nobody@127.0.0.1:1/none")
    monkeypatch.setattr(webhook_app, "get_inbox", lambda: dead)
    try:
        assert webhook_app.create_app() is webhook_app.app
    finally:
        gc.unfreeze()
    body = event_body()
    assert ingest(body, sign(body)).status == 503


def post(
    url: str, body: bytes, headers: dict[str, str] | None = None, method: str = "POST"
) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=body if method == "POST" else None,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _post_oversized(url: str) -> int:
    """Announce a body over the limit: the receiver answers 413 from the headers without reading it."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.putrequest("POST", parts.path)
    connection.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
    connection.putheader("Stripe-Signature", "t=1,v1=0")
    connection.endheaders()
    status = connection.getresponse().status
    connection.close()
    return status


def test_the_app_routes_and_answers_with_short_reasons(db, broker):
    body = event_body()
    with receiver() as url:
        base = url.rsplit("/stripe/webhooks", 1)[0]
        assert post(url, body, {"Stripe-Signature": sign(body)}) == (200, {"status": 200, "reason": "stored"})
        assert post(url, body)[0] == 400
        assert _post_oversized(url) == 413
        assert post(base + "/healthz", b"", method="GET") == (200, {"status": 200, "reason": "ok"})
        assert post(url, b"", method="GET")[0] == 405
        assert post(base + "/elsewhere", body)[0] == 404


def test_a_thousand_events_posted_concurrently_with_duplicates_are_stored_exactly_once_each(db, broker):
    bodies = [event_body() for _ in range(1000)]
    with receiver() as url, ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(
            pool.map(lambda b: post(url, b, {"Stripe-Signature": sign(b)})[0], bodies + bodies[::5])
        )
    assert statuses == [200] * 1200, Counter(statuses)
    with db() as session:
        assert session.scalar(select(func.count(func.distinct(StripeEvent.id)))) == 1000
    assert stored_count(db) == 1000
