"""Every email kind renders subject, text and HTML from realistic contexts, branded and escaped."""

from datetime import UTC, date, datetime

import pytest
from jinja2 import UndefinedError

from emails import UnknownEmailKind, render
from emails.rendering import DEFAULT_BRAND_COLOR, TEMPLATES
from tasks.domain.states import EmailKind
from tests.emails import contexts
from tests.emails.contexts import HOSTILE_COMMENT, HOSTILE_NAME, METHOD_KINDS, SELLER

PAYMENT_KINDS = [kind for kind in EmailKind if kind not in METHOD_KINDS]
ESCAPED_NAME = "&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt; Fabrication &amp; Sons"
ESCAPED_SELLER = "Acme &lt;Industrial&gt; Supply"


@pytest.mark.parametrize("kind", list(EmailKind))
def test_every_kind_has_subject_text_and_html_templates(kind):
    for name in ("subject.txt", "body.txt", "body.html"):
        assert (TEMPLATES / kind / name).is_file(), f"{kind}/{name}"


@pytest.mark.parametrize("kind", list(EmailKind))
def test_every_kind_renders_branded_with_user_text_escaped_only_in_html(kind):
    rendered = render(kind, contexts.for_kind(kind))
    assert rendered.subject and "\n" not in rendered.subject and len(rendered.subject) < 120
    assert "<script>" not in rendered.html and "alert(" not in rendered.html.replace("alert(&#39;", "")
    assert ESCAPED_NAME in rendered.html and HOSTILE_NAME in rendered.text
    assert ESCAPED_SELLER in rendered.html and SELLER["name"] in rendered.text
    assert SELLER["brand_color"] in rendered.html and SELLER["logo_url"] in rendered.html
    for contact in (SELLER["support_email"], SELLER["support_phone"]):
        assert contact in rendered.text and contact in rendered.html
    assert rendered.html.lstrip().startswith("<!DOCTYPE html>") and rendered.html.rstrip().endswith("</html>")


@pytest.mark.parametrize("kind", PAYMENT_KINDS)
def test_payment_emails_show_amount_method_reference_and_comment(kind):
    context = contexts.for_kind(kind)
    rendered = render(kind, context)
    assert "$1,234.56" in rendered.subject
    for part in (rendered.text, rendered.html):
        assert "$1,234.56" in part and "ACME-1042" in part and "ending in" in part
        assert "#42" not in part  # the internal id is not the customer's reference
        # The day the money moves: a scheduled payment's date, else the day it was made.
        assert ("December 15, 2026" if context["scheduled_for"] else "November 22, 2026") in part
        if context["transaction_id"]:
            assert context["transaction_id"] in part
    assert HOSTILE_COMMENT in rendered.text


@pytest.mark.parametrize("kind", PAYMENT_KINDS)
def test_an_email_owed_before_references_existed_still_renders_with_the_payment_number(kind):
    context = contexts.for_kind(kind)
    for added in ("reference", "payment_date", "transaction_label"):
        del context[added]
    rendered = render(kind, context)
    assert "Payment reference: #42" in rendered.text
    if context["transaction_id"]:
        label = "Stripe charge ID" if context["transaction_id"].startswith("ch_") else "Stripe payment ID"
        assert f"{label}: {context['transaction_id']}" in rendered.text


def test_a_refund_email_is_headed_by_the_refund_with_its_id():
    context = contexts.for_kind("refund_issued") | {
        "refund_minor": 23456,
        "refund_id": "re_3Qrefund1",
        "refunded_minor": 23456,
    }
    rendered = render("refund_issued", context)
    assert rendered.subject == "Refund of $234.56 issued by Acme <Industrial> Supply"
    assert rendered.text.splitlines()[2] == "$234.56 refunded"
    assert "Stripe refund ID:  re_3Qrefund1" in rendered.text
    assert "$234.56 refunded</h1>" in rendered.html and "re_3Qrefund1" in rendered.html
    assert "Refunded in all" not in rendered.text  # the first refund is all there is so far


def test_a_second_refund_says_how_much_is_refunded_in_all():
    context = contexts.for_kind("refund_issued") | {
        "refund_minor": 10000,
        "refund_id": None,
        "refunded_minor": 33456,
    }
    rendered = render("refund_issued", context)
    assert "Refunded in all:   $334.56 of $1,234.56" in rendered.text
    assert "Stripe refund ID" not in rendered.text  # its refund.* event had not come yet


