"""The Dramatiq broker: Sentry first, then Redis or RabbitMQ from BROKER_URL, with Remit's middleware.

Every actor module imports this module before declaring actors.
"""

from __future__ import annotations

import logging

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from workers.middleware import FreezeStartupObjects, RecordFailedJobs
from workers.settings import Settings, get_settings

# The queues of DESIGN.md, in one place. Money queues first.
QUEUES = ("webhooks", "payments", "ach", "emails", "balances", "maintenance")
WEBHOOK_QUEUES = ("webhooks",)
MONEY_QUEUES = ("payments", "ach")
BULK_QUEUES = ("emails", "balances", "maintenance")

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
        AgeLimit(max_age=MAX_MESSAGE_AGE_MS),
        TimeLimit(time_limit=DEFAULT_TIME_LIMIT_MS),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        CurrentMessage(),
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


def _init_sentry(settings: Settings) -> None:
    # The Dramatiq integration patches the broker class at creation, so this must run first.
    if not settings.sentry_dsn:
        return
    import sentry_sdk
    from sentry_sdk.integrations.dramatiq import DramatiqIntegration

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.environment,
        integrations=[DramatiqIntegration()],
        send_default_pii=False,
    )


# The SDK logs two INFO lines per request: noise and CPU in workers that make thousands.
logging.getLogger("stripe").setLevel(logging.WARNING)

_settings = get_settings()
_init_sentry(_settings)
broker = build_broker(_settings)
dramatiq.set_broker(broker)
