from datetime import date

import pytest

from tasks.domain import paging
from tasks.domain.errors import RemitError


def test_a_token_carries_sort_key_and_id():
    token = paging.encode_cursor("a", date(2026, 12, 1), 7)
    assert paging.decode_cursor(token, "a", {"a", "b"}, "list") == ("a", "2026-12-01", 7)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (paging.encode_cursor("b", 1, 7), "belongs to sort 'b', not 'a'"),
        (paging.encode_cursor("c", 1, 7), "not one this list returned"),
        (paging.encode_cursor("a", 1, True), "not one this list returned"),
        (None, "not one this list returned"),
    ],
)
def test_foreign_tokens_are_refused(token, message):
    with pytest.raises(RemitError, match=message) as refused:
        paging.decode_cursor(token, "a", {"a", "b"}, "list")
    assert refused.value.code == "invalid_cursor"


@pytest.mark.parametrize(
    ("text", "pattern"), [("ab", "%ab%"), ("5%", "%5\\%%"), ("a_b", "%a\\_b%"), ("\\", "%\\\\%")]
)
def test_contains_pattern_escapes_wildcards(text, pattern):
    assert paging.contains_pattern(text) == pattern
