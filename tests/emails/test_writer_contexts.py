"""The contexts the real writers store (ledger and webhook handlers) render for every kind they write."""

from datetime import UTC, date, datetime

import pytest

from db.models import Email
from db.queries import emails as email_rows
from emails import render
from tasks.domain.states import EmailKind
from tasks.flows.ledger import payment_email_context
from tasks.handlers.common import queue_method_email
from tests import factories
from tests.emails.contexts import HOSTILE_NAME, METHOD_KINDS

NOW = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
# Extras exactly as tasks/handlers/setup_intents.py passes them.
METHOD_EXTRAS = {
    EmailKind.BANK_VERIFIED: None,
    EmailKind.BANK_VERIFICATION_FAILED: {"failure_message": "The account <could> not be verified."},
    EmailKind.BANK_VERIFICATION_NEEDED: {"arrival_date": 1_795_000_000, "microdeposit_type": "amounts"},
}


def _stored(session, email_id):
    session.expire_all()
    return session.get(Email, email_id).context


@pytest.mark.parametrize("kind", [k for k in EmailKind if k not in METHOD_KINDS])
def test_payment_email_context_from_the_ledger_renders(db, kind):
    with db() as session:
        seller = factories.seller(session, name="O'Brien <Supply>", logo_url="https://cdn.test/l.png")
        account = factories.account(session, seller, name=HOSTILE_NAME)
        method = factories.method(
            session, account, kind="us_bank_account" if kind.startswith("ach") else "card"
        )
        invoices = [
            factories.invoice(session, account, total_minor=50_000, site_name="North <yard>"),
            factories.invoice(session, account, total_minor=73_456),
        ]
        payment = factories.payment(
            session,
            account,
            method,
            amount_minor=122_456,
            status="succeeded",
            stripe_charge_id="ch_writer_1",
            short_reason="Damaged goods",
            scheduled_for=date(2026, 12, 15),
            failure_message="Declined <by bank>",
        )
        factories.allocation(session, payment, invoices[0], amount_minor=49_000, discount_minor=1_000)
        factories.allocation(session, payment, invoices[1])
        number = invoices[0].number
        context = payment_email_context(
            payment,
            account,
            method,
            seller,
            email_rows.list_email_lines_of(session, [payment.id])[payment.id],
        )
        stored_id = factories._add(
            session,
            Email(
                kind=kind,
                recipient=account.billing_email,
                context=context,
                dedupe_key=f"test:{kind}",
                seller_id=seller.id,
            ),
        ).id
        rendered = render(kind, _stored(session, stored_id))
        session.rollback()
    assert "$1,224.56" in rendered.text and "$1,224.56" in rendered.html
    assert "ch_writer_1" in rendered.text and number in rendered.html
    assert "North &lt;yard&gt;" in rendered.html and "$10.00" in rendered.html
    assert "O&#39;Brien &lt;Supply&gt;" in rendered.html and "<script>" not in rendered.html


@pytest.mark.parametrize("kind", sorted(METHOD_KINDS))
def test_method_email_context_from_the_webhook_handlers_renders(db, kind):
    with db() as session:
        seller = factories.seller(session, name="O'Brien <Supply>")
        account = factories.account(session, seller, name=HOSTILE_NAME)
        method = factories.method(session, account, kind="us_bank_account", status="verification_pending")
        email_id = queue_method_email(session, method, kind, NOW, METHOD_EXTRAS[kind])
        rendered = render(kind, _stored(session, email_id))
        session.rollback()
    assert "STRIPE TEST BANK account ending in 6789" in rendered.text
    assert "&lt;script&gt;" in rendered.html and "<script>" not in rendered.html
