"""The overview is live and honest: it reloads itself, says as of when, lists worker processes and the
retry set, fires health rules that clear with their cause, and charts the last hour's rates."""

from __future__ import annotations

import os
import socket
import threading
import time

import dramatiq

from tests.workers.dashboard.support import ago, parse_prometheus, row_cells, stripe_event
from workers import broker as _broker  # noqa: F401  (the Remit broker exists before the test actors)
from workers import telemetry


def test_the_overview_reloads_itself_at_the_chosen_interval_or_not_at_all(client, clock):
    page = client.get("/").body
    assert '<meta http-equiv="refresh" content="10">' in page
    assert f'datetime="{clock.now.isoformat()}"' in page
    assert '<meta http-equiv="refresh" content="30">' in client.get("/?refresh=30").body
    paused = client.get("/?refresh=0").body
    assert 'http-equiv="refresh"' not in paused and "Paused" in paused
    assert client.get("/?refresh=7").status == 400


def test_worker_processes_come_from_heartbeats_with_what_each_published(client, broker, worker):
    deadline = time.monotonic() + 10
    while not broker.client.zcard(f"{broker.namespace}:__heartbeats__") and time.monotonic() < deadline:
        time.sleep(0.05)
    body = client.get("/").body
    cells, _ = row_cells(body, socket.gethostname(), "Worker processes")
    assert cells[1:4] == [str(os.getpid()), "ach,balances,emails,feed,maintenance,payments,webhooks", "2"]
    assert cells[4] == "0"  # busy: nothing running
    worker.stop()
    broker.client.delete(f"{broker.namespace}:__heartbeats__")
    assert "No worker process has a live heartbeat." in client.get("/").body


def test_a_retrying_failure_is_listed_in_the_retry_set_and_its_rule_fires_until_it_is_gone(
    client, broker, clock
):
    message = dramatiq.Message(
        queue_name="webhooks",
        actor_name="process_stripe_event",
        args=("evt_1",),
        kwargs={},
        options={"retries": 2, "traceback": "Traceback ...\nKeyError: 'charges'"},
    )
    broker.enqueue(message, delay=90_000)
    body = client.get("/").body
    cells, alert = row_cells(body, "webhooks", "Retry set (delayed messages, soonest first)")
    assert cells[1:4] == ["process_stripe_event", '["evt_1"]', "2"] and alert
    assert cells[5] == "KeyError: 'charges'"
    rule, firing = row_cells(body, "retrying failures", "Health")
    assert firing and rule[2] == "1 messages failed and are backing off"
    assert "Nothing abnormal" not in body

    broker.flush_all()
    rule, firing = row_cells(client.get("/").body, "retrying failures", "Health")
    assert not firing and rule[1] == "clear"


def test_failing_webhooks_and_flagged_payments_fire_their_rules(client, db, clock):
    from tests import factories
    from tests.workers.dashboard.support import shop_rows

    with db() as session:
        event = stripe_event(session, "evt_retrying", ago(clock.now, minutes=1))
        event.attempts = 1
        _, account, method = shop_rows(session)
        factories.payment(session, account, method, status="succeeded", needs_review=True)
        session.commit()
    body = client.get("/").body
    assert row_cells(body, "failing webhook deliveries", "Health") == (
        ["failing webhook deliveries", "firing", "0 failed, 1 retrying"],
        True,
    )
    assert row_cells(body, "flagged payments", "Health") == (
        ["flagged payments", "firing", "1 need review"],
        True,
    )


def test_charts_show_the_last_hour_per_minute_from_redis_and_the_database(client, db, broker, clock):
    now = clock.now.timestamp()
    for _ in range(3):
        telemetry.count_minute(broker.client, broker.namespace, ["processed"], now)
    telemetry.count_minute(broker.client, broker.namespace, ["failed"], now - 120)
    telemetry.count_minute(broker.client, broker.namespace, ["processed"], now - 3 * 3600)  # too old
    with db() as session:
        stripe_event(session, "evt_a", ago(clock.now, minutes=2))
        stripe_event(session, "evt_b", ago(clock.now, minutes=2))
        stripe_event(session, "evt_old", ago(clock.now, minutes=90))
        session.commit()
    body = client.get("/").body
    assert (
        '<strong>jobs processed</strong> <span class="muted">3 in the last hour · peak 3/min</span>' in body
    )
    assert '<strong>job attempts failed</strong> <span class="muted">1 in the last hour' in body
    assert '<strong>webhooks in</strong> <span class="muted">2 in the last hour · peak 2/min</span>' in body
    assert body.count("<svg") == 9  # seven for the last hour, two for the last 30 days


