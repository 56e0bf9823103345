"""Issue 13, "Secrets and privacy": what Remit prints, reports and keeps holds no password and no one's details."""

from __future__ import annotations

import os
import subprocess
import sys
import time

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
                    "value": "[SQL: UPDATE emails SET recipient=%(r)s]\n[parameters: {'r': 'jane@roe.example'}]",
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
