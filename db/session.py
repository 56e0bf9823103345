"""Engine, sessions, the transaction helper and on_commit hooks."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from functools import lru_cache
from typing import Callable, Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

_log = logging.getLogger(__name__)
_CALLBACKS_KEY = "remit_on_commit"
# A lock we cannot get within this long is a transient error: the job retries instead of hanging.
LOCK_TIMEOUT_MS = 5000
# Bounds a runaway query; money paths are all short statements.
STATEMENT_TIMEOUT_MS = 30000


def libpq_url(database_url: str) -> str:
    """The SQLAlchemy URL spelled the way psycopg.connect and libpq accept it."""
    return database_url.replace("postgresql+psycopg://", "postgresql://", 1)


def make_engine(url: str, **kwargs) -> Engine:
    """An engine with timeouts that turn stuck locks into retryable errors."""
    options = f"-c lock_timeout={LOCK_TIMEOUT_MS} -c statement_timeout={STATEMENT_TIMEOUT_MS}"
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, connect_args={"options": options, "connect_timeout": 5}, **kwargs)


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    """The process-wide engine, built from settings on first use."""
    from workers.settings import get_settings

    return make_engine(get_settings().database_url)


@lru_cache(maxsize=1)
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


def reset_engine() -> None:
    """Forget the cached engine (tests and forked processes)."""
    if get_engine.cache_info().currsize:
        get_engine().dispose()
    get_engine.cache_clear()
    get_sessionmaker.cache_clear()


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
