"""/metrics is valid Prometheus text with queue depths and ages, failed jobs and payments by status."""

from __future__ import annotations

import os

from tests import factories
from tests.workers.dashboard.conftest import TOKEN, Client
from tests.workers.dashboard.support import ago, enqueue, parse_prometheus, shop_rows
from workers.broker import QUEUES


def _scrape(app) -> dict:
    answer = Client(app, bearer=TOKEN).get("/metrics")
    assert answer.status == 200
    assert answer.header("Content-Type").startswith("text/plain; version=0.0.4")
    return parse_prometheus(answer.body)


def _at(samples, name, **labels) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_metrics_report_queue_depths_states_and_oldest_age(dashboard_app, broker, clock):
    enqueue(broker, "webhooks", ago(clock.now, seconds=42))
    enqueue(broker, "webhooks", ago(clock.now, seconds=1))
    enqueue(broker, "ach", ago(clock.now, seconds=1), delay_ms=60_000)

    samples = _scrape(dashboard_app)

    assert _at(samples, "remit_queue_messages", queue="webhooks", state="waiting") == 2
    assert _at(samples, "remit_queue_messages", queue="ach", state="delayed") == 1
    assert _at(samples, "remit_queue_oldest_age_seconds", queue="webhooks") == 42
    assert _at(samples, "remit_queue_up") == 1
    for queue in QUEUES:
        for state in ("waiting", "in_flight", "delayed", "dead_letter"):
            assert ("remit_queue_messages", frozenset({("queue", queue), ("state", state)})) in samples
        assert ("remit_queue_oldest_age_seconds", frozenset({("queue", queue)})) in samples


def test_metrics_report_failed_jobs_payments_and_oldest_in_status(dashboard_app, db, clock):
    from db.models import FailedJob

    with db() as session:
        _, account, method = shop_rows(session)
        factories.payment(
            session, account, method, status="submitting", updated_at=ago(clock.now, seconds=300)
        )
        factories.payment(
            session, account, method, status="submitting", updated_at=ago(clock.now, seconds=30)
        )
        factories.payment(session, account, method, status="succeeded")
        factories.payment(
            session, account, method, status="scheduled", scheduled_for=ago(clock.now, days=3).date()
        )
        for n, status in enumerate(["dead", "dead", "retried"]):
            session.add(
                FailedJob(
                    message_id=f"m{n}",
                    queue="payments",
                    actor="execute_payment",
                    args=[n],
                    kwargs={},
                    error="boom",
                    status=status,
                )
            )
        session.commit()

    samples = _scrape(dashboard_app)

    assert _at(samples, "remit_failed_jobs", status="dead") == 2
    assert _at(samples, "remit_failed_jobs", status="retried") == 1
    assert _at(samples, "remit_failed_jobs", status="discarded") == 0
    assert _at(samples, "remit_payments", status="submitting") == 2
    assert _at(samples, "remit_payments", status="succeeded") == 1
    assert _at(samples, "remit_payments", status="refunded") == 0
    assert _at(samples, "remit_oldest_in_status_seconds", status="submitting") == 300
    assert _at(samples, "remit_oldest_in_status_seconds", status="pending") == 0
    assert _at(samples, "remit_oldest_in_status_seconds", status="scheduled") >= 2 * 86_400


def test_metrics_need_the_token_and_never_offer_a_login_page(anonymous):
    answer = anonymous.get("/metrics")
    assert answer.status == 401 and "Bearer" in answer.body and "<form" not in answer.body


def test_metrics_say_when_the_queues_cannot_be_read(db):
    from workers.dashboard.app import make_app

    class NotRedis:
        pass

    samples = _scrape(make_app(TOKEN, db, NotRedis(), QUEUES))
    assert _at(samples, "remit_queue_up") == 0
    assert not any(name == "remit_queue_messages" for name, _ in samples)


def test_metrics_count_balance_drift_in_all_and_in_the_last_hour(dashboard_app, db, clock):
    from db.models import BalanceDrift

    with db() as session:
        _, account, _ = shop_rows(session)
        for found in (ago(clock.now, hours=3), ago(clock.now, minutes=10)):
            session.add(BalanceDrift(account_id=account.id, found_at=found, before={}, after={}))
        session.commit()

    samples = _scrape(dashboard_app)

    assert _at(samples, "remit_balance_drifts_total") == 2
    assert _at(samples, "remit_balance_drifted_accounts") == 1


def test_in_multiprocess_mode_metrics_add_up_what_every_process_counted(dashboard_app, tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    count = (
        "from workers import telemetry;telemetry.MESSAGES.labels('emails', 'send_email', 'processed').inc(3)"
    )
    for _ in range(2):  # two worker processes, each with its own file in the directory
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, "-c", count], check=True, env=env, cwd=ROOT)
    dashboard_app.metrics_dir = str(tmp_path)
    client = Client(dashboard_app, bearer=TOKEN)
    samples = parse_prometheus(client.get("/metrics").body)
    key = frozenset({("queue", "emails"), ("actor", "send_email"), ("outcome", "processed")})
    assert samples[("remit_messages_total", key)] == 6
