from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from tasks.domain import history as rules
from tasks.domain.errors import RemitError

CHICAGO = "America/Chicago"


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("newest", datetime(2026, 12, 1, 6, 0, 0, 123456, tzinfo=UTC)),
        ("oldest", datetime(2026, 12, 1, 0, 0, tzinfo=timezone(timedelta(hours=-6)))),
        ("amount_desc", 0),
        ("amount_asc", 99_999_999),
    ],
)
def test_a_cursor_decodes_to_what_was_encoded(sort, key):
    cursor = rules.decode_cursor(rules.encode_cursor(sort, key, 42), sort)
    assert (cursor.sort, cursor.key, cursor.payment_id) == (sort, key, 42)


@pytest.mark.parametrize(
    ("token", "sort"),
    [
        ("", "newest"),  # empty
        ("x" * 201, "newest"),  # longer than any cursor we issue
        ("!!!", "newest"),  # not base64
        ("bm90IGpzb24", "newest"),  # "not json"
        (rules.encode_cursor("newest", 5, 1), "newest"),  # an amount where a time belongs
        (rules.encode_cursor("amount_asc", 5, 0), "amount_asc"),  # no payment has id 0
        (rules.encode_cursor("amount_asc", -1, 1), "amount_asc"),  # no amount is negative
        (rules.encode_cursor("amount_asc", True, 1), "amount_asc"),  # a bool is no amount
        ("WyJuZXdlc3QiLCIyMDI2LTEyLTAxVDAwOjAwOjAwIiwxXQ", "newest"),  # a time without a zone
        ("eyJhIjoxfQ", "newest"),  # {"a": 1}: not a triple
        ("WyJieV9uYW1lIiwxLDFd", "newest"),  # ["by_name", 1, 1]: no such sort
        (12345, "newest"),  # not text
    ],
)
def test_a_cursor_we_did_not_issue_is_refused(token, sort):
    with pytest.raises(RemitError) as refused:
        rules.decode_cursor(token, sort)
    assert refused.value.code == "invalid_cursor"


def test_a_cursor_from_another_sort_is_refused():
    token = rules.encode_cursor("amount_desc", 500, 7)
    with pytest.raises(RemitError, match="belongs to sort 'amount_desc'") as refused:
        rules.decode_cursor(token, "amount_asc")
    assert refused.value.code == "invalid_cursor"


@pytest.mark.parametrize(
    ("sort", "limit", "code"),
    [
        ("name", 50, "invalid_sort"),
        (None, 50, "invalid_sort"),
        ("newest", 0, "invalid_limit"),
        ("newest", 201, "invalid_limit"),
        ("newest", True, "invalid_limit"),
        ("newest", 5.0, "invalid_limit"),
    ],
)
def test_sort_and_page_size_are_checked(sort, limit, code):
    with pytest.raises(RemitError) as refused:
        rules.check_sort(sort)
        rules.check_limit(limit)
    assert refused.value.code == code


@pytest.mark.parametrize("limit", [1, 50, 200])
def test_page_sizes_from_one_to_two_hundred_are_accepted(limit):
    assert rules.check_limit(limit) == limit


@pytest.mark.parametrize(
    ("filters", "code"),
    [
        ({"status": "paid"}, "invalid_status"),  # invoices are paid; payments succeed
        ({"status": []}, "invalid_status"),
        ({"status": ["succeeded", 3]}, "invalid_status"),
        ({"method_kind": "paypal"}, "invalid_method_kind"),
        ({"date_from": "2026-12-01"}, "invalid_date_range"),
        ({"date_to": datetime(2026, 12, 1, tzinfo=UTC)}, "invalid_date_range"),
        ({"date_from": date(2026, 12, 2), "date_to": date(2026, 12, 1)}, "invalid_date_range"),
        ({"amount_min": -1}, "invalid_amount_range"),
        ({"amount_max": 1.5}, "invalid_amount_range"),
        ({"amount_min": 500, "amount_max": 499}, "invalid_amount_range"),
        ({"search": "x" * 101}, "invalid_search"),
        ({"search": "inv\x00"}, "invalid_search"),
        ({"search": 42}, "invalid_search"),
    ],
)
def test_filters_are_refused_with_the_code_naming_what_is_wrong(filters, code):
    with pytest.raises(RemitError) as refused:
        rules.check_filter(**filters, timezone=CHICAGO)
    assert refused.value.code == code


def test_dates_are_whole_days_at_the_seller_both_included():
    chosen = rules.check_filter(date_from=date(2026, 12, 1), date_to=date(2026, 12, 1), timezone=CHICAGO)
    assert chosen.created_from == datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    assert chosen.created_until == datetime(2026, 12, 2, 6, 0, tzinfo=UTC)


def test_a_single_status_or_several_and_a_blank_search_is_none():
    assert rules.check_filter(status="failed", search="  ", timezone=CHICAGO).statuses == ("failed",)
    chosen = rules.check_filter(status=["failed", "canceled"], search=" INV-7 ", timezone=CHICAGO)
    assert (chosen.statuses, chosen.search) == (("canceled", "failed"), "INV-7")
    assert rules.check_filter(search="   ", timezone=CHICAGO).search is None


@pytest.mark.parametrize(
    ("search", "pattern", "payment_id", "last4"),
    [
        ("INV-7", "%INV-7%", None, None),
        ("4242", "%4242%", 4242, "4242"),  # four digits: an id, a last 4 or part of a number
        ("#12", "%#12%", 12, None),
        ("100%_off\\", "%100\\%\\_off\\\\%", None, None),  # LIKE wildcards are taken literally
        ("９９", "%９９%", None, None),  # full-width digits are not an id
        ("0", "%0%", None, None),  # no payment has id 0
    ],
)
def test_search_terms(search, pattern, payment_id, last4):
    assert rules.search_terms(search) == rules.SearchTerms(pattern, payment_id, last4)


@pytest.mark.parametrize(
    ("value", "cell"),
    [("INV-1", "INV-1"), ("=HYPERLINK(1)", "'=HYPERLINK(1)"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x")],
)
def test_csv_cells_never_start_a_formula(value, cell):
    assert rules.spreadsheet_safe(value) == cell
