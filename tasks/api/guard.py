"""The transaction every entry point runs in: a lock it cannot get becomes a refusal the web tier retries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from db.session import transaction
from tasks.domain import requests as checks
from tasks.domain.errors import RemitError


@contextmanager
def api_transaction() -> Iterator[Session]:
    """db.session.transaction, where a lock timeout, deadlock, serialization failure or statement timeout
    (the whole transaction rolled back, nothing written) is RemitError("busy"): the same request may
    succeed in a moment."""
    try:
        with transaction() as session:
            yield session
    except DBAPIError as exc:
        if checks.is_busy(getattr(exc.orig, "sqlstate", None)):
            raise RemitError("busy", checks.BUSY_MESSAGE) from exc
        raise
