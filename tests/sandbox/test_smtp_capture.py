"""The SMTP capture server keeps what real smtplib clients send."""

import smtplib
from email.message import EmailMessage

import pytest

from sandbox.smtp_capture import SmtpCapture


@pytest.fixture
def capture(tmp_path):
    with SmtpCapture(maildir=tmp_path / "mail") as server:
        yield server


def _send(capture: SmtpCapture, message: EmailMessage, login: bool = False) -> None:
    with smtplib.SMTP(capture.host, capture.port, timeout=10) as client:
        if login:
            client.login("apikey", "any-secret")
        client.send_message(message)


def _receipt(to: str, subject: str, html: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "billing@remit.example"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(f"{subject}: $12.34")
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def test_port_zero_picks_a_free_port_and_reports_it_in_the_url(capture):
    assert capture.port > 0
    assert capture.url == f"smtp://127.0.0.1:{capture.port}"


def test_two_messages_arrive_parsed_in_order_with_their_envelopes(capture):
    _send(capture, _receipt("ap@acme.example", "Payment received"))
    _send(capture, _receipt("cfo@acme.example", "Receipt", html="<p>Receipt: <b>$12.34</b></p>"))

    first, second = capture.wait_for(2)

    assert [first["Subject"], second["Subject"]] == ["Payment received", "Receipt"]
    assert [e["rcpt_tos"] for e in capture.envelopes] == [["ap@acme.example"], ["cfo@acme.example"]]
    assert capture.envelopes[0]["mail_from"] == "billing@remit.example"
    assert b"Subject: Receipt" in capture.envelopes[1]["data"]
    assert not first.is_multipart()
    assert second.get_content_type() == "multipart/alternative"
    assert second.get_body(("plain",)).get_content().strip() == "Receipt: $12.34"
    assert "<b>$12.34</b>" in second.get_body(("html",)).get_content()


def test_each_message_is_written_to_the_maildir_as_an_eml_file(capture, tmp_path):
    _send(capture, _receipt("ap@acme.example", "One"))
    _send(capture, _receipt("ap@acme.example", "Two"))
    capture.wait_for(2)

    files = sorted((tmp_path / "mail").glob("*.eml"))

    assert [f.read_bytes() for f in files] == [e["data"] for e in capture.envelopes]


def test_any_credentials_are_accepted_without_tls(capture):
    _send(capture, _receipt("ap@acme.example", "Authenticated"), login=True)

    assert capture.wait_for(1)[0]["Subject"] == "Authenticated"


def test_wait_for_names_how_many_arrived_when_it_times_out(capture):
    _send(capture, _receipt("ap@acme.example", "Only one"))

    with pytest.raises(TimeoutError, match=r"expected 2 message\(s\) .* got 1"):
        capture.wait_for(2, timeout=0.2)


def test_clear_forgets_captured_messages(capture):
    _send(capture, _receipt("ap@acme.example", "Old"))
    capture.wait_for(1)

    capture.clear()
    _send(capture, _receipt("ap@acme.example", "New"))

    assert [m["Subject"] for m in capture.wait_for(1)] == ["New"]
    assert len(capture.envelopes) == 1


def test_messages_stay_readable_and_port_closes_after_stop(tmp_path):
    capture = SmtpCapture().start()
    _send(capture, _receipt("ap@acme.example", "Before stop"))
    capture.wait_for(1)

    capture.stop()

    assert capture.messages[0]["Subject"] == "Before stop"
    with pytest.raises(OSError):
        smtplib.SMTP(capture.host, capture.port, timeout=2)


def test_a_new_connection_parses_nothing(capture, monkeypatch):
    """aiosmtpd lists its handler's members at every connection: a bench's sink must not parse (or copy)
    every message kept so far each time a client connects."""
    parsed = []
    keep_parsing = SmtpCapture._parsed
    monkeypatch.setattr(SmtpCapture, "_parsed", lambda self: parsed.append(1) or keep_parsing(self))

    for n in range(3):
        _send(capture, _receipt(f"ap{n}@acme.example", f"Receipt {n}"))

    assert parsed == []
    assert [m["Subject"] for m in capture.messages] == ["Receipt 0", "Receipt 1", "Receipt 2"]
    assert parsed == [1]
