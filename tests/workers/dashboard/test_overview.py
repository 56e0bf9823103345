"""The overview shows what Redis and Postgres hold right now, and highlights what is abnormal."""

from __future__ import annotations

import re
from datetime import date, timedelta

from tests import factories
from tests.workers.dashboard.support import ago, email, enqueue, row_cells, shop_rows, stripe_event


def test_queue_depths_and_oldest_waiting_age_come_from_redis(client, broker, clock):
    enqueue(broker, "payments", ago(clock.now, seconds=90))
    enqueue(broker, "payments", ago(clock.now, seconds=10))
    enqueue(broker, "payments", ago(clock.now, seconds=5))
    enqueue(broker, "emails", ago(clock.now, seconds=3), delay_ms=3_600_000)
    enqueue(broker, "webhooks", ago(clock.now, seconds=2))

    body = client.get("/").body

    payments, alert = row_cells(body, "payments")
    # queue, waiting, oldest waiting, in flight, delayed, Redis dead letters, failed jobs
    assert payments == ["payments", "3", "1m 30s", "0", "0", "0", "0"] and alert
    webhooks, alert = row_cells(body, "webhooks")
    assert webhooks == ["webhooks", "1", "2s", "0", "0", "0", "0"] and not alert
    emails, alert = row_cells(body, "emails")
    assert emails == ["emails", "0", "–", "0", "1", "0", "0"] and not alert


def test_every_queue_is_listed_even_when_empty(client, broker, worker):
    from workers.broker import QUEUES

    body = client.get("/").body
    for queue in QUEUES:
        assert row_cells(body, queue)[0][1:3] == ["0", "–"]
    assert "Nothing abnormal" in body


def test_no_worker_process_is_a_health_rule_that_fires(client, broker):
    body = client.get("/").body
    assert "1 health rule firing" in body
    assert row_cells(body, "workers running", "Health") == (
        ["workers running", "firing", "0 worker processes"],
        True,
    )


def test_payments_in_flight_too_long_and_past_due_schedules_are_highlighted(client, db, clock):
    with db() as session:
        _, account, method = shop_rows(session)
        factories.payment(session, account, method, status="pending", updated_at=ago(clock.now, minutes=5))
        factories.payment(session, account, method, status="pending", updated_at=ago(clock.now, seconds=20))
        factories.payment(session, account, method, status="processing", updated_at=ago(clock.now, hours=2))
        factories.payment(
            session, account, method, status="scheduled", scheduled_for=clock.now.date() - timedelta(days=2)
        )
        factories.payment(session, account, method, status="scheduled", scheduled_for=date(2099, 1, 1))
        factories.payment(session, account, method, status="succeeded")
        session.commit()

    body = client.get("/").body

    assert row_cells(body, "pending") == (["pending", "2", "5m 0s", ""], True)
    assert row_cells(body, "processing") == (["processing", "1", "2h 0m", ""], False)
    assert row_cells(body, "succeeded") == (["succeeded", "1", "–", ""], False)
    assert row_cells(body, "scheduled")[0][1] == "2"
    cells, alert = row_cells(body, "scheduled, past due")
    assert cells[1] == "1" and alert
    assert "thing" in body and "need" in body


def test_late_webhook_events_failed_emails_and_stale_balances_are_highlighted(client, db, clock):
    with db() as session:
        seller, account, _ = shop_rows(session)
        account.balance_stale_since = ago(clock.now, minutes=10)
        factories.account(session, seller, balance_stale_since=ago(clock.now, minutes=1))
        stripe_event(session, "evt_late", ago(clock.now, minutes=3))
        stripe_event(session, "evt_fresh", ago(clock.now, seconds=30))
        stripe_event(session, "evt_done", ago(clock.now, hours=1), status="processed")
        email(session, seller, "queued", ago(clock.now, seconds=30), 1)
        email(session, seller, "failed", ago(clock.now, hours=1), 2)
        session.commit()

    body = client.get("/").body

    assert row_cells(body, "received") == (["received", "2", "3m 0s", "1 older than 2 minutes"], True)
    assert row_cells(body, "processed") == (["processed", "1", "–", ""], False)
    assert row_cells(body, "queued", "Emails") == (["queued", "1", "30s", ""], False)
    assert row_cells(body, "failed", "Emails") == (["failed", "1", "–", ""], True)
    assert row_cells(body, "failed", "Payments") == (["failed", "0", "–", ""], False)
    assert row_cells(body, "stale for over 5 minutes") == (
        ["stale for over 5 minutes", "1", "10m 0s", ""],
        True,
    )


def test_a_sellers_failing_ledger_feed_is_highlighted(client, db, clock):
    from db.models import FeedDelivery
    from tasks.flows import feed

    section = "Ledger feeds"
    assert row_cells(client.get("/").body, "failing", section) == (["failing", "0", "–", ""], False)
    with db() as session:
        seller, _, _ = shop_rows(session)
        feed.emit(session, "test.fact", {}, seller_id=seller.id)
        session.commit()
    with db() as session:
        first = ago(clock.now, minutes=7)
        session.add(
            FeedDelivery(
                seller_id=seller.id,
                event_id=1,
                sequence=1,
                replay=False,
                status="failing",
                attempts=3,
                response_code=503,
                first_attempt_at=first,
                last_attempt_at=clock.now,
            )
        )
        session.commit()
    cells, highlighted = row_cells(client.get("/").body, "failing", section)
    assert cells == ["failing", "1", "7m 0s", "remit feed status --failing"] and highlighted


def test_balance_drift_of_the_last_hour_is_highlighted(client, db, clock):
    from db.models import BalanceDrift

    with db() as session:
        _, account, _ = shop_rows(session)
        session.add(
            BalanceDrift(account_id=account.id, found_at=ago(clock.now, hours=5), before={}, after={})
        )
        session.commit()
    assert row_cells(client.get("/").body, "drifted in the last hour") == (
        ["drifted in the last hour", "0", "–", "1 drift records in all"],
        False,
    )
    with db() as session:
        session.add(
            BalanceDrift(account_id=account.id, found_at=ago(clock.now, minutes=2), before={}, after={})
        )
        session.commit()
    cells, alert = row_cells(client.get("/").body, "drifted in the last hour")
    assert (cells[1], cells[3], alert) == ("1", "2 drift records in all", True)


def test_a_queue_page_lists_the_messages_waiting_at_its_head(client, broker, clock):
    enqueue(broker, "payments", ago(clock.now, seconds=90))
    enqueue(broker, "payments", ago(clock.now, seconds=5), actor="execute_payment")
    assert 'href="/queues/payments"' in client.get("/").body
    page = client.get("/queues/payments").body
    rows = re.findall(
        r"<tr><td><code>[^<]+</code></td><td>([^<]+)</td><td><code>([^<]+)</code></td>"
        r'<td class="num">([^<]+)</td></tr>',
        page,
    )
    assert rows == [("execute_payment", "[1]", "1m 30s"), ("execute_payment", "[1]", "5s")]
    assert client.get("/queues/nope").status == 404 and client.get("/queues/NOPE").status == 404
