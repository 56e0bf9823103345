"""`remit import` on real PostgreSQL: the sample files, outcomes per line, malformed rows that never stop the
rows after them, the dry run that sends nothing, and external payments grouped by reference."""

from pathlib import Path

import pytest
from sqlalchemy import func, select

from db.models import Account, ExternalPayment, Invoice
from tasks import api
from tests import factories
from workers import cli
from workers.import_cli import run_import

SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "import"


@pytest.fixture()
def seller_id(db, broker):
    with db() as session:
        seller = factories.seller(session, timezone="UTC")
        session.commit()
        return seller.id


def _count(db, model) -> int:
    with db() as session:
        return session.scalar(select(func.count()).select_from(model))


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "file.csv"
    path.write_text(text)
    return path


def test_the_sample_files_import_in_order_and_a_second_run_changes_nothing(db, seller_id, capsys):
    for kind in ("accounts", "invoices", "payments"):
        assert cli.main(["import", kind, str(SAMPLES / f"{kind}.csv"), "--seller", str(seller_id)]) == 0
    assert (_count(db, Account), _count(db, Invoice), _count(db, ExternalPayment)) == (3, 6, 3)
    out = capsys.readouterr().out
    assert "applied 3" in out and "applied 6" in out and "recorded 4" in out
    for kind in ("accounts", "invoices", "payments"):
        assert cli.main(["import", kind, str(SAMPLES / f"{kind}.csv"), "--seller", str(seller_id)]) == 0
    out = capsys.readouterr().out
    assert "unchanged 3" in out and "unchanged 6" in out and "unchanged 4" in out
    assert _count(db, ExternalPayment) == 3
    overview = {i.number: i for i in api.list_invoices(_account_id(db, "C-1001"))}
    assert "9001" not in {n for n, i in overview.items() if i.owed_minor}


def _account_id(db, external_id: str) -> int:
    with db() as session:
        return session.scalar(select(Account.id).where(Account.external_id == external_id))


def test_a_malformed_row_is_reported_by_line_and_the_rows_after_it_still_go(db, seller_id, tmp_path):
    path = _csv(
        tmp_path,
        "external_id,version,number,name,billing_email\n"
        "C-1,1,N-1,One,one@example.com\n"
        "C-2,two,N-2,Two,two@example.com\n"  # version is not a number: malformed
        "C-3,1,N-3,Three,not-an-address\n"  # refused by the sync with its code
        "C-4,1,N-4,Four\n"  # fewer cells
        "C-5,1,N-5,Five,five@example.com\n",
    )
    summary = run_import("accounts", path, seller_id, dry_run=False, batch_size=2)
    assert summary.outcomes == {"applied": 2, "malformed": 2, "refused": 1}
    assert [(line, code) for line, code, _ in sorted(summary.problems)] == [
        (3, "malformed_row"),
        (4, "invalid_email"),
        (5, "malformed_row"),
    ]
    assert "version must be a whole number" in sorted(summary.problems)[0][2]
    with db() as session:
        assert sorted(session.scalars(select(Account.external_id))) == ["C-1", "C-5"]


def test_a_dry_run_checks_every_row_and_sends_nothing(db, seller_id, tmp_path, capsys):
    path = _csv(
        tmp_path,
        "external_id,version,number,name,billing_email\nC-1,1,N-1,One,one@example.com\nC-2,1,N-2,,x@example.com\n",
    )
    args = ["import", "accounts", str(path), "--seller", str(seller_id), "--dry-run"]
    assert cli.main(args) == 1  # a problem was found
    out = capsys.readouterr().out
    assert "would send" in out and "valid 1" in out and "line 3: [missing_field]" in out
    assert _count(db, Account) == 0


def test_a_header_with_an_unknown_or_missing_column_stops_before_any_row(db, seller_id, tmp_path, capsys):
    path = _csv(tmp_path, "external_id,version,number,nmae,billing_email\nC-1,1,N-1,One,one@example.com\n")
    assert cli.main(["import", "accounts", str(path), "--seller", str(seller_id)]) == 2
    err = capsys.readouterr().err
    assert "unknown column(s) nmae" in err and "missing column(s) name" in err
    assert _count(db, Account) == 0


def test_payment_rows_of_one_reference_are_one_payment_refused_whole_if_any_line_is_bad(
    db, seller_id, tmp_path
):
    for kind in ("accounts", "invoices"):
        run_import(kind, SAMPLES / f"{kind}.csv", seller_id, dry_run=False, batch_size=100)
    path = _csv(
        tmp_path,
        "reference,account_external_id,kind,invoice_external_id,amount_minor\n"
        "W-1,C-1003,wire,INV-9100-1,100\n"
        "W-1,C-1003,wire,INV-9100-2,lots\n"  # malformed: the whole of W-1 is refused
        "W-2,C-1003,wire,INV-9100-1,200\n"
        "W-2,C-1003,cash,INV-9100-2,300\n"  # another kind under the same reference
        "C-9,C-1001,check,INV-9001,999999\n"  # more than the invoice owes: refused by the API
        "C-10,C-1001,check,INV-9001,100\n",
    )
    summary = run_import("payments", path, seller_id, dry_run=False, batch_size=100)
    assert summary.outcomes == {"recorded": 1, "malformed": 1, "refused": 4}
    assert {(line, code) for line, code, _ in summary.problems} == {
        (3, "malformed_row"),
        (2, "inconsistent_payment"),
        (4, "inconsistent_payment"),
        (5, "inconsistent_payment"),
        (6, "over_payment"),
    }
    with db() as session:
        assert list(session.scalars(select(ExternalPayment.reference))) == ["C-10"]


def test_an_unknown_seller_stops_the_import(db, broker, tmp_path, capsys):
    assert cli.main(["import", "accounts", str(SAMPLES / "accounts.csv"), "--seller", "424242"]) == 2
    assert "seller_not_found" in capsys.readouterr().err
