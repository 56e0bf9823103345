"""The Dramatiq broker: Sentry first, then Redis or RabbitMQ from BROKER_URL, with Remit's middleware.

Every actor module imports this module before declaring actors.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from uuid import uuid4

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from workers.middleware import (
    AckBusinessOutcomes,
    FreezeStartupObjects,
    RecordFailedJobs,
    StopGently,
    Telemetry,
)
from workers.settings import Settings, get_settings

# The queues of DESIGN.md, in one place. Money queues first.
QUEUES = ("webhooks", "payments", "ach", "emails", "balances", "maintenance", "feed")
WEBHOOK_QUEUES = ("webhooks",)
MONEY_QUEUES = ("payments", "ach")
BULK_QUEUES = ("emails", "balances", "maintenance")
# The sellers' ledger feeds wait on their ERPs' answers: their own workers, so a slow ERP delays no email.
FEED_QUEUES = ("feed",)

# Messages only carry ids and sweepers re-send anything still due, so an old message is safe to drop.
MAX_MESSAGE_AGE_MS = 24 * 3600 * 1000
# Dramatiq's default is 10 minutes; no Remit job should take more than a minute.
DEFAULT_TIME_LIMIT_MS = 60_000
# Dramatiq's default is 20 retries over a month; sweepers cover anything longer than an hour.
DEFAULT_MAX_RETRIES = 5
DEFAULT_MIN_BACKOFF_MS = 1_000
DEFAULT_MAX_BACKOFF_MS = 5 * 60_000
# A killed worker's messages come back once its heartbeat is this old (default 60 s) ...
HEARTBEAT_TIMEOUT_MS = 30_000
# ... and a maintenance roll fires: 1% of commands instead of 0.1%, so that happens within seconds.
MAINTENANCE_CHANCE_PER_MILLION = 10_000


def build_middleware() -> list[dramatiq.Middleware]:
    """Remit's middleware; RecordFailedJobs sits before Retries so its after-hook runs after it."""
    return [
        FreezeStartupObjects(),
        StopGently(),
        AgeLimit(max_age=MAX_MESSAGE_AGE_MS),
        TimeLimit(time_limit=DEFAULT_TIME_LIMIT_MS),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        CurrentMessage(),
        Telemetry(),
        AckBusinessOutcomes(),
        RecordFailedJobs(),
        Retries(
            max_retries=DEFAULT_MAX_RETRIES,
            min_backoff=DEFAULT_MIN_BACKOFF_MS,
            max_backoff=DEFAULT_MAX_BACKOFF_MS,
        ),
    ]


def build_broker(settings: Settings) -> dramatiq.Broker:
    """A broker for the configured URL with every Remit queue declared."""
    middleware = build_middleware()
    if settings.broker_kind == "rabbitmq":
        broker = RabbitmqBroker(url=settings.broker_url, middleware=middleware)
    else:
        broker = RedisBroker(
            url=settings.broker_url,
            middleware=middleware,
            namespace=settings.broker_namespace,
            heartbeat_timeout=HEARTBEAT_TIMEOUT_MS,
            maintenance_chance=MAINTENANCE_CHANCE_PER_MILLION,
        )
    for queue in QUEUES:
        broker.declare_queue(queue)
    return broker


def send_all(messages: Sequence[dramatiq.Message]) -> None:
    """Enqueue messages built with actor.message(...) as actor.send would, in order.

    On Redis they go in one pipeline, two round trips in all (one to check that Dramatiq's enqueue
    script is loaded, one for the messages) where sending them one by one takes one each: a webhook
    batch that owes a hundred receipts spent a fifth of its time sending them. Each message is
    enqueued by Dramatiq's own script with the arguments RedisBroker.enqueue gives it, and the
    enqueue middleware hooks run for each. Other brokers send one by one.
    """
    if not messages:
        return
    target = dramatiq.get_broker()
    if not isinstance(target, RedisBroker) or len(messages) == 1:
        for message in messages:
            target.enqueue(message)
        return
    # As RedisBroker.enqueue: a fresh Redis id per enqueue, since a message may be enqueued again.
    prepared = [message.copy(options={"redis_message_id": str(uuid4())}) for message in messages]
    for message in prepared:
        target.emit_before("enqueue", message, None)
    enqueue = target.scripts["dispatch"]
    unpack_limit = target._max_unpack_size()
    with target.client.pipeline(transaction=False) as pipe:
        for message in prepared:
            # command, time, queue, broker id, heartbeat timeout, dead TTL, maintenance (the workers' commands
            # do it), unpack limit, then the enqueue command's own arguments.
            enqueue(
                keys=[target.namespace],
                client=pipe,
                args=[
                    "enqueue",
                    current_millis(),
                    message.queue_name,
                    target.broker_id,
                    target.heartbeat_timeout,
                    target.dead_message_ttl,
                    0,
                    unpack_limit,
                    message.options["redis_message_id"],
                    message.encode(),
                ],
            )
        pipe.execute()
    for message in prepared:
        target.emit_after("enqueue", message, None)


def _init_sentry(settings: Settings) -> None:
    # The Dramatiq integration patches the broker class at creation, so this must run first.
    if not settings.sentry_dsn:
        return
    import sentry_sdk
    from sentry_sdk.integrations.dramatiq import DramatiqIntegration

    from workers.scrub import scrub_event

    # Locals held emails, names and whole rendered emails; request bodies are webhook payloads and job
    # arguments; what is left is scrubbed of personal fields and SQL values before it leaves.
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.environment,
        integrations=[DramatiqIntegration()],
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        before_send=scrub_event,
    )


# The SDK logs two INFO lines per request: noise and CPU in workers that make thousands.
logging.getLogger("stripe").setLevel(logging.WARNING)

_settings = get_settings()
_init_sentry(_settings)
broker = build_broker(_settings)
dramatiq.set_broker(broker)
