"""The ERP sync on real PostgreSQL: upserts by ERP id, version, one outcome per record, external payments."""

import csv
import io
import threading
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from db.models import Account, ExternalPayment, Invoice, PaymentMethod
from tasks import api
from tasks.domain.errors import RemitError
from tests import factories

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@pytest.fixture()
def seller_id(db, broker):
    with db() as session:
        seller = factories.seller(session, timezone="UTC")
        session.commit()
        return seller.id


def _account(external_id="C-1", version=1, **changes):
    record = dict(
        external_id=external_id,
        version=version,
        number=f"N-{external_id}",
        name="Acme",
        billing_email="AP@Acme.TEST",
        currency="usd",
    )
    return {**record, **changes}


def _invoice(external_id="I-1", version=1, **changes):
    record = dict(
        external_id=external_id,
        version=version,
        account_external_id="C-1",
        number=f"INV-{external_id}",
        total_minor=10_000,
        issued_on="2026-11-01",
        due_on="2026-12-01",
    )
    return {**record, **changes}


def _outcomes(results):
    return [(r.external_id, r.outcome.value, r.code) for r in results]


def _row(db, external_id):
    with db() as session:
        return session.scalar(select(Invoice).where(Invoice.external_id == external_id))


def test_accounts_are_created_then_changed_by_a_newer_version_only(db, seller_id):
    assert _outcomes(api.sync_accounts(seller_id, [_account()])) == [("C-1", "applied", None)]
    assert _outcomes(api.sync_accounts(seller_id, [_account()])) == [("C-1", "unchanged", None)]
    assert _outcomes(api.sync_accounts(seller_id, [_account(version=3, name="Acme Inc")])) == [
        ("C-1", "applied", None)
    ]
    assert _outcomes(api.sync_accounts(seller_id, [_account(version=2, name="Old")])) == [
        ("C-1", "stale_version", None)
    ]
    with db() as session:
        account = session.scalar(select(Account).where(Account.external_id == "C-1"))
        assert (account.name, account.version, account.billing_email) == ("Acme Inc", 3, "AP@acme.test")


def test_invoices_are_created_changed_voided_and_an_older_version_never_overwrites(db, seller_id):
    api.sync_accounts(seller_id, [_account()])
    assert _outcomes(api.sync_invoices(seller_id, [_invoice()], NOW)) == [("I-1", "applied", None)]
    changed = _invoice(
        version=2,
        total_minor=12_000,
        due_on="2026-12-20",
        discount_minor=500,
        discount_until="2026-11-15",
        customer_visible=False,
    )
    assert _outcomes(api.sync_invoices(seller_id, [changed], NOW)) == [("I-1", "applied", None)]
    assert _outcomes(api.sync_invoices(seller_id, [_invoice(version=1, total_minor=1)], NOW)) == [
        ("I-1", "stale_version", None)
    ]
    assert _outcomes(api.sync_invoices(seller_id, [changed], NOW)) == [("I-1", "unchanged", None)]
    row = _row(db, "I-1")
    assert (row.total_minor, row.due_on, row.discount_minor, row.customer_visible, row.version) == (
        12_000,
        date(2026, 12, 20),
        500,
        False,
        2,
    )
    assert (
        api.sync_invoices(seller_id, [{**changed, "version": 3, "voided": True}], NOW)[0].outcome == "applied"
    )
    assert _row(db, "I-1").voided is True


def test_same_version_with_other_content_is_refused_as_a_conflict(db, seller_id):
    api.sync_accounts(seller_id, [_account()])
    api.sync_invoices(seller_id, [_invoice()], NOW)
    results = api.sync_invoices(seller_id, [_invoice(total_minor=99)], NOW)
    assert _outcomes(results) == [("I-1", "refused", "version_conflict")]
    assert _row(db, "I-1").total_minor == 10_000


def test_parents_and_children_are_built_in_one_batch_and_an_unknown_parent_is_refused(db, seller_id):
    api.sync_accounts(seller_id, [_account(), _account("C-2")])
    batch = [
        _invoice("K-1", parent_external_id="P-1", site_name="Dallas"),
        _invoice("P-1"),
        _invoice("K-2", parent_external_id="P-1", site_name="Austin"),
        _invoice("K-3", parent_external_id="NOPE"),
        _invoice("K-4", account_external_id="C-2", parent_external_id="P-1"),
    ]
    assert _outcomes(api.sync_invoices(seller_id, batch, NOW)) == [
        ("K-1", "applied", None),
        ("P-1", "applied", None),
        ("K-2", "applied", None),
        ("K-3", "refused", "parent_not_found"),
        ("K-4", "refused", "parent_not_found"),
    ]
    parent = _row(db, "P-1")
    assert _row(db, "K-1").parent_id == parent.id and _row(db, "K-2").parent_id == parent.id
    assert _row(db, "K-3") is None
    api.sync_invoices(seller_id, [_invoice("K-2", version=2, site_name="Austin")], NOW)
    assert _row(db, "K-2").parent_id is None


