"""The Stripe webhook receiver: verify, store once, commit, enqueue, then answer; a function and an ASGI app.

The app runs on granian's event loop: a body is awaited there, under a deadline, so a client trickling
its body holds a coroutine, never a thread (under WSGI, granian's `wsgi.input.read` blocked a serving
thread until the client finished, and 8 slow clients stopped every delivery). Only a complete body
goes to the few ingest threads, which hold the database connections.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
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
from workers import strict_json
from workers.heap import freeze_startup_objects
from workers.run import WEBHOOK_THREADS
from workers.settings import DEFAULT_WEBHOOK_MAX_BODY_BYTES, get_settings

_log = logging.getLogger(__name__)

MAX_BODY_BYTES = DEFAULT_WEBHOOK_MAX_BODY_BYTES  # the default of WEBHOOK_MAX_BODY_BYTES
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
    settings = get_settings()
    if len(raw_body) > settings.webhook_max_body_bytes:
        return IngestResult(413, "body too large")
    try:
        verify_webhook(raw_body, signature_header, settings.stripe_webhook_secrets)
        event = strict_json.loads(raw_body)
        event_id, event_type = check_event_shape(event)
    except SignatureInvalid as exc:
        return IngestResult(400, f"signature: {exc}")
    except (ValueError, EventMalformed) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return IngestResult(400, f"not an event: {str(exc)[:80]}")
    livemode = event.get("livemode")
    if livemode is not settings.stripe_livemode:
        expected = "live" if settings.stripe_livemode else "test"
        return IngestResult(
            400, f"livemode {json.dumps(livemode)[:8]} contradicts the API key's {expected} mode", event_id
        )
    return _store_and_send(raw_body.decode("utf-8"), event, event_id, event_type)


@lru_cache(maxsize=1)
def get_inbox() -> Inbox:
    """This process's inbox writer (autocommitting connections, a few per process, shared by its threads)."""
    return Inbox(get_settings().database_url)


def _store_and_send(text: str, event: dict[str, Any], event_id: str, event_type: str) -> IngestResult:
    try:
        stored = get_inbox().store(
            event_id=event_id,
            event_type=event_type,
            livemode=event["livemode"],
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


def create_app(connections: int = WEBHOOK_THREADS) -> Callable[..., Awaitable[None]]:
    """The ASGI app for a server process that is about to take deliveries (granian --factory).

    Opens `connections` database connections first (one per ingest thread; fewer if the database is
    down, which only means later deliveries connect or get 503), then exempts everything alive from the
    collector's full passes, which otherwise stopped the process for 70-130 ms every few seconds.
    """
    get_inbox().open_connections(connections)
    freeze_startup_objects()
    return app


Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
# Verifying, parsing and storing run here: one thread per database connection the inbox keeps.
_ingest_threads = ThreadPoolExecutor(WEBHOOK_THREADS, thread_name_prefix="webhook-ingest")


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """ASGI: POST /stripe/webhooks and GET /healthz."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    path, method = scope.get("path", ""), scope.get("method", "GET")
    if path == HEALTH_PATH:
        if method in ("GET", "HEAD"):
            await _answer(send, 200, "ok")
        else:
            await _answer(send, 405, "GET")
        return
    if path != WEBHOOK_PATH:
        await _answer(send, 404, "not found")
        return
    if method != "POST":
        await _answer(send, 405, "POST only")
        return
    await _deliver(scope, receive, send)


async def _deliver(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    settings = get_settings()
    headers = dict(scope.get("headers") or ())
    limit = settings.webhook_max_body_bytes
    declared = headers.get(b"content-length")
    if declared is not None:
        if not declared.isdigit():
            await _answer(send, 400, "Content-Length is not a number", close=True)
            return
        if int(declared) > limit:  # answered from the headers: not a byte of the body is read
            await _answer(send, 413, "body too large", close=True)
            return
    try:
        # asyncio.timeout, not wait_for: no task created per request.
        async with asyncio.timeout(settings.webhook_body_timeout_seconds):
            body = await _read_body(receive, limit)
    except TimeoutError:
        timeout = settings.webhook_body_timeout_seconds
        await _answer(send, 408, f"body not received within {timeout:g} s", close=True)
        return
    except _Disconnected:
        return
    if body is None:
        await _answer(send, 413, "body too large", close=True)
        return
    signature = headers.get(b"stripe-signature")
    result = await asyncio.get_running_loop().run_in_executor(
        _ingest_threads, ingest, body, signature.decode("latin-1") if signature is not None else None
    )
    await _answer(send, result.status, result.reason)


class _Disconnected(Exception):
    """The client went away before its body was complete."""


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None once it grows past the limit (never buffers more than one chunk over it)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _answer(send: Send, status: int, reason: str, close: bool = False) -> None:
    body = json.dumps({"status": status, "reason": reason}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:  # the rest of the body is not read: the connection cannot carry another request
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
