"""`remit check`: what the configured database, broker, Stripe, SMTP and secrets look like, in plain words."""

from __future__ import annotations

import re
from dataclasses import dataclass

from workers.scrub import redact_url
from workers.settings import Settings

# A health check should answer quickly: an unreachable server is reported, not waited on.
CONNECT_TIMEOUT_S = 3
# Stripe's signing secrets are whsec_ and 32 or more characters of base64; the sandbox's and tests' are words.
WEBHOOK_SECRET_SHAPE = re.compile(r"whsec_[A-Za-z0-9+/=_-]{8,}")
# Values copied from .env.example or the sandbox that must never guard a real deployment.
PLACEHOLDERS = {"whsec_replace_me", "sk_test_replace_me", "sandbox-dashboard-token"}


@dataclass(frozen=True)
class Finding:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        mark = "ok     " if self.ok else "MISSING"
        return f"{mark} {self.name:<9} {self.detail}"


def redact(url: str) -> str:
    """The URL without its password, in the userinfo or the query string (workers.scrub)."""
    return redact_url(url)


def check_database(url: str) -> list[Finding]:
    """Connection, server version and migration state."""
    import psycopg

    from db.migrate import head_revision
    from db.session import libpq_url

    libpq = libpq_url(url)
    try:
        with psycopg.connect(libpq, connect_timeout=CONNECT_TIMEOUT_S) as connection:
            version = connection.execute("SHOW server_version").fetchone()[0]
            has_table = connection.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()[0]
            current = (
                connection.execute("SELECT version_num FROM alembic_version").fetchone()
                if has_table
                else None
            )
    except psycopg.OperationalError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = lines[0] if lines else type(exc).__name__
        return [
            Finding(
                "database",
                False,
                f"cannot connect to {redact(libpq)}: {reason}; start PostgreSQL or fix DATABASE_URL",
            )
        ]
    findings = [Finding("database", True, f"PostgreSQL {version.split()[0]} at {redact(libpq)}")]
    head = head_revision()
    revision = current[0] if current else None
    if revision == head:
        findings.append(Finding("schema", True, f"at migration {head} (latest)"))
    else:
        findings.append(
            Finding(
                "schema",
                False,
                f"at migration {revision or 'none'}, code needs {head}: run `remit db upgrade`",
            )
        )
    return findings


def check_broker(settings: Settings) -> Finding:
    """Whether the broker answers."""
    if settings.broker_kind == "rabbitmq":
        return _check_rabbitmq(settings.broker_url)
    import redis

    try:
        client = redis.Redis.from_url(settings.broker_url, socket_connect_timeout=CONNECT_TIMEOUT_S)
        version = client.info("server")["redis_version"]
    except redis.RedisError as exc:
        return Finding(
            "broker",
            False,
            f"cannot reach Redis at {redact(settings.broker_url)}: {str(exc).rstrip('.')}; "
            "start Redis or fix BROKER_URL",
        )
    return Finding("broker", True, f"Redis {version} at {redact(settings.broker_url)}")


def _check_rabbitmq(url: str) -> Finding:
    import pika

    params = pika.URLParameters(url)
    params.socket_timeout = CONNECT_TIMEOUT_S
    params.blocked_connection_timeout = CONNECT_TIMEOUT_S
    try:
        connection = pika.BlockingConnection(params)
    except Exception as exc:  # pika raises a zoo of unrelated types for one refused socket
        return Finding("broker", False, f"cannot reach RabbitMQ at {redact(url)}: {type(exc).__name__} {exc}")
    version = connection._impl.server_properties.get("version", b"?")
    connection.close()
    return Finding(
        "broker",
        True,
        f"RabbitMQ {version.decode() if isinstance(version, bytes) else version} at {redact(url)}",
    )


def check_stripe(settings: Settings) -> Finding:
    """Whether Stripe, at the configured API base, takes the key (one cheap authenticated GET)."""
    from tasks.gateways.probes import ProbeFailed, probe_stripe

    key = f"{settings.stripe_api_key[:8]}..."
    try:
        mode = probe_stripe(settings.stripe_api_key, settings.stripe_api_base, CONNECT_TIMEOUT_S)
    except ProbeFailed as failed:
        return Finding(
            "stripe", False, f"{settings.stripe_api_base} with key {key}: {failed}; fix STRIPE_API_KEY"
        )
    return Finding("stripe", True, f"key {key} accepted at {settings.stripe_api_base} ({mode})")


def check_smtp(settings: Settings) -> Finding:
    """Whether the mail server answers: connect, EHLO (and STARTTLS, login as configured), NOOP."""
    from tasks.gateways.mail import MailGateway, MailMisconfigured, MailUnavailable

    where = redact(settings.smtp_url)
    try:
        greeting = MailGateway(settings.smtp_url, settings.mail_from, CONNECT_TIMEOUT_S).probe()
    except (MailUnavailable, MailMisconfigured) as failed:
        return Finding("smtp", False, f"{where} did not answer: {failed}; start the server or fix SMTP_URL")
    return Finding("smtp", True, f"{where} answered ({greeting})")


def check_secrets(settings: Settings) -> list[Finding]:
    """The webhook secrets' shape, and whether the dashboard has a token of its own."""
    secrets = settings.stripe_webhook_secrets
    bad = [s[:10] + "..." for s in secrets if not WEBHOOK_SECRET_SHAPE.fullmatch(s) or s in PLACEHOLDERS]
    webhooks = (
        Finding("webhooks", False, f"STRIPE_WEBHOOK_SECRETS: {', '.join(bad)} is not a whsec_ signing secret")
        if bad or not secrets
        else Finding("webhooks", True, f"{len(secrets)} signing secret(s) of the whsec_ shape")
    )
    token = settings.dashboard_token
    operators = settings.dashboard_operators
    if not operators:
        dashboard = Finding(
            "dashboard",
            False,
            "neither DASHBOARD_TOKEN nor DASHBOARD_OPERATORS is set: the dashboard answers 503",
        )
    elif token in PLACEHOLDERS and settings.environment not in ("sandbox", "development", "test"):
        dashboard = Finding(
            "dashboard", False, f"DASHBOARD_TOKEN is the sandbox's, in {settings.environment}"
        )
    else:
        roles = ", ".join(f"{o.name} ({o.role})" for o in operators)
        dashboard = Finding("dashboard", True, f"{len(operators)} operator(s): {roles}")
    return [webhooks, dashboard]


def run_checks(settings: Settings) -> list[Finding]:
    """Every finding, database first."""
    return [
        *check_database(settings.database_url),
        check_broker(settings),
        check_stripe(settings),
        check_smtp(settings),
        *check_secrets(settings),
    ]