def test_refused_records_sit_beside_applied_ones_and_change_nothing(db, seller_id):
    api.sync_accounts(seller_id, [_account()])
    with db() as session:
        seeded = session.scalar(select(Account).where(Account.external_id == "C-1"))
        factories.invoice(session, seeded, number="INV-SEEDED")
        session.commit()
    batch = [
        _invoice("A"),
        _invoice("B", account_external_id="NOBODY"),
        _invoice("C", due_on="2026-10-01"),
        _invoice("D", discount_minor=10_000, discount_until="2026-11-10"),
        "not a record",
        _invoice("A", version=5),
        _invoice("E", number="INV-SEEDED"),
        _invoice("F", version=-1),
        _invoice("G"),
    ]
    assert _outcomes(api.sync_invoices(seller_id, batch, NOW)) == [
        ("A", "applied", None),
        ("B", "refused", "account_not_found"),
        ("C", "refused", "invalid_dates"),
        ("D", "refused", "invalid_discount"),
        (None, "refused", "invalid_record"),
        ("A", "refused", "duplicate_in_batch"),
        ("E", "refused", "number_taken"),
        ("F", "refused", "invalid_field"),
        ("G", "applied", None),
    ]
    with db() as session:
        assert (
            session.scalar(select(func.count()).select_from(Invoice).where(Invoice.external_id.is_not(None)))
            == 2
        )


def test_an_invoice_keeps_its_account_and_currency(db, seller_id):
    api.sync_accounts(seller_id, [_account(), _account("C-2")])
    api.sync_invoices(seller_id, [_invoice()], NOW)
    results = api.sync_invoices(
        seller_id, [_invoice(version=2, account_external_id="C-2"), _invoice("I-2", currency="eur")], NOW
    )
    assert _outcomes(results) == [("I-1", "refused", "account_changed"), ("I-2", "applied", None)]
    assert _outcomes(api.sync_invoices(seller_id, [_invoice("I-2", version=2, currency="usd")], NOW)) == [
        ("I-2", "refused", "currency_changed")
    ]
    # an older record is stale whatever it says: it never gets as far as being refused
    assert _outcomes(api.sync_invoices(seller_id, [_invoice(version=0, account_external_id="C-2")], NOW)) == [
        ("I-1", "stale_version", None)
    ]


def test_an_unknown_seller_or_a_non_list_batch_is_refused_whole(db, seller_id):
    with pytest.raises(RemitError) as caught:
        api.sync_invoices(seller_id + 999, [_invoice()], NOW)
    assert caught.value.code == "seller_not_found"
    with pytest.raises(RemitError) as caught:
        api.sync_accounts(seller_id, {"external_id": "C-1"})
    assert caught.value.code == "invalid_batch"


@pytest.fixture()
def paid_world(db, seller_id):
    api.sync_accounts(seller_id, [_account()])
    api.sync_invoices(seller_id, [_invoice("I-1"), _invoice("I-2", total_minor=5_000)], NOW)
    with db() as session:
        account = session.scalar(select(Account).where(Account.external_id == "C-1"))
        card = factories.method(session, account).id
        session.commit()
    return account.id, card


def test_a_check_pays_an_invoice_so_it_cannot_be_paid_online_and_the_overview_shows_it(
    db, seller_id, paid_world
):
    account_id, card = paid_world
    before = api.account_overview(account_id, NOW)
    receipt = api.record_external_payment(seller_id, "C-1", "CHK-1001", "check", [("I-1", 10_000)], NOW)
    assert (receipt.amount_minor, receipt.currency, receipt.replayed) == (10_000, "usd", False)
    after = api.account_overview(account_id, NOW)
    assert (before.balance_minor, after.balance_minor) == (15_000, 5_000)
    with pytest.raises(RemitError) as caught:
        api.pay_invoices(account_id, [_row(db, "I-1").id], card, "pay-1")
    assert caught.value.code == "invoice_paid"
    statuses = {v.number: v.status for v in api.list_invoices(account_id, now=NOW)}
    assert statuses == {"INV-I-1": "paid", "INV-I-2": "open"}


def test_a_partial_credit_memo_leaves_the_rest_owed_and_overpaying_is_refused(db, seller_id, paid_world):
    account_id, _ = paid_world
    api.record_external_payment(seller_id, "C-1", "CM-7", "credit_memo", [("I-2", 2_000)], NOW)
    assert {v.number: v.owed_minor for v in api.list_invoices(account_id, now=NOW)}["INV-I-2"] == 3_000
    preview = api.preview_payment(account_id, [_row(db, "I-2").id], now=NOW)
    assert [line.amount_minor for line in preview.lines] == [3_000]
    with pytest.raises(RemitError) as caught:
        api.record_external_payment(seller_id, "C-1", "WIRE-1", "wire", [("I-2", 3_001)], NOW)
    assert caught.value.code == "over_payment"
    with db() as session:
        assert session.scalar(select(func.count()).select_from(ExternalPayment)) == 1


