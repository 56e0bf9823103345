"""Test set-up: a real PostgreSQL database and a real Redis, found or started, wiped per test."""

from __future__ import annotations

import os
from datetime import UTC
from pathlib import Path

import pytest

from db.session import libpq_url

ROOT = Path(__file__).resolve().parent.parent
# Parallel runs on one machine (several checkouts, CI beside a developer) pick their own name.
TEST_DATABASE = os.environ.get("REMIT_TEST_DB", "remit_test")
TEST_REDIS_DB = "15"
TEST_WEBHOOK_SECRETS = ("whsec_test_primary", "whsec_test_secondary")


def _test_urls() -> tuple[str, str]:
    if os.environ.get("TEST_DATABASE_URL") and os.environ.get("TEST_BROKER_URL"):
        return os.environ["TEST_DATABASE_URL"], os.environ["TEST_BROKER_URL"]
    from sandbox.services import ensure_services

    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BROKER_URL")}
    services = ensure_services(root=ROOT / ".remit", environ=environ, database=TEST_DATABASE)
    broker_url = services.broker_url
    if broker_url.startswith("redis://") and broker_url.rsplit("/", 1)[-1].isdigit():
        broker_url = broker_url.rsplit("/", 1)[0] + "/" + TEST_REDIS_DB
    return os.environ.get("TEST_DATABASE_URL", services.database_url), os.environ.get(
        "TEST_BROKER_URL", broker_url
    )


def pytest_configure(config: pytest.Config) -> None:
    database_url, broker_url = _test_urls()
    os.environ.update(
        DATABASE_URL=database_url,
        BROKER_URL=broker_url,
        BROKER_NAMESPACE=f"{TEST_DATABASE}-queues",
        STRIPE_API_KEY="sk_test_remit_tests",
        STRIPE_API_BASE="http://127.0.0.1:9",
        STRIPE_WEBHOOK_SECRETS=",".join(TEST_WEBHOOK_SECRETS),
        STRIPE_REQUESTS_PER_SECOND="1000",
        STRIPE_ENDPOINT_REQUESTS_PER_SECOND="1000",
        STRIPE_SEARCH_REQUESTS_PER_SECOND="1000",
        # Port 9 (discard) answers nothing: a test that mails starts its own capture, never make run's.
        SMTP_URL="smtp://127.0.0.1:9",
        REMIT_ENV="test",
    )
    os.environ.pop("SENTRY_DSN", None)


@pytest.fixture(scope="session")
def database_url() -> str:
    return os.environ["DATABASE_URL"]


@pytest.fixture(scope="session")
def migrated(database_url: str) -> str:
    """The test database, emptied and migrated to head once per run."""
    import psycopg

    from db.migrate import upgrade

    libpq = libpq_url(database_url)
    with psycopg.connect(libpq, autocommit=True) as connection:
        connection.execute("DROP SCHEMA IF EXISTS public CASCADE")
        connection.execute("CREATE SCHEMA public")
    upgrade(database_url)
    return database_url


@pytest.fixture()
def db(migrated: str):
    """A sessionmaker on a database whose tables were all emptied before this test."""
    from db.session import get_sessionmaker

    truncate_all()
    return get_sessionmaker()


def truncate_all() -> None:
    """Empty every table and restart its ids."""
    from sqlalchemy import text

    from db.models import Base
    from db.session import get_engine

    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with get_engine().begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture()
def broker():
    """The real broker of workers.broker, with every queue emptied."""
    from workers.broker import broker as remit_broker

    remit_broker.flush_all()
    yield remit_broker
    remit_broker.flush_all()


@pytest.fixture()
def worker(broker):
    """A real Dramatiq worker on every queue in this process, knowing every actor as `remit worker` does."""
    import dramatiq

    import workers.actors  # noqa: F401  (code sends by actor name: the worker must have declared them all)

    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture(scope="session")
def _emulator_server():
    from sandbox.stripe_emulator import Emulator

    emulator = Emulator(api_key="sk_test_remit_tests").start(port=0)
    yield emulator
    emulator.stop()


@pytest.fixture()
def emulator(_emulator_server):
    """The Stripe emulator, reset to empty for this test."""
    _emulator_server.reset()
    yield _emulator_server
    _emulator_server.reset()


@pytest.fixture()
def gateway(emulator, broker):
    """The Stripe gateway bound to the emulator (with the shared Redis limiter), installed for this test."""
    import redis

    from tasks.gateways.stripe import build_gateway, use_gateway

    namespace = os.environ["BROKER_NAMESPACE"]
    connection = redis.Redis.from_url(os.environ["BROKER_URL"])
    bookings = list(connection.scan_iter(match=f"{namespace}:stripe:limiter*"))
    if bookings:
        connection.delete(*bookings)
    built = build_gateway(
        "sk_test_remit_tests", emulator.url, 5.0, os.environ["BROKER_URL"], 1000, limiter_namespace=namespace
    )
    use_gateway(built)
    yield built
    use_gateway(None)


class Shop:
    """A seller with one account, saved methods made at the emulator, and invoices to pay."""

    def __init__(self, db, gateway):
        from datetime import date, datetime

        from tests import factories

        self.today = date(2026, 11, 22)
        self.now = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
        with db() as session:
            self.seller = factories.seller(session, timezone="UTC")
            account = factories.account(session, self.seller)
            account.stripe_customer_id = gateway.create_customer(
                account_id=account.id,
                email=account.billing_email,
                name=account.name,
                idempotency_key=f"test-customer-{account.id}",
            )
            self.account_id = account.id
            self.methods = {}
            for name, token in [
                ("visa", "pm_card_visa"),
                ("declined", "pm_card_chargeDeclined"),
                ("insufficient", "pm_card_visa_chargeDeclinedInsufficientFunds"),
                ("auth", "pm_card_authenticationRequired"),
                ("ach", "pm_usBankAccount_success"),
                ("ach_insufficient", "pm_usBankAccount_insufficientFunds"),
            ]:
                details = gateway.attach_payment_method(
                    payment_method=token,
                    customer_id=account.stripe_customer_id,
                    idempotency_key=f"test-attach-{account.id}-{name}",
                )
                kind = details.kind
                row = factories.method(
                    session, account, kind=kind, stripe_payment_method_id=details.id, last4=details.last4
                )
                self.methods[name] = row.id
            self.invoices = [
                factories.invoice(
                    session, account, total_minor=10_000 + n * 1_000, due_on=date(2026, 12, 1 + n)
                ).id
                for n in range(5)
            ]
            session.commit()
        self.db = db


@pytest.fixture()
def shop(db, gateway, broker):
    return Shop(db, gateway)


@pytest.fixture()
def scratch_database(database_url):
    """An empty database beside the test database, dropped afterwards; yields its URL."""
    import psycopg

    libpq = libpq_url(database_url)
    base, name = libpq.rsplit("/", 1)
    scratch = f"{name}_scratch"
    admin = f"{base}/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {scratch}")
    yield f"{database_url.rsplit('/', 1)[0]}/{scratch}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)")
