"""Delivering the feed to the reference receiver (sandbox/erp.py) over real HTTP, with real PostgreSQL:
signed, in order, retried with backoff, given up after three days, replayed by ops."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from db.models import FeedDelivery, FeedEndpoint
from sandbox.erp import make_server
from tasks import api
from tasks.domain.errors import RemitError
from tasks.flows import feed, feed_delivery
from tasks.flows.feed_delivery import deliver_feed, nudge_due_endpoints
from tests import factories
from tests.helpers import queued_messages, wait_until

SECRET = "rfsec_test_secret_0123456789"
NOW = datetime.now(UTC)


@pytest.fixture()
def receiver():
    server, ledger = make_server(0, [SECRET])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/feed", ledger, server
    server.shutdown()
    server.server_close()


@pytest.fixture()
def seller_id(db, broker):
    with db() as session:
        seller = factories.seller(session)
        session.commit()
        return seller.id


def _facts(db, seller_id: int, count: int) -> None:
    with db.begin() as session:
        for n in range(count):
            feed.emit(session, "test.fact", {"n": n}, seller_id=seller_id)


def _deliveries(db, seller_id: int) -> list[tuple]:
    with db() as session:
        rows = session.scalars(
            select(FeedDelivery).where(FeedDelivery.seller_id == seller_id).order_by(FeedDelivery.id)
        )
        return [(d.sequence, d.status, d.attempts, d.response_code, d.replay) for d in rows]


def _endpoint(db, seller_id: int) -> FeedEndpoint:
    with db() as session:
        return session.get(FeedEndpoint, seller_id)


def test_events_reach_the_receiver_signed_and_in_order(db, seller_id, receiver):
    url, ledger, _ = receiver
    api.set_feed_endpoint(seller_id, url, SECRET)
    _facts(db, seller_id, 120)  # more than a page
    assert deliver_feed(seller_id, NOW) == 120
    assert [e["sequence"] for e in ledger.events] == list(range(1, 121))
    assert ledger.refused == 0 and ledger.gaps == []
    assert ledger.events[0]["type"] == "test.fact" and ledger.events[0]["data"] == {"n": 0}
    pulled = api.list_ledger_events(seller_id, 0, 1)[0]  # the pull API returns the same event
    assert (pulled.id, pulled.sequence, pulled.type, pulled.data) == tuple(
        ledger.events[0][k] for k in ("id", "sequence", "type", "data")
    )
    assert _endpoint(db, seller_id).delivered_sequence == 120
    assert {row[1] for row in _deliveries(db, seller_id)} == {"succeeded"}
    assert deliver_feed(seller_id, NOW) == 0  # nothing new: nothing posted again
    assert len(ledger.events) == 120 and ledger.duplicates == 0


def test_a_receiver_with_another_secret_refuses_and_the_event_waits(db, seller_id, receiver):
    url, ledger, _ = receiver
    api.set_feed_endpoint(seller_id, url, "rfsec_not_what_the_erp_knows")
    _facts(db, seller_id, 3)
    assert deliver_feed(seller_id, NOW) == 0
    assert ledger.refused == 1 and ledger.events == []
    assert _deliveries(db, seller_id) == [(1, "failing", 1, 400, False)]
    endpoint = _endpoint(db, seller_id)
    assert endpoint.delivered_sequence == 0 and endpoint.next_attempt_at == NOW + timedelta(minutes=1)


def test_a_rolled_secret_signs_beside_the_old_one_until_the_old_is_retired(db, seller_id, receiver):
    url, ledger, _ = receiver
    api.set_feed_endpoint(seller_id, url, SECRET)
    new = api.set_feed_endpoint(seller_id, url)  # a new secret; the ERP still knows only the old one
    assert new.startswith("rfsec_") and _endpoint(db, seller_id).secrets == [new, SECRET]
    _facts(db, seller_id, 1)
    assert deliver_feed(seller_id, NOW) == 1
    api.retire_feed_secrets(seller_id, keep=new)
    _facts(db, seller_id, 1)
    assert deliver_feed(seller_id, NOW) == 0  # the ERP has not learnt the new secret
    assert ledger.refused == 1


def test_a_failing_endpoint_is_retried_with_backoff_and_gets_everything_in_order_once_back(
    db, seller_id, receiver
):
    url, ledger, server = receiver
    api.set_feed_endpoint(seller_id, "http://127.0.0.1:9/down", SECRET)  # nothing listens on port 9
    _facts(db, seller_id, 3)
    assert deliver_feed(seller_id, NOW) == 0
    assert deliver_feed(seller_id, NOW + timedelta(seconds=59)) == 0  # not due yet: not even tried
    assert deliver_feed(seller_id, NOW + timedelta(minutes=1)) == 0
    ((sequence, status, attempts, code, _),) = _deliveries(db, seller_id)
    assert (sequence, status, attempts, code) == (1, "failing", 2, None)
    assert _endpoint(db, seller_id).next_attempt_at == NOW + timedelta(minutes=3)
    assert [row["failing_sequence"] for row in api.feed_status(failing_only=True)] == [1]
    api.set_feed_endpoint(seller_id, url, SECRET)  # the ERP is back
    assert deliver_feed(seller_id, NOW + timedelta(minutes=3)) == 3
    assert [e["sequence"] for e in ledger.events] == [1, 2, 3]
    assert api.feed_status(failing_only=True) == []


def test_an_event_failing_for_three_days_is_abandoned_and_the_feed_goes_on_leaving_a_gap(
    db, seller_id, receiver
):
    url, ledger, _ = receiver
    api.set_feed_endpoint(seller_id, url, "rfsec_wrong_secret_for_now")
    _facts(db, seller_id, 1)
    assert deliver_feed(seller_id, NOW) == 0
    api.set_feed_endpoint(seller_id, url, SECRET)
    with db.begin() as session:
        session.get(FeedEndpoint, seller_id).secrets = ["rfsec_wrong_secret_for_now"]
    later = NOW + timedelta(days=3)
    assert deliver_feed(seller_id, later) == 0
    assert _deliveries(db, seller_id) == [(1, "abandoned", 2, 400, False)]
    assert _endpoint(db, seller_id).delivered_sequence == 1
    api.set_feed_endpoint(seller_id, url, SECRET)
    api.retire_feed_secrets(seller_id, keep=SECRET)
    _facts(db, seller_id, 1)
    assert deliver_feed(seller_id, later) == 1
    assert ledger.gaps == [(seller_id, 1, 1)]
    assert api.replay_ledger_events(seller_id, 1, 1) == (1, 0)
    assert [e["sequence"] for e in ledger.events] == [2]  # the receiver already moved past it
    assert _deliveries(db, seller_id)[-1] == (1, "succeeded", 1, 200, True)


def test_a_replay_posts_the_range_again_and_the_receiver_sees_duplicates(db, seller_id, receiver):
    url, ledger, _ = receiver
    api.set_feed_endpoint(seller_id, url, SECRET)
    _facts(db, seller_id, 5)
    deliver_feed(seller_id, NOW)
    assert api.replay_ledger_events(seller_id, 2, 4) == (3, 0)
    assert ledger.duplicates == 3
    assert [d[0] for d in _deliveries(db, seller_id) if d[4]] == [2, 3, 4]
    assert _endpoint(db, seller_id).delivered_sequence == 5


def test_one_deliverer_per_seller_at_a_time(db, seller_id, receiver):
    url, ledger, _ = receiver
    api.set_feed_endpoint(seller_id, url, SECRET)
    _facts(db, seller_id, 2)
    with db.begin() as session:
        session.get(FeedEndpoint, seller_id).leased_until = NOW + timedelta(minutes=5)
    assert deliver_feed(seller_id, NOW) == 0 and ledger.events == []
    assert deliver_feed(seller_id, NOW + timedelta(minutes=6)) == 2  # an expired lease is taken over


def test_the_sweeper_nudges_endpoints_behind_and_due(db, seller_id, receiver, broker):
    url, _, _ = receiver
    api.set_feed_endpoint(seller_id, url, SECRET)
    broker.flush_all()
    assert nudge_due_endpoints(NOW) == 0
    _facts(db, seller_id, 1)
    assert nudge_due_endpoints(NOW) == 1
    deliver_feed(seller_id, NOW)
    assert nudge_due_endpoints(NOW) == 0


def test_committed_events_nudge_their_sellers_delivery_once_per_transaction_if_it_has_an_endpoint(
    db, seller_id, broker
):
    with db() as session:
        polling = factories.seller(session).id  # its ERP polls: no endpoint, nothing to deliver
        session.commit()
    api.set_feed_endpoint(seller_id, "https://erp.example/feed", SECRET)
    broker.flush_all()
    with db.begin() as session:
        for seller in (seller_id, polling, seller_id):
            feed.emit(session, "test.fact", {}, seller_id=seller)
    messages = queued_messages(broker, "feed")
    assert [(m.actor_name, m.args) for m in messages] == [("deliver_ledger_events", (seller_id,))]


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://erp.example/feed", "invalid_url"),
        ("https://user:pw@erp.example/feed", "invalid_url"),
        ("not a url", "invalid_url"),
        ("https://erp.example/" + "x" * 2000, "invalid_url"),
    ],
)
def test_an_endpoint_is_refused_with_a_bad_url(db, seller_id, url, code):
    with pytest.raises(RemitError) as refused:
        api.set_feed_endpoint(seller_id, url, SECRET)
    assert refused.value.code == code
    assert _endpoint(db, seller_id) is None


def test_a_short_secret_is_refused(db, seller_id):
    with pytest.raises(RemitError) as refused:
        api.set_feed_endpoint(seller_id, "https://erp.example/feed", "short")
    assert refused.value.code == "invalid_secret"


def test_a_pass_that_runs_out_of_time_sends_itself_again(db, seller_id, receiver, broker, monkeypatch):
    url, ledger, _ = receiver
    api.set_feed_endpoint(seller_id, url, SECRET)
    _facts(db, seller_id, 2)
    broker.flush_all()
    monkeypatch.setattr(feed_delivery, "PASS_SECONDS", 0)
    assert deliver_feed(seller_id, NOW) == 0
    assert [(m.actor_name, m.args) for m in queued_messages(broker, "feed")] == [
        ("deliver_ledger_events", (seller_id,))
    ]
    assert _endpoint(db, seller_id).leased_until is None  # the next pass may take it at once


def test_the_feed_worker_delivers_what_a_commit_nudged(db, seller_id, receiver, worker):
    url, ledger, _ = receiver
    api.set_feed_endpoint(seller_id, url, SECRET)
    _facts(db, seller_id, 3)
    wait_until(lambda: len(ledger.events) == 3)
    assert [e["sequence"] for e in ledger.events] == [1, 2, 3]