def test_a_processed_message_is_counted_for_metrics_and_charts_and_leaves_the_running_list(
    client, broker, worker
):
    from tests.workers.dashboard.test_failed_jobs import _wait

    @dramatiq.actor(actor_name="dashboard_test_counted", queue_name="maintenance", max_retries=0)
    def counted() -> None:
        return None

    before = telemetry.MESSAGES.labels("maintenance", "dashboard_test_counted", "processed")._value.get()
    counted.send()
    _wait(
        lambda: (
            True
            if telemetry.MESSAGES.labels("maintenance", "dashboard_test_counted", "processed")._value.get()
            > before
            else None
        )
    )
    samples = parse_prometheus(client.get("/metrics", authorization=f"Bearer {client_token()}").body)
    key = frozenset({("queue", "maintenance"), ("actor", "dashboard_test_counted"), ("outcome", "processed")})
    assert samples[("remit_messages_total", key)] >= 1
    assert (
        samples[("remit_message_duration_seconds_count", frozenset({("actor", "dashboard_test_counted")}))]
        >= 1
    )
    assert samples[("remit_queue_latency_seconds_count", frozenset({("queue", "maintenance")}))] >= 1
    assert samples[("remit_health_rule_firing", frozenset({("rule", "workers running")}))] == 0
    counts = telemetry.read_minutes(broker.client, broker.namespace, time.time())
    assert sum(counts["processed"]) >= 1
    assert broker.client.hlen(f"{broker.namespace}:remit:process:{broker.broker_id}:running") == 0


def client_token() -> str:
    from tests.workers.dashboard.conftest import TOKEN

    return TOKEN


def test_the_schedule_page_lists_every_job_and_run_now_sends_one_as_the_clock_would(
    client, db, broker, clock
):
    from sqlalchemy import select

    from db.models import AuditEntry, ScheduleRun
    from schedules.schedule import SCHEDULE

    with db() as session:
        session.add(ScheduleRun(job="sweep-payments", period="1", started_at=ago(clock.now, minutes=10)))
        session.commit()
    page = client.get("/schedule")
    for job in SCHEDULE:
        assert job.name in page.body
    cells, alert = row_cells(page.body, "sweep-payments")
    assert cells[3] == "10m 0s ago" and alert  # three periods without a send
    assert row_cells(client.get("/").body, "clock running", "Health")[1]  # the clock rule fires

    answer = client.post("/schedule/sweep-payments/run", {"csrf": page.csrf})
    assert answer.header("Location") == "/schedule?done=sent"
    key = f"{broker.namespace}:maintenance"
    [sent] = [
        dramatiq.Message.decode(broker.client.hget(f"{key}.msgs", i))
        for i in broker.client.lrange(key, 0, -1)
    ]
    assert (sent.actor_name, sent.args) == ("sweep_payments", ())
    with db() as session:
        assert session.scalars(select(AuditEntry.action)).all() == ["run_job_now"]
    assert client.post("/schedule/no-such-job/run", {"csrf": page.csrf}).status == 404


RELEASE = threading.Event()


@dramatiq.actor(actor_name="dashboard_test_waits", queue_name="maintenance", max_retries=0, time_limit=30_000)
def waits(order_id: int) -> None:
    RELEASE.wait(20)


def test_a_message_being_run_is_listed_with_its_process_until_it_ends(client, broker, worker, clock):
    from tests.workers.dashboard.test_failed_jobs import _wait

    RELEASE.clear()
    waits.send(77)
    try:
        body = _wait(lambda: b if "dashboard_test_waits" in (b := client.get("/").body) else None)
        cells, _ = row_cells(body, socket.gethostname(), "Running now")
        assert cells[1:5] == [str(os.getpid()), "maintenance", "dashboard_test_waits", "[77]"]
        processes, _ = row_cells(body, socket.gethostname(), "Worker processes")
        assert processes[4] == "1"  # busy
    finally:
        RELEASE.set()
    _wait(lambda: True if "Nothing is running." in client.get("/").body else None)


def test_the_actors_page_shows_each_actors_last_hour_from_what_workers_counted(client, broker, clock):
    now = clock.now.timestamp()
    for ms in (100, 300):
        telemetry.count_message(broker.client, broker.namespace, "send_email", "processed", ms, now)
    telemetry.count_message(broker.client, broker.namespace, "send_email", "failed", 200, now - 600)
    telemetry.count_message(
        broker.client, broker.namespace, "send_email", "processed", 9_999, now - 7200
    )  # old
    page = client.get("/actors").body
    cells, alert = row_cells(page, "send_email")
    assert cells[:6] == ["send_email", "emails", "2", "1", "33.3%", "200 ms"] and alert
    idle, _ = row_cells(page, "execute_payment")
    assert idle[2:6] == ["0", "0", "–", "–"]
    assert page.index("send_email") < page.index("execute_payment")  # busiest first
    overview = client.get("/").body
    assert '<strong>jobs processed</strong> <span class="muted">2 in the last hour' in overview


def test_daily_totals_of_the_last_30_days_are_charted(client, broker, clock):
    now = clock.now.timestamp()
    for days_ago in (0, 0, 3, 29, 31):  # the last one is past the chart
        telemetry.count_message(
            broker.client, broker.namespace, "send_email", "processed", 5, now - days_ago * 86400
        )
    telemetry.count_message(broker.client, broker.namespace, "send_email", "failed", 5, now - 86400)
    counts = telemetry.read_days(broker.client, broker.namespace, now)
    assert (
        counts["processed"][-1],
        counts["processed"][-4],
        counts["processed"][0],
        sum(counts["processed"]),
    ) == (
        2,
        1,
        1,
        4,
    )
    body = client.get("/").body
    assert (
        '<strong>jobs processed per day</strong> <span class="muted">4 in the last 30 days · peak 2/day'
        in body
    )
    assert '<strong>job attempts failed per day</strong> <span class="muted">1 in the last 30 days' in body