def test_a_reversal_email_is_headed_by_the_reversed_amount_with_the_dispute_id():
    context = contexts.for_kind("payment_reversed") | {"reversed_minor": 123456, "dispute_id": "dp_1Q"}
    rendered = render("payment_reversed", context)
    assert rendered.text.splitlines()[2] == "$1,234.56 reversed"
    assert "Stripe dispute ID: dp_1Q" in rendered.text and "dp_1Q" in rendered.html
    assert "&lt;script&gt;steal()&lt;/script&gt; short by 2 crates" in rendered.html


@pytest.mark.parametrize("kind", [k for k in PAYMENT_KINDS if k != EmailKind.DEPOSIT_RECEIVED])
def test_payment_emails_break_the_payment_down_by_invoice(kind):
    rendered = render(kind, contexts.for_kind(kind))
    assert "INV-1001 (Plant <2>): $1,000.00 (discount $20.00)" in rendered.text
    assert "INV-1002: $234.56" in rendered.text
    for shown in ("INV-1001", "Plant &lt;2&gt;", "$1,000.00", "$20.00", "INV-1002", "$234.56"):
        assert shown in rendered.html


def test_card_confirmation_names_the_transaction_for_the_records():
    rendered = render("payment_confirmation", contexts.for_kind("payment_confirmation"))
    assert "Stripe charge ID: ch_3QabcDEF123" in rendered.text
    assert "Transaction ID" not in rendered.text
    assert "Damaged goods" in rendered.text


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("ach_failed", "The customer's account has insufficient funds."),
        ("payment_failed", "Your card was declined."),
        ("bank_verification_failed", "The microdeposit amounts did not <match>."),
    ],
)
def test_failure_emails_give_the_reason(kind, reason):
    rendered = render(kind, contexts.for_kind(kind))
    assert f"Reason: {reason}" in rendered.text
    assert reason.replace("'", "&#39;").replace("<", "&lt;").replace(">", "&gt;") in rendered.html


def test_scheduled_emails_show_the_day():
    rendered = render("scheduled_confirmed", contexts.for_kind("scheduled_confirmed"))
    assert "December 15, 2026" in rendered.subject and "December 15, 2026" in rendered.html


def test_a_canceled_payment_that_was_never_scheduled_is_not_called_scheduled():
    scheduled = render("scheduled_canceled", contexts.for_kind("scheduled_canceled"))
    assert (
        "Scheduled payment of" in scheduled.subject
        and "Your scheduled payment was canceled" in scheduled.text
    )
    awaiting_authentication = render(
        "scheduled_canceled", {**contexts.for_kind("scheduled_canceled"), "scheduled_for": None}
    )
    assert awaiting_authentication.subject.startswith("Payment of")
    assert "scheduled" not in (awaiting_authentication.subject + awaiting_authentication.text).lower()
    assert "Your payment was canceled" in awaiting_authentication.html


def test_deposit_note_is_shown_escaped():
    rendered = render("deposit_received", contexts.for_kind("deposit_received"))
    assert "Note: <b>Deposit</b> for the spring order" in rendered.text
    assert "&lt;b&gt;Deposit&lt;/b&gt; for the spring order" in rendered.html


def test_refund_email_shows_the_refunded_amount_when_the_writer_gives_it():
    context = contexts.payment_context(status="partially_refunded", refunded_minor=50000)
    assert "$500.00 of your payment of $1,234.56 has been refunded" in render("refund_issued", context).text
    full = render("refund_issued", contexts.payment_context(status="refunded")).text
    assert "has been refunded in full" in full


def reversed_lines(reversed_minor: tuple[int, int]) -> list[dict]:
    lines = contexts.payment_context()["invoices"]
    return [{**line, "reversed_minor": amount} for line, amount in zip(lines, reversed_minor)]


def test_refund_email_says_per_invoice_what_was_refunded_and_other_emails_do_not():
    context = contexts.payment_context(
        status="partially_refunded", refunded_minor=33456, invoices=reversed_lines((10000, 23456))
    )
    rendered = render("refund_issued", context)
    assert "- INV-1001 (Plant <2>): $1,000.00 (discount $20.00), $100.00 refunded" in rendered.text
    assert "- INV-1002: $234.56, $234.56 refunded" in rendered.text
    assert "$100.00 refunded</span>" in rendered.html and "$234.56 refunded</span>" in rendered.html
    reversed_email = render(
        "payment_reversed",
        contexts.payment_context(status="disputed", invoices=reversed_lines((100000, 23456))),
    )
    assert "refunded" not in reversed_email.text and "refunded" not in reversed_email.html


