"""The clock outlives a database outage: it starts while PostgreSQL is down, waits out a restart mid-run,
takes its lock again and sends the jobs the outage kept it from sending."""

from types import SimpleNamespace

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

import workers.actors  # noqa: F401  (the schedule's actors, as run_clock imports them)
from db.session import get_engine
from schedules import clock
from schedules.schedule import SCHEDULE
from tests.helpers import queued_messages

DB_DOWN = OperationalError("connect", {}, Exception("connection refused: the database system is starting up"))
# A clock that ticks this often without sending the whole schedule is stuck: the test stops it and fails.
MAX_WAITS = 20


class ClockStopped(Exception):
    """Raised by the scripted sleep to end run_clock's loop."""


class Waits:
    """time.sleep as the clock sees it: each wait recorded, and the clock stopped once every job is queued."""

    def __init__(self, broker) -> None:
        self.broker, self.seconds = broker, []
        self.lock_free_at_stop: bool | None = None

    def sleep(self, seconds: float) -> None:
        self.seconds.append(seconds)
        if len(queued_messages(self.broker, "maintenance")) >= len(SCHEDULE) or len(self.seconds) > MAX_WAITS:
            self.lock_free_at_stop = _lock_is_free()
            raise ClockStopped


def _lock_is_free() -> bool:
    with get_engine().connect() as other:
        taken = other.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": clock.CLOCK_LOCK_KEY}).scalar()
        if taken:
            other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": clock.CLOCK_LOCK_KEY})
        other.commit()
        return bool(taken)


def _down_for(calls: int, then):
    made = []

    def flaky(*args, **kwargs):
        made.append(1)
        if len(made) <= calls:
            raise DB_DOWN
        return then(*args, **kwargs)

    return flaky


def _run(monkeypatch, waits: Waits) -> None:
    monkeypatch.setattr(clock, "time", SimpleNamespace(sleep=waits.sleep))
    try:
        with pytest.raises(ClockStopped):
            clock.run_clock()
    finally:
        get_engine().dispose()  # the stopped clock's session, and its lock, end here


def test_the_clock_starts_while_the_database_is_down_and_sends_every_job_once_it_is_back(
    db, broker, monkeypatch
):
    waits = Waits(broker)
    monkeypatch.setattr(clock, "get_engine", _down_for(2, get_engine))
    _run(monkeypatch, waits)
    assert waits.seconds[:2] == [1.0, 2.0]  # backing off while it is down
    assert sorted(m.actor_name for m in queued_messages(broker, "maintenance")) == sorted(
        j.actor for j in SCHEDULE
    )
    assert waits.lock_free_at_stop is False  # and holding the clock lock once it is back


def test_a_database_restart_mid_tick_is_waited_out_and_the_lock_taken_again(db, broker, monkeypatch):
    waits = Waits(broker)
    monkeypatch.setattr(clock, "transaction", _down_for(3, clock.transaction))
    _run(monkeypatch, waits)
    assert waits.seconds[:3] == [1.0, 2.0, 4.0]
    # The jobs the outage kept from being claimed all go out on the first tick back, each once.
    assert sorted(m.actor_name for m in queued_messages(broker, "maintenance")) == sorted(
        j.actor for j in SCHEDULE
    )
    assert waits.lock_free_at_stop is False
