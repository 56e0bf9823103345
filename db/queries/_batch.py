"""Rows for the set-wise statements, as one JSON document read by jsonb_to_recordset."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any


def _json(rows: Any) -> str:
    """Rows for jsonb_to_recordset; times as ISO 8601, which timestamptz reads back exactly."""
    return json.dumps(rows, default=_iso)


def _iso(value: Any) -> str:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
