"""tasks.domain.requests' input rules, table-driven: what each accepts, and the code of each refusal."""

from datetime import date

import pytest

from tasks.domain import methods as rules
from tasks.domain import requests as checks
from tasks.domain.errors import MAX_MESSAGE_LENGTH, RemitError


def _code(fn, *args, **kwargs) -> str | None:
    try:
        fn(*args, **kwargs)
    except RemitError as exc:
        return exc.code
    return None


@pytest.mark.parametrize(
    "value,ok",
    [
        (1, True),
        (2**63 - 1, True),
        (2**63, False),
        (0, False),
        (-1, False),
        (True, False),
        (False, False),
        ("1", False),
        (1.0, False),
        (None, False),
    ],
)
def test_check_id(value, ok):
    assert _code(checks.check_id, value, "thing_not_found", "Thing") == (None if ok else "thing_not_found")


@pytest.mark.parametrize(
    "value,prose,expected",
    [
        ("plain text", False, None),
        ("café ☕ 日本", False, None),
        ("two\nlines", True, None),
        ("tab\there\r\n", True, None),
        ("two\nlines", False, "bad"),
        ("nul\x00", True, "bad"),
        ("escape\x1b[2J", True, "bad"),
        ("delete\x7f", True, "bad"),
        ("c1\x85", True, "bad"),
        ("lone \ud800 surrogate", True, "bad"),
        ("vertical\x0btab", True, "bad"),
        ("x" * 31, False, "bad"),
        ("   ", False, "bad"),
        (b"bytes", False, "bad"),
        (7, False, "bad"),
    ],
)
def test_check_text(value, prose, expected):
    assert _code(checks.check_text, value, "field", "bad", 30, prose=prose) == expected


@pytest.mark.parametrize(
    "ids,expected",
    [
        ([1, 2, 3], None),
        ((5,), None),
        (list(range(1, 201)), None),
        (list(range(1, 202)), "too_many_invoices"),
        (list(range(1, 60_001)), "too_many_invoices"),
        ([1] * 60_000, "too_many_invoices"),
        ([], "no_invoices"),
        (None, "no_invoices"),
        ({1, 2}, "no_invoices"),
        ("12", "no_invoices"),
        ([1, 1], "duplicate_invoices"),
        ([1, 2**63], "invalid_invoice_id"),
        ([1, True], "invalid_invoice_id"),
        ([0], "invalid_invoice_id"),
        ([1, "2"], "invalid_invoice_id"),
    ],
)
def test_check_invoice_ids(ids, expected):
    assert _code(checks.check_invoice_ids, ids) == expected


def test_duplicates_are_named_once_each():
    with pytest.raises(RemitError) as caught:
        checks.check_invoice_ids([3, 1, 3, 2, 1, 3])
    assert "[1, 3]" in caught.value.message


@pytest.mark.parametrize(
    "reason,comment,note,expected",
    [
        ("Other", "disputed line 4\nsee email", None, None),
        (None, "   ", None, None),
        (None, None, "  ", None),
        ("Other\x00", None, None, "invalid_short_reason"),
        ("R" * 1_000_000, None, None, "invalid_short_reason"),
        (7, None, None, "invalid_short_reason"),
        (None, "a\x00b", None, "invalid_comment"),
        (None, 12, None, "invalid_comment"),
        (None, "c" * 1001, None, "comment_too_long"),
        (None, None, "n\x00", "invalid_note"),
        (None, None, "n" * 1001, "invalid_note"),
        (None, None, ["note"], "invalid_note"),
    ],
)
def test_check_request_texts(reason, comment, note, expected):
    assert _code(checks.check_request_texts, reason, comment, note) == expected


@pytest.mark.parametrize(
    "value",
    ["x" * 1_000_000, 10**5000, -(10**5000), list(range(100_000)), {"k" * 10_000: "v"}, b"b" * 10_000],
    ids=["long str", "huge int", "huge negative int", "long list", "long key", "long bytes"],
)
def test_quoted_is_bounded(value):
    assert len(checks.quoted(value)) <= checks.QUOTE_LIMIT + 5


def test_quoted_shows_small_values_whole():
    assert checks.quoted("abc") == "'abc'" and checks.quoted(True) == "True"


def test_a_refusal_message_is_bounded():
    assert len(RemitError("x", "m" * 1_000_000).message) == MAX_MESSAGE_LENGTH


@pytest.mark.parametrize(
    "sqlstate,busy",
    [("55P03", True), ("40P01", True), ("40001", True), ("57014", True), ("23505", False), (None, False)],
)
def test_is_busy(sqlstate, busy):
    assert checks.is_busy(sqlstate) is busy


@pytest.mark.parametrize(
    "last_day,attempts,today,expected",
    [
        (None, 0, date(2026, 11, 22), 1),
        (date(2026, 11, 22), 4, date(2026, 11, 22), 5),
        (date(2026, 11, 22), 5, date(2026, 11, 22), "too_many_verification_attempts"),
        (date(2026, 11, 21), 5, date(2026, 11, 22), 1),
    ],
)
def test_count_verification_attempt(last_day, attempts, today, expected):
    if isinstance(expected, int):
        assert rules.count_verification_attempt(last_day, attempts, today) == expected
    else:
        assert _code(rules.count_verification_attempt, last_day, attempts, today) == expected
