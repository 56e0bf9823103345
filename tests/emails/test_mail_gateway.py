"""The SMTP gateway: URLs, login, the message it builds, and how SMTP answers are translated."""

import dataclasses
import smtplib
import threading
import time

import pytest

from sandbox.smtp_capture import SmtpCapture
from tasks.domain.errors import TransientError
from tasks.gateways import mail
from tasks.gateways.mail import (
    MailGateway,
    MailMisconfigured,
    MailRejected,
    MailUnavailable,
    Outgoing,
    UnsendableEmail,
)

OUTGOING = Outgoing(
    email_id=7,
    recipient="ap@customer.test",
    subject="Payment received",
    text="Thanks\n",
    html="<p>Thanks</p>\n",
    dedupe_key="payment_confirmation:payment:7",
)


def test_message_is_multipart_alternative_with_our_headers():
    message = MailGateway("smtp://127.0.0.1:1025", "Payments <payments@remit.test>").compose(OUTGOING)
    assert message["Message-ID"] == "<remit-email-7@remit.test>"
    assert message["X-Remit-Dedupe-Key"] == "payment_confirmation:payment:7"
    assert message["Reply-To"] is None and message["Date"]
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]


def test_credentials_in_the_url_are_used_to_log_in():
    with SmtpCapture(port=0) as capture:
        url = capture.url.replace("smtp://", "smtp://mailer%40remit.test:s3cr%2Ft@")
        assert MailGateway(url, "payments@remit.test").send(OUTGOING) == "<remit-email-7@remit.test>"
        assert len(capture.wait_for(1)) == 1


@pytest.mark.parametrize("url", ["http://mail.test", "smtp://", "smtps:///nohost"])
def test_an_unusable_url_is_a_misconfiguration(url):
    with pytest.raises(MailMisconfigured):
        MailGateway(url, "payments@remit.test")


def test_a_sender_without_a_domain_is_a_misconfiguration():
    with pytest.raises(MailMisconfigured):
        MailGateway("smtp://127.0.0.1:1025", "Payments")


@pytest.mark.parametrize("scheme, port", [("smtp", 25), ("smtp+starttls", 587), ("smtps", 465)])
def test_each_scheme_has_its_usual_port(scheme, port):
    assert MailGateway(f"{scheme}://mail.test", "p@remit.test")._port == port


class ScriptedSMTP:
    """Stands in for smtplib.SMTP and raises one scripted error from send_message."""

    error: Exception = OSError("unset")

    def __init__(self, *args, **kwargs):
        self.closed = False

    def send_message(self, message, from_addr=None, to_addrs=None):
        raise self.error

    def quit(self):
        raise smtplib.SMTPServerDisconnected("gone")

    def close(self):
        self.closed = True


@pytest.mark.parametrize(
    "error, translated",
    [
        (smtplib.SMTPRecipientsRefused({"ap@customer.test": (550, b"no such user")}), MailRejected),
        (smtplib.SMTPRecipientsRefused({"ap@customer.test": (452, b"mailbox full")}), MailUnavailable),
        (smtplib.SMTPDataError(554, b"message refused as spam"), MailRejected),
        (smtplib.SMTPDataError(421, b"closing"), MailUnavailable),
        (smtplib.SMTPSenderRefused(553, b"not allowed", "payments@remit.test"), MailMisconfigured),
        (smtplib.SMTPAuthenticationError(535, b"bad credentials"), MailMisconfigured),
        (smtplib.SMTPAuthenticationError(454, b"try later"), MailUnavailable),
        (smtplib.SMTPServerDisconnected("lost"), MailUnavailable),
        (TimeoutError("timed out"), MailUnavailable),
        (ConnectionRefusedError(111, "refused"), MailUnavailable),
    ],
)
def test_smtp_answers_are_translated_to_ours(monkeypatch, error, translated):
    ScriptedSMTP.error = error
    monkeypatch.setattr(mail.smtplib, "SMTP", ScriptedSMTP)
    with pytest.raises(translated):
        MailGateway("smtp://mail.test", "p@remit.test").send(OUTGOING)


def test_only_unavailability_is_transient():
    assert issubclass(MailUnavailable, TransientError)
    assert not issubclass(MailRejected, TransientError) and not issubclass(MailMisconfigured, TransientError)


@pytest.mark.parametrize(
    ("from_name", "from_address", "domains", "expected"),
    [
        # no seller From: MAIL_FROM as configured
        (None, None, frozenset(), "Payments <payments@remit.test>"),
        # the seller's name at our address
        ("Acme Supply", None, frozenset(), "Acme Supply <payments@remit.test>"),
        # its own address at an allowed domain (compared ignoring case)
        ("Acme Supply", "ar@Acme.test", frozenset({"acme.test"}), "Acme Supply <ar@acme.test>"),
        # a domain we may not send for: our address, its name
        ("Acme Supply", "ar@acme.test", frozenset({"other.test"}), "Acme Supply <payments@remit.test>"),
    ],
)
def test_the_from_header_is_the_sellers_where_allowed(from_name, from_address, domains, expected):
    gateway = MailGateway("smtp://127.0.0.1:1025", "Payments <payments@remit.test>", seller_domains=domains)
    outgoing = dataclasses.replace(OUTGOING, from_name=from_name, from_address=from_address)
    assert gateway.compose(outgoing)["From"] == expected


