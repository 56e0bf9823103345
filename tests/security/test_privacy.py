"""Issue 13, "Secrets and privacy": Remit prints, reports and keeps no password and no one's details."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.workers.test_sentry import _Capture, sentry_server  # noqa: F401  (the fixture)
from workers.scrub import redact_url, scrub_event, scrub_text


@pytest.mark.parametrize(
    "url, expected",
    [
        ("postgresql://remit:s3cret@db:5432/remit", "postgresql://remit:***@db:5432/remit"),
        # libpq and Redis both take the password in the query string; it was printed as given.
        ("postgresql://remit@db/remit?password=s3cret", "postgresql://remit@db/remit?password=***"),
        (
            "postgresql://db/remit?sslmode=require&PASSWORD=s3cret",
            "postgresql://db/remit?sslmode=require&PASSWORD=***",
        ),
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        (
            "rediss://default:p%40ss@cache:6380/0?ssl_cert_reqs=none",
            "rediss://default:***@cache:6380/0?ssl_cert_reqs=none",
        ),
        ("amqp://guest:guest@rabbit:5672/%2f", "amqp://guest:***@rabbit:5672/%2f"),
        ("smtps://mailer:s3cret@smtp.example.com:465", "smtps://mailer:***@smtp.example.com:465"),
        ("smtp://127.0.0.1:1025", "smtp://127.0.0.1:1025"),  # nothing to hide
        ("redis://user@cache:6379/0", "redis://user@cache:6379/0"),  # a user without a password
        ("postgresql://remit:p@ss@db/remit", "postgresql://remit:***@db/remit"),  # an unescaped @ in it
    ],
)
def test_every_url_printed_has_its_password_masked(url, expected):
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    "text, kept, gone",
    [
        ("cannot reach redis://:hunter2@cache:6379/0", "redis://:***@cache", "hunter2"),
        ("host=db password=hunter2 dbname=remit", "password=***", "hunter2"),
        ("receipt for ap@customer.example refused", "receipt for [email] refused", "ap@customer.example"),
        (
            '(psycopg.errors.UniqueViolation) duplicate key value violates unique constraint "x"\n'
            "DETAIL:  Key (billing_email)=(ap@customer.example) already exists.\n"
            "[SQL: INSERT INTO accounts (name, billing_email) VALUES (%(name)s, %(billing_email)s)]\n"
            "[parameters: {'name': 'Jane Roe', 'billing_email': 'ap@customer.example'}]\n"
            "(Background on this error at: https://sqlalche.me/e/20/gkpj)",
            "[parameters: redacted]",
            "Jane Roe",
        ),
        (
            'new row for relation "payment_methods" violates check constraint\n'
            "DETAIL:  Failing row contains (7, 3, pm_1, us_bank_account, 203.0.113.9, Mozilla/5.0).",
            "Failing row contains (redacted)",
            "203.0.113.9",
        ),
    ],
)
def test_free_text_loses_credentials_emails_and_sql_values(text, kept, gone):
    scrubbed = scrub_text(text)
    assert kept in scrubbed and gone not in scrubbed


def _event() -> dict:
    return {
        "level": "error",
        "exception": {
            "values": [
                {
                    "type": "IntegrityError",
                    "value": (
                        "[SQL: UPDATE emails SET recipient=%(r)s]\n[parameters: {'r': 'jane@roe.example'}]"
                    ),
                    "stacktrace": {
                        "frames": [
                            {
                                "function": "deliver_email",
                                "vars": {"email": "<Email jane@roe.example>", "rendered": "Dear Jane Roe"},
                            }
                        ]
                    },
                }
            ]
        },
        "request": {
            "url": "http://127.0.0.1:8001/stripe/webhook",
            "data": '{"billing_details": {"name": "Jane Roe"}}',
            "headers": {"Stripe-Signature": "t=1,v1=abc", "Authorization": "Bearer tok", "Accept": "*/*"},
        },
        "contexts": {
            "runtime": {"name": "CPython", "version": "3.12"},
            "dramatiq": {"type": "dramatiq", "data": {"args": [7]}},
        },
        "extra": {"context": {"customer_name": "Jane Roe"}, "dramatiq_message_id": "m-1"},
        "breadcrumbs": {
            "values": [{"message": "sent to jane@roe.example", "data": {"recipient": "jane@roe.example"}}]
        },
        "user": {"id": "42", "email": "jane@roe.example", "ip_address": "203.0.113.9"},
        "logentry": {"message": "mandate from %s", "params": ["203.0.113.9"]},
    }


def test_a_sentry_event_keeps_what_helps_ops_and_nothing_personal():
    scrubbed = scrub_event(_event(), {})
    flat = repr(scrubbed)
    for personal in ("jane@roe.example", "Jane Roe", "203.0.113.9", "Bearer tok", "v1=abc", "Dear"):
        assert personal not in flat, personal
    assert "vars" not in scrubbed["exception"]["values"][0]["stacktrace"]["frames"][0]
    assert scrubbed["exception"]["values"][0]["type"] == "IntegrityError"
    assert scrubbed["request"]["headers"]["Accept"] == "*/*"
    assert scrubbed["contexts"]["runtime"] == {"name": "CPython", "version": "3.12"}
    assert scrubbed["extra"]["dramatiq_message_id"] == "m-1" and scrubbed["user"] == {"id": "42"}


def test_remit_check_never_prints_a_password_given_in_the_query_string(monkeypatch, capsys):
    from workers import cli

    monkeypatch.setenv(
        "DATABASE_URL", "postgresql://nobody@127.0.0.1:9/remit?password=hunter2&sslmode=disable"
    )
    monkeypatch.setenv("BROKER_URL", "redis://:hunter3@127.0.0.1:9/0?password=hunter4")
    cli.get_settings.cache_clear()
    try:
        assert cli.cmd_check(None) == 1
    finally:
        cli.get_settings.cache_clear()
    printed = capsys.readouterr().out
    assert "password=***" in printed and "127.0.0.1:9" in printed
    assert not {"hunter2", "hunter3", "hunter4"} & set(printed.replace("&", " ").replace("=", " ").split())
    assert "hunter" not in printed


SENTRY_SCRIPT = """
import dramatiq
from workers import broker

