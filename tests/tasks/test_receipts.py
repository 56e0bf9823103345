"""render_receipt: the confirmation email's facts as a printable HTML page and a real PDF."""

import io
from datetime import UTC, datetime

import pytest
from pypdf import PdfReader

from db.models import Invoice, Payment, Seller
from tasks import api
from tasks.domain.attempts import Answered
from tasks.domain.errors import RemitError
from tasks.domain.states import PaymentStatus as P
from tasks.flows import payments as execution

NOW = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)


@pytest.fixture()
def paid(shop, emulator):
    """A card payment of two invoices, one with an early-payment discount, executed at the emulator."""
    with shop.db() as session:
        seller = session.get(Seller, shop.seller.id)
        seller.name, seller.reference_prefix, seller.support_phone = (
            "Acme <Industrial> Supply",
            "ACME",
            "+1 312 555 0100",
        )
        first = session.get(Invoice, shop.invoices[0])
        first.discount_minor, first.discount_until, first.site_name = 200, shop.today, "Plant 2"
        session.commit()
    receipt = api.pay_invoices(shop.account_id, shop.invoices[:2], shop.methods["visa"], "k1", now=shop.now)
    assert execution.execute_payment(receipt.payment_id, shop.now) == Answered(P.SUCCEEDED)
    with shop.db() as session:
        payment = session.get(Payment, receipt.payment_id)
        numbers = [session.get(Invoice, i).number for i in shop.invoices[:2]]
        made = payment.created_at.astimezone(UTC).date()  # the shop's seller keeps UTC days
        return receipt, payment.stripe_charge_id, numbers + [f"{made:%B} {made.day}, {made.year}"]


def test_the_html_receipt_shows_the_confirmation_facts_branded_and_escaped(shop, paid):
    receipt, charge_id, numbers = paid
    html = api.render_receipt(shop.account_id, receipt.payment_id, now=NOW)
    assert html.lstrip().startswith("<!DOCTYPE html>")
    for fact in (
        "ACME-1",
        f"Payment date</td><td>{numbers[2]}<",
        "Issued November 22, 2026",
        "$208.00",  # 10,000 less its 200 discount, and 11,000
        "Visa ending in 4242",
        charge_id,
        "Stripe charge ID",
        numbers[0],
        "Plant 2",
        "$2.00",
        numbers[1],
        "Paid",
        "#0a7d45",
    ):
        assert fact in html, fact
    assert "Acme &lt;Industrial&gt; Supply" in html and "<Industrial>" not in html


def test_the_pdf_receipt_is_a_real_pdf_holding_the_same_facts(shop, paid):
    receipt, charge_id, numbers = paid
    pdf = api.render_receipt(shop.account_id, receipt.payment_id, fmt="pdf", now=NOW)
    assert isinstance(pdf, bytes) and pdf.startswith(b"%PDF-")
    document = PdfReader(io.BytesIO(pdf))
    assert len(document.pages) == 1
    text = document.pages[0].extract_text()
    # The page footer is CSS content: the seller's name escaped for CSS, shown as written.
    assert "Acme <Industrial> Supply · receipt ACME-1 · page 1 of 1" in text
    for fact in (
        "Payment receipt",
        "ACME-1",
        f"Payment date {numbers[2]}",
        "Issued November 22, 2026",
        "$208.00",
        charge_id,
        *numbers,
        "Acme <Industrial> Supply",
    ):
        assert fact in text, fact


def test_a_deposit_receipt_shows_the_credit_it_created(shop):
    receipt = api.make_deposit(shop.account_id, 5_000, shop.methods["visa"], "dep-1", note="spring order")
    html = api.render_receipt(shop.account_id, receipt.payment_id)
    assert "Credit on account (unapplied)" in html and "$50.00" in html and "spring order" in html


def test_another_accounts_payment_and_bad_input_are_refused_and_name_what_is_wrong(shop, paid, db):
    receipt, _, _ = paid
    from tests import factories

    with db() as session:
        other = factories.account(session, session.get(Seller, shop.seller.id)).id
        session.commit()
    cases = [
        ((other, receipt.payment_id), {}, "payment_not_found"),
        ((shop.account_id, receipt.payment_id + 1000), {}, "payment_not_found"),
        ((shop.account_id, receipt.payment_id), {"fmt": "docx"}, "invalid_format"),
        ((shop.account_id, "1"), {}, "payment_not_found"),
        ((True, receipt.payment_id), {}, "account_not_found"),
    ]
    for args, kwargs, code in cases:
        with pytest.raises(RemitError) as caught:
            api.render_receipt(*args, **kwargs)
        assert caught.value.code == code, (args, kwargs)
