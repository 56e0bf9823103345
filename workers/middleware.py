"""Remit's own middleware: final job failures mirrored into failed_jobs; start-up objects kept out of full GC
passes; one stop signal delivered twice stops a worker process gently, not by killing it; every message
counted and every worker process published (workers.telemetry)."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
import traceback

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from redis.exceptions import RedisError
from sqlalchemy.dialects.postgresql import insert

from workers import telemetry
from workers.heap import freeze_startup_objects
from workers.scrub import scrub_text

_log = logging.getLogger(__name__)


class FreezeStartupObjects(dramatiq.Middleware):
    """In a worker process the CLI started, once its actor modules are imported: workers.heap.

    Only `dramatiq` (and `remit worker`) emit process_boot, so a Worker a test starts in its own
    process leaves that process's collector alone.
    """

    def after_process_boot(self, broker):
        freeze_startup_objects()


# Both copies of one stop arrive within milliseconds; a person repeating a stop takes longer.
DUPLICATE_STOP_WINDOW_S = 1.0


class StopGently(dramatiq.Middleware):
    """A worker process stops once on a stop signal that reaches it twice, finishing its messages.

    Honcho (`make run`) and platforms like Heroku send SIGTERM to every process of a Procfile entry,
    and Dramatiq's main process forwards it to its worker processes as well. Dramatiq takes a second
    signal as "kill now": every process was killed mid-message, so a message being handled at that
    moment ran again later (an email handed to the mail server was sent twice). A second SIGTERM
    within DUPLICATE_STOP_WINDOW_S of the first is taken as the same stop; one later still kills.
    """

    def after_process_boot(self, broker):
        dramatiq_handler = signal.getsignal(signal.SIGTERM)
        if not callable(dramatiq_handler):
            return
        first_at: float | None = None

        def on_stop(signum, frame):
            nonlocal first_at
            now = time.monotonic()
            if first_at is None:
                first_at = now
            elif now - first_at < DUPLICATE_STOP_WINDOW_S:
                return
            dramatiq_handler(signum, frame)

        signal.signal(signal.SIGTERM, on_stop)


class AckBusinessOutcomes(dramatiq.Middleware):
    """A message whose actor raised one of its `throws` (a refused email) is done, not dead.

    Dramatiq's Retries marks such a message failed, so the broker put it on the dead-letter queue and
    the dead-letter mirror later showed every bounced address to ops as a bug. The actor has recorded
    the outcome as state; the message is acknowledged. Sits before Retries: after-hooks run in reverse.
    """

    def after_process_message(self, broker, message, *, result=None, exception=None):
        if exception is not None and message.failed and _is_business_outcome(broker, message, exception):
            message.failed = False


class RecordFailedJobs(dramatiq.Middleware):
    """Record a message in failed_jobs once it has failed for good, with its traceback."""

    def after_process_message(self, broker, message, *, result=None, exception=None):
        if exception is None or not message.failed or _is_business_outcome(broker, message, exception):
            return
        try:
            record_failed_job(message, exception)
        except Exception:
            # Redis still holds the dead letter; the maintenance mirror picks it up later.
            _log.exception("could not record failed job %s", message.message_id)


def _is_business_outcome(broker, message, exception) -> bool:
    actor = broker.get_actor(message.actor_name)
    throws = message.options.get("throws") or actor.options.get("throws")
    return bool(throws) and isinstance(exception, throws)


def record_failed_job(message: dramatiq.Message, exception: BaseException) -> None:
    """Upsert this message id's dead letter, its error and traceback scrubbed of SQL values and emails."""
    from db.models import FailedJob
    from db.session import transaction

    formatted = message.options.get("traceback") or "".join(
        traceback.format_exception(type(exception), exception, exception.__traceback__)
    )
    row = {
        "message_id": message.message_id,
        "queue": message.queue_name,
        "actor": message.actor_name,
        "args": list(message.args),
        "kwargs": dict(message.kwargs),
        "error": scrub_text(f"{type(exception).__name__}: {exception}")[:4000],
        "traceback": scrub_text(formatted),
        "attempts": message.options.get("retries", 0) or 1,
        "status": "dead",
    }
    with transaction() as session:
        statement = insert(FailedJob).values(**row)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=[FailedJob.message_id],
                set_={k: statement.excluded[k] for k in ("error", "traceback", "attempts", "status")},
            )
        )


