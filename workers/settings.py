"""Configuration: the only reader of the environment, loaded once into a frozen object."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from tasks.domain.rate_limits import (
    DEFAULT_ENDPOINT_REQUESTS_PER_SECOND,
    DEFAULT_SEARCH_REQUESTS_PER_SECOND,
    parse_endpoint_limits,
)

# Stripe test mode allows about 25 requests/s; live about 100. Default to the stricter one.
DEFAULT_STRIPE_REQUESTS_PER_SECOND = 25
# Each endpoint has its own limit on top (docs.stripe.com/rate-limits): 25/s, search 20/s, unless
# Stripe raised one for the account (STRIPE_ENDPOINT_LIMITS names those).
DEFAULT_STRIPE_ENDPOINT_REQUESTS_PER_SECOND = DEFAULT_ENDPOINT_REQUESTS_PER_SECOND
DEFAULT_STRIPE_SEARCH_REQUESTS_PER_SECOND = DEFAULT_SEARCH_REQUESTS_PER_SECOND
# Long enough for a slow Stripe answer, short enough that a stuck call frees the worker.
DEFAULT_STRIPE_TIMEOUT_SECONDS = 20
STRIPE_API_BASE = "https://api.stripe.com"
# Personal data is redacted past these (tasks.flows.retention). Webhook payloads are needed while Stripe may
# still dispute or refund (its dispute window is 120 days from the charge for most cards, but our own
# rows hold what a dispute needs); email contexts back a customer's "what did you send me" for six months;
# a bank mandate's evidence is kept two years after the method is removed (Nacha's record retention).
DEFAULT_WEBHOOK_PAYLOAD_RETENTION_DAYS = 90
DEFAULT_EMAIL_CONTEXT_RETENTION_DAYS = 180
DEFAULT_MANDATE_RETENTION_DAYS = 730
# Every PaymentIntent carries this in its metadata; an event about one carrying another deployment's (or
# none) never moves a payment found through metadata alone. Two deployments on one Stripe account must differ.
DEFAULT_DEPLOYMENT = "remit"
# Loopback: the dashboard moves dead letters, so it is reached via a proxy or tunnel unless told otherwise.
DEFAULT_DASHBOARD_HOST = "127.0.0.1"
# Stripe sends an event's body at once; a client still sending after this is starving the receiver.
DEFAULT_WEBHOOK_BODY_TIMEOUT_SECONDS = 5
# Stripe's events are a few KiB; anything near this is not an event we want to parse or store.
DEFAULT_WEBHOOK_MAX_BODY_BYTES = 1024 * 1024
# How long a card payment waits for the customer's 3-D Secure step before it is canceled and its invoices
# freed (a seller may set its own): a customer at the portal answers within the day; a scheduled charge
# the bank wants confirmed reached them by email, so they get three days to come back.
DEFAULT_AUTH_WINDOW_ON_SESSION_HOURS = 24
DEFAULT_AUTH_WINDOW_OFF_SESSION_HOURS = 72
# Invoices stay reserved while a payment waits: a week is longer than any customer takes to answer.
MAX_AUTH_WINDOW_HOURS = 168


# The variables without a default. A command that uses only some of them (`remit db upgrade` needs only
# DATABASE_URL) loads with `needed` narrowed: the others are then read when valid and left empty otherwise.
REQUIRED = frozenset({"DATABASE_URL", "BROKER_URL", "STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRETS"})

# Database connections per process, by the kind of process: the `remit` command sets REMIT_PROCESS_KIND
# ("worker:8" = a worker with 8 threads) for the process it becomes; DATABASE_POOL_SIZE and
# DATABASE_MAX_OVERFLOW override the sizes below everywhere. Connections open only when first needed, and
# the pool keeps up to `size` of them; past that it opens up to `overflow` more, closing each as it is
# returned. A busy worker or receiver thread uses a connection per message, so those keep one per thread:
# closing it after every message made PostgreSQL start a backend for nearly every transaction, and a burst
# of due payments drained at a third of the Stripe budget (bench.scheduled, 3.8x the floor, against 1.5x
# with a connection kept per thread). An idle stack holds what its busiest moment opened: at most one per
# thread (37 for the Procfile's processes), one per process before any work.
DEFAULT_POOL_SIZE = 1
POOL_BY_KIND = {
    # kind: (size, overflow), each from the process's threads
    "worker": (lambda threads: threads, lambda threads: 2),
    "webhooks": (lambda threads: threads, lambda threads: 1),
    "dashboard": (lambda threads: 1, lambda threads: threads + 1),
    "clock": (lambda threads: 1, lambda threads: 2),
    "command": (lambda threads: 1, lambda threads: 2),
}
# A process that no `remit` command sized (a bare `dramatiq workers.actors`, a test): room for 8 threads.
DEFAULT_MAX_OVERFLOW = 10


class SettingsError(Exception):
    """A required setting is missing or malformed; the message names the variable."""


# What a dashboard operator may do: read looks only; admin also retries, discards, resends and resolves.
OPERATOR_ROLES = ("admin", "read")


@dataclass(frozen=True)
class Operator:
    """A named dashboard user: the token they sign in with and their role (OPERATOR_ROLES)."""

    name: str
    token: str
    role: str

    @property
    def can_act(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class Settings:
    database_url: str
    broker_url: str
    stripe_api_key: str
    stripe_api_base: str
    stripe_webhook_secrets: tuple[str, ...]
    stripe_requests_per_second: float
    stripe_timeout_seconds: float
    smtp_url: str
    mail_from: str
    sentry_dsn: str | None
    dashboard_token: str | None
    environment: str
    dashboard_https: bool = True
    dashboard_host: str = DEFAULT_DASHBOARD_HOST
    broker_namespace: str = "remit"
    deployment: str = DEFAULT_DEPLOYMENT
    webhook_payload_retention_days: int = DEFAULT_WEBHOOK_PAYLOAD_RETENTION_DAYS
    email_context_retention_days: int = DEFAULT_EMAIL_CONTEXT_RETENTION_DAYS
    mandate_retention_days: int = DEFAULT_MANDATE_RETENTION_DAYS
    webhook_body_timeout_seconds: float = DEFAULT_WEBHOOK_BODY_TIMEOUT_SECONDS
    stripe_endpoint_requests_per_second: float = DEFAULT_STRIPE_ENDPOINT_REQUESTS_PER_SECOND
    stripe_search_requests_per_second: float = DEFAULT_STRIPE_SEARCH_REQUESTS_PER_SECOND
    # (endpoint, requests per second) where Stripe raised an endpoint's limit for the account.
    stripe_endpoint_limits: tuple[tuple[str, float], ...] = ()
    webhook_max_body_bytes: int = DEFAULT_WEBHOOK_MAX_BODY_BYTES
    auth_window_on_session_hours: int = DEFAULT_AUTH_WINDOW_ON_SESSION_HOURS
    auth_window_off_session_hours: int = DEFAULT_AUTH_WINDOW_OFF_SESSION_HOURS
    # The portal page where a customer finishes a payment, "{payment_id}" in it; a seller may set its own.
    portal_payment_url: str | None = None

    mail_seller_domains: frozenset[str] = frozenset()
    dashboard_operators: tuple[Operator, ...] = ()
    metrics_dir: str | None = None

    database_pool_size: int = DEFAULT_POOL_SIZE
    database_max_overflow: int = DEFAULT_MAX_OVERFLOW

    @property
    def stripe_livemode(self) -> bool:
        """True for a live key (sk_live_, rk_live_): the livemode every event delivered to us must carry."""
        return self.stripe_api_key.startswith(("sk_live_", "rk_live_"))

    @property
    def broker_kind(self) -> str:
        return "rabbitmq" if self.broker_url.startswith(("amqp://", "amqps://")) else "redis"


def _required(environ: Mapping[str, str], name: str, hint: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise SettingsError(f"{name} is missing: {hint}")
    return value


def _database_url(environ: Mapping[str, str]) -> str:
    value = _required(environ, "DATABASE_URL", "set it to postgresql://user@host:5432/dbname")
    return normalise_database_url(value)


def normalise_database_url(value: str) -> str:
    """Return the URL in the psycopg 3 dialect form, or raise naming DATABASE_URL."""
    parts = urlsplit(value)
    if parts.scheme not in ("postgres", "postgresql", "postgresql+psycopg"):
        raise SettingsError(
            f"DATABASE_URL is malformed: scheme {parts.scheme or '(none)'!r} is not postgresql://"
        )
    if not parts.hostname and "host=" not in parts.query:
        raise SettingsError("DATABASE_URL is malformed: it names no host")
    if not parts.path.strip("/"):
        raise SettingsError("DATABASE_URL is malformed: it names no database")
    return "postgresql+psycopg://" + value.split("://", 1)[1]


def _broker_url(environ: Mapping[str, str]) -> str:
    value = _required(environ, "BROKER_URL", "set it to redis://host:6379/0 or amqp://user:pass@host:5672/")
    parts = urlsplit(value)
    if parts.scheme not in ("redis", "rediss", "amqp", "amqps"):
        raise SettingsError(
            f"BROKER_URL is malformed: scheme {parts.scheme or '(none)'!r} is not redis:// or amqp://"
        )
    if not parts.hostname:
        raise SettingsError("BROKER_URL is malformed: it names no host")
    return value


def _positive_number(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} is malformed: {raw!r} is not a number") from None
    if value <= 0:
        raise SettingsError(f"{name} is malformed: {raw!r} must be greater than zero")
    return value


def _days(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise SettingsError(f"{name} is malformed: {raw[:40]!r} is not a whole number of days, 1 or more")
    return int(raw)


def _stripe_key(environ: Mapping[str, str]) -> str:
    value = _required(
        environ, "STRIPE_API_KEY", "set it to your secret key (sk_test_... or sk_live_... or rk_...)"
    )
    if not value.startswith(("sk_", "rk_")):
        raise SettingsError("STRIPE_API_KEY is malformed: it must start with sk_ or rk_")
    return value


def _webhook_secrets(environ: Mapping[str, str]) -> tuple[str, ...]:
    raw = _required(
        environ, "STRIPE_WEBHOOK_SECRETS", "set it to one or more whsec_... secrets, comma-separated"
    )
    secrets = tuple(s.strip() for s in raw.split(",") if s.strip())
    bad = [s for s in secrets if not s.startswith("whsec_")]
    if not secrets or bad:
        raise SettingsError("STRIPE_WEBHOOK_SECRETS is malformed: every secret must start with whsec_")
    return secrets


def _smtp_url(environ: Mapping[str, str]) -> str:
    value = environ.get("SMTP_URL", "").strip() or "smtp://127.0.0.1:1025"
    parts = urlsplit(value)
    if parts.scheme not in ("smtp", "smtps", "smtp+starttls"):
        raise SettingsError(
            f"SMTP_URL is malformed: scheme {parts.scheme!r} is not smtp://, smtp+starttls:// or smtps://"
        )
    if not parts.hostname:
        raise SettingsError("SMTP_URL is malformed: it names no host")
    return value


def _api_base(environ: Mapping[str, str]) -> str:
    value = environ.get("STRIPE_API_BASE", "").strip().rstrip("/") or STRIPE_API_BASE
    if urlsplit(value).scheme not in ("http", "https"):
        raise SettingsError(f"STRIPE_API_BASE is malformed: {value!r} is not an http(s) URL")
    return value


def _dashboard_token(environ: Mapping[str, str]) -> str | None:
    value = environ.get("DASHBOARD_TOKEN", "").strip() or None
    if value is not None and len(value) < 16:
        raise SettingsError("DASHBOARD_TOKEN is malformed: use at least 16 characters")
    return value


def _dashboard_operators(environ: Mapping[str, str], token: str | None) -> tuple[Operator, ...]:
    """DASHBOARD_OPERATORS as name:token:role entries, then DASHBOARD_TOKEN as the operator "admin"."""
    operators = [
        _operator(entry) for entry in environ.get("DASHBOARD_OPERATORS", "").split(",") if entry.strip()
    ]
    if token:
        operators.append(Operator("admin", token, "admin"))
    for kind, values in (("name", [o.name for o in operators]), ("token", [o.token for o in operators])):
        if len(set(values)) != len(values):
            raise SettingsError(f"DASHBOARD_OPERATORS is malformed: two operators share a {kind}")
    return tuple(operators)


def _operator(entry: str) -> Operator:
    name, token, role = (entry.strip().split(":") + ["", ""])[:3]
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,63}", name):
        raise SettingsError(
            f"DASHBOARD_OPERATORS is malformed: {name[:40]!r} is not a name (a-z, 0-9, ., _ and -)"
        )
    if len(token) < 16:
        raise SettingsError(f"DASHBOARD_OPERATORS is malformed: {name}'s token has under 16 characters")
    if role not in OPERATOR_ROLES:
        raise SettingsError(f"DASHBOARD_OPERATORS is malformed: {name}'s role is not one of {OPERATOR_ROLES}")
    return Operator(name, token, role)


def _metrics_dir(environ: Mapping[str, str]) -> str | None:
    value = environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip() or None
    if value is not None and not os.path.isdir(value):
        raise SettingsError(f"PROMETHEUS_MULTIPROC_DIR is malformed: {value[:80]!r} is not a directory")
    return value


def _dashboard_https(environ: Mapping[str, str], environment: str) -> bool:
    raw = environ.get("DASHBOARD_HTTPS", "").strip().lower()
    if not raw:
        return environment != "development"
    if raw not in ("true", "false", "1", "0"):
        raise SettingsError(f"DASHBOARD_HTTPS is malformed: {raw[:40]!r} is not true or false")
    return raw in ("true", "1")


def _dashboard_host(environ: Mapping[str, str]) -> str:
    value = environ.get("DASHBOARD_HOST", "").strip() or DEFAULT_DASHBOARD_HOST
    if not value.isprintable() or any(c.isspace() or c == "/" for c in value):
        raise SettingsError(f"DASHBOARD_HOST is malformed: {value[:60]!r} is not an address or host name")
    return value


def _deployment(environ: Mapping[str, str]) -> str:
    value = environ.get("REMIT_DEPLOYMENT", "").strip() or DEFAULT_DEPLOYMENT
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", value):
        raise SettingsError(
            f"REMIT_DEPLOYMENT is malformed: {value[:60]!r} is not 1-40 of a-z, 0-9, - and _ "
            "(starting alphanumeric)"
        )
    return value


def _endpoint_limits(environ: Mapping[str, str]) -> tuple[tuple[str, float], ...]:
    try:
        return tuple(parse_endpoint_limits(environ.get("STRIPE_ENDPOINT_LIMITS", "")).items())
    except ValueError as exc:
        raise SettingsError(f"STRIPE_ENDPOINT_LIMITS is malformed: {exc}") from None


def _hours(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_AUTH_WINDOW_HOURS:
        raise SettingsError(
            f"{name} is malformed: {raw[:40]!r} is not a whole number of hours "
            f"from 1 to {MAX_AUTH_WINDOW_HOURS}"
        )
    return int(raw)


def _portal_payment_url(environ: Mapping[str, str]) -> str | None:
    value = environ.get("PORTAL_PAYMENT_URL", "").strip() or None
    if value is None:
        return None
    if urlsplit(value).scheme not in ("http", "https") or "{payment_id}" not in value:
        raise SettingsError(
            f"PORTAL_PAYMENT_URL is malformed: {value[:80]!r} is not an http(s) URL containing {{payment_id}}"
        )
    return value


def _mail_seller_domains(environ: Mapping[str, str]) -> frozenset[str]:
    raw = environ.get("MAIL_SELLER_DOMAINS", "")
    domains = [part.strip().lower() for part in raw.split(",") if part.strip()]
    for domain in domains:
        if not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+", domain):
            raise SettingsError(f"MAIL_SELLER_DOMAINS is malformed: {domain!r} is not a domain name")
    return frozenset(domains)


def process_kind_environ(kind: str, threads: int = 1) -> dict[str, str]:
    """The REMIT_PROCESS_KIND a kind of process with this many threads runs with (it sizes the pool)."""
    if kind not in POOL_BY_KIND:
        raise ValueError(f"unknown process kind {kind!r}")
    return {"REMIT_PROCESS_KIND": f"{kind}:{threads}"}


def _kind_pool(environ: Mapping[str, str]) -> tuple[int, int]:
    """(pool size, overflow) for the process's kind, or the defaults of a process no command sized."""
    kind, _, threads = environ.get("REMIT_PROCESS_KIND", "").partition(":")
    sizes = POOL_BY_KIND.get(kind)
    if sizes is None or not threads.isdigit():
        return DEFAULT_POOL_SIZE, DEFAULT_MAX_OVERFLOW
    size, overflow = sizes
    return max(1, size(int(threads))), overflow(int(threads))


