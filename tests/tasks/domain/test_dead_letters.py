"""A search line becomes a dead-letter filter: field prefixes, quotes, free text, a base kept."""

from __future__ import annotations

import pytest

from tasks.domain.dead_letters import DeadLetterFilter, parse_search

F = DeadLetterFilter


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("", F()),
        ("timeout", F(text="timeout")),  # no prefix: any field
        ("actor:send_email", F(actor="send_email")),
        ("ACTOR:send queue:emails", F(actor="send", queue="emails")),  # prefixes in any case
        ('error:"connection refused" 42', F(error="connection refused", text="42")),  # quotes group words
        ("args:17 status:dead", F(args="17", status="dead")),
        ("actor: timeout", F(text="actor: timeout")),  # an empty value is free text
        ("owner:bob", F(text="owner:bob")),  # an unknown prefix is free text
        ('error:"unbalanced', F(error='"unbalanced')),  # a lone quote: words split as typed
    ],
)
def test_search_lines(line, expected):
    assert parse_search(line) == expected


def test_a_line_overrides_only_the_fields_it_names():
    base = F(queue="emails", status="dead")
    assert parse_search("queue:payments boom", base) == F(queue="payments", status="dead", text="boom")