def test_dispute_won_email_says_the_payment_stands_and_what_became_credit():
    context = contexts.payment_context(status="succeeded", invoices=reversed_lines((0, 4000)))
    rendered = render("dispute_won", context)
    assert "resolved in favour of Acme <Industrial> Supply" in rendered.text
    assert "- INV-1002: $234.56, $40.00 kept as credit" in rendered.text
    assert "$40.00 kept as credit</span>" in rendered.html and "refunded" not in rendered.text


def test_bank_verification_needed_explains_the_descriptor_code():
    context = contexts.method_context(arrival_date=None, microdeposit_type="descriptor_code")
    rendered = render("bank_verification_needed", context)
    assert "6-character code starting with SM" in rendered.text and "arrive by" not in rendered.text


def test_zero_decimal_currencies_have_no_cents():
    context = contexts.payment_context(
        currency="jpy",
        amount_minor=1235,
        invoices=[{"number": "INV-9", "site_name": None, "amount_minor": 1235, "discount_minor": 0}],
    )
    rendered = render("payment_confirmation", context)
    assert "¥1,235" in rendered.subject and "INV-9: ¥1,235" in rendered.text


def test_a_logo_or_colour_that_could_inject_is_replaced():
    seller = {**SELLER, "logo_url": "javascript:alert(1)", "brand_color": "red;background:url(x)"}
    rendered = render("bank_verified", contexts.method_context(seller=seller))
    assert "javascript:" not in rendered.html and "url(x)" not in rendered.html
    assert DEFAULT_BRAND_COLOR in rendered.html and ESCAPED_SELLER in rendered.html


def test_a_seller_without_logo_or_contacts_still_renders():
    seller = {**SELLER, "logo_url": None, "support_email": None, "support_phone": None}
    rendered = render("payment_confirmation", contexts.payment_context(seller=seller))
    assert "Questions?" not in rendered.text and "<img" not in rendered.html


def test_a_missing_context_value_raises_instead_of_rendering_blank():
    context = contexts.payment_context()
    del context["amount_minor"]
    with pytest.raises(UndefinedError):
        render("payment_confirmation", context)


@pytest.mark.parametrize("kind", ["no_such_kind", "../etc", "_layout.html", ""])
def test_an_unknown_kind_is_refused(kind):
    with pytest.raises(UnknownEmailKind):
        render(kind, contexts.payment_context())


@pytest.mark.parametrize(
    "value, shown",
    [
        (date(2026, 12, 1), "December 1, 2026"),
        ("2026-12-01", "December 1, 2026"),
        ("2026-11-22T18:00:00+00:00", "November 22, 2026"),
        (datetime(2026, 11, 22, 23, 59, tzinfo=UTC), "November 22, 2026"),
        (1_795_000_000, "November 18, 2026"),
        (None, ""),
    ],
)
def test_date_filter_reads_every_shape_writers_use(value, shown):
    from emails.rendering import long_date

    assert long_date(value) == shown


def test_a_payment_partly_paid_from_credit_says_so_and_lists_what_changed_since_approval():
    change = "Invoice INV-1001 now owes 500: paid 500 instead of 1000 <b>."
    context = contexts.payment_context(amount_minor=23_456, credit_used_minor=100_000, changes=[change])
    rendered = render(EmailKind.PAYMENT_CONFIRMATION, context)
    assert "Paid from credit:  $1,000.00" in rendered.text and "Total: $1,234.56" in rendered.text
    assert "Changed since you approved this payment:\n- " + change in rendered.text
    assert 'Paid from credit</td><td style="padding:4px 0;">$1,000.00' in rendered.html
    assert "paid 500 instead of 1000 &lt;b&gt;." in rendered.html


def test_a_payment_credit_paid_in_full_names_no_card():
    method = {"kind": None, "brand": None, "bank_name": None, "last4": None}
    context = contexts.payment_context(amount_minor=0, credit_used_minor=123_456, method=method)
    rendered = render(EmailKind.PAYMENT_CONFIRMATION, context)
    assert "payment of $1,234.56 by account credit" in rendered.text and "ending in" not in rendered.text
    assert rendered.subject.startswith("Payment received: $1,234.56")
