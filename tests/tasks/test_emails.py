"""send_email end to end: a queued row, the real broker, an in-process worker and a real SMTP server."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from db.models import Email, FailedJob
from tasks.emails import send_email
from tasks.flows.dead_letters import mirror_dead_letters
from tasks.gateways.mail import MailGateway, MailRejected, use_mail_gateway
from tests.tasks.test_outbox import (
    SENDER,
    RefusingCapture,
    queue_email,
    smtp,  # noqa: F401  (fixture)
)
from workers.broker import QUEUES


def wait_for_status(db, email_id: int, status: str, timeout_s: float = 15.0) -> Email:
    """The row once it reached status; a worker commits just after the SMTP server answered."""
    deadline = time.monotonic() + timeout_s
    while True:
        with db() as session:
            row = session.get(Email, email_id)
        if row.status == status or time.monotonic() > deadline:
            return row
        time.sleep(0.05)


def test_actor_sets_its_retry_policy_and_throws_refusals():
    options = send_email.options
    assert send_email.queue_name == "emails"
    assert (
        options["max_retries"] == 6 and options["min_backoff"] == 10_000 and options["max_backoff"] == 300_000
    )
    assert options["time_limit"] == 90_000 and options["throws"] == (MailRejected,)


def test_queued_email_sent_through_the_broker_and_a_worker_arrives_once(db, broker, worker, smtp):  # noqa: F811
    email_id = queue_email(db, kind="ach_settled")
    send_email.send(email_id)
    send_email.send(email_id)
    [message] = smtp.wait_for(1)
    assert message["Subject"] == "Bank payment of $1,234.56 to Acme <Industrial> Supply has cleared"
    row = wait_for_status(db, email_id, "sent")
    assert row.status == "sent" and row.smtp_message_id == message["Message-ID"]
    broker.join("emails", timeout=15_000)
    assert len(smtp.messages) == 1


def test_refused_email_fails_without_retries_or_a_dead_letter(db, broker, worker):
    server = RefusingCapture({"gone@customer.test": "550 5.1.1 No such user"}).start()
    use_mail_gateway(MailGateway(server.url, SENDER, timeout_s=5))
    try:
        email_id = queue_email(db, recipient="gone@customer.test")
        send_email.send(email_id)
        row = wait_for_status(db, email_id, "failed")
        broker.join("emails", timeout=15_000)
        worker.join()
    finally:
        use_mail_gateway(None)
        server.stop()
    assert (row.status, row.attempts) == ("failed", 1)
    # Acknowledged, not rejected: nothing on the broker's dead-letter queue for the mirror to find.
    assert broker.client.zcard(f"{broker.namespace}:emails.XQ") == 0
    mirror_dead_letters(broker, QUEUES)
    with db() as session:
        assert session.scalar(select(func.count()).select_from(FailedJob)) == 0