class Telemetry(dramatiq.Middleware):
    """Counts every message for /metrics and the dashboard's charts, and publishes this worker process.

    The process is a Redis hash beside Dramatiq's heartbeats (host, pid, queues, threads, started), with a
    second hash of the messages it is running: the heartbeats say a process is alive, only this says what
    it is and what it is doing. Outcomes: processed, or failed
    (the attempt raised; Retries decides whether it comes back). Only on the Redis broker for the Redis
    parts; the prometheus_client ones everywhere.
    """

    def __init__(self) -> None:
        self._started: dict[str, float] = {}
        self._stop = (
            threading.Event()
        )  # each worker boot gets its own, so a stopped worker's timer stays stopped

    def after_worker_boot(self, broker, worker):
        if (client := _client(broker)) is None:
            return
        info = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": ",".join(sorted(worker.consumer_whitelist or broker.get_declared_queues())),
            "threads": worker.worker_threads,
            "started_at": int(time.time()),
        }
        self._stop = stop = threading.Event()
        _publish(client, process_key(broker), info)
        threading.Thread(target=self._keep_published, args=(client, broker, info, stop), daemon=True).start()

    def _keep_published(self, client, broker, info: dict, stop: threading.Event) -> None:
        while not stop.wait(PROCESS_REFRESH_SECONDS):
            _publish(client, process_key(broker), info)
            try:
                client.expire(running_key(broker), PROCESS_KEY_TTL_SECONDS)
            except (RedisError, OSError):
                pass  # as in _publish, the next refresh tries again

    def before_worker_shutdown(self, broker, worker):
        self._stop.set()
        if (client := _client(broker)) is not None:
            try:
                client.delete(process_key(broker), running_key(broker))
            except (RedisError, OSError):
                pass  # it expires on its own

    def before_process_message(self, broker, message):
        self._started[message.message_id] = time.monotonic()
        enqueued_ms = message.options.get("eta") or message.message_timestamp
        telemetry.LATENCY.labels(message.queue_name).observe(max(time.time() - enqueued_ms / 1000, 0))
        running = {"queue": message.queue_name, "actor": message.actor_name, "args": list(message.args)}
        self._running(broker, message.message_id, json.dumps({**running, "started_at": int(time.time())}))

    def after_process_message(self, broker, message, *, result=None, exception=None):
        outcome = "processed" if exception is None else "failed"
        telemetry.MESSAGES.labels(message.queue_name, message.actor_name, outcome).inc()
        started = self._started.pop(message.message_id, None)
        seconds = time.monotonic() - started if started is not None else 0.0
        if started is not None:  # else an earlier middleware refused it before this one saw it start
            telemetry.DURATION.labels(message.actor_name).observe(seconds)
        if (client := _client(broker)) is not None:
            running = (running_key(broker), message.message_id) if started is not None else None
            ms = int(seconds * 1000)
            telemetry.count_message(
                client, broker.namespace, message.actor_name, outcome, ms, running=running
            )

    def after_skip_message(self, broker, message):
        if self._started.pop(message.message_id, None) is not None:
            self._running(broker, message.message_id, "")

    def _running(self, broker, message_id: str, value: str) -> None:
        if (client := _client(broker)) is None:
            return
        try:
            telemetry.mark_running(client, running_key(broker), message_id, value, PROCESS_KEY_TTL_SECONDS)
        except (RedisError, OSError):
            pass  # the running list is for people; the work goes on


# A live process rewrites its hash this often; a killed one's hash is gone within the TTL (three refreshes).
PROCESS_REFRESH_SECONDS = 30
PROCESS_KEY_TTL_SECONDS = 3 * PROCESS_REFRESH_SECONDS


def _publish(client, key: str, info: dict) -> None:
    try:
        client.hset(key, mapping=info)
        client.expire(key, PROCESS_KEY_TTL_SECONDS)
    except (RedisError, OSError):
        _log.warning("could not publish this worker process to Redis")


def process_key(broker) -> str:
    return f"{broker.namespace}:remit:process:{broker.broker_id}"


def running_key(broker) -> str:
    """The hash of this process's running messages: message id -> JSON (queue, actor, args, started_at)."""
    return process_key(broker) + ":running"


def _client(broker):
    return broker.client if isinstance(broker, RedisBroker) else None
