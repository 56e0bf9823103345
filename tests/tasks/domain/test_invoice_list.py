from dataclasses import dataclass
from datetime import date, datetime

import pytest

from tasks.domain import invoice_list as rules
from tasks.domain.errors import RemitError


@dataclass(frozen=True)
class View:
    invoice_id: int
    number: str
    owed_minor: int
    due_on: date
    status: str = "open"
    overdue: bool = False


VIEWS = [
    View(1, "B-2", 500, date(2026, 12, 3)),
    View(2, "A-1", 0, date(2026, 12, 1), "paid"),
    View(3, "C-3", 500, date(2026, 12, 1), overdue=True),
    View(4, "a-0", 900, date(2026, 12, 9), "scheduled"),
]


@pytest.mark.parametrize(
    ("sort", "view", "key"),
    [
        ("due_asc", View(42, "N", 1, date(2026, 12, 1)), date(2026, 12, 1)),
        ("due_desc", View(42, "N", 1, date(1, 1, 1)), date(1, 1, 1)),
        ("number_asc", View(42, "=A", 1, date(2026, 1, 1)), "=A"),
        ("owed_desc", View(42, "N", 0, date(2026, 1, 1)), 0),
    ],
)
def test_a_cursor_decodes_to_what_was_encoded(sort, view, key):
    cursor = rules.decode_cursor(rules.encode_cursor(sort, view), sort)
    assert (cursor.sort, cursor.key, cursor.invoice_id) == (sort, key, 42)


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("due_asc", [2, 3, 1, 4]),  # ties on the due date go by id
        ("due_desc", [4, 1, 3, 2]),
        ("number_asc", [2, 1, 3, 4]),  # code point order: upper case first
        ("number_desc", [4, 3, 1, 2]),
        ("owed_asc", [2, 1, 3, 4]),
        ("owed_desc", [4, 3, 1, 2]),
    ],
)
def test_pages_of_one_follow_the_sort_then_id(sort, expected):
    order, walked, after = rules.SORTS[sort], [], None
    while True:
        shown, more = rules.page_of(VIEWS, order, after, 1)
        walked += [v.invoice_id for v in shown]
        if not more:
            break
        after = rules.decode_cursor(rules.encode_cursor(sort, shown[-1]), sort)
    assert walked == expected


def test_page_sizes_at_the_boundaries():
    order = rules.SORTS["due_asc"]
    assert rules.page_of(VIEWS, order, None, 4)[1] is False
    assert rules.page_of(VIEWS, order, None, 3)[1] is True
    assert rules.page_of([], order, None, 3) == ([], False)


@pytest.mark.parametrize(
    ("chosen", "expected"),
    [
        (rules.InvoiceFilter(), [1, 2, 3, 4]),
        (rules.InvoiceFilter(statuses=("open",)), [1, 3]),
        (rules.InvoiceFilter(statuses=("paid", "scheduled")), [2, 4]),
        (rules.InvoiceFilter(overdue=True), [3]),
        (rules.InvoiceFilter(overdue=False), [1, 2, 4]),
        (rules.InvoiceFilter(statuses=("open",), overdue=False), [1]),
    ],
)
def test_derived_conditions(chosen, expected):
    assert [v.invoice_id for v in VIEWS if rules.matches(v, chosen)] == expected


def test_the_search_pattern_takes_wildcards_literally():
    assert rules.check_filter(search=" 50%_off\\ ").search_pattern == "%50\\%\\_off\\\\%"
    assert rules.check_filter(search="   ").search is None


@pytest.mark.parametrize(
    ("filters", "code"),
    [
        ({"status": "overdue"}, "invalid_status"),
        ({"status": ["open", 1]}, "invalid_status"),
        ({"overdue": 1}, "invalid_overdue"),
        ({"due_from": datetime(2026, 12, 1)}, "invalid_date_range"),
        ({"due_from": date(2026, 12, 2), "due_to": date(2026, 12, 1)}, "invalid_date_range"),
        ({"layout": "multi-site"}, "invalid_layout"),
        ({"site": 5}, "invalid_site"),
        ({"search": "x" * 101}, "invalid_search"),
    ],
)
def test_filter_refusals(filters, code):
    with pytest.raises(RemitError) as refused:
        rules.check_filter(**filters)
    assert refused.value.code == code


@pytest.mark.parametrize(
    "token",
    [
        "",
        "x" * 201,
        "!!!",
        rules.encode_cursor("owed_desc", View(1, "N", 5, date(2026, 1, 1))),  # another sort's
        "WyJkdWVfYXNjIiwibm90LWEtZGF0ZSIsMV0",  # ["due_asc","not-a-date",1]
        "WyJkdWVfYXNjIiwiMjAyNi0xMi0wMSIsMF0",  # ["due_asc","2026-12-01",0]: no such id
        "WyJuZXdlc3QiLCIyMDI2LTEyLTAxIiwxXQ",  # ["newest","2026-12-01",1]: the history's sort
    ],
)
def test_foreign_cursors_are_refused(token):
    with pytest.raises(RemitError) as refused:
        rules.decode_cursor(token, "due_asc")
    assert refused.value.code == "invalid_cursor"


def test_a_number_key_must_be_an_invoice_number():
    token = "WyJudW1iZXJfYXNjIiwiIiwxXQ"  # ["number_asc","",1]
    with pytest.raises(RemitError, match="not one this invoice list returned"):
        rules.decode_cursor(token, "number_asc")
