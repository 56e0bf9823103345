"""The `maintenance` queue's actors: a transient failure is retried a few times within the job's period;
anything else is a dead letter at once, since the clock sends the job again on its next tick anyway."""

import dramatiq
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from db.models import FailedJob
from schedules.schedule import SCHEDULE
from tasks import maintenance
from tasks.domain.errors import StripeMisconfigured, StripeRefused, StripeUnavailable
from tasks.flows import payments, reconcile
from tasks.gateways.limiter import RateLimitBacklog
from tests.helpers import wait_until

ACTORS = [a for a in vars(maintenance).values() if isinstance(a, dramatiq.Actor)]
DB_RESTARTING = OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))


def test_every_maintenance_actor_runs_within_two_minutes_but_reconcile():
    assert len(ACTORS) == 12
    for actor in ACTORS:
        assert actor.queue_name == "maintenance" and actor.options["throws"] == ()
        assert actor.options["retry_when"] is maintenance.retry_transient, actor.actor_name
        expected = 600_000 if actor.actor_name == "reconcile_stripe" else 120_000
        assert actor.options["time_limit"] == expected, actor.actor_name


def test_all_retries_end_well_before_the_shortest_period_so_they_never_pile_up():
    # Dramatiq's backoff doubles from min_backoff: the worst case is every retry at its cap.
    worst_ms = sum(
        min(maintenance.MIN_BACKOFF_MS * 2**n, maintenance.MAX_BACKOFF_MS)
        for n in range(maintenance.MAX_RETRIES)
    )
    assert worst_ms < min(job.every_seconds for job in SCHEDULE) * 1000 / 2


@pytest.mark.parametrize(
    ("exception", "retried"),
    [
        (DB_RESTARTING, True),  # PostgreSQL restarting, or a deadlock: the next attempt gets through
        (StripeUnavailable("RateLimitError: too many requests"), True),  # a 429, a 5xx, a timeout
        (RateLimitBacklog("Stripe budget booked 40.0s ahead"), True),
        (RedisConnectionError("connection refused"), True),  # the broker restarting
        (dramatiq.errors.BrokerConnectionError("broker gone"), True),
        (StripeRefused("resource_missing", "No such event", 404), False),  # a bug: the same call fails again
        (StripeMisconfigured("AuthenticationError: bad key"), False),  # someone must look
        (ValueError("broken invariant"), False),
    ],
)
def test_only_a_transient_failure_is_retried(exception, retried):
    assert maintenance.retry_transient(0, exception) is retried
    assert maintenance.retry_transient(maintenance.MAX_RETRIES, exception) is False


def _failed(db):
    with db() as session:
        return session.scalars(select(FailedJob)).all()


def test_a_pass_hit_by_a_database_restart_runs_again_and_leaves_no_dead_letter(
    db, broker, worker, monkeypatch
):
    calls = []

    def sweep_after_a_restart(now):
        calls.append(now)
        if len(calls) == 1:
            raise DB_RESTARTING
        return {"resent": 0}

    monkeypatch.setattr(payments, "sweep_payments", sweep_after_a_restart)
    maintenance.sweep_payments.send_with_options(min_backoff=10, max_backoff=20)
    wait_until(lambda: len(calls) == 2, timeout_s=10.0)
    broker.join("maintenance", timeout=10_000)
    worker.join()
    assert len(calls) == 2 and _failed(db) == []


def test_a_pass_refused_by_stripe_is_a_dead_letter_at_once(db, broker, worker, monkeypatch):
    calls = []

    def refused(now):
        calls.append(now)
        raise StripeRefused("parameter_invalid", "Invalid created filter", 400)

    monkeypatch.setattr(reconcile, "reconcile_with_stripe", refused)
    message = maintenance.reconcile_stripe.send_with_options(min_backoff=10, max_backoff=20)
    wait_until(lambda: _failed(db) != [], timeout_s=10.0)
    broker.join("maintenance", timeout=10_000)
    worker.join()
    assert len(calls) == 1
    [dead] = _failed(db)
    assert (dead.message_id, dead.actor) == (message.message_id, "reconcile_stripe")
    assert "StripeRefused" in dead.error
