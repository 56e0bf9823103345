"""The clock process: one active per database (advisory lock), sending each due (job, period) once."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import dramatiq
from dramatiq.errors import DramatiqError
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert

from db.models import ScheduleRun
from db.session import get_engine, transaction
from schedules.schedule import SCHEDULE, Job, period_of

_log = logging.getLogger("remit.clock")
# Any constant unique to Remit's clock; every clock process competes for it.
CLOCK_LOCK_KEY = 0x52454D4954
# Sub-minute jobs are not needed; one tick a second keeps the clock responsive to shutdown.
TICK_SECONDS = 1.0


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
    with get_engine().connect() as connection:
        _log.info("waiting for the clock lock")
        while not connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": CLOCK_LOCK_KEY}).scalar():
            connection.commit()
            time.sleep(5)
        connection.commit()
        _log.info("active: %d jobs", len(SCHEDULE))
        while True:
            sent = run_once(datetime.now(UTC))
            if sent:
                _log.info("sent %s", ", ".join(sent))
            time.sleep(TICK_SECONDS)
