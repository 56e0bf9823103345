"""Issue 12, item 6: an amount covering an invoice's discounted total takes the discount; pay_amount too."""

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from db.models import Account, Allocation, Seller
from tasks import api
from tasks.domain.errors import RemitError
from tests import factories

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture()
def world(db, broker):
    """Two invoices: 10,000 with a 200 discount until 30 November (due first), then 5,000 without."""
    with db() as session:
        seller = factories.seller(session, timezone="UTC")
        account = factories.account(session, seller)
        w = type("World", (), {})()
        w.db, w.account_id, w.seller_id = db, account.id, seller.id
        w.card = factories.method(session, account).id
        w.discounted = factories.invoice(
            session,
            account,
            10_000,
            discount_minor=200,
            discount_until=date(2026, 11, 30),
            due_on=date(2026, 12, 1),
        ).id
        w.plain = factories.invoice(session, account, 5_000, due_on=date(2026, 12, 5)).id
        session.commit()
    return w


def _lines(receipt_or_preview):
    return [(l.invoice_id, l.amount_minor, l.discount_minor) for l in receipt_or_preview.lines]


def test_pay_amount_takes_the_discount_on_an_invoice_it_pays_in_full_within_the_window(world):
    receipt = api.pay_amount(world.account_id, 9_800, world.card, "k1", now=NOW)
    assert _lines(receipt) == [(world.discounted, 9_800, 200)]
    with world.db() as session:
        [allocation] = session.scalars(select(Allocation))
        assert (allocation.amount_minor, allocation.discount_minor) == (9_800, 200)


def test_pay_amount_sends_what_is_left_after_a_discounted_invoice_to_the_next_one_then_to_credit(world):
    receipt = api.pay_amount(world.account_id, 15_000, world.card, "k1", now=NOW)
    assert _lines(receipt) == [(world.discounted, 9_800, 200), (world.plain, 5_000, 0)]
    assert receipt.credit_minor == 200


def test_the_preview_of_an_amount_shows_the_discount_and_warns_where_one_is_forfeited(world):
    taken = api.preview_payment(world.account_id, amount=9_900, now=NOW)
    assert _lines(taken) == [(world.discounted, 9_800, 200), (world.plain, 100, 0)]
    assert taken.warnings == ()
    forfeited = api.preview_payment(world.account_id, amount=9_000, now=NOW)
    assert _lines(forfeited) == [(world.discounted, 9_000, 0)]
    [warning] = forfeited.warnings
    assert "forfeits its early-payment discount of 200" in warning


def test_a_scheduled_amount_after_the_window_takes_no_discount_and_the_preview_says_so(world):
    preview = api.preview_payment(world.account_id, amount=10_000, pay_on=date(2026, 12, 2), now=NOW)
    assert _lines(preview) == [(world.discounted, 10_000, 0)]
    assert "ended on 2026-11-30" in preview.warnings[0]


def test_pay_invoices_with_an_amount_above_the_discounted_total_is_not_short_and_keeps_the_discount(world):
    receipt = api.pay_invoices(world.account_id, [world.discounted], world.card, "k1", amount=9_900, now=NOW)
    assert _lines(receipt) == [(world.discounted, 9_800, 200)]
    assert receipt.credit_minor == 100


def test_pay_invoices_above_the_discounted_total_is_refused_where_no_credit_can_be_kept(world):
    with world.db() as session:
        session.get(Seller, world.seller_id).deposits_enabled = False
        session.commit()
    with pytest.raises(RemitError) as refused:
        api.pay_invoices(world.account_id, [world.discounted], world.card, "k1", amount=9_900, now=NOW)
    assert refused.value.code == "amount_above_discounted_total"
    assert "pay 9800" in refused.value.message
    with world.db() as session:
        assert session.scalars(select(Allocation)).all() == []
        assert session.get(Account, world.account_id).balance_stale_since is None
