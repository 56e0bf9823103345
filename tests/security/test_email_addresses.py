"""Issue 13, "Emails": hostile billing or support addresses never reach a header nor cost a day of retries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from db.models import Account, Email
from sandbox.smtp_capture import SmtpCapture
from tasks.domain.addresses import InvalidAddress, email_address
from tasks.flows import emails as outbox
from tasks.gateways.mail import MailGateway, MailRejected, use_mail_gateway
from tests import factories
from tests.emails import contexts

NOW = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
SENDER = "Acme Payments <payments@mail.remit.test>"


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("ap@customer.test", "ap@customer.test"),  # .test is a name the sandbox and tests use
        ("AP@Customer.COM", "AP@customer.com"),  # the domain is case-free; the local part is not ours to fold
        ("billing@northwind.example", "billing@northwind.example"),
        ("ap@customer.test\r\nBcc: thief@evil.test", "control character"),  # header injection
        ("ap@customer.test\n", "control character"),
        ("ap@customer.test\x00", "control character"),
        ("a@x.test, b@y.test", "not one valid address"),  # two recipients in one field
        ("a@x.test;b@y.test", "not one valid address"),
        ("Accounts <ap@customer.test>", "not one valid address"),  # a display name is not an address
        ("ap", "not one valid address"),
        ("", "not one valid address"),
        ("x" * 300 + "@customer.test", "at most 254"),  # refused before parsing, and not echoed
        (12, "must be text"),
        (None, "must be text"),
    ],
)
def test_email_address_accepts_exactly_one_plain_address(raw, expected):
    if "@" in expected:
        assert email_address(raw) == expected
        return
    with pytest.raises(InvalidAddress, match=expected) as refused:
        email_address(raw, "billing_email")
    assert str(refused.value).startswith("billing_email ") and "thief" not in str(refused.value)
    assert len(str(refused.value)) < 300


@pytest.fixture()
def smtp():
    capture = SmtpCapture(port=0).start()
    use_mail_gateway(MailGateway(capture.url, SENDER, timeout_s=5))
    yield capture
    use_mail_gateway(None)
    capture.stop()


def _queue(db, recipient: str, support_email: str = "ar@acme.test") -> int:
    context = contexts.for_kind("payment_confirmation")
    context = {**context, "seller": {**context["seller"], "support_email": support_email}}
    with db() as session:
        seller = factories.seller(session)
        account = factories.account(session, seller)
        email_id = factories.email_row(
            session,
            kind="payment_confirmation",
            recipient=recipient,
            context=context,
            dedupe_key=f"payment_confirmation:test:{account.id}",
            seller_id=seller.id,
            account_id=account.id,
        )
        session.execute(update(Email).where(Email.id == email_id).values(created_at=NOW))
        session.commit()
        return email_id


def _row(db, email_id) -> Email:
    with db() as session:
        return session.get(Email, email_id)


@pytest.mark.parametrize(
    "recipient, support_email, field",
    [
        ("ap@customer.test\r\nBcc: thief@evil.test", "ar@acme.test", "recipient"),
        ("ap@customer.test", "ar@acme.test\r\nBcc: thief@evil.test", "reply-to"),
        ("ap@customer.test, thief@evil.test", "ar@acme.test", "recipient"),
        ("ap@customer.test", "ar@acme.test, thief@evil.test", "reply-to"),
    ],
)
def test_a_message_that_can_never_be_composed_fails_at_once_for_ops_and_sends_nothing(
    db, smtp, recipient, support_email, field
):
    email_id = _queue(db, recipient, support_email)
    with pytest.raises(MailRejected, match=field):
        outbox.deliver_email(email_id, NOW)
    row = _row(db, email_id)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error.startswith("UnsendableEmail: ") and field in row.last_error
    assert "thief" not in row.last_error
    assert smtp.messages == [] and smtp.envelopes == []


def test_a_valid_message_goes_to_its_one_recipient_only(db, smtp):
    email_id = _queue(db, "ap@customer.test")
    assert outbox.deliver_email(email_id, NOW) == "sent"
    [message] = smtp.wait_for(1)
    assert smtp.envelopes[0]["rcpt_tos"] == ["ap@customer.test"] and message["Reply-To"] == "ar@acme.test"


def test_the_factories_refuse_what_the_outbox_could_not_send(db):
    with db() as session:
        with pytest.raises(InvalidAddress, match="billing_email"):
            factories.account(session, billing_email="a@x.test, b@y.test")
        with pytest.raises(InvalidAddress, match="support_email"):
            factories.seller(session, support_email="help@seller.test\r\nBcc: thief@evil.test")
        session.rollback()
        assert session.query(Account).count() == 0


def test_the_demo_seed_refuses_an_address_the_outbox_could_not_send(db, monkeypatch):
    from sandbox import seed

    monkeypatch.setattr(
        seed, "ACCOUNTS", [("A-9", "Mallory", "ap@customer.test\r\nBcc: thief@evil.test", [])]
    )
    with db() as session:
        with pytest.raises(InvalidAddress, match="billing_email of A-9 contains a control character"):
            seed._seed(session, gateway=None)
