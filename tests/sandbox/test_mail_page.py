"""The captured mail pages: an index of what the SMTP capture wrote, each message rendered, nothing else."""

import urllib.error
import urllib.request

import pytest

from sandbox.mail_page import MailPage
from sandbox.smtp_capture import SmtpCapture
from tasks.gateways.mail import MailGateway, Outgoing


@pytest.fixture()
def mail(tmp_path):
    maildir = tmp_path / "mail"
    with SmtpCapture(maildir=maildir) as capture:
        gateway = MailGateway(capture.url, "Payments <payments@remit.test>")
        for n, subject in enumerate(["Payment received", "Payment failed <b>"], start=1):
            gateway.send(
                Outgoing(
                    email_id=n,
                    recipient=f"ap{n}@customer.test",
                    subject=subject,
                    text=f"Plain text {n}",
                    html=f"<p>Rendered <script>alert({n})</script>html {n}</p>",
                    dedupe_key=f"k{n}",
                )
            )
        capture.wait_for(2)
    page = MailPage(maildir).start()
    yield page, maildir
    page.stop()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_index_lists_every_captured_message_newest_first_with_links(mail):
    page, maildir = mail
    status, body = get(page.url + "/")
    assert status == 200 and "Captured mail (2)" in body
    assert body.index("Payment failed &lt;b&gt;") < body.index("Payment received")
    assert "ap1@customer.test" in body and "<b>" not in body
    for path in maildir.glob("*.eml"):
        assert f'href="/messages/{path.name}"' in body


def test_a_message_page_renders_its_html_sandboxed_and_its_text(mail):
    page, maildir = mail
    first = sorted(maildir.glob("*.eml"))[0]
    status, body = get(f"{page.url}/messages/{first.name}")
    assert status == 200
    assert '<iframe sandbox srcdoc="&lt;p&gt;Rendered &lt;script&gt;alert(1)' in body
    assert "<pre>Plain text 1" in body and "Payment received" in body
    assert "<script>" not in body


@pytest.mark.parametrize(
    "path", ["/messages/../../etc/passwd", "/messages/nope.eml", "/etc/passwd", "/messages/"]
)
def test_nothing_but_captured_messages_is_served(mail, path):
    page, _ = mail
    status, body = get(page.url + path)
    assert status == 404 and "No such message" in body
