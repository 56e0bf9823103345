"""deliver_email and sweep_emails against real Postgres and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from db.models import Email
from db.queries import RowMissing
from db.queries import emails as email_rows
from sandbox.smtp_capture import SmtpCapture
from tasks.flows import emails as outbox
from tasks.gateways.mail import MailGateway, MailRejected, MailUnavailable, use_mail_gateway
from tests import factories
from tests.emails import contexts
from tests.helpers import queued_messages, recording_loads_and_statements

NOW = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
SENDER = "Acme Payments <payments@mail.remit.test>"


class RefusingCapture(SmtpCapture):
    """An SMTP server that refuses some recipients with the reply given for them."""

    def __init__(self, refusals: dict[str, str]):
        super().__init__(port=0)
        self.refusals = refusals

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refusals:
            return self.refusals[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture()
def smtp():
    capture = SmtpCapture(port=0).start()
    use_mail_gateway(MailGateway(capture.url, SENDER, timeout_s=5))
    yield capture
    use_mail_gateway(None)
    capture.stop()


def queue_email(db, kind="payment_confirmation", recipient="ap@customer.test", created_at=NOW, **row) -> int:
    with db() as session:
        seller = factories.seller(session)
        account = factories.account(session, seller)
        (email_id,) = email_rows.add_emails(
            session,
            [
                dict(
                    kind=kind,
                    recipient=recipient,
                    context=contexts.for_kind(kind),
                    dedupe_key=f"{kind}:test:{account.id}",
                    seller_id=seller.id,
                    account_id=account.id,
                    payment_id=None,
                )
            ],
        )
        session.execute(update(Email).where(Email.id == email_id).values(created_at=created_at, **row))
        session.commit()
        return email_id


def load(db, email_id) -> Email:
    with db() as session:
        return session.get(Email, email_id)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_queued_email_is_rendered_and_delivered_once_with_headers_and_parts(db, smtp):
    email_id = queue_email(db)
    assert outbox.deliver_email(email_id, NOW) == "sent"
    [message] = smtp.wait_for(1)
    assert message["Message-ID"] == f"<remit-email-{email_id}@mail.remit.test>"
    # The seller's name at MAIL_FROM's address (no MAIL_SELLER_DOMAINS here); bounces go to MAIL_FROM.
    assert message["From"] == '"Acme <Industrial> Supply" <payments@mail.remit.test>'
    assert message["To"] == "ap@customer.test"
    assert smtp.envelopes[0]["mail_from"] == "payments@mail.remit.test"
    assert message["Subject"] == "Payment received: $1,234.56 to Acme <Industrial> Supply"
    assert message["X-Remit-Dedupe-Key"].startswith("payment_confirmation:test:")
    assert message["Reply-To"] == "ar@acme.test"
    assert message.get_content_type() == "multipart/alternative"
    text, html = (part.get_content() for part in message.iter_parts())
    assert "Stripe charge ID: ch_3QabcDEF123" in text and "&lt;script&gt;" in html
    assert smtp.envelopes[0]["rcpt_tos"] == ["ap@customer.test"]
    row = load(db, email_id)
    assert (row.status, row.attempts, row.sent_at, row.smtp_message_id) == (
        "sent",
        1,
        NOW,
        message["Message-ID"],
    )


def test_delivering_twice_sends_once(db, smtp):
    email_id = queue_email(db)
    assert outbox.deliver_email(email_id, NOW) == "sent"
    assert outbox.deliver_email(email_id, NOW + timedelta(seconds=1)) == "nothing to do: email is sent"
    smtp.wait_for(1)
    assert len(smtp.messages) == 1 and load(db, email_id).sent_at == NOW


def test_an_email_another_worker_holds_is_left_to_it(db, smtp):
    email_id = queue_email(db)
    with db() as holder:
        holder.scalar(select(Email).where(Email.id == email_id).with_for_update())
        assert outbox.deliver_email(email_id, NOW) == "nothing to do: another worker is sending it"
    assert smtp.messages == [] and load(db, email_id).status == "queued"


def test_transient_smtp_failure_leaves_it_queued_then_it_succeeds(db, smtp):
    email_id = queue_email(db)
    use_mail_gateway(MailGateway(f"smtp://127.0.0.1:{closed_port()}", SENDER, timeout_s=5))
    with pytest.raises(MailUnavailable):
        outbox.deliver_email(email_id, NOW)
    row = load(db, email_id)
    assert (row.status, row.attempts) == ("queued", 1) and "MailUnavailable" in row.last_error
    use_mail_gateway(MailGateway(smtp.url, SENDER, timeout_s=5))
    assert outbox.deliver_email(email_id, NOW + timedelta(seconds=10)) == "sent"
    assert len(smtp.wait_for(1)) == 1
    row = load(db, email_id)
    assert (row.status, row.attempts) == ("sent", 2)


@pytest.mark.parametrize(
    "reply, raised, status",
    [
        ("550 5.1.1 <nobody@customer.test>: mailbox unavailable", MailRejected, "failed"),
        ("451 4.7.1 Greylisted, try again later", MailUnavailable, "queued"),
    ],
)
def test_recipient_refusal_is_final_for_5xx_and_retried_for_4xx(db, reply, raised, status):
    server = RefusingCapture({"nobody@customer.test": reply}).start()
    use_mail_gateway(MailGateway(server.url, SENDER, timeout_s=5))
    try:
        email_id = queue_email(db, recipient="nobody@customer.test")
        with pytest.raises(raised):
            outbox.deliver_email(email_id, NOW)
    finally:
        use_mail_gateway(None)
        server.stop()
    row = load(db, email_id)
    assert (row.status, row.attempts) == (status, 1) and reply.split(" ", 1)[0] in row.last_error
    assert server.messages == []


def test_a_failed_email_is_never_sent_again(db, smtp):
    email_id = queue_email(db, status="failed", attempts=1, last_error="550 refused")
    assert outbox.deliver_email(email_id, NOW) == "nothing to do: email is failed"
    assert smtp.messages == []


def test_transient_failure_a_day_after_the_email_was_owed_gives_up(db):
    email_id = queue_email(db, created_at=NOW - timedelta(hours=25), attempts=40)
    use_mail_gateway(MailGateway(f"smtp://127.0.0.1:{closed_port()}", SENDER, timeout_s=5))
    try:
        with pytest.raises(MailUnavailable):
            outbox.deliver_email(email_id, NOW)
    finally:
        use_mail_gateway(None)
    row = load(db, email_id)
    assert (row.status, row.attempts) == ("failed", 41)


def test_a_template_error_is_recorded_and_raised_loudly(db, smtp):
    email_id = queue_email(db)
    with db() as session:
        session.execute(update(Email).where(Email.id == email_id).values(context={"seller": {}}))
        session.commit()
    with pytest.raises(Exception, match="undefined"):
        outbox.deliver_email(email_id, NOW)
    row = load(db, email_id)
    assert (row.status, row.attempts) == ("queued", 1) and "UndefinedError" in row.last_error
    assert smtp.messages == []


def test_a_missing_email_is_a_bug(db, smtp):
    with pytest.raises(RowMissing):
        outbox.deliver_email(999_999, NOW)


def _queued_ids(broker):
    return sorted(message.args[0] for message in queued_messages(broker, "emails"))


def test_sweep_resends_only_stale_queued_rows(db, broker):
    lost = queue_email(db, created_at=NOW - timedelta(minutes=3))
    queue_email(db, created_at=NOW - timedelta(seconds=30))  # its message is still on the way
    retried_long_ago = queue_email(db, created_at=NOW - timedelta(minutes=30), attempts=7)
    queue_email(db, created_at=NOW - timedelta(minutes=10), attempts=7)  # its actor may still be retrying
    queue_email(db, created_at=NOW - timedelta(hours=1), status="sent", attempts=1)
    queue_email(db, created_at=NOW - timedelta(hours=1), status="failed", attempts=1)
    assert outbox.sweep_emails(NOW) == {"unsent": 1, "retrying": 1}
    assert _queued_ids(broker) == [lost, retried_long_ago]


def test_sweep_leaves_a_row_being_sent_right_now(db, broker):
    email_id = queue_email(db, created_at=NOW - timedelta(minutes=5))
    with db() as holder:
        holder.scalar(select(Email).where(Email.id == email_id).with_for_update())
        assert outbox.sweep_emails(NOW) == {"unsent": 0, "retrying": 0}
    assert outbox.sweep_emails(NOW, limit=10) == {"unsent": 1, "retrying": 0}


def test_queue_emails_nudges_only_once_the_row_is_committed_and_never_for_a_duplicate(db, broker):
    with db() as session:
        seller = factories.seller(session)
        row = dict(
            kind="bank_verified",
            recipient="ap@customer.test",
            context=contexts.for_kind("bank_verified"),
            dedupe_key="k:1",
            seller_id=seller.id,
            account_id=None,
            payment_id=None,
        )
        (email_id,) = outbox.queue_emails(session, [row])
        assert outbox.queue_emails(session, [row]) == []  # the same dedupe key: no row, no nudge
        assert _queued_ids(broker) == []
        session.commit()
    assert _queued_ids(broker) == [email_id]


def _deliver_from(db, capture, seller_domains, **seller):
    use_mail_gateway(MailGateway(capture.url, SENDER, timeout_s=5, seller_domains=seller_domains))
    context = contexts.for_kind("payment_confirmation")
    context["seller"] = {**context["seller"], **seller}
    email_id = queue_email(db)
    with db() as session:
        session.execute(update(Email).where(Email.id == email_id).values(context=context))
        session.commit()
    assert outbox.deliver_email(email_id, NOW) == "sent"
    [message] = capture.wait_for(1)
    return message, capture.envelopes[0]["mail_from"]


def test_a_seller_sends_from_its_own_name_and_address_at_an_allowed_domain(db, smtp):
    seller = {"from_name": "Acme Receivables", "from_address": "ar@acme.test"}
    message, envelope = _deliver_from(db, smtp, frozenset({"acme.test"}), **seller)
    assert message["From"] == "Acme Receivables <ar@acme.test>"
    assert message["Reply-To"] == "ar@acme.test"
    assert envelope == "payments@mail.remit.test"


def test_a_seller_address_outside_the_allowed_domains_keeps_mail_from_address(db, smtp):
    seller = {"from_name": "Acme Receivables", "from_address": "ar@elsewhere.test"}
    message, _ = _deliver_from(db, smtp, frozenset({"acme.test"}), **seller)
    assert message["From"] == "Acme Receivables <payments@mail.remit.test>"


def test_sending_loads_no_mapped_object_and_builds_no_statement(db, smtp):
    """A worker sends an email for every payment that moves: the row is read as plain values and marked
    sent through statements built once (an ORM load, a statement built per call and a unit-of-work flush
    were a sixth of the bulk worker's interpreter time in bench.scheduled)."""
    first_id, second_id = queue_email(db), queue_email(db)
    with recording_loads_and_statements() as first:
        assert outbox.deliver_email(first_id, NOW) == "sent"
    with recording_loads_and_statements() as second:
        assert outbox.deliver_email(second_id, NOW) == "sent"
    assert first.loaded == second.loaded == []
    assert len(second.executed) == len(first.executed) > 0
    assert [s for s, again in zip(first.executed, second.executed, strict=True) if s is not again] == []
    sent = [load(db, email_id) for email_id in (first_id, second_id)]
    assert [(e.status, e.attempts, e.sent_at) for e in sent] == [("sent", 1, NOW), ("sent", 1, NOW)]
    assert [e.smtp_message_id for e in sent] == [m["Message-ID"] for m in smtp.wait_for(2)]
