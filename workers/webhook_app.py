"""The Stripe webhook receiver: verify, store once, commit, enqueue, then answer; as a function and a WSGI app."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import psycopg
from dramatiq.errors import DramatiqError
from redis.exceptions import RedisError

from db.inbox import Inbox
from tasks.domain.errors import SignatureInvalid
from tasks.domain.events import EventMalformed, check_event_shape
from tasks.domain.states import EventStatus
from tasks.gateways.stripe import verify_webhook
from tasks.webhooks import process_stripe_event
from workers.heap import freeze_startup_objects
from workers.run import WEBHOOK_THREADS
from workers.settings import get_settings

_log = logging.getLogger(__name__)

# Stripe's events are a few KiB; anything near this is not an event we want to parse or store.
MAX_BODY_BYTES = 1024 * 1024
WEBHOOK_PATH = "/stripe/webhooks"
HEALTH_PATH = "/healthz"


@dataclass(frozen=True)
class IngestResult:
    """The HTTP status to answer and a short reason; event_id once the signature verified."""

    status: int
    reason: str
    event_id: str | None = None


def ingest(raw_body: bytes, signature_header: str | None) -> IngestResult:
    """Verify, store (once), commit and enqueue one delivery; 2xx only once the event is safe in Postgres."""
    if len(raw_body) > MAX_BODY_BYTES:
        return IngestResult(413, "body too large")
    try:
        verify_webhook(raw_body, signature_header, get_settings().stripe_webhook_secrets)
        text = raw_body.decode("utf-8")
        event = json.loads(text)
        event_id, event_type = check_event_shape(event)
    except SignatureInvalid as exc:
        return IngestResult(400, f"signature: {exc}")
    except (ValueError, EventMalformed) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return IngestResult(400, f"not an event: {str(exc)[:80]}")
    return _store_and_send(text, event, event_id, event_type)


@lru_cache(maxsize=1)
def get_inbox() -> Inbox:
    """This process's inbox writer (autocommitting connections, a few per process, shared by its threads)."""
    return Inbox(get_settings().database_url)


def _store_and_send(text: str, event: dict[str, Any], event_id: str, event_type: str) -> IngestResult:
    try:
        stored = get_inbox().store(
            event_id=event_id,
            event_type=event_type,
            livemode=bool(event.get("livemode")),
            payload=text,
            created=event.get("created"),
        )
    except psycopg.DataError:
        return IngestResult(400, "event payload cannot be stored", event_id)
    except psycopg.Error as exc:
        _log.warning("webhook %s not stored, database unavailable: %s", event_id, exc)
        return IngestResult(503, "database unavailable", event_id)
    # A redelivery of an event still waiting is sent again: its first send may have failed. No status
    # on a row that was not new means another writer (a concurrent delivery, the reconciler) committed
    # it while this statement waited: still waiting, as far as this delivery can tell.
    if stored.new or stored.status in (None, EventStatus.RECEIVED):
        return _send(event_id, "stored" if stored.new else "duplicate, re-sent")
    return IngestResult(200, "duplicate", event_id)


def _send(event_id: str, reason: str) -> IngestResult:
    try:
        process_stripe_event.send(event_id)
    except (DramatiqError, RedisError, OSError) as exc:  # the row is stored either way
        _log.warning("webhook %s stored but not enqueued: %s", event_id, exc)
        return IngestResult(503, "stored, queue unavailable", event_id)
    return IngestResult(200, reason, event_id)


def create_app(connections: int = WEBHOOK_THREADS) -> Callable[..., Iterable[bytes]]:
    """The WSGI app for a server process that is about to take deliveries (granian --factory).

    Opens `connections` database connections first (one per serving thread; fewer if the database is
    down, which only means later deliveries connect or get 503), then exempts everything alive from the
    collector's full passes, which otherwise stopped the process for 70-130 ms every few seconds.
    """
    get_inbox().open_connections(connections)
    freeze_startup_objects()
    return app


StartResponse = Callable[[str, list[tuple[str, str]]], Any]
_REASONS = {
    200: "200 OK",
    400: "400 Bad Request",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    411: "411 Length Required",
    413: "413 Payload Too Large",
    503: "503 Service Unavailable",
}


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """WSGI: POST /stripe/webhooks and GET /healthz."""
    path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
    if path == HEALTH_PATH:
        return (
            _answer(start_response, 200, "ok")
            if method in ("GET", "HEAD")
            else _answer(start_response, 405, "GET")
        )
    if path != WEBHOOK_PATH:
        return _answer(start_response, 404, "not found")
    if method != "POST":
        return _answer(start_response, 405, "POST only")
    body = _read_body(environ)
    if body is None:
        return _answer(start_response, 413, "body too large")
    result = ingest(body, environ.get("HTTP_STRIPE_SIGNATURE"))
    return _answer(start_response, result.status, result.reason)


def _read_body(environ: dict[str, Any]) -> bytes | None:
    """The request body, or None when it is over the limit (never reads more than limit + 1 bytes)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        length = -1
    if length > MAX_BODY_BYTES:
        return None
    stream = environ["wsgi.input"]
    body = stream.read(length) if length >= 0 else stream.read(MAX_BODY_BYTES + 1)
    return None if len(body) > MAX_BODY_BYTES else body


def _answer(start_response: StartResponse, status: int, reason: str) -> list[bytes]:
    body = json.dumps({"status": status, "reason": reason}).encode()
    start_response(
        _REASONS.get(status, f"{status} Error"),
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]
