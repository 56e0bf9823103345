"""Plain views of joined rows: what a request or a webhook batch reads, without loading mapped objects."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any


def _view(row: Any, table: Any, parties: dict[str, Any]) -> SimpleNamespace:
    """A plain view of a joined row: the table's columns as attributes, and each party's columns,
    selected labelled `<party>__<column>`, as a view of its own under that party's name."""
    view = SimpleNamespace(**{column.name: row[column.name] for column in table.c})
    for name, party in parties.items():
        setattr(
            view, name, SimpleNamespace(**{column.name: row[f"{name}__{column.name}"] for column in party.c})
        )
    return view
