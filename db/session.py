"""Engine, sessions, the transaction helper and on_commit hooks."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

_log = logging.getLogger(__name__)
_CALLBACKS_KEY = "remit_on_commit"
# A lock we cannot get within this long is a transient error: the job retries instead of hanging.
LOCK_TIMEOUT_MS = 5000
# Bounds a runaway query; money paths are all short statements.
STATEMENT_TIMEOUT_MS = 30000
# Every connection Remit opens runs with both, and gives up connecting after CONNECT_TIMEOUT_S.
CONNECT_TIMEOUT_S = 5
CONNECTION_OPTIONS = f"-c lock_timeout={LOCK_TIMEOUT_MS} -c statement_timeout={STATEMENT_TIMEOUT_MS}"


def libpq_url(database_url: str) -> str:
    """The SQLAlchemy URL spelled the way psycopg.connect and libpq accept it."""
    return database_url.replace("postgresql+psycopg://", "postgresql://", 1)


def make_engine(url: str, **kwargs) -> Engine:
    """An engine with timeouts that turn stuck locks into retryable errors.

    pool_pre_ping (on unless turned off) pings only connections idle for PING_AFTER_IDLE_S: a ping
    on every checkout was three extra round trips per payment under load.
    """
    ping = kwargs.pop("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    engine = create_engine(
        url, connect_args={"options": CONNECTION_OPTIONS, "connect_timeout": CONNECT_TIMEOUT_S}, **kwargs
    )
    if ping:
        event.listen(engine, "checkin", _note_checkin)
        event.listen(engine, "checkout", _ping_if_idle)
    return engine


# A pooled connection back within this long is trusted as is; after longer idling (a database
# restart, a dropped TCP connection) it is pinged at checkout and replaced if dead. Within the
# window a dead connection fails its first statement: SQLAlchemy then discards the whole pool,
# and jobs retry and the webhook receiver answers 503, as for any database error.
PING_AFTER_IDLE_S = 5.0
_CHECKED_IN_AT = "remit_checked_in_at"


def _note_checkin(dbapi_connection, record) -> None:
    record.info[_CHECKED_IN_AT] = time.monotonic()


def _ping_if_idle(dbapi_connection, record, proxy) -> None:
    checked_in = record.info.get(_CHECKED_IN_AT)
    if checked_in is None or time.monotonic() - checked_in < PING_AFTER_IDLE_S:
        return  # never used yet (it was just connected) or used moments ago
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        dbapi_connection.rollback()
    except Exception as exc:
        # The pool replaces this connection and checks out another.
        raise DisconnectionError(f"pooled connection is dead: {exc}") from exc


# lru_cache computes outside any lock: worker threads starting their first jobs together each built an
# engine, and every one kept its own pool (an idle 4-thread worker held 4 connections, not 1).
_FIRST_USE = threading.Lock()


def get_engine() -> Engine:
    """The process-wide engine, built from settings on first use (once, whichever thread comes first)."""
    with _FIRST_USE:
        return _engine()


def get_sessionmaker() -> sessionmaker[Session]:
    with _FIRST_USE:
        return _sessionmaker()


@lru_cache(maxsize=1)
def _engine() -> Engine:
    from workers.settings import get_settings

    settings = get_settings()
    # Bound values are customers' names, emails and mandate data: outside development an error names
    # the statement only, so neither logs, Sentry nor failed_jobs ever hold them.
    return make_engine(
        settings.database_url,
        hide_parameters=settings.environment != "development",
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
    )


@lru_cache(maxsize=1)
def _sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(bind=_engine(), expire_on_commit=False)


def reset_engine() -> None:
    """Forget the cached engine (tests and forked processes)."""
    with _FIRST_USE:
        if _engine.cache_info().currsize:
            _engine().dispose()
        _engine.cache_clear()
        _sessionmaker.cache_clear()


@contextmanager
def transaction(factory: sessionmaker[Session] | None = None) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any exception."""
    session = (factory or get_sessionmaker())()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def on_commit(session: Session, fn: Callable[[], object]) -> None:
    """Run fn once the session's current transaction commits; drop it on rollback."""
    session.info.setdefault(_CALLBACKS_KEY, []).append(fn)


@event.listens_for(Session, "after_commit")
def _run_callbacks(session: Session) -> None:
    callbacks = session.info.pop(_CALLBACKS_KEY, [])
    for fn in callbacks:
        try:
            fn()
        except Exception:
            # The commit stands; a sweeper re-sends whatever this callback failed to send.
            _log.exception("on_commit callback %r failed after commit", fn)


@event.listens_for(Session, "after_soft_rollback")
def _drop_callbacks(session: Session, previous_transaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_CALLBACKS_KEY, None)