def _count(environ: Mapping[str, str], name: str, default: int, least: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < least:
        raise SettingsError(f"{name} is malformed: {raw[:40]!r} is not a whole number, {least} or more")
    return int(raw)


def _unless_unneeded(
    needed: Collection[str], name: str, read: Callable[[Mapping[str, str]], object], environ, empty: object
):
    """read(environ) for a needed variable; for one the command does not use, its value if valid, or empty."""
    if name in needed:
        return read(environ)
    try:
        return read(environ)
    except SettingsError:
        return empty


def load_settings(environ: Mapping[str, str], needed: Collection[str] = REQUIRED) -> Settings:
    """Build settings from a mapping; raise SettingsError naming the first bad variable among those needed."""
    environment = environ.get("REMIT_ENV", "").strip() or "development"
    return Settings(
        database_url=_unless_unneeded(needed, "DATABASE_URL", _database_url, environ, ""),
        broker_url=_unless_unneeded(needed, "BROKER_URL", _broker_url, environ, ""),
        stripe_api_key=_unless_unneeded(needed, "STRIPE_API_KEY", _stripe_key, environ, ""),
        stripe_api_base=_api_base(environ),
        stripe_webhook_secrets=_unless_unneeded(
            needed, "STRIPE_WEBHOOK_SECRETS", _webhook_secrets, environ, ()
        ),
        stripe_requests_per_second=_positive_number(
            environ, "STRIPE_REQUESTS_PER_SECOND", DEFAULT_STRIPE_REQUESTS_PER_SECOND
        ),
        stripe_endpoint_requests_per_second=_positive_number(
            environ, "STRIPE_ENDPOINT_REQUESTS_PER_SECOND", DEFAULT_STRIPE_ENDPOINT_REQUESTS_PER_SECOND
        ),
        stripe_search_requests_per_second=_positive_number(
            environ, "STRIPE_SEARCH_REQUESTS_PER_SECOND", DEFAULT_STRIPE_SEARCH_REQUESTS_PER_SECOND
        ),
        stripe_endpoint_limits=_endpoint_limits(environ),
        stripe_timeout_seconds=_positive_number(
            environ, "STRIPE_TIMEOUT_SECONDS", DEFAULT_STRIPE_TIMEOUT_SECONDS
        ),
        smtp_url=_smtp_url(environ),
        mail_from=environ.get("MAIL_FROM", "").strip() or "Payments <payments@remit.invalid>",
        sentry_dsn=environ.get("SENTRY_DSN", "").strip() or None,
        dashboard_token=_dashboard_token(environ),
        dashboard_operators=_dashboard_operators(environ, _dashboard_token(environ)),
        metrics_dir=_metrics_dir(environ),
        environment=environment,
        dashboard_https=_dashboard_https(environ, environment),
        dashboard_host=_dashboard_host(environ),
        broker_namespace=environ.get("BROKER_NAMESPACE", "").strip() or "remit",
        deployment=_deployment(environ),
        webhook_payload_retention_days=_days(
            environ, "WEBHOOK_PAYLOAD_RETENTION_DAYS", DEFAULT_WEBHOOK_PAYLOAD_RETENTION_DAYS
        ),
        email_context_retention_days=_days(
            environ, "EMAIL_CONTEXT_RETENTION_DAYS", DEFAULT_EMAIL_CONTEXT_RETENTION_DAYS
        ),
        mandate_retention_days=_days(environ, "MANDATE_RETENTION_DAYS", DEFAULT_MANDATE_RETENTION_DAYS),
        webhook_body_timeout_seconds=_positive_number(
            environ, "WEBHOOK_BODY_TIMEOUT_SECONDS", DEFAULT_WEBHOOK_BODY_TIMEOUT_SECONDS
        ),
        webhook_max_body_bytes=int(
            _positive_number(environ, "WEBHOOK_MAX_BODY_BYTES", DEFAULT_WEBHOOK_MAX_BODY_BYTES)
        ),
        auth_window_on_session_hours=_hours(
            environ, "AUTH_WINDOW_ON_SESSION_HOURS", DEFAULT_AUTH_WINDOW_ON_SESSION_HOURS
        ),
        auth_window_off_session_hours=_hours(
            environ, "AUTH_WINDOW_OFF_SESSION_HOURS", DEFAULT_AUTH_WINDOW_OFF_SESSION_HOURS
        ),
        portal_payment_url=_portal_payment_url(environ),
        mail_seller_domains=_mail_seller_domains(environ),
        database_pool_size=_count(environ, "DATABASE_POOL_SIZE", _kind_pool(environ)[0], 1),
        database_max_overflow=_count(environ, "DATABASE_MAX_OVERFLOW", _kind_pool(environ)[1], 0),
    )


_needed: frozenset[str] = REQUIRED


def need_only(*names: str) -> None:
    """Require only these of REQUIRED from now on in this process (a command that uses no more)."""
    global _needed
    _needed = frozenset(names)
    get_settings.cache_clear()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return load_settings(os.environ, _needed)
