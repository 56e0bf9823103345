"""The clock process: one active per database (advisory lock), sending each due (job, period) once."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import dramatiq
from dramatiq.errors import DramatiqError
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from db.models import ScheduleRun
from db.session import get_engine, transaction
from schedules.schedule import SCHEDULE, Job, period_of

_log = logging.getLogger("remit.clock")
# Any constant unique to Remit's clock; every clock process competes for it.
CLOCK_LOCK_KEY = 0x52454D4954
# Sub-minute jobs are not needed; one tick a second keeps the clock responsive to shutdown.
TICK_SECONDS = 1.0
# A clock on standby asks for the lock this often: a failed-over clock takes over within five seconds.
STANDBY_POLL_SECONDS = 5.0
# After a database failure the clock waits 1 s, then twice as long each time up to 30 s: a fast restart is
# over in a second or two, and a long outage costs one log line every 30 s and at most 30 s after it ends.
OUTAGE_FIRST_WAIT_SECONDS = 1.0
OUTAGE_MAX_WAIT_SECONDS = 30.0
# PostgreSQL restarting or unreachable (at start or mid-tick), a connection it closed, a pool left empty.
# Anything else is a bug and stops the clock.
DATABASE_DOWN = (OperationalError, InterfaceError, PoolTimeoutError)


def run_once(now: datetime, schedule: tuple[Job, ...] = SCHEDULE) -> list[str]:
    """Send every job whose current period has not run yet; return the names sent."""
    broker = dramatiq.get_broker()
    sent = []
    for job in schedule:
        try:
            with transaction() as session:
                claimed = session.scalar(
                    insert(ScheduleRun)
                    .values(job=job.name, period=period_of(job, now.timestamp()))
                    .on_conflict_do_nothing(index_elements=["job", "period"])
                    .returning(ScheduleRun.id)
                )
                if claimed is not None:
                    # Sent before the claim commits: a send that fails takes the claim back with it, so
                    # the next tick sends the job. (A commit failing after the send sends it twice, which
                    # every scheduled actor tolerates; losing a period's run is what must not happen.)
                    broker.get_actor(job.actor).send()
        except (DramatiqError, RedisError, OSError) as error:
            _log.warning("could not send %s, trying again next tick: %s", job.name, error)
            continue
        if claimed is not None:
            sent.append(job.name)
    return sent


def run_clock() -> int:
    """Stand by until this process holds the clock lock, then tick until interrupted."""
    import workers.actors  # noqa: F401  (registers every actor the schedule names)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s clock %(message)s")
    keep_time(time.sleep)
    return 0


def keep_time(sleep: Callable[[float], None]) -> None:
    """Hold the lock and tick; a database outage is logged and waited out, then the lock is taken again.

    The lock lives as long as its connection: after an outage another clock may hold it, so this one
    stands by again. Jobs owed during the outage were never claimed, so the first tick back sends them.
    """
    failures = 0
    while True:
        try:
            with get_engine().connect() as connection:
                try:
                    _wait_for_lock(connection, sleep)
                    while True:
                        _tick(connection)
                        failures = 0
                        sleep(TICK_SECONDS)
                except DATABASE_DOWN:
                    # Closed, not returned to the pool: a pooled session would keep holding the lock.
                    connection.invalidate()
                    raise
        except DATABASE_DOWN as error:
            wait_s = min(OUTAGE_FIRST_WAIT_SECONDS * 2**failures, OUTAGE_MAX_WAIT_SECONDS)
            failures += 1
            _log.warning("database unreachable, trying again in %.0f s: %s", wait_s, error)
            sleep(wait_s)


def _wait_for_lock(connection: Connection, sleep: Callable[[float], None]) -> None:
    _log.info("waiting for the clock lock")
    while not connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": CLOCK_LOCK_KEY}).scalar():
        connection.commit()
        sleep(STANDBY_POLL_SECONDS)
    connection.commit()
    _log.info("active: %d jobs", len(SCHEDULE))


def _tick(connection: Connection) -> None:
    # The lock's connection is alive, so the lock is still ours (a restart would have ended both).
    connection.exec_driver_sql("SELECT 1")
    connection.commit()
    sent = run_once(datetime.now(UTC))
    if sent:
        _log.info("sent %s", ", ".join(sent))
