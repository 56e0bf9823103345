"""The sync contract's pure rules: a record's fields, and what its version decides."""

import pytest

from tasks.domain.sync import Outcome, RecordRefused, account_record, decide, external_lines, invoice_record

INVOICE = dict(
    external_id="I-1",
    version=1,
    account_external_id="C-1",
    number="INV-1",
    total_minor=100,
    issued_on="2026-11-01",
    due_on="2026-12-01",
)
ACCOUNT = dict(external_id="C-1", version=1, number="A-1", name="Acme", billing_email="ap@acme.test")


@pytest.mark.parametrize(
    ("stored", "version", "same", "expected"),
    [
        (None, 0, False, Outcome.APPLIED),  # nothing stored: created
        (3, 4, True, Outcome.APPLIED),  # newer, even with the same content: the version moves on
        (3, 4, False, Outcome.APPLIED),  # newer with changes
        (3, 3, True, Outcome.UNCHANGED),  # a replay
        (3, 2, False, Outcome.STALE_VERSION),  # an older update never overwrites a newer one
        (3, 2, True, Outcome.STALE_VERSION),
    ],
)
def test_the_version_decides_the_outcome(stored, version, same, expected):
    fields = ("a",)
    assert decide(stored, None if stored is None else fields, version, fields if same else ("b",)) is expected


def test_the_same_version_with_other_content_is_a_conflict():
    with pytest.raises(RecordRefused) as caught:
        decide(3, ("a",), 3, ("b",))
    assert caught.value.code == "version_conflict"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"external_id": ""}, "missing_field"),  # the key is required
        ({"external_id": "x" * 65}, "invalid_field"),  # longer than the column
        ({"version": "2"}, "invalid_field"),  # a version is a whole number
        ({"version": True}, "invalid_field"),  # not a boolean pretending to be 1
        ({"total_minor": 0}, "invalid_field"),  # an invoice is for something
        ({"total_minor": 1.5}, "invalid_field"),  # minor units are whole
        ({"due_on": "2026-10-01"}, "invalid_dates"),  # due before issued
        ({"due_on": "01/12/2026"}, "invalid_field"),  # dates are ISO
        ({"discount_minor": 100, "discount_until": "2026-11-10"}, "invalid_discount"),  # the whole total
        ({"discount_minor": 10}, "invalid_discount"),  # a discount needs its last day
        ({"parent_external_id": "I-1"}, "invalid_parent"),  # its own parent
        ({"currency": "USD"}, "invalid_field"),  # lower-case ISO code
        ({"voided": "yes"}, "invalid_field"),  # flags are booleans
        ({"number": "INV\n2"}, "invalid_field"),  # no control characters
    ],
)
def test_an_invoice_record_is_refused_naming_the_fault(changes, code):
    with pytest.raises(RecordRefused) as caught:
        invoice_record({**INVOICE, **changes})
    assert caught.value.code == code


def test_an_invoice_record_reads_dates_and_defaults():
    record = invoice_record(INVOICE)
    assert (record.discount_minor, record.customer_visible, record.voided, record.currency) == (
        0,
        True,
        False,
        None,
    )
    assert str(record.due_on) == "2026-12-01"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"billing_email": "a@b.test, c@d.test"}, "invalid_email"),  # one address only
        ({"billing_email": None}, "invalid_email"),
        ({"name": " "}, "missing_field"),
        ({"portal_enabled": 1}, "invalid_field"),
    ],
)
def test_an_account_record_is_refused_naming_the_fault(changes, code):
    with pytest.raises(RecordRefused) as caught:
        account_record({**ACCOUNT, **changes})
    assert caught.value.code == code


def test_an_account_record_normalises_its_email_and_defaults_to_usd():
    record = account_record({**ACCOUNT, "billing_email": "AP@ACME.TEST"})
    assert (record.billing_email, record.currency, record.portal_enabled) == ("AP@acme.test", "usd", True)


@pytest.mark.parametrize(
    ("kind", "reference", "lines", "code"),
    [
        ("bitcoin", "R", [("I", 1)], "invalid_kind"),
        ("check", "", [("I", 1)], "missing_field"),
        ("check", "R", [], "invalid_lines"),
        ("check", "R", [("I", 1, 2)], "invalid_lines"),
        ("check", "R", [("I", -5)], "invalid_field"),
        ("check", "R", [("I", 1), ("I", 1)], "duplicate_invoice"),
    ],
)
def test_an_external_payment_is_refused_naming_the_fault(kind, reference, lines, code):
    with pytest.raises(RecordRefused) as caught:
        external_lines(kind, reference, lines)
    assert caught.value.code == code


def test_external_lines_keep_their_order():
    assert external_lines("write_off", "R", [("B", 2), ("A", 1)]) == ("write_off", [("B", 2), ("A", 1)])
