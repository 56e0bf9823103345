"""Remit's own middleware: final job failures mirrored into failed_jobs; start-up objects kept out of full GC
passes; one stop signal delivered twice stops a worker process gently, not by killing it."""

from __future__ import annotations

import logging
import signal
import time
import traceback

import dramatiq
from sqlalchemy.dialects.postgresql import insert

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
