"""The portal's invoice list: statuses derived from the ledger as payments move."""

from datetime import UTC, date, datetime

import pytest

from tasks import api
from tasks.domain.errors import RemitError
from tasks.flows import payments as execution
from tests import factories

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)  # the shop's first two invoices (due Dec 1, 2) are overdue


def _statuses(shop):
    return {
        v.invoice_id: (v.status, v.overdue, v.owed_minor) for v in api.list_invoices(shop.account_id, now=NOW)
    }


def test_statuses_follow_payments_through_their_lives(shop, emulator):
    card = api.pay_invoices(shop.account_id, shop.invoices[:1], shop.methods["visa"], "a", now=NOW)
    ach = api.pay_invoices(shop.account_id, shop.invoices[1:2], shop.methods["ach"], "b", now=NOW)
    api.pay_invoices(
        shop.account_id, shop.invoices[2:3], shop.methods["visa"], "c", pay_on=date(2026, 12, 20), now=NOW
    )
    api.pay_invoices(
        shop.account_id,
        shop.invoices[3:4],
        shop.methods["visa"],
        "d",
        amount=5_000,
        short_reason="Other",
        comment="half now",
        now=NOW,
    )
    assert _statuses(shop)[shop.invoices[0]] == ("pending", True, 10_000)
    execution.execute_payment(card.payment_id, NOW)
    execution.execute_payment(ach.payment_id, NOW)
    statuses = _statuses(shop)
    assert statuses[shop.invoices[0]] == ("paid", False, 0)
    assert statuses[shop.invoices[1]] == ("pending", True, 11_000)  # ACH processing: not paid yet
    assert statuses[shop.invoices[2]] == ("scheduled", False, 12_000)
    assert statuses[shop.invoices[3]] == ("pending", False, 13_000)
    assert statuses[shop.invoices[4]] == ("open", False, 14_000)


def test_partially_paid_and_void_invoices(shop, emulator):
    short = api.pay_invoices(
        shop.account_id,
        shop.invoices[4:5],
        shop.methods["visa"],
        "a",
        amount=4_000,
        short_reason="Other",
        comment="rest next month",
        now=NOW,
    )
    execution.execute_payment(short.payment_id, NOW)
    with shop.db() as session:
        from db.models import Invoice

        session.get(Invoice, shop.invoices[3]).voided = True
        session.commit()
    statuses = _statuses(shop)
    assert statuses[shop.invoices[4]] == ("partially_paid", False, 10_000)
    assert statuses[shop.invoices[3]] == ("void", False, 0)


def test_a_parent_sums_its_children(db, broker):
    with db() as session:
        account = factories.account(session)
        parent = factories.invoice(session, account, total_minor=9_000, number="MS-1")
        for n in range(3):
            factories.invoice(session, account, total_minor=3_000, parent_id=parent.id, number=f"MS-1-{n}")
        method = factories.method(session, account)
        session.commit()
        account_id, parent_id, method_id = account.id, parent.id, method.id
    views = {v.number: v for v in api.list_invoices(account_id, now=NOW)}
    assert (views["MS-1"].status, views["MS-1"].owed_minor) == ("open", 9_000)
    api.pay_invoices(account_id, [parent_id], method_id, "p", now=NOW)
    views = {v.number: v for v in api.list_invoices(account_id, now=NOW)}
    assert views["MS-1"].status == "pending" and {views[f"MS-1-{n}"].status for n in range(3)} == {"pending"}


def test_unknown_account_is_refused(db):
    with pytest.raises(RemitError) as caught:
        api.list_invoices(424242)
    assert caught.value.code == "account_not_found"
