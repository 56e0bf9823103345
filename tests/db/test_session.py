import os
import threading
import time

import pytest
from sqlalchemy import func, select

from db.models import Seller
from db.session import on_commit, transaction
from tests import factories


def test_callback_runs_after_commit_and_sees_committed_row(db):
    seen = []

    with transaction(db) as session:
        row = factories.seller(session)
        on_commit(session, lambda: seen.append(_count_sellers(db)))
        assert seen == []
    assert seen == [1]
    assert row.id is not None


def test_callback_is_dropped_on_rollback(db):
    seen = []
    with pytest.raises(RuntimeError):
        with transaction(db) as session:
            factories.seller(session)
            on_commit(session, lambda: seen.append("sent"))
            raise RuntimeError("boom")
    assert seen == []
    assert _count_sellers(db) == 0


def test_dropped_callback_does_not_leak_into_next_transaction(db):
    seen = []
    session = db()
    factories.seller(session)
    on_commit(session, lambda: seen.append("first"))
    session.rollback()
    factories.seller(session)
    session.commit()
    session.close()
    assert seen == []


def test_failing_callback_keeps_the_commit_and_runs_the_rest(db):
    seen = []
    with transaction(db) as session:
        factories.seller(session)
        on_commit(session, lambda: 1 / 0)
        on_commit(session, lambda: seen.append("second"))
    assert seen == ["second"]
    assert _count_sellers(db) == 1


def _count_sellers(db) -> int:
    with db() as session:
        return session.scalar(select(func.count()).select_from(Seller))


def _backend_pid(connection) -> int:
    from sqlalchemy import text

    return connection.execute(text("SELECT pg_backend_pid()")).scalar_one()


def _terminate(pid: int) -> None:
    import psycopg

    from db.session import libpq_url

    with psycopg.connect(libpq_url(os.environ["DATABASE_URL"]), autocommit=True) as admin:
        # With a timeout it waits until the process is gone: otherwise the next statement can still win.
        assert admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone()[0]


@pytest.fixture()
def dead_in_pool(migrated):
    """An engine with one pooled connection whose server process was terminated while it sat idle."""
    from db import session as db_session

    engine = db_session.make_engine(os.environ["DATABASE_URL"], pool_size=1, max_overflow=0)
    with engine.connect() as connection:
        dead = _backend_pid(connection)
    _terminate(dead)
    yield engine, dead
    engine.dispose()


def test_an_idle_pooled_connection_that_died_is_replaced_at_checkout(dead_in_pool, monkeypatch):
    from sqlalchemy import text

    from db import session as db_session

    engine, dead = dead_in_pool
    monkeypatch.setattr(db_session, "PING_AFTER_IDLE_S", 0.0)

    with engine.connect() as connection:
        assert connection.execute(text("SELECT 41 + 1")).scalar_one() == 42
        assert _backend_pid(connection) != dead


def test_a_connection_used_moments_ago_is_not_pinged_and_a_dead_one_fails_once(dead_in_pool, monkeypatch):
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from db import session as db_session

    engine, dead = dead_in_pool
    monkeypatch.setattr(db_session, "PING_AFTER_IDLE_S", 3600.0)

    with pytest.raises(DBAPIError) as raised, engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    assert raised.value.connection_invalidated
    with engine.connect() as connection:
        assert _backend_pid(connection) != dead


def test_threads_that_first_need_the_engine_together_share_one_engine_and_pool(migrated):
    import threading

    from db.session import get_engine, get_sessionmaker, reset_engine

    reset_engine()
    start = threading.Barrier(8)
    engines, makers = [], []

    def first_use():
        start.wait()
        makers.append(get_sessionmaker())
        engines.append(get_engine())

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(engine) for engine in engines}) == 1
    assert len({id(maker) for maker in makers}) == 1 and makers[0].kw["bind"] is engines[0]


def test_the_pool_is_sized_by_the_kind_of_process(monkeypatch):
    from db.session import get_engine, reset_engine
    from workers.settings import get_settings, process_kind_environ

    monkeypatch.setenv("REMIT_PROCESS_KIND", process_kind_environ("worker", 8)["REMIT_PROCESS_KIND"])
    get_settings.cache_clear()
    reset_engine()
    try:
        assert (get_engine().pool.size(), get_engine().pool._max_overflow) == (8, 2)
        monkeypatch.setenv("DATABASE_POOL_SIZE", "3")
        monkeypatch.setenv("DATABASE_MAX_OVERFLOW", "0")
        get_settings.cache_clear()
        reset_engine()
        assert (get_engine().pool.size(), get_engine().pool._max_overflow) == (3, 0)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        reset_engine()


def test_a_worker_keeps_a_connection_per_thread_instead_of_a_backend_per_transaction(monkeypatch):
    """Eight threads, each running a transaction then waiting (as a payment waits on Stripe between its
    two), open at most eight connections between them: a connection returned is kept for the next
    message, not closed (PostgreSQL starts a process for each new one). With one kept, 200 transactions
    opened about 90."""
    from sqlalchemy import event, text

    from db.session import get_engine, reset_engine, transaction
    from workers.settings import get_settings, process_kind_environ

    monkeypatch.setenv("REMIT_PROCESS_KIND", process_kind_environ("worker", 8)["REMIT_PROCESS_KIND"])
    get_settings.cache_clear()
    reset_engine()
    opened = []
    try:
        event.listen(get_engine(), "connect", lambda *_: opened.append(1))

        def work():
            for _ in range(25):
                with transaction() as session:
                    session.execute(text("SELECT 1"))
                time.sleep(0.005)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert 1 <= len(opened) <= 8, f"{len(opened)} connections opened for 200 transactions"
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        reset_engine()