def test_an_external_payment_replayed_returns_the_first_and_a_reused_reference_is_refused(
    db, seller_id, paid_world
):
    first = api.record_external_payment(seller_id, "C-1", "CHK-9", "check", [("I-1", 4_000)], NOW)
    again = api.record_external_payment(seller_id, "C-1", "CHK-9", "check", [("I-1", 4_000)], NOW)
    assert (again.id, again.replayed, again.lines) == (first.id, True, first.lines)
    for kind, lines in (("cash", [("I-1", 4_000)]), ("check", [("I-1", 4_001)])):
        with pytest.raises(RemitError) as caught:
            api.record_external_payment(seller_id, "C-1", "CHK-9", kind, lines, NOW)
        assert caught.value.code == "reference_reused"
    with db() as session:
        assert session.scalar(select(func.count()).select_from(ExternalPayment)) == 1


def test_two_checks_for_one_invoice_at_once_settle_it_once(db, seller_id, paid_world):
    barrier, outcomes = threading.Barrier(2), []

    def record(reference):
        barrier.wait()
        try:
            api.record_external_payment(seller_id, "C-1", reference, "check", [("I-1", 10_000)], NOW)
            outcomes.append("recorded")
        except RemitError as refused:
            outcomes.append(refused.code)

    threads = [threading.Thread(target=record, args=(f"CHK-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["over_payment", "recorded"]


@pytest.mark.parametrize(
    ("account", "kind", "lines", "code"),
    [
        ("C-1", "iou", [("I-1", 1)], "invalid_kind"),
        ("C-1", "cash", [], "invalid_lines"),
        ("C-1", "cash", [("I-1", 0)], "invalid_field"),
        ("C-1", "cash", [("I-1", 1), ("I-1", 2)], "duplicate_invoice"),
        ("C-9", "cash", [("I-1", 1)], "account_not_found"),
        ("C-1", "cash", [("I-404", 1)], "invoice_not_found"),
    ],
)
def test_an_external_payment_is_refused_whole_naming_what_is_wrong(
    db, seller_id, paid_world, account, kind, lines, code
):
    with pytest.raises(RemitError) as caught:
        api.record_external_payment(seller_id, account, "REF", kind, lines, NOW)
    assert caught.value.code == code
    with db() as session:
        assert session.scalar(select(func.count()).select_from(ExternalPayment)) == 0


def test_a_void_invoice_takes_no_external_payment(db, seller_id, paid_world):
    api.sync_invoices(seller_id, [_invoice("I-1", version=2, voided=True)], NOW)
    with pytest.raises(RemitError) as caught:
        api.record_external_payment(seller_id, "C-1", "REF", "cash", [("I-1", 1)], NOW)
    assert caught.value.code == "invoice_voided"


def test_export_lists_each_payment_per_invoice_with_its_stripe_ids_within_the_dates(
    db, seller_id, paid_world
):
    account_id, card = paid_world
    with db() as session:
        account, method = session.get(Account, account_id), session.get(PaymentMethod, card)
        paid = factories.payment(
            session,
            account,
            method,
            15_000,
            status="succeeded",
            stripe_payment_intent_id="pi_1",
            stripe_charge_id="ch_1",
        )
        for external_id in ("I-1", "I-2"):
            invoice = session.scalar(select(Invoice).where(Invoice.external_id == external_id))
            factories.allocation(session, paid, invoice, amount_minor=invoice.total_minor, state="applied")
        session.commit()
        created = paid.created_at.date()
    lines = api.export_payments(seller_id, created, created).splitlines()
    assert lines[0].startswith("payment_id,account_number,account_external_id,kind,status,amount_minor")
    assert [line.split(",")[13:16] for line in lines[1:]] == [
        ["INV-I-1", "I-1", "10000"],
        ["INV-I-2", "I-2", "5000"],
    ]
    assert "pi_1,ch_1" in lines[1] and ",succeeded,15000," in lines[1]
    assert len(api.export_payments(seller_id, date(2020, 1, 1), date(2020, 1, 2)).splitlines()) == 1
    with pytest.raises(RemitError) as caught:
        api.export_payments(seller_id, created, date(2020, 1, 1))
    assert caught.value.code == "invalid_range"


def test_export_lists_external_payments_after_remits_with_their_reference(db, seller_id, paid_world):
    receipt = api.record_external_payment(
        seller_id, "C-1", "CHK-881", "check", [("I-1", 4_000), ("I-2", 500)]
    )
    with db() as session:
        created = session.get(ExternalPayment, receipt.id).created_at.date()
    rows = list(csv.DictReader(io.StringIO(api.export_payments(seller_id, created, created))))
    external = [r for r in rows if r["source"] == "external"]
    assert [
        (r["payment_id"], r["kind"], r["invoice_external_id"], r["invoice_amount_minor"]) for r in external
    ] == [
        (str(receipt.id), "check", "I-1", "4000"),
        (str(receipt.id), "check", "I-2", "500"),
    ]
    assert {r["reference"] for r in external} == {"CHK-881"}
    assert {(r["status"], r["amount_minor"], r["stripe_charge_id"]) for r in external} == {
        ("recorded", "4500", "")
    }