@dramatiq.actor(queue_name="maintenance", max_retries=0)
def leak():
    rendered = "Dear Jane Roe, your receipt"
    recipient = "jane@roe.example"
    raise RuntimeError(f"could not send to {recipient} [parameters: {{'name': 'Jane Roe'}}]")

worker = dramatiq.Worker(broker.broker, worker_threads=1, worker_timeout=100)
worker.start()
leak.send()
broker.broker.join("maintenance", timeout=10_000)
worker.join()
worker.stop()
import sentry_sdk
sentry_sdk.flush(5)
"""


def test_sentry_hears_of_a_failed_job_without_its_locals_emails_names_or_sql_values(
    migrated,
    broker,
    sentry_server,  # noqa: F811
):
    dsn = f"http://publickey@127.0.0.1:{sentry_server.server_address[1]}/1"
    env = {**os.environ, "SENTRY_DSN": dsn}
    done = subprocess.run(
        [sys.executable, "-c", SENTRY_SCRIPT], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    deadline = time.monotonic() + 10
    while not _Capture.received and time.monotonic() < deadline:
        time.sleep(0.05)
    payloads = b"\n".join(_Capture.received).decode(errors="replace")
    assert "could not send to [email]" in payloads and "RuntimeError" in payloads
    for personal in ("jane@roe.example", "Jane Roe", "Dear"):
        assert personal not in payloads, personal


@pytest.fixture()
def production_engine(migrated, monkeypatch):
    """The process engine as a production worker builds it (REMIT_ENV=production)."""
    from db.session import reset_engine
    from workers.settings import get_settings

    monkeypatch.setenv("REMIT_ENV", "production")
    get_settings.cache_clear()
    reset_engine()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()
    reset_engine()


def _failing_insert(session):
    from sqlalchemy import text

    session.execute(
        text("INSERT INTO sellers (slug, name) VALUES (:slug, :name)"),
        {"slug": "x" * 100, "name": "Jane Roe jane@roe.example"},
    )


def test_outside_development_a_database_error_and_its_dead_letter_carry_no_bound_parameters(
    db, production_engine
):
    import dramatiq
    from sqlalchemy import select
    from sqlalchemy.exc import DBAPIError

    from db.models import FailedJob
    from db.session import get_sessionmaker, transaction
    from workers.middleware import record_failed_job

    with pytest.raises(DBAPIError) as failed:
        with transaction() as session:
            _failing_insert(session)
    assert "Jane Roe" not in str(failed.value) and "jane@roe.example" not in str(failed.value)
    message = dramatiq.Message(queue_name="emails", actor_name="send_email", args=(1,), kwargs={}, options={})
    record_failed_job(message, failed.value)
    with get_sessionmaker()() as session:
        row = session.scalars(select(FailedJob)).one()
    assert "StringDataRightTruncation" in row.error
    assert "Jane Roe" not in row.error + row.traceback and "jane@roe.example" not in row.error + row.traceback


def test_a_dead_letter_is_recorded_without_the_sql_values_or_emails_its_error_named(db):
    import dramatiq
    from sqlalchemy import select

    from db.models import FailedJob
    from db.session import get_sessionmaker
    from workers.middleware import record_failed_job

    leaked = RuntimeError("for jane@roe.example\n[SQL: INSERT ...]\n[parameters: {'name': ['Jane Roe']}]")
    message = dramatiq.Message(queue_name="emails", actor_name="send_email", args=(1,), kwargs={}, options={})
    message = message.copy(
        options={"traceback": f"Traceback (most recent call last):\nRuntimeError: {leaked}"}
    )
    record_failed_job(message, leaked)
    with get_sessionmaker()() as session:
        row = session.scalars(select(FailedJob)).one()
    assert "[parameters: redacted]" in row.error and "[email]" in row.traceback
    assert "Jane Roe" not in row.error + row.traceback and "jane@roe.example" not in row.error + row.traceback


PURGE_NOW = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
PERSONAL_EVENT = {
    "type": "charge.succeeded",
    "created": 1700000000,
    "data": {
        "object": {
            "id": "ch_1",
            "amount": 64510,
            "status": "succeeded",
            "billing_details": {"name": "Jane Roe", "email": "jane@roe.example"},
            "payment_method_details": {"us_bank_account": {"routing_number": "110000000"}},
        }
    },
}


def _seed_personal_data(db) -> dict:
    from sqlalchemy import update

    from db.models import Email, PaymentMethod, StripeEvent
    from db.queries import inbox
    from tests import factories
    from tests.emails import contexts

    ago = {"old": PURGE_NOW - timedelta(days=91), "new": PURGE_NOW - timedelta(days=89)}
    with db() as session:
        for name, status, received in [
            ("evt_old_done", "processed", ago["old"]),
            ("evt_old_ignored", "ignored", ago["old"]),
            ("evt_old_waiting", "received", ago["old"]),  # still to be processed: kept whole
            ("evt_new_done", "processed", ago["new"]),
        ]:
            inbox.insert_event(session, {**PERSONAL_EVENT, "id": name}, received)
            session.execute(update(StripeEvent).where(StripeEvent.id == name).values(status=status))
        seller = factories.seller(session)
        account = factories.account(session, seller, billing_email="jane@roe.example")
        emails = {}
        for name, status, days in [
            ("old_sent", "sent", 181),
            ("old_queued", "queued", 181),
            ("new_sent", "sent", 179),
        ]:
            emails[name] = factories.email_row(
                session,
                kind="payment_confirmation",
                recipient="jane@roe.example",
                context=contexts.for_kind("payment_confirmation"),
                dedupe_key=f"k:{name}",
                seller_id=seller.id,
                account_id=account.id,
            )
            session.execute(
                update(Email)
                .where(Email.id == emails[name])
                .values(status=status, created_at=PURGE_NOW - timedelta(days=days))
            )
        methods = {}
        for name, status, days in [
            ("old_removed", "removed", 731),
            ("new_removed", "removed", 700),
            ("old_active", "active", 900),
        ]:
            methods[name] = factories.method(
                session,
                account,
                kind="us_bank_account",
                status=status,
                nickname="Jane's account",
                billing_details={"name": "Jane Roe", "email": "jane@roe.example"},
            ).id
            session.execute(
                update(PaymentMethod)
                .where(PaymentMethod.id == methods[name])
                .values(updated_at=PURGE_NOW - timedelta(days=days))
            )
        session.commit()
    return {"emails": emails, "methods": methods}


def test_purge_redacts_personal_data_past_retention_keeping_ids_amounts_and_states(db):
    from db.models import Email, PaymentMethod, StripeEvent
    from tasks.flows.retention import purge_personal_data

    made = _seed_personal_data(db)
    assert purge_personal_data(PURGE_NOW) == {"webhook_payloads": 2, "email_contexts": 1, "mandates": 1}
    assert purge_personal_data(PURGE_NOW) == {"webhook_payloads": 0, "email_contexts": 0, "mandates": 0}
    with db() as session:
        events = {row.id: row for row in session.query(StripeEvent)}
        emails = {row.id: row for row in session.query(Email)}
        methods = {row.id: row for row in session.query(PaymentMethod)}
    for event_id in ("evt_old_done", "evt_old_ignored"):
        payload = events[event_id].payload
        assert "Jane Roe" not in repr(payload) and "110000000" not in repr(payload)
        assert payload["id"] == event_id and payload["data"]["object"]["amount"] == 64510
        assert (events[event_id].type, payload["data"]["object"]["status"]) == (
            "charge.succeeded",
            "succeeded",
        )
    for event_id in ("evt_old_waiting", "evt_new_done"):
        assert "Jane Roe" in repr(events[event_id].payload)
    old = emails[made["emails"]["old_sent"]]
    assert old.context["redacted"] is True and old.status == "sent" and old.kind == "payment_confirmation"
    assert "Acme" not in repr(old.context) and old.context["amount_minor"] == 123456
    for name in ("old_queued", "new_sent"):
        assert "redacted" not in emails[made["emails"][name]].context
    gone = methods[made["methods"]["old_removed"]]
    assert (gone.mandate_ip, gone.mandate_user_agent) == (None, None) and gone.mandate_accepted_at is not None
    assert (gone.billing_details, gone.nickname) == (None, None)
    assert gone.updated_at == PURGE_NOW - timedelta(days=731)
    for name in ("new_removed", "old_active"):
        kept = methods[made["methods"][name]]
        assert kept.mandate_ip == "203.0.113.9" and kept.billing_details["name"] == "Jane Roe"


def test_purge_works_in_bounded_batches(db):
    from tasks.flows.retention import purge_personal_data

    _seed_personal_data(db)
    assert purge_personal_data(PURGE_NOW, limit=1) == {
        "webhook_payloads": 1,
        "email_contexts": 1,
        "mandates": 1,
    }
    assert purge_personal_data(PURGE_NOW, limit=1) == {
        "webhook_payloads": 1,
        "email_contexts": 0,
        "mandates": 0,
    }


def test_retention_is_configurable_and_documented():
    from workers.settings import SettingsError, load_settings

    base = {
        "DATABASE_URL": "postgresql://u@h/d",
        "BROKER_URL": "redis://h:6379/0",
        "STRIPE_API_KEY": "sk_test_x",
        "STRIPE_WEBHOOK_SECRETS": "whsec_x",
    }
    assert load_settings(base).webhook_payload_retention_days == 90
    settings = load_settings(
        {**base, "WEBHOOK_PAYLOAD_RETENTION_DAYS": "30", "MANDATE_RETENTION_DAYS": "3650"}
    )
    assert (settings.webhook_payload_retention_days, settings.mandate_retention_days) == (30, 3650)
    with pytest.raises(SettingsError, match="EMAIL_CONTEXT_RETENTION_DAYS"):
        load_settings({**base, "EMAIL_CONTEXT_RETENTION_DAYS": "-1"})
    example = (Path(__file__).parents[2] / ".env.example").read_text()
    for name in ("WEBHOOK_PAYLOAD_RETENTION_DAYS", "EMAIL_CONTEXT_RETENTION_DAYS", "MANDATE_RETENTION_DAYS"):
        assert f"\n{name}=" in example
