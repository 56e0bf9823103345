"""The CSV formats of `remit import`: cells to typed records, headers checked, payment rows grouped."""

import pytest

from tasks.domain import csv_import as formats


@pytest.mark.parametrize(
    ("row", "record"),
    [
        ({"external_id": "C-1", "version": "3"}, {"external_id": "C-1", "version": 3}),
        ({"external_id": "C-1", "version": " 3 "}, {"external_id": "C-1", "version": 3}),  # spaces around
        ({"external_id": "C-1", "currency": ""}, {"external_id": "C-1"}),  # empty: the API's default
        ({"portal_enabled": "yes"}, {"portal_enabled": True}),
        ({"portal_enabled": "FALSE"}, {"portal_enabled": False}),
        ({"portal_enabled": "0"}, {"portal_enabled": False}),
        ({"version": "-1"}, {"version": -1}),  # a number: the API refuses it with its own code
    ],
)
def test_cells_become_typed_fields(row, record):
    assert formats.record_of("accounts", row) == record


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"version": "two"}, "version must be a whole number, not 'two'"),
        ({"version": "1.5"}, "version must be a whole number"),
        ({"portal_enabled": "maybe"}, "portal_enabled must be true or false"),
        ({"version": "1", None: ["extra"]}, "more cells than the header has columns"),
        ({"version": None}, "fewer cells than the header has columns"),
    ],
)
def test_a_cell_not_of_its_columns_type_makes_the_row_malformed(row, message):
    with pytest.raises(formats.MalformedRow, match=message):
        formats.record_of("accounts", row)


def test_a_header_needs_every_required_column_and_no_unknown_one():
    formats.check_header(
        "payments", ["reference", "account_external_id", "kind", "invoice_external_id", "amount_minor"]
    )
    with pytest.raises(
        formats.MalformedFile, match="unknown column.s. amount; missing column.s. amount_minor"
    ):
        formats.check_header(
            "payments", ["reference", "account_external_id", "kind", "invoice_external_id", "amount"]
        )
    with pytest.raises(formats.MalformedFile, match="missing column"):
        formats.check_header("accounts", None)


def test_payment_rows_group_by_reference_and_a_disagreeing_row_marks_the_whole_payment():
    def row(reference, kind, invoice, amount):
        return {
            "reference": reference,
            "account_external_id": "C-1",
            "kind": kind,
            "invoice_external_id": invoice,
            "amount_minor": amount,
        }

    groups = formats.group_payments(
        [
            (2, row("A", "check", "I-1", 5)),
            (3, row("B", "wire", "I-2", 7)),
            (4, row("A", "check", "I-3", 9)),
            (5, row("B", "cash", "I-4", 1)),
        ]
    )
    assert [(g.reference, g.lines, g.line_numbers, g.problem) for g in groups] == [
        ("A", [("I-1", 5), ("I-3", 9)], [2, 4], None),
        ("B", [("I-2", 7), ("I-4", 1)], [3, 5], "line 5 names another account or kind than line 3"),
    ]
