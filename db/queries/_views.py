"""Plain views of joined rows: what a request or a webhook batch reads, without loading mapped objects."""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any


def _view(row: Any, table: Any, parties: dict[str, Any]) -> SimpleNamespace:
    """A plain view of a joined row: the table's columns as attributes, and each party's columns,
    selected labelled `<party>__<column>`, as a view of its own under that party's name."""
    names, party_keys = _layout(table, tuple(parties.items()))
    view = SimpleNamespace(**{name: row[name] for name in names})
    for party, keys in party_keys:
        setattr(view, party, SimpleNamespace(**{name: row[key] for name, key in keys}))
    return view


@functools.cache
def _layout(table: Any, parties: tuple[tuple[str, Any], ...]) -> tuple[list[str], list[tuple[str, list]]]:
    """The column names a view of this shape reads, and each party's (attribute, labelled key) pairs:
    worked out once per shape (a webhook batch views a hundred rows of ninety-seven columns, and walking
    the tables' columns and labelling them at every row cost half of making the views)."""
    return [column.name for column in table.c], [
        (party, [(column.name, f"{party}__{column.name}") for column in columns.c])
        for party, columns in parties
    ]
