"""Customer-facing payment references: the seller's prefix and its next number, given with the payment."""

import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from db.models import Payment, Seller
from tasks import api
from tasks.domain.errors import RemitError
from tests import factories


@pytest.fixture()
def two_sellers(db):
    with db() as session:
        first = factories.seller(session, slug="acme-supply")
        second = factories.seller(session, slug="bolt-co", reference_prefix="BOLT")
        rows = {}
        for name, seller in (("a1", first), ("a2", first), ("b1", second)):
            account = factories.account(session, seller)
            method = factories.method(session, account)
            invoices = [factories.invoice(session, account, 5_000).id for _ in range(3)]
            rows[name] = (account.id, method.id, invoices)
        session.commit()
    return rows


def _pay(rows, name, n, key):
    account_id, method_id, invoices = rows[name]
    return api.pay_invoices(account_id, [invoices[n]], method_id, key)


def test_each_seller_numbers_its_own_payments_from_one(two_sellers):
    assert _pay(two_sellers, "a1", 0, "k1").reference == "ACMESUPP-1"
    assert _pay(two_sellers, "b1", 0, "k1").reference == "BOLT-1"
    assert _pay(two_sellers, "a2", 0, "k1").reference == "ACMESUPP-2"
    assert _pay(two_sellers, "a1", 1, "k2").reference == "ACMESUPP-3"


def test_a_replayed_request_keeps_its_reference_and_takes_no_number(two_sellers):
    first = _pay(two_sellers, "a1", 0, "k1")
    assert _pay(two_sellers, "a1", 0, "k1").reference == first.reference == "ACMESUPP-1"
    assert _pay(two_sellers, "a1", 1, "k2").reference == "ACMESUPP-2"


def test_a_refused_request_gives_its_number_back(two_sellers, db):
    _pay(two_sellers, "a1", 0, "k1")
    with pytest.raises(RemitError):
        _pay(two_sellers, "a1", 0, "k2")  # the invoice is already held by the first payment
    with db() as session:
        taken = session.scalar(select(Seller.last_payment_number).where(Seller.slug == "acme-supply"))
    assert taken == 1
    assert _pay(two_sellers, "a2", 0, "k1").reference == "ACMESUPP-2"


def test_concurrent_payments_of_one_seller_take_distinct_consecutive_numbers(two_sellers):
    references, errors = [], []

    def pay(name, n):
        try:
            references.append(_pay(two_sellers, name, n, f"k-{name}-{n}").reference)
        except Exception as error:  # noqa: BLE001  (collected and asserted below)
            errors.append(error)

    threads = [threading.Thread(target=pay, args=(name, n)) for name in ("a1", "a2") for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(references) == sorted(f"ACMESUPP-{n}" for n in range(1, 7))


def test_the_database_refuses_a_second_payment_with_a_sellers_reference(two_sellers, db):
    _pay(two_sellers, "a1", 0, "k1")
    with db() as session:
        payment = session.scalars(select(Payment)).one()
        with pytest.raises(IntegrityError, match="uq_payments_seller_reference"):
            session.execute(
                text(
                    "INSERT INTO payments (account_id, seller_id, reference, kind, amount_minor, currency,"
                    " payment_method_id, status, idempotency_key, request_hash, attempt, refunded_minor,"
                    " needs_review) SELECT account_id, seller_id, reference, kind, amount_minor, currency,"
                    " payment_method_id, 'failed', 'other', request_hash, 0, 0, false FROM payments"
                    " WHERE id = :id"
                ),
                {"id": payment.id},
            )


def test_history_shows_finds_and_exports_the_reference(two_sellers):
    _pay(two_sellers, "a1", 0, "k1")
    second = _pay(two_sellers, "a1", 1, "k2")
    account_id = two_sellers["a1"][0]
    page = api.list_payments(account_id, search="acmesupp-2")
    assert [(p.payment_id, p.reference) for p in page.items] == [(second.payment_id, "ACMESUPP-2")]
    lines = list(api.export_payments_csv(account_id))
    assert lines[0].startswith("payment_id,reference,")
    assert [line.split(",")[1] for line in lines[1:]] == ["ACMESUPP-2", "ACMESUPP-1"]


def test_the_erp_export_ends_each_line_with_the_reference(two_sellers, db):
    receipt = _pay(two_sellers, "b1", 0, "k1")
    with db() as session:
        payment = session.get(Payment, receipt.payment_id)
        seller_id, day = payment.seller_id, payment.created_at.date()
    one_day = timedelta(days=1)  # the seller's day may differ from UTC's
    lines = api.export_payments(seller_id, day - one_day, day + one_day).splitlines()
    assert lines[0].endswith(",finished_at,source,reference")
    assert lines[1].endswith(",BOLT-1")


def test_a_scheduled_payment_shows_its_reference(two_sellers):
    account_id, method_id, invoices = two_sellers["b1"]
    later = date.today() + timedelta(days=30)
    api.pay_invoices(account_id, [invoices[0]], method_id, "later", pay_on=later)
    assert [p.reference for p in api.list_scheduled_payments(account_id)] == ["BOLT-1"]