@pytest.mark.parametrize(
    ("from_name", "from_address"), [("Acme\r\nBcc: x@evil.test", None), ("Acme", "a@b.test, c@d.test")]
)
def test_a_from_that_is_not_one_name_and_one_address_is_unsendable(from_name, from_address):
    gateway = MailGateway(
        "smtp://127.0.0.1:1025", "payments@remit.test", seller_domains=frozenset({"b.test"})
    )
    with pytest.raises(UnsendableEmail):
        gateway.compose(dataclasses.replace(OUTGOING, from_name=from_name, from_address=from_address))


@pytest.fixture
def fresh_connections():
    """No connection kept from another test; none left for the next."""
    mail.close_kept_connections()
    yield
    mail.close_kept_connections()


def _numbered(email_id: int) -> Outgoing:
    return dataclasses.replace(OUTGOING, email_id=email_id)


def test_a_thread_sends_its_messages_over_one_kept_connection(fresh_connections):
    with SmtpCapture(port=0) as capture:
        gateway = MailGateway(capture.url, "payments@remit.test")
        sent = [gateway.send(_numbered(n)) for n in range(1, 4)]
        # A new gateway (one is built per email) reuses the thread's connection to the same server.
        sent.append(MailGateway(capture.url, "payments@remit.test").send(_numbered(4)))
        messages = capture.wait_for(4)
        assert sent == [f"<remit-email-{n}@remit.test>" for n in range(1, 5)]
        assert [m["Message-ID"] for m in messages] == sent
        assert len({e["peer"] for e in capture.envelopes}) == 1
        assert mail.close_kept_connections() == 1


def test_each_thread_keeps_its_own_connection(fresh_connections):
    with SmtpCapture(port=0) as capture:
        gateway = MailGateway(capture.url, "payments@remit.test")

        def send_two(first: int) -> None:
            try:
                gateway.send(_numbered(first))
                gateway.send(_numbered(first + 1))
            finally:
                mail.close_kept_connections()

        threads = [threading.Thread(target=send_two, args=(n,)) for n in (1, 3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        capture.wait_for(4)
        peers = [e["peer"] for e in capture.envelopes]
        assert len(set(peers)) == 2 and all(peers.count(peer) == 2 for peer in peers)


def test_a_kept_connection_the_server_closed_is_replaced_before_the_message(fresh_connections):
    first = SmtpCapture(port=0).start()
    port = first.port
    gateway = MailGateway(first.url, "payments@remit.test")
    gateway.send(_numbered(1))
    first.stop()  # the server goes away while the connection is kept
    with SmtpCapture(port=port) as second:
        assert gateway.send(_numbered(2)) == "<remit-email-2@remit.test>"
        assert [m["Message-ID"] for m in second.wait_for(1)] == ["<remit-email-2@remit.test>"]
    assert [m["Message-ID"] for m in first.messages] == ["<remit-email-1@remit.test>"]


def test_a_connection_idle_too_long_or_full_is_not_reused(fresh_connections, monkeypatch):
    with SmtpCapture(port=0) as capture:
        gateway = MailGateway(capture.url, "payments@remit.test")
        monkeypatch.setattr(mail, "KEEP_IDLE_SECONDS", 0.0)
        gateway.send(_numbered(1))
        time.sleep(0.01)
        gateway.send(_numbered(2))  # idle past the limit: a new connection
        monkeypatch.setattr(mail, "KEEP_IDLE_SECONDS", 60.0)
        monkeypatch.setattr(mail, "KEEP_MESSAGES", 2)
        gateway.send(_numbered(3))  # the second message on that connection: it says goodbye after
        gateway.send(_numbered(4))
        capture.wait_for(4)
        peers = [e["peer"] for e in capture.envelopes]
        assert peers[1] == peers[2] and len({peers[0], peers[1], peers[3]}) == 3


class RefusingSMTP(ScriptedSMTP):
    """Connects, accepts RSET and refuses every message for good."""

    made: list["RefusingSMTP"] = []

    def __init__(self, *args, **kwargs):
        super().__init__()
        RefusingSMTP.made.append(self)

    def rset(self):
        return 250, b"OK"


def test_a_connection_that_failed_a_message_is_closed_not_kept(fresh_connections, monkeypatch):
    RefusingSMTP.made = []
    RefusingSMTP.error = smtplib.SMTPDataError(554, b"message refused as spam")
    monkeypatch.setattr(mail.smtplib, "SMTP", RefusingSMTP)
    gateway = MailGateway("smtp://mail.test", "p@remit.test")
    for n in (1, 2):
        with pytest.raises(MailRejected):
            gateway.send(_numbered(n))
    assert len(RefusingSMTP.made) == 2 and all(smtp.closed for smtp in RefusingSMTP.made)
    assert mail.close_kept_connections() == 0
