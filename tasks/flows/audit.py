"""The audit log's one writer: each operator action (dashboard or ops CLI) commits with its change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from db.queries import audit as audit_rows


def record(session: Session, operator: str, action: str, target: str, now: datetime, **detail: Any) -> None:
    """Who did what to which row, written in the caller's transaction so it commits with the change."""
    audit_rows.insert_audit_entry(session, operator, action, target, detail, now)
